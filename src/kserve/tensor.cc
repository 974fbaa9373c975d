// InferTensor helpers (modelgrid/kserve/tensor.h).
#include "modelgrid/kserve/tensor.h"

#include <bit>
#include <cassert>
#include <cstring>
#include <limits>
#include <string>

#include "kserve/tensor_payload.h"

namespace modelgrid {

static_assert(std::endian::native == std::endian::little,
              "the KServe wire format is little-endian; add byte swaps for this host");

Result<uint64_t> ElementCount(std::span<const int64_t> shape) {
  for (int64_t dim : shape) {
    if (dim < 0) {
      return Status::InvalidArgument("shape " + FormatShape(shape) + " has a negative dimension");
    }
  }
  uint64_t count = 1;
  bool overflow = false;
  for (int64_t dim : shape) {
    const uint64_t d = static_cast<uint64_t>(dim);
    if (d == 0) return uint64_t{0};  // an empty tensor, whatever the other dims
    if (count > std::numeric_limits<uint64_t>::max() / d) overflow = true;
    count *= d;
  }
  if (overflow) {
    return Status::InvalidArgument("shape " + FormatShape(shape) +
                                   " has more elements than fit in 64 bits");
  }
  return count;
}

Result<uint64_t> ExpectedByteSize(DataType type, std::span<const int64_t> shape) {
  const uint64_t size = DataTypeSize(type);
  if (size == 0) {
    return Status::InvalidArgument(std::string(DataTypeName(type)) +
                                   " elements have no fixed byte size");
  }
  MG_ASSIGN_OR_RETURN(const uint64_t count, ElementCount(shape));
  if (count > std::numeric_limits<uint64_t>::max() / size) {
    return Status::InvalidArgument("shape " + FormatShape(shape) + " " +
                                   std::string(DataTypeName(type)) +
                                   " has more bytes than fit in 64 bits");
  }
  return count * size;
}

std::string FormatShape(std::span<const int64_t> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += std::to_string(shape[i]);
  }
  out.push_back(']');
  return out;
}

void AppendBytesElement(std::string* data, std::string_view element) {
  assert(element.size() <= std::numeric_limits<uint32_t>::max());
  const uint32_t len = static_cast<uint32_t>(element.size());
  char prefix[4];
  std::memcpy(prefix, &len, sizeof(prefix));
  data->append(prefix, sizeof(prefix));
  data->append(element);
}

Result<std::vector<std::string_view>> SplitBytesElements(std::string_view data) {
  std::vector<std::string_view> elements;
  size_t pos = 0;
  while (pos < data.size()) {
    if (data.size() - pos < 4) {
      return Status::InvalidArgument(
          "BYTES element " + std::to_string(elements.size()) + " at offset " + std::to_string(pos) +
          " needs a 4-byte length, only " + std::to_string(data.size() - pos) + " bytes left");
    }
    uint32_t len;
    std::memcpy(&len, data.data() + pos, sizeof(len));
    pos += 4;
    if (len > data.size() - pos) {
      return Status::InvalidArgument("BYTES element " + std::to_string(elements.size()) +
                                     " has length " + std::to_string(len) + " but only " +
                                     std::to_string(data.size() - pos) + " bytes are left");
    }
    elements.push_back(data.substr(pos, len));
    pos += len;
  }
  return elements;
}

namespace kserve_internal {

Status CheckTensorPayload(const InferTensorView& tensor) {
  MG_ASSIGN_OR_RETURN(const uint64_t count, ElementCount(tensor.shape));
  const std::string type_name(DataTypeName(tensor.datatype));
  if (count > kMaxTensorElements) {
    return Status::InvalidArgument("shape " + FormatShape(tensor.shape) + " has " +
                                   std::to_string(count) + " elements, more than the limit " +
                                   std::to_string(kMaxTensorElements));
  }
  if (tensor.datatype == DataType::kBytes) {
    MG_ASSIGN_OR_RETURN(const auto elements, SplitBytesElements(tensor.data));
    if (elements.size() != count) {
      return Status::InvalidArgument("BYTES data holds " + std::to_string(elements.size()) +
                                     " elements, shape " + FormatShape(tensor.shape) + " needs " +
                                     std::to_string(count));
    }
    return Status::Ok();
  }
  const uint64_t expected = count * DataTypeSize(tensor.datatype);
  if (tensor.data.size() != expected) {
    return Status::InvalidArgument("data has " + std::to_string(tensor.data.size()) +
                                   " bytes but shape " + FormatShape(tensor.shape) + " " +
                                   type_name + " needs " + std::to_string(expected) + " bytes");
  }
  if (tensor.datatype == DataType::kBool) {
    for (size_t i = 0; i < tensor.data.size(); ++i) {
      const auto b = static_cast<unsigned char>(tensor.data[i]);
      if (b > 1) {
        return Status::InvalidArgument("BOOL element " + std::to_string(i) + " is byte " +
                                       std::to_string(b) + ", needs 0 or 1");
      }
    }
  }
  return Status::Ok();
}

}  // namespace kserve_internal

InferTensorView ViewOf(const InferTensor& tensor) {
  return InferTensorView{tensor.name, tensor.datatype, tensor.shape, TensorBytes(tensor)};
}

Status ValidateTensorData(const InferTensorView& tensor, std::string_view kind) {
  return kserve_internal::CheckTensorPayload(tensor).WithPrefix(std::string(kind) + " '" +
                                                                std::string(tensor.name) + "'");
}

Status ValidateTensorData(const InferTensor& tensor, std::string_view kind) {
  return ValidateTensorData(ViewOf(tensor), kind);
}

}  // namespace modelgrid

#include "modelgrid/scheduler/batch_tensors.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <string_view>

namespace modelgrid {
namespace {

bool SameInnerDims(const InferTensor& a, const InferTensor& b) {
  return a.shape.size() == b.shape.size() && !a.shape.empty() &&
         std::equal(a.shape.begin() + 1, a.shape.end(), b.shape.begin() + 1);
}

}  // namespace

std::optional<int64_t> RequestBatchSize(std::span<const InferTensor> inputs) {
  if (inputs.empty()) return std::nullopt;
  std::set<std::string_view> names;
  const InferTensor& first = inputs.front();
  if (first.shape.empty() || first.shape[0] < 1) return std::nullopt;
  for (const InferTensor& t : inputs) {
    if (t.shape.empty() || t.shape[0] != first.shape[0]) return std::nullopt;
    if (!names.insert(t.name).second) return std::nullopt;
  }
  return first.shape[0];
}

Result<InferTensor> ConcatBatch(std::span<const InferTensor* const> parts) {
  if (parts.empty()) return Status::InvalidArgument("cannot concatenate an empty batch");
  const InferTensor& head = *parts[0];
  if (head.shape.empty()) {
    return Status::InvalidArgument(
        fmt::format("input '{}': a scalar has no batch dimension", head.name));
  }
  InferTensor out;
  out.name = head.name;
  out.datatype = head.datatype;
  out.parameters = head.parameters;
  out.shape = head.shape;
  out.shape[0] = 0;
  size_t bytes = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const InferTensor& p = *parts[i];
    if (p.name != head.name || p.datatype != head.datatype || !SameInnerDims(p, head)) {
      return Status::InvalidArgument(
          fmt::format("input '{}': part {} ('{}', {}, {}) does not match part 0 ({}, {})",
                      head.name, i, p.name, DataTypeName(p.datatype), FormatShape(p.shape),
                      DataTypeName(head.datatype), FormatShape(head.shape)));
    }
    Status valid = ValidateTensorData(p, "input");
    if (!valid.ok()) return valid.WithPrefix(fmt::format("batch part {}", i));
    out.shape[0] += p.shape[0];
    bytes += TensorBytes(p).size();
  }
  out.data.reserve(bytes);
  // Row-major layout (and BYTES' back-to-back elements): rows of part i+1
  // follow the rows of part i, so the bytes simply follow too.
  for (const InferTensor* p : parts) out.data += TensorBytes(*p);
  return out;
}

Status CheckBatchOutput(const InferTensor& tensor, std::span<const int64_t> batch_sizes) {
  if (tensor.shape.empty()) {
    return Status::InvalidArgument(
        fmt::format("output '{}' is a scalar and has no batch dimension", tensor.name));
  }
  int64_t total = 0;
  for (int64_t b : batch_sizes) {
    if (b < 0) {
      return Status::InvalidArgument(
          fmt::format("output '{}': negative batch size {}", tensor.name, b));
    }
    total += b;
  }
  if (tensor.shape[0] != total) {
    return Status::InvalidArgument(
        fmt::format("output '{}' has dimension 0 of {} (shape {}) but the batch holds {} rows",
                    tensor.name, tensor.shape[0], FormatShape(tensor.shape), total));
  }
  return ValidateTensorData(tensor, "output");
}

Result<std::vector<InferTensor>> SplitBatch(const InferTensor& tensor,
                                            std::span<const int64_t> batch_sizes) {
  MG_RETURN_IF_ERROR(CheckBatchOutput(tensor, batch_sizes));
  std::vector<int64_t> inner(tensor.shape.begin() + 1, tensor.shape.end());
  uint64_t row_elements = 0;
  { MG_ASSIGN_OR_RETURN(row_elements, ElementCount(inner)); }

  // Byte offset where each row group starts.
  std::vector<size_t> cuts;
  cuts.reserve(batch_sizes.size() + 1);
  cuts.push_back(0);
  if (tensor.datatype == DataType::kBytes) {
    std::string_view data = tensor.data;
    size_t offset = 0;
    for (int64_t b : batch_sizes) {
      for (uint64_t e = 0; e < static_cast<uint64_t>(b) * row_elements; ++e) {
        // ValidateTensorData checked every prefix and length already.
        uint32_t len = 0;
        for (int k = 3; k >= 0; --k) {
          len = (len << 8) | static_cast<uint8_t>(data[offset + static_cast<size_t>(k)]);
        }
        offset += 4 + len;
      }
      cuts.push_back(offset);
    }
  } else {
    const uint64_t row_bytes = row_elements * DataTypeSize(tensor.datatype);
    size_t offset = 0;
    for (int64_t b : batch_sizes) {
      offset += static_cast<size_t>(b) * row_bytes;
      cuts.push_back(offset);
    }
  }

  std::vector<InferTensor> pieces;
  pieces.reserve(batch_sizes.size());
  for (size_t i = 0; i < batch_sizes.size(); ++i) {
    InferTensor piece;
    piece.name = tensor.name;
    piece.datatype = tensor.datatype;
    piece.parameters = tensor.parameters;
    piece.shape = tensor.shape;
    piece.shape[0] = batch_sizes[i];
    piece.data = tensor.data.substr(cuts[i], cuts[i + 1] - cuts[i]);
    pieces.push_back(std::move(piece));
  }
  return pieces;
}

}  // namespace modelgrid

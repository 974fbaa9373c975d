#include "kserve/tensor_wire.h"

#include <set>
#include <string>

#include "kserve/json_text.h"
#include "kserve/tensor_json.h"
#include "kserve/tensor_payload.h"

namespace modelgrid::kserve_internal {

namespace {

using nlohmann::json;

constexpr const char* kBinaryDataSize = "binary_data_size";

// The tensor's shape from "shape": an array of JSON integers.
Result<std::vector<int64_t>> DecodeShape(const json& t) {
  const auto it = t.find("shape");
  if (it == t.end()) return Status::InvalidArgument("missing \"shape\"");
  if (!it->is_array()) return Status::InvalidArgument("\"shape\" must be an array of integers");
  std::vector<int64_t> shape;
  for (const json& d : *it) {
    if (d.is_number_unsigned()) {
      if (d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return Status::InvalidArgument("shape dimension " + d.dump() + " is too large");
      }
      shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    } else if (d.is_number_integer()) {
      shape.push_back(d.get<int64_t>());
    } else {
      return Status::InvalidArgument("\"shape\" must be an array of integers, found " +
                                     d.dump(-1, ' ', false, json::error_handler_t::replace));
    }
  }
  return shape;
}

// binary_data_size from `params`, if present.
Result<std::optional<uint64_t>> DecodeBinarySize(const json& params) {
  const auto it = params.find(kBinaryDataSize);
  if (it == params.end()) return std::optional<uint64_t>();
  if (it->is_number_unsigned()) return std::optional<uint64_t>(it->get<uint64_t>());
  if (it->is_number_integer() && it->get<int64_t>() >= 0) {
    return std::optional<uint64_t>(static_cast<uint64_t>(it->get<int64_t>()));
  }
  return Status::InvalidArgument("binary_data_size must be a non-negative integer, got " +
                                 it->dump(-1, ' ', false, json::error_handler_t::replace));
}

// Takes the tensor's bytes from the binary part.
Status TakeBinary(uint64_t size, BinaryPart* binary, InferTensor* tensor) {
  const std::string size_text = "binary_data_size " + std::to_string(size);
  if (!binary->present) {
    return Status::InvalidArgument(size_text +
                                   " but the request has no Inference-Header-Content-Length");
  }
  if (tensor->datatype != DataType::kBytes) {
    MG_ASSIGN_OR_RETURN(const uint64_t expected, ExpectedByteSize(tensor->datatype, tensor->shape));
    if (size != expected) {
      return Status::InvalidArgument(size_text + " but shape " + FormatShape(tensor->shape) + " " +
                                     std::string(DataTypeName(tensor->datatype)) + " needs " +
                                     std::to_string(expected) + " bytes");
    }
  }
  const size_t left = binary->bytes.size() - binary->used;
  if (size > left) {
    return Status::InvalidArgument(size_text + " but only " + std::to_string(left) +
                                   " bytes of binary data are left");
  }
  const std::string_view bytes = binary->bytes.substr(binary->used, size);
  if (binary->owner && tensor->datatype != DataType::kBytes && size >= kBorrowMinBytes) {
    auto borrowed = std::make_shared<SharedTensorBytes>();
    borrowed->bytes = bytes;
    borrowed->keep = binary->owner;
    tensor->shared = std::move(borrowed);
  } else {
    tensor->data.assign(bytes);
  }
  binary->used += size;
  return CheckTensorPayload(ViewOf(*tensor));
}

// `shared_inputs`: an input whose parameters name "shared_memory_region"
// carries no bytes here (Triton's system shared memory extension; the grid
// resolves it, InferCall in modelgrid/grid.h), so it is decoded without data
// and keeps its parameters. False for outputs of a response.
Result<InferTensor> DecodeTensorBody(const json& t, InferTensor tensor, BinaryPart* binary,
                                     const DecodeOptions& options, bool shared_inputs) {
  const auto dt = t.find("datatype");
  if (dt == t.end() || !dt->is_string()) {
    return Status::InvalidArgument("missing \"datatype\" string");
  }
  const std::optional<DataType> type = ParseDataType(dt->get_ref<const std::string&>());
  if (!type) {
    return Status::InvalidArgument("unknown datatype '" + dt->get<std::string>() + "'");
  }
  tensor.datatype = *type;
  MG_ASSIGN_OR_RETURN(tensor.shape, DecodeShape(t));
  MG_ASSIGN_OR_RETURN(const uint64_t count, ElementCount(tensor.shape));
  if (count > options.max_tensor_elements) {
    return Status::InvalidArgument("shape " + FormatShape(tensor.shape) + " has " +
                                   std::to_string(count) + " elements, more than the limit " +
                                   std::to_string(options.max_tensor_elements));
  }
  MG_ASSIGN_OR_RETURN(tensor.parameters, OptionalObject(t, "parameters", ""));
  const auto data = t.find("data");
  if (tensor.parameters.contains("shared_memory_region")) {
    if (!shared_inputs) return Status::Unsupported("shared memory tensors are not supported");
    if (data != t.end())
      return Status::InvalidArgument("has both \"data\" and shared_memory_region");
    if (tensor.parameters.contains(kBinaryDataSize)) {
      return Status::InvalidArgument("has both binary_data_size and shared_memory_region");
    }
    return tensor;
  }
  MG_ASSIGN_OR_RETURN(const std::optional<uint64_t> binary_size,
                      DecodeBinarySize(tensor.parameters));
  if (binary_size) {
    if (data != t.end()) {
      return Status::InvalidArgument("has both \"data\" and binary_data_size");
    }
    tensor.parameters.erase(kBinaryDataSize);
    MG_RETURN_IF_ERROR(TakeBinary(*binary_size, binary, &tensor));
    return tensor;
  }
  if (data == t.end()) {
    return Status::InvalidArgument("has no \"data\" and no binary_data_size");
  }
  MG_ASSIGN_OR_RETURN(tensor.data, JsonDataToBytes(*data, tensor.datatype, tensor.shape, count));
  return tensor;
}

}  // namespace

Result<std::string> OptionalString(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end()) return std::string();
  if (!it->is_string()) {
    return Status::InvalidArgument("\"" + std::string(key) + "\" must be a string");
  }
  return it->get<std::string>();
}

Result<json> OptionalObject(const json& object, const char* key, std::string_view where) {
  const auto it = object.find(key);
  if (it == object.end()) return json::object();
  if (!it->is_object()) {
    return Status::InvalidArgument(std::string(where) + "\"" + key + "\" must be a JSON object");
  }
  return *it;
}

Result<json> ParseBody(std::string_view body, std::optional<size_t> json_header_length,
                       BinaryPart* binary) {
  std::string_view header = body;
  if (json_header_length) {
    if (*json_header_length > body.size()) {
      return Status::InvalidArgument(
          "Inference-Header-Content-Length " + std::to_string(*json_header_length) +
          " is larger than the body (" + std::to_string(body.size()) + " bytes)");
    }
    header = body.substr(0, *json_header_length);
    binary->present = true;
    binary->bytes = body.substr(*json_header_length);
  }
  MG_ASSIGN_OR_RETURN(json root, ParseInferJson(header));
  if (!root.is_object()) return Status::InvalidArgument("the body must be a JSON object");
  return root;
}

Result<std::vector<InferTensor>> DecodeTensors(const json& list, std::string_view kind,
                                               BinaryPart* binary, const DecodeOptions& options) {
  if (!list.is_array()) {
    return Status::InvalidArgument("\"" + std::string(kind) + "s\" must be an array");
  }
  std::vector<InferTensor> tensors;
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& t = list[i];
    const std::string where = std::string(kind) + "s[" + std::to_string(i) + "]";
    if (!t.is_object()) return Status::InvalidArgument(where + " must be a JSON object");
    const auto name = t.find("name");
    if (name == t.end() || !name->is_string()) {
      return Status::InvalidArgument(where + " has no \"name\" string");
    }
    InferTensor tensor;
    tensor.name = name->get<std::string>();
    const std::string prefix = std::string(kind) + " '" + tensor.name + "'";
    if (!names.insert(tensor.name).second) {
      return Status::InvalidArgument(prefix + " appears more than once");
    }
    auto decoded = DecodeTensorBody(t, std::move(tensor), binary, options, kind == "input");
    if (!decoded.ok()) return decoded.status().WithPrefix(prefix);
    tensors.push_back(std::move(decoded).value());
  }
  return tensors;
}

Status CheckBinaryUsed(const BinaryPart& binary) {
  if (binary.used == binary.bytes.size()) return Status::Ok();
  return Status::InvalidArgument("the binary data has " + std::to_string(binary.bytes.size()) +
                                 " bytes but the binary_data_size values add up to " +
                                 std::to_string(binary.used));
}

Status AppendTensor(std::string* json_out, std::string* binary_out, const InferTensor& tensor,
                    bool binary, std::string_view kind) {
  std::string& out = *json_out;
  out.append("{\"name\":");
  AppendJsonString(&out, tensor.name, /*lossy=*/true);
  out.append(",\"datatype\":\"");
  out.append(DataTypeName(tensor.datatype));
  out.append("\",\"shape\":[");
  for (size_t i = 0; i < tensor.shape.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendInt(&out, tensor.shape[i]);
  }
  out.push_back(']');
  json params = tensor.parameters.is_object() ? tensor.parameters : json::object();
  // An output the service wrote into the client's shared memory: its
  // parameters say where, and the body carries no data.
  const bool in_shared_memory = params.contains("shared_memory_region") && tensor.data.empty();
  if (in_shared_memory) binary = false;
  if (binary) {
    params[kBinaryDataSize] = tensor.data.size();
  } else {
    params.erase(kBinaryDataSize);
  }
  if (!params.empty()) {
    out.append(",\"parameters\":");
    AppendJsonValue(&out, params);
  }
  if (binary) {
    binary_out->append(tensor.data);
  } else if (!in_shared_memory) {
    out.append(",\"data\":");
    const Status s = AppendJsonData(&out, tensor);
    if (!s.ok()) return s.WithPrefix(std::string(kind) + " '" + tensor.name + "'");
  }
  out.push_back('}');
  return Status::Ok();
}

}  // namespace modelgrid::kserve_internal

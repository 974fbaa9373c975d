// gRPC messages <-> service structs (grpc_convert.h).
#include "grpc/grpc_convert.h"

#include <cstring>
#include <limits>
#include <set>
#include <type_traits>
#include <utility>

namespace modelgrid::grpc_internal {

namespace {

using nlohmann::json;
using inference::InferParameter;
using inference::InferTensorContents;

// Appends `value` as a little-endian element of `Bytes` bytes (the
// platform is little-endian: x86-64, aarch64).
template <typename T>
void AppendRaw(std::string* data, T value) {
  data->append(reinterpret_cast<const char*>(&value), sizeof(T));
}

template <typename T>
T ReadRaw(const std::string& data, size_t i) {
  T value;
  std::memcpy(&value, data.data() + i * sizeof(T), sizeof(T));
  return value;
}

// Narrows typed values of `values` into `T` elements, checking each
// against T's range. Errors: "<who>: value V out of range for TYPE (element i)".
template <typename T, typename Repeated>
Status AppendNarrowed(const Repeated& values, DataType type, const std::string& who,
                      std::string* data) {
  size_t i = 0;
  for (auto v : values) {
    if (v < static_cast<decltype(v)>(std::numeric_limits<T>::lowest()) ||
        v > static_cast<decltype(v)>(std::numeric_limits<T>::max())) {
      return Status::InvalidArgument(who + ": value " + std::to_string(v) + " out of range for " +
                                     std::string(DataTypeName(type)) + " (element " +
                                     std::to_string(i) + ")");
    }
    AppendRaw<T>(data, static_cast<T>(v));
    ++i;
  }
  return Status::Ok();
}

// The number of typed values in `c` and the field they are in, for messages.
std::pair<size_t, const char*> TypedCount(const InferTensorContents& c) {
  if (c.bool_contents_size()) return {c.bool_contents_size(), "bool_contents"};
  if (c.int_contents_size()) return {c.int_contents_size(), "int_contents"};
  if (c.int64_contents_size()) return {c.int64_contents_size(), "int64_contents"};
  if (c.uint_contents_size()) return {c.uint_contents_size(), "uint_contents"};
  if (c.uint64_contents_size()) return {c.uint64_contents_size(), "uint64_contents"};
  if (c.fp32_contents_size()) return {c.fp32_contents_size(), "fp32_contents"};
  if (c.fp64_contents_size()) return {c.fp64_contents_size(), "fp64_contents"};
  if (c.bytes_contents_size()) return {c.bytes_contents_size(), "bytes_contents"};
  return {0, ""};
}

// The typed field a datatype's values travel in.
const char* TypedField(DataType type) {
  switch (type) {
    case DataType::kBool: return "bool_contents";
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32: return "int_contents";
    case DataType::kInt64: return "int64_contents";
    case DataType::kUInt8:
    case DataType::kUInt16:
    case DataType::kUInt32: return "uint_contents";
    case DataType::kUInt64: return "uint64_contents";
    case DataType::kFP32: return "fp32_contents";
    case DataType::kFP64: return "fp64_contents";
    case DataType::kBytes: return "bytes_contents";
    case DataType::kFP16:
    case DataType::kBF16: return "";
  }
  return "";
}

// Typed contents -> raw bytes of `tensor` (its datatype and shape set).
Status TypedToRaw(const InferTensorContents& c, const std::string& who, InferTensor* tensor) {
  const DataType type = tensor->datatype;
  const char* field = TypedField(type);
  if (*field == '\0') {
    return Status::InvalidArgument(who + ": " + std::string(DataTypeName(type)) +
                                   " has no typed contents field; send it in raw_input_contents");
  }
  const auto [count, used] = TypedCount(c);
  if (count > 0 && std::strcmp(used, field) != 0) {
    return Status::InvalidArgument(who + ": " + std::string(DataTypeName(type)) +
                                   " values go in " + field + ", got " + used);
  }
  MG_ASSIGN_OR_RETURN(const uint64_t elements, ElementCount(tensor->shape));
  if (count != elements) {
    return Status::InvalidArgument(who + ": shape " + FormatShape(tensor->shape) + " needs " +
                                   std::to_string(elements) + " elements, got " +
                                   std::to_string(count) + " in " + field);
  }
  std::string& d = tensor->data;
  switch (type) {
    case DataType::kBool:
      for (bool b : c.bool_contents()) d.push_back(b ? 1 : 0);
      return Status::Ok();
    case DataType::kInt8: return AppendNarrowed<int8_t>(c.int_contents(), type, who, &d);
    case DataType::kInt16: return AppendNarrowed<int16_t>(c.int_contents(), type, who, &d);
    case DataType::kInt32: return AppendNarrowed<int32_t>(c.int_contents(), type, who, &d);
    case DataType::kInt64: return AppendNarrowed<int64_t>(c.int64_contents(), type, who, &d);
    case DataType::kUInt8: return AppendNarrowed<uint8_t>(c.uint_contents(), type, who, &d);
    case DataType::kUInt16: return AppendNarrowed<uint16_t>(c.uint_contents(), type, who, &d);
    case DataType::kUInt32: return AppendNarrowed<uint32_t>(c.uint_contents(), type, who, &d);
    case DataType::kUInt64: return AppendNarrowed<uint64_t>(c.uint64_contents(), type, who, &d);
    case DataType::kFP32:
      for (float v : c.fp32_contents()) AppendRaw<float>(&d, v);
      return Status::Ok();
    case DataType::kFP64:
      for (double v : c.fp64_contents()) AppendRaw<double>(&d, v);
      return Status::Ok();
    case DataType::kBytes:
      for (const std::string& e : c.bytes_contents()) {
        if (e.size() > std::numeric_limits<uint32_t>::max()) {
          return Status::InvalidArgument(who + ": a BYTES element is over 4 GiB");
        }
        AppendBytesElement(&d, e);
      }
      return Status::Ok();
    case DataType::kFP16:
    case DataType::kBF16:
      break;
  }
  return Status::Internal(who + ": unhandled datatype");
}

// The fields of one tensor message shared by inputs and outputs.
template <typename TensorMessage>
Result<InferTensor> TensorFromMessage(TensorMessage* m, const std::string& who) {
  InferTensor t;
  t.name = m->name();
  const auto type = ParseDataType(m->datatype());
  if (!type) {
    return Status::InvalidArgument(who + ": unknown datatype '" + m->datatype() +
                                   "' (expected BOOL, UINT8..UINT64, INT8..INT64, FP16, BF16, "
                                   "FP32, FP64 or BYTES)");
  }
  t.datatype = *type;
  t.shape.assign(m->shape().begin(), m->shape().end());
  for (int64_t dim : t.shape) {
    if (dim < 0) {
      return Status::InvalidArgument(who + ": shape " + FormatShape(t.shape) +
                                     " has a negative dimension");
    }
  }
  t.parameters = ParametersToJson(m->parameters());
  return t;
}

bool InSharedMemory(const InferTensor& t) { return t.parameters.contains("shared_memory_region"); }

// Fills `tensors` (decoded headers) with their bytes: raw entries when
// there are any, else typed contents. `kind` is "input" or "output".
template <typename TensorMessages>
Status FillContents(TensorMessages* messages, google::protobuf::RepeatedPtrField<std::string>* raw,
                    const char* kind, std::vector<InferTensor>* tensors) {
  const bool use_raw = raw->size() > 0;
  if (use_raw && raw->size() != static_cast<int>(tensors->size())) {
    return Status::InvalidArgument(std::string("raw_") + kind + "_contents has " +
                                   std::to_string(raw->size()) + " entries for " +
                                   std::to_string(tensors->size()) + " " + kind + "s");
  }
  for (size_t i = 0; i < tensors->size(); ++i) {
    InferTensor& t = (*tensors)[i];
    const std::string who = std::string(kind) + " '" + t.name + "'";
    auto* m = messages->Mutable(static_cast<int>(i));
    const bool typed = m->has_contents() && TypedCount(m->contents()).first > 0;
    if (use_raw && typed) {
      return Status::InvalidArgument(who + ": has typed contents while raw_" + kind +
                                     "_contents is used (send one or the other)");
    }
    if (InSharedMemory(t)) {
      if (typed || (use_raw && !(*raw)[static_cast<int>(i)].empty())) {
        return Status::InvalidArgument(who + ": has both data and shared_memory_region");
      }
      continue;
    }
    if (use_raw) {
      t.data = std::move(*raw->Mutable(static_cast<int>(i)));  // no copy of the bytes
    } else {
      MG_RETURN_IF_ERROR(TypedToRaw(m->contents(), who, &t));
    }
    MG_RETURN_IF_ERROR(ValidateTensorData(t, kind));
  }
  return Status::Ok();
}

}  // namespace

json ParametersToJson(const ParameterMap& params) {
  json out = json::object();
  for (const auto& [key, p] : params) {
    switch (p.parameter_choice_case()) {
      case InferParameter::kBoolParam: out[key] = p.bool_param(); break;
      case InferParameter::kInt64Param: out[key] = p.int64_param(); break;
      case InferParameter::kStringParam: out[key] = p.string_param(); break;
      case InferParameter::kDoubleParam: out[key] = p.double_param(); break;
      case InferParameter::kUint64Param: out[key] = p.uint64_param(); break;
      case InferParameter::PARAMETER_CHOICE_NOT_SET: out[key] = nullptr; break;
    }
  }
  return out;
}

Status ParametersFromJson(const json& params, const std::string& who, ParameterMap* out) {
  if (!params.is_object()) return Status::Ok();
  for (auto it = params.begin(); it != params.end(); ++it) {
    InferParameter p;
    const json& v = it.value();
    if (v.is_boolean()) {
      p.set_bool_param(v.get<bool>());
    } else if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        p.set_int64_param(static_cast<int64_t>(u));
      } else {
        p.set_uint64_param(u);
      }
    } else if (v.is_number_integer()) {
      p.set_int64_param(v.get<int64_t>());
    } else if (v.is_number_float()) {
      p.set_double_param(v.get<double>());
    } else if (v.is_string()) {
      p.set_string_param(v.get<std::string>());
    } else {
      return Status::InvalidArgument(who + ": parameter '" + it.key() +
                                     "' must be a bool, number or string for gRPC");
    }
    (*out)[it.key()] = std::move(p);
  }
  return Status::Ok();
}

Result<InferRequest> DecodeModelInferRequest(inference::ModelInferRequest* request) {
  InferRequest out;
  out.id = request->id();
  out.parameters = ParametersToJson(request->parameters());
  out.parameters.erase("binary_data_output");
  std::set<std::string> names;
  for (int i = 0; i < request->inputs_size(); ++i) {
    auto* m = request->mutable_inputs(i);
    const std::string who = "input '" + m->name() + "'";
    if (!names.insert(m->name()).second) {
      return Status::InvalidArgument(who + ": appears twice in the request");
    }
    MG_ASSIGN_OR_RETURN(InferTensor t, TensorFromMessage(m, who));
    out.inputs.push_back(std::move(t));
  }
  MG_RETURN_IF_ERROR(FillContents(request->mutable_inputs(), request->mutable_raw_input_contents(),
                                  "input", &out.inputs));
  for (const auto& o : request->outputs()) {
    RequestedOutput r;
    r.name = o.name();
    r.parameters = ParametersToJson(o.parameters());
    r.parameters.erase("binary_data");
    out.outputs.push_back(std::move(r));
  }
  return out;
}

Status EncodeModelInferRequest(const std::string& model, const std::string& version,
                               const InferRequest& request, inference::ModelInferRequest* out) {
  out->set_model_name(model);
  out->set_model_version(version);
  out->set_id(request.id);
  MG_RETURN_IF_ERROR(ParametersFromJson(request.parameters, "request", out->mutable_parameters()));
  for (const InferTensor& t : request.inputs) {
    auto* m = out->add_inputs();
    m->set_name(t.name);
    m->set_datatype(std::string(DataTypeName(t.datatype)));
    for (int64_t d : t.shape) m->add_shape(d);
    MG_RETURN_IF_ERROR(ParametersFromJson(t.parameters, "input '" + t.name + "'",
                                          m->mutable_parameters()));
    out->add_raw_input_contents(std::string(TensorBytes(t)));
  }
  for (const RequestedOutput& o : request.outputs) {
    auto* m = out->add_outputs();
    m->set_name(o.name);
    MG_RETURN_IF_ERROR(ParametersFromJson(o.parameters, "output '" + o.name + "'",
                                          m->mutable_parameters()));
  }
  return Status::Ok();
}

namespace {

// EncodeModelInferResponse for both overloads: `Response` is const or not;
// a non-const response's output bytes are moved.
template <typename Response>
Status EncodeResponse(Response& response, inference::ModelInferResponse* out) {
  out->set_model_name(response.model_name);
  out->set_model_version(response.model_version);
  out->set_id(response.id);
  MG_RETURN_IF_ERROR(
      ParametersFromJson(response.parameters, "response", out->mutable_parameters()));
  for (auto& t : response.outputs) {
    auto* m = out->add_outputs();
    m->set_name(t.name);
    m->set_datatype(std::string(DataTypeName(t.datatype)));
    for (int64_t d : t.shape) m->add_shape(d);
    MG_RETURN_IF_ERROR(ParametersFromJson(t.parameters, "output '" + t.name + "'",
                                          m->mutable_parameters()));
    if constexpr (std::is_const_v<Response>) {
      out->add_raw_output_contents(t.data);
    } else {
      out->add_raw_output_contents(std::move(t.data));
    }
  }
  return Status::Ok();
}

}  // namespace

Status EncodeModelInferResponse(const InferResponse& response,
                                inference::ModelInferResponse* out) {
  return EncodeResponse(response, out);
}

Status EncodeModelInferResponse(InferResponse&& response, inference::ModelInferResponse* out) {
  return EncodeResponse(response, out);
}

Result<InferResponse> DecodeModelInferResponse(inference::ModelInferResponse* response) {
  InferResponse out;
  out.model_name = response->model_name();
  out.model_version = response->model_version();
  out.id = response->id();
  out.parameters = ParametersToJson(response->parameters());
  for (int i = 0; i < response->outputs_size(); ++i) {
    auto* m = response->mutable_outputs(i);
    MG_ASSIGN_OR_RETURN(InferTensor t, TensorFromMessage(m, "output '" + m->name() + "'"));
    out.outputs.push_back(std::move(t));
  }
  MG_RETURN_IF_ERROR(FillContents(response->mutable_outputs(),
                                  response->mutable_raw_output_contents(), "output",
                                  &out.outputs));
  return out;
}

grpc::Status ToGrpcStatus(const Status& status) {
  using grpc::StatusCode;
  StatusCode code = StatusCode::INTERNAL;
  switch (status.code()) {
    case modelgrid::StatusCode::kOk: return grpc::Status::OK;
    case modelgrid::StatusCode::kInvalidArgument:
    case modelgrid::StatusCode::kCorruption: code = StatusCode::INVALID_ARGUMENT; break;
    case modelgrid::StatusCode::kNotFound: code = StatusCode::NOT_FOUND; break;
    case modelgrid::StatusCode::kAlreadyExists: code = StatusCode::ALREADY_EXISTS; break;
    case modelgrid::StatusCode::kUnavailable: code = StatusCode::UNAVAILABLE; break;
    case modelgrid::StatusCode::kResourceExhausted: code = StatusCode::RESOURCE_EXHAUSTED; break;
    case modelgrid::StatusCode::kUnsupported: code = StatusCode::UNIMPLEMENTED; break;
    case modelgrid::StatusCode::kPermissionDenied: code = StatusCode::PERMISSION_DENIED; break;
    case modelgrid::StatusCode::kInternal: code = StatusCode::INTERNAL; break;
  }
  return grpc::Status(code, status.message());
}

Status FromGrpcStatus(const grpc::Status& status) {
  using grpc::StatusCode;
  switch (status.error_code()) {
    case StatusCode::OK: return Status::Ok();
    case StatusCode::INVALID_ARGUMENT: return Status::InvalidArgument(status.error_message());
    case StatusCode::NOT_FOUND: return Status::NotFound(status.error_message());
    case StatusCode::ALREADY_EXISTS: return Status::AlreadyExists(status.error_message());
    case StatusCode::RESOURCE_EXHAUSTED: return Status::ResourceExhausted(status.error_message());
    case StatusCode::UNIMPLEMENTED: return Status::Unsupported(status.error_message());
    case StatusCode::PERMISSION_DENIED: return Status::PermissionDenied(status.error_message());
    case StatusCode::UNAVAILABLE:
    case StatusCode::DEADLINE_EXCEEDED:
    case StatusCode::CANCELLED: return Status::Unavailable(status.error_message());
    default: return Status::Internal(status.error_message());
  }
}

}  // namespace modelgrid::grpc_internal

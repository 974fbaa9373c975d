// EncodePayload / DecodePayload of `infer` and `result`: protocol buffers
// (request.proto) with the checks of their JSON form (messages.h).
#include <nlohmann/json.hpp>

#include "ipc/message_checks.h"
#include "modelgrid/ipc/messages.h"
#include "request.pb.h"

namespace modelgrid::ipc {
namespace {

std::string Context(MessageType type) {
  return "'" + std::string(MessageTypeName(type)) + "' message";
}

void ToProto(const TensorRef& t, pb::Tensor* out) {
  out->set_name(t.name);
  out->set_datatype(std::string(DataTypeName(t.datatype)));
  for (int64_t d : t.shape) out->add_shape(d);
  out->set_offset(t.offset);
  out->set_size(t.size);
  out->set_region(t.region_id);
}

// A decoded tensor list, checked as FromJson checks it.
Status FromProto(const google::protobuf::RepeatedPtrField<pb::Tensor>& tensors,
                 const std::string& context, const char* field, std::vector<TensorRef>* out) {
  out->clear();
  out->reserve(tensors.size());
  for (int i = 0; i < tensors.size(); ++i) {
    const pb::Tensor& p = tensors[i];
    const std::string where = context + ": " + field + "[" + std::to_string(i) + "]";
    TensorRef t;
    t.name = p.name();
    const auto type = ParseDataType(p.datatype());
    if (!type) {
      return Status::Corruption(where + ": field 'datatype': unknown datatype '" + p.datatype() +
                                "'");
    }
    t.datatype = *type;
    t.shape.assign(p.shape().begin(), p.shape().end());
    t.offset = p.offset();
    t.size = p.size();
    t.region_id = p.region();
    MG_RETURN_IF_ERROR(internal::CheckTensorRef(t, where));
    out->push_back(std::move(t));
  }
  return Status::Ok();
}

void ToProto(const ErrorInfo& e, pb::Error* out) {
  out->set_code(std::string(StatusCodeName(e.code)));
  out->set_message(e.message);
  if (e.memory_limit) {
    pb::MemoryLimit* m = out->mutable_memory_limit();
    m->set_model(e.memory_limit->model);
    m->set_device(e.memory_limit->device);
    m->set_limit_bytes(e.memory_limit->limit_bytes);
    m->set_in_use_bytes(e.memory_limit->in_use_bytes);
    m->set_requested_bytes(e.memory_limit->requested_bytes);
  }
}

template <typename Proto>
Status Parse(std::string_view payload, MessageType type, Proto* proto) {
  if (!proto->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return Status::Corruption(Context(type) + ": payload is not a valid protobuf " +
                              std::string(Proto::default_instance().GetTypeName()));
  }
  return Status::Ok();
}

}  // namespace

std::string EncodePayload(const InferMessage& m) {
  pb::Infer p;
  p.set_request_id(m.request_id);
  p.set_model(m.model);
  p.set_task(m.task);
  for (const TensorRef& t : m.inputs) ToProto(t, p.add_inputs());
  p.mutable_output()->set_offset(m.output.offset);
  p.mutable_output()->set_size(m.output.size);
  for (const std::string& name : m.output_names) p.add_output_names(name);
  if (m.params.is_object() && !m.params.empty()) {
    p.set_params_json(m.params.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (m.limit_bytes) p.set_limit_bytes(*m.limit_bytes);
  return p.SerializeAsString();
}

std::string EncodePayload(const ResultMessage& m) {
  pb::Result p;
  p.set_request_id(m.request_id);
  p.set_model(m.model);
  if (m.error) {
    ToProto(*m.error, p.mutable_error());
  } else {
    for (const TensorRef& t : m.outputs) ToProto(t, p.add_outputs());
  }
  return p.SerializeAsString();
}

Status DecodePayload(std::string_view payload, InferMessage* out) {
  const std::string context = Context(MessageType::kInfer);
  pb::Infer p;
  MG_RETURN_IF_ERROR(Parse(payload, MessageType::kInfer, &p));
  out->request_id = p.request_id();
  out->model = p.model();
  out->task = p.task();
  MG_RETURN_IF_ERROR(FromProto(p.inputs(), context, "inputs", &out->inputs));
  if (!p.has_output()) return Status::Corruption(context + ": field 'output': missing");
  out->output = Region{p.output().offset(), p.output().size()};
  if (out->output.offset % kRegionAlignment != 0) {
    return Status::Corruption(context + ": field 'output': offset " +
                              std::to_string(out->output.offset) + " is not a multiple of " +
                              std::to_string(kRegionAlignment));
  }
  out->output_names.assign(p.output_names().begin(), p.output_names().end());
  out->params = nlohmann::json::object();
  if (!p.params_json().empty()) {
    out->params = nlohmann::json::parse(p.params_json(), nullptr, /*allow_exceptions=*/false);
    if (!out->params.is_object()) {
      return Status::Corruption(context + ": field 'params': expected a JSON object");
    }
  }
  out->limit_bytes.reset();
  if (p.has_limit_bytes()) out->limit_bytes = p.limit_bytes();
  return Status::Ok();
}

Status DecodePayload(std::string_view payload, ResultMessage* out) {
  const std::string context = Context(MessageType::kResult);
  pb::Result p;
  MG_RETURN_IF_ERROR(Parse(payload, MessageType::kResult, &p));
  out->request_id = p.request_id();
  out->model = p.model();
  out->outputs.clear();
  out->error.reset();
  if (p.has_error()) {
    if (!p.outputs().empty()) {
      return Status::Corruption(context + ": needs exactly one of 'outputs' and 'error'");
    }
    const auto code = internal::ParseStatusCode(p.error().code());
    if (!code || *code == StatusCode::kOk) {
      return Status::Corruption(context + ": field 'error': field 'code': '" + p.error().code() +
                                "' is not an error code");
    }
    out->error = ErrorInfo{*code, p.error().message(), std::nullopt};
    if (p.error().has_memory_limit()) {
      const pb::MemoryLimit& m = p.error().memory_limit();
      out->error->memory_limit = MemoryLimitDetail{m.model(), m.device(), m.limit_bytes(),
                                                   m.in_use_bytes(), m.requested_bytes()};
    }
    return Status::Ok();
  }
  return FromProto(p.outputs(), context, "outputs", &out->outputs);
}

}  // namespace modelgrid::ipc

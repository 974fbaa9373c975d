// The frame payloads of every message (messages.h): protocol buffers
// (worker.proto), checked when decoded.
#include "modelgrid/ipc/messages.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "worker.pb.h"

namespace modelgrid::ipc {
namespace {

std::optional<StatusCode> ParseStatusCode(const std::string& name) {
  for (StatusCode code :
       {StatusCode::kOk, StatusCode::kInvalidArgument, StatusCode::kNotFound,
        StatusCode::kCorruption, StatusCode::kUnavailable, StatusCode::kResourceExhausted,
        StatusCode::kUnsupported, StatusCode::kAlreadyExists, StatusCode::kInternal}) {
    if (name == StatusCodeName(code)) return code;
  }
  return std::nullopt;
}

// The unknown fields protobuf-lite kept aside while parsing `m` (its
// serialized bytes; "" for none). Generated lite classes have no public
// accessor for them, so this reads MessageLite's protected metadata through
// a member pointer formed in a derived class.
struct UnknownFields : google::protobuf::MessageLite {
  static const std::string& Of(const google::protobuf::MessageLite& m) {
    return (m.*(&UnknownFields::_internal_metadata_))
        .unknown_fields<std::string>(&google::protobuf::internal::GetEmptyString);
  }
};

std::string Context(MessageType type) {
  return "'" + std::string(MessageTypeName(type)) + "' message";
}

// Checks one decoded protobuf message field by field, keeping the first
// error: kCorruption "<context>: field '<f>': <what>", so decoders read
// straight through and return status() once.
class Checker {
 public:
  explicit Checker(std::string context) : context_(std::move(context)) {}

  // Records an error about `field` (or the whole message when `field` is empty).
  void Fail(const std::string& field, const std::string& what) {
    if (!status_.ok()) return;
    status_ = Status::Corruption(context_ + (field.empty() ? "" : ": field '" + field + "'") +
                                 ": " + what);
  }
  void Adopt(const Status& status) {
    if (status_.ok()) status_ = status;
  }
  // `value` of a required field; an error when it is absent (`has` false).
  template <typename T>
  T Required(bool has, T value, const char* field) {
    if (!has) Fail(field, "missing");
    return value;
  }
  // Refuses the fields protobuf kept aside because the schema does not
  // have them (or has them with another wire type), naming the first one.
  template <typename P>
  void RejectUnknown(const P& p) {
    const std::string& unknown = UnknownFields::Of(p);
    if (unknown.empty()) return;
    uint64_t tag = 0;
    for (size_t i = 0, shift = 0; i < unknown.size() && shift < 64; ++i, shift += 7) {
      const auto b = static_cast<unsigned char>(unknown[i]);
      tag |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) break;
    }
    Fail("", "unknown field: number " + std::to_string(tag >> 3) + " (wire type " +
                 std::to_string(tag & 7) + ") is not in the schema");
  }

  const std::string& context() const { return context_; }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

 private:
  std::string context_;
  Status status_;
};

// A required field `f` of protobuf message `p`, checked by Checker `c`.
#define MG_REQUIRED(c, p, f) (c).Required((p).has_##f(), (p).f(), #f)

template <typename P>
Status Parse(std::string_view payload, const std::string& context, P* p) {
  if (!p->ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return Status::Corruption(context + ": payload is not a valid protobuf " +
                              std::string(P::default_instance().GetTypeName()));
  }
  return Status::Ok();
}

// ---- shared parts ----

void ToProto(const ErrorInfo& e, pb::Error* out) {
  out->set_code(StatusCodeName(e.code));
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

ErrorInfo FromProto(const pb::Error& p, Checker& parent, const char* field) {
  ErrorInfo e;
  Checker c(parent.context() + ": " + field);
  c.RejectUnknown(p);
  const std::string code = MG_REQUIRED(c, p, code);
  e.message = MG_REQUIRED(c, p, message);
  if (p.has_memory_limit()) {
    const pb::MemoryLimit& lp = p.memory_limit();
    Checker lc(c.context() + ": memory_limit");
    lc.RejectUnknown(lp);
    MemoryLimitDetail m;
    m.model = MG_REQUIRED(lc, lp, model);
    m.device = MG_REQUIRED(lc, lp, device);
    m.limit_bytes = MG_REQUIRED(lc, lp, limit_bytes);
    m.in_use_bytes = MG_REQUIRED(lc, lp, in_use_bytes);
    m.requested_bytes = MG_REQUIRED(lc, lp, requested_bytes);
    c.Adopt(lc.status());
    e.memory_limit = std::move(m);
  }
  if (c.ok()) {
    const auto parsed = ParseStatusCode(code);
    if (!parsed || *parsed == StatusCode::kOk) {
      c.Fail("code", "'" + code + "' is not an error code");
    } else {
      e.code = *parsed;
    }
  }
  parent.Adopt(c.status());
  return e;
}

// The optional `error` of a reply.
std::optional<ErrorInfo> OptionalError(bool has, const pb::Error& p, Checker& c) {
  if (!has) return std::nullopt;
  return FromProto(p, c, "error");
}

void ToProto(const TensorRef& t, pb::Tensor* out) {
  out->set_name(t.name);
  out->set_datatype(std::string(DataTypeName(t.datatype)));
  for (int64_t d : t.shape) out->add_shape(d);
  out->set_offset(t.offset);
  out->set_size(t.size);
  out->set_region(t.region_id);
}

// Checks what a tensor's fields must satisfy together.
void CheckTensor(Checker& c, const TensorRef& t) {
  if (t.name.empty()) c.Fail("name", "empty");
  if (t.region_id == 0 && t.offset % kRegionAlignment != 0) {  // arena offsets only
    c.Fail("offset",
           std::to_string(t.offset) + " is not a multiple of " + std::to_string(kRegionAlignment));
  }
  uint64_t elements = 1;
  bool overflow = false;
  for (int64_t dim : t.shape) {
    if (dim < 0) {
      c.Fail("shape", "negative dimension " + std::to_string(dim));
      return;
    }
    const uint64_t d = static_cast<uint64_t>(dim);
    if (d != 0 && elements > std::numeric_limits<uint64_t>::max() / d) overflow = true;
    elements *= d;
  }
  const uint64_t element_bytes = DataTypeSize(t.datatype);
  if (element_bytes == 0) return;  // BYTES: variable length, any size
  if (overflow || elements > std::numeric_limits<uint64_t>::max() / element_bytes) {
    c.Fail("shape", "element count overflows 64 bits");
  } else if (elements * element_bytes != t.size) {
    c.Fail("size", std::to_string(t.size) + " bytes, but the shape holds " +
                       std::to_string(elements) + " " + std::string(DataTypeName(t.datatype)) +
                       " elements = " + std::to_string(elements * element_bytes) + " bytes");
  }
}

std::vector<TensorRef> FromProto(const google::protobuf::RepeatedPtrField<pb::Tensor>& tensors,
                                 Checker& parent, const char* field) {
  std::vector<TensorRef> out;
  out.reserve(tensors.size());
  for (int i = 0; i < tensors.size() && parent.ok(); ++i) {
    const pb::Tensor& p = tensors[i];
    Checker c(parent.context() + ": " + field + "[" + std::to_string(i) + "]");
    c.RejectUnknown(p);
    TensorRef t;
    t.name = p.name();
    t.shape.assign(p.shape().begin(), p.shape().end());
    t.offset = p.offset();
    t.size = p.size();
    t.region_id = p.region();
    if (c.ok()) {
      const auto type = ParseDataType(p.datatype());
      if (!type) {
        c.Fail("datatype", "unknown datatype '" + p.datatype() + "'");
      } else {
        t.datatype = *type;
        CheckTensor(c, t);
      }
    }
    parent.Adopt(c.status());
    out.push_back(std::move(t));
  }
  return out;
}

void ToProto(const TensorSpec& spec, pb::TensorSpec* out) {
  out->set_name(spec.name);
  out->set_datatype(std::string(DataTypeName(spec.datatype)));
  for (int64_t d : spec.dims) out->add_dims(d);
}

std::vector<TensorSpec> FromProto(const google::protobuf::RepeatedPtrField<pb::TensorSpec>& specs,
                                  Checker& parent, const char* field) {
  std::vector<TensorSpec> out;
  for (int i = 0; i < specs.size() && parent.ok(); ++i) {
    const pb::TensorSpec& p = specs[i];
    Checker c(parent.context() + ": " + field + "[" + std::to_string(i) + "]");
    c.RejectUnknown(p);
    TensorSpec spec;
    spec.name = MG_REQUIRED(c, p, name);
    const std::string datatype = MG_REQUIRED(c, p, datatype);
    for (int64_t d : p.dims()) {
      if (d < -1) {
        c.Fail("dims", "expected integers >= -1, got " + std::to_string(d));
        break;
      }
      spec.dims.push_back(d);
    }
    if (c.ok()) {
      const auto type = ParseDataType(datatype);
      if (!type) {
        c.Fail("datatype", "unknown datatype '" + datatype + "'");
      } else {
        spec.datatype = *type;
      }
    }
    parent.Adopt(c.status());
    out.push_back(std::move(spec));
  }
  return out;
}

bool SpecsEqual(const std::vector<TensorSpec>& a, const std::vector<TensorSpec>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const TensorSpec& x, const TensorSpec& y) {
                      return x.name == y.name && x.datatype == y.datatype && x.dims == y.dims;
                    });
}

// Decodes a payload that must be an empty message P.
template <typename P>
Status DecodeEmpty(std::string_view payload, MessageType type) {
  const std::string context = Context(type);
  P p;
  MG_RETURN_IF_ERROR(Parse(payload, context, &p));
  Checker c(context);
  c.RejectUnknown(p);
  return c.status();
}

}  // namespace

bool ErrorInfo::operator==(const ErrorInfo& other) const {
  if (code != other.code || message != other.message ||
      memory_limit.has_value() != other.memory_limit.has_value()) {
    return false;
  }
  if (!memory_limit) return true;
  const MemoryLimitDetail& a = *memory_limit;
  const MemoryLimitDetail& b = *other.memory_limit;
  return a.model == b.model && a.device == b.device && a.limit_bytes == b.limit_bytes &&
         a.in_use_bytes == b.in_use_bytes && a.requested_bytes == b.requested_bytes;
}

bool LoadedMessage::operator==(const LoadedMessage& other) const {
  return model == other.model && backend == other.backend && current_bytes == other.current_bytes &&
         peak_bytes == other.peak_bytes && tasks == other.tasks &&
         SpecsEqual(inputs, other.inputs) && SpecsEqual(outputs, other.outputs);
}

std::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kPing:
      return "ping";
    case MessageType::kPong:
      return "pong";
    case MessageType::kAttachArena:
      return "attach_arena";
    case MessageType::kLoad:
      return "load";
    case MessageType::kLoaded:
      return "loaded";
    case MessageType::kLoadFailed:
      return "load_failed";
    case MessageType::kInfer:
      return "infer";
    case MessageType::kResult:
      return "result";
    case MessageType::kOutputNeeded:
      return "output_needed";
    case MessageType::kOutputRegion:
      return "output_region";
    case MessageType::kGetStats:
      return "get_stats";
    case MessageType::kStats:
      return "stats";
    case MessageType::kUnload:
      return "unload";
    case MessageType::kUnloaded:
      return "unloaded";
    case MessageType::kShutdown:
      return "shutdown";
    case MessageType::kAttachRegion:
      return "attach_region";
    case MessageType::kRegionAttached:
      return "region_attached";
    case MessageType::kDetachRegion:
      return "detach_region";
    case MessageType::kSwapOut:
      return "swap_out";
    case MessageType::kSwappedOut:
      return "swapped_out";
    case MessageType::kSwapIn:
      return "swap_in";
    case MessageType::kSwappedIn:
      return "swapped_in";
    case MessageType::kSetLimit:
      return "set_limit";
    case MessageType::kLimitSet:
      return "limit_set";
  }
  return "unknown";
}

std::optional<MessageType> ToMessageType(uint16_t value) {
  const auto type = static_cast<MessageType>(value);
  if (MessageTypeName(type) == "unknown") return std::nullopt;
  return type;
}

// ---- encoding ----

std::string EncodePayload(const PingMessage&) { return pb::Ping().SerializeAsString(); }
std::string EncodePayload(const GetStatsMessage&) { return pb::GetStats().SerializeAsString(); }
std::string EncodePayload(const ShutdownMessage&) { return pb::Shutdown().SerializeAsString(); }

std::string EncodePayload(const PongMessage& m) {
  pb::Pong p;
  p.set_protocol_version(m.protocol_version);
  p.set_pid(m.pid);
  return p.SerializeAsString();
}

std::string EncodePayload(const AttachArenaMessage& m) {
  pb::AttachArena p;
  p.set_name(m.name);
  p.set_capacity_bytes(m.capacity_bytes);
  return p.SerializeAsString();
}

std::string EncodePayload(const LoadMessage& m) {
  pb::Load p;
  p.set_model(m.model);
  p.set_path(m.path);
  p.set_device(m.device);
  p.set_limit_bytes(m.limit_bytes);
  p.set_request_bytes(m.request_bytes);
  p.set_max_batch_size(m.max_batch_size);
  if (!m.backend.empty()) p.set_backend(m.backend);
  return p.SerializeAsString();
}

std::string EncodePayload(const LoadedMessage& m) {
  pb::Loaded p;
  p.set_model(m.model);
  p.set_current_bytes(m.current_bytes);
  p.set_peak_bytes(m.peak_bytes);
  if (!m.backend.empty()) p.set_backend(m.backend);
  for (const std::string& task : m.tasks) p.add_tasks(task);
  for (const TensorSpec& spec : m.inputs) ToProto(spec, p.add_inputs());
  for (const TensorSpec& spec : m.outputs) ToProto(spec, p.add_outputs());
  return p.SerializeAsString();
}

std::string EncodePayload(const LoadFailedMessage& m) {
  pb::LoadFailed p;
  p.set_model(m.model);
  ToProto(m.error, p.mutable_error());
  return p.SerializeAsString();
}

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
    pb::Outputs* outputs = p.mutable_outputs();
    for (const TensorRef& t : m.outputs) ToProto(t, outputs->add_tensors());
  }
  return p.SerializeAsString();
}

std::string EncodePayload(const OutputNeededMessage& m) {
  pb::OutputNeeded p;
  p.set_request_id(m.request_id);
  p.set_model(m.model);
  p.set_bytes(m.bytes);
  return p.SerializeAsString();
}

std::string EncodePayload(const OutputRegionMessage& m) {
  pb::OutputRegion p;
  p.set_request_id(m.request_id);
  p.set_offset(m.offset);
  p.set_size(m.size);
  return p.SerializeAsString();
}

std::string EncodePayload(const StatsMessage& m) {
  pb::Stats p;
  p.set_current_bytes(m.current_bytes);
  p.set_peak_bytes(m.peak_bytes);
  for (const ModelMemory& mm : m.models) {
    pb::ModelMemory* q = p.add_models();
    q->set_model(mm.model);
    q->set_current_bytes(mm.current_bytes);
    q->set_peak_bytes(mm.peak_bytes);
    if (mm.swapped) q->set_swapped(true);
  }
  for (const CudaMemory& c : m.cuda) {
    pb::CudaMemory* q = p.add_cuda();
    q->set_index(c.index);
    q->set_allocated_bytes(c.allocated_bytes);
    q->set_reserved_bytes(c.reserved_bytes);
    q->set_peak_reserved_bytes(c.peak_reserved_bytes);
  }
  return p.SerializeAsString();
}

std::string EncodePayload(const UnloadMessage& m) {
  pb::Unload p;
  p.set_model(m.model);
  return p.SerializeAsString();
}

std::string EncodePayload(const UnloadedMessage& m) {
  pb::Unloaded p;
  p.set_model(m.model);
  return p.SerializeAsString();
}

std::string EncodePayload(const AttachRegionMessage& m) {
  pb::AttachRegion p;
  p.set_id(m.id);
  p.set_map_bytes(m.map_bytes);
  return p.SerializeAsString();
}

std::string EncodePayload(const RegionAttachedMessage& m) {
  pb::RegionAttached p;
  p.set_id(m.id);
  if (m.error) ToProto(*m.error, p.mutable_error());
  return p.SerializeAsString();
}

std::string EncodePayload(const DetachRegionMessage& m) {
  pb::DetachRegion p;
  p.set_id(m.id);
  return p.SerializeAsString();
}

std::string EncodePayload(const SwapOutMessage& m) {
  pb::SwapOut p;
  p.set_model(m.model);
  p.set_swap_dir(m.swap_dir);
  return p.SerializeAsString();
}

std::string EncodePayload(const SwappedOutMessage& m) {
  pb::SwappedOut p;
  p.set_model(m.model);
  p.set_bytes(m.bytes);
  p.set_duration_us(m.duration_us);
  p.set_rss_before_bytes(m.rss_before_bytes);
  p.set_rss_after_bytes(m.rss_after_bytes);
  if (m.error) ToProto(*m.error, p.mutable_error());
  return p.SerializeAsString();
}

std::string EncodePayload(const SwapInMessage& m) {
  pb::SwapIn p;
  p.set_model(m.model);
  return p.SerializeAsString();
}

std::string EncodePayload(const SwappedInMessage& m) {
  pb::SwappedIn p;
  p.set_model(m.model);
  p.set_bytes(m.bytes);
  p.set_duration_us(m.duration_us);
  p.set_reloaded(m.reloaded);
  p.set_reason(m.reason);
  if (m.error) ToProto(*m.error, p.mutable_error());
  return p.SerializeAsString();
}

std::string EncodePayload(const SetLimitMessage& m) {
  pb::SetLimit p;
  p.set_model(m.model);
  p.set_limit_bytes(m.limit_bytes);
  p.set_reason(m.reason);
  return p.SerializeAsString();
}

std::string EncodePayload(const LimitSetMessage& m) {
  pb::LimitSet p;
  p.set_model(m.model);
  p.set_held_bytes(m.held_bytes);
  p.set_released_bytes(m.released_bytes);
  if (m.error) ToProto(*m.error, p.mutable_error());
  return p.SerializeAsString();
}

// ---- decoding ----

Status DecodePayload(std::string_view payload, PingMessage*) {
  return DecodeEmpty<pb::Ping>(payload, MessageType::kPing);
}
Status DecodePayload(std::string_view payload, GetStatsMessage*) {
  return DecodeEmpty<pb::GetStats>(payload, MessageType::kGetStats);
}
Status DecodePayload(std::string_view payload, ShutdownMessage*) {
  return DecodeEmpty<pb::Shutdown>(payload, MessageType::kShutdown);
}

// The start of a decoder: parses `payload` as P into `p` and makes a
// Checker `c` for it that has already refused unknown fields.
#define MG_DECODE(P, type)                         \
  const std::string context = Context(type);       \
  P p;                                             \
  MG_RETURN_IF_ERROR(Parse(payload, context, &p)); \
  Checker c(context);                              \
  c.RejectUnknown(p)

Status DecodePayload(std::string_view payload, PongMessage* out) {
  MG_DECODE(pb::Pong, MessageType::kPong);
  out->protocol_version = MG_REQUIRED(c, p, protocol_version);
  out->pid = MG_REQUIRED(c, p, pid);
  return c.status();
}

Status DecodePayload(std::string_view payload, AttachArenaMessage* out) {
  MG_DECODE(pb::AttachArena, MessageType::kAttachArena);
  out->name = MG_REQUIRED(c, p, name);
  out->capacity_bytes = MG_REQUIRED(c, p, capacity_bytes);
  return c.status();
}

Status DecodePayload(std::string_view payload, LoadMessage* out) {
  MG_DECODE(pb::Load, MessageType::kLoad);
  out->model = MG_REQUIRED(c, p, model);
  out->path = MG_REQUIRED(c, p, path);
  out->device = MG_REQUIRED(c, p, device);
  out->limit_bytes = MG_REQUIRED(c, p, limit_bytes);
  out->request_bytes = p.request_bytes();    // opt 0
  out->max_batch_size = p.max_batch_size();  // opt 0
  out->backend = p.backend();                // opt ""
  return c.status();
}

Status DecodePayload(std::string_view payload, LoadedMessage* out) {
  MG_DECODE(pb::Loaded, MessageType::kLoaded);
  out->model = MG_REQUIRED(c, p, model);
  out->current_bytes = MG_REQUIRED(c, p, current_bytes);
  out->peak_bytes = MG_REQUIRED(c, p, peak_bytes);
  out->backend = p.backend();  // opt ""
  out->tasks.assign(p.tasks().begin(), p.tasks().end());
  out->inputs = FromProto(p.inputs(), c, "inputs");
  out->outputs = FromProto(p.outputs(), c, "outputs");
  return c.status();
}

Status DecodePayload(std::string_view payload, LoadFailedMessage* out) {
  MG_DECODE(pb::LoadFailed, MessageType::kLoadFailed);
  out->model = MG_REQUIRED(c, p, model);
  if (!p.has_error()) {
    c.Fail("error", "missing");
  } else {
    out->error = FromProto(p.error(), c, "error");
  }
  return c.status();
}

Status DecodePayload(std::string_view payload, InferMessage* out) {
  MG_DECODE(pb::Infer, MessageType::kInfer);
  out->request_id = p.request_id();
  out->model = p.model();
  out->task = p.task();
  out->inputs = FromProto(p.inputs(), c, "inputs");
  if (!p.has_output()) {
    c.Fail("output", "missing");
  } else {
    Checker rc(context + ": output");
    rc.RejectUnknown(p.output());
    out->output = Region{p.output().offset(), p.output().size()};
    if (out->output.offset % kRegionAlignment != 0) {
      rc.Fail("offset", std::to_string(out->output.offset) + " is not a multiple of " +
                            std::to_string(kRegionAlignment));
    }
    c.Adopt(rc.status());
  }
  out->output_names.assign(p.output_names().begin(), p.output_names().end());
  out->params = nlohmann::json::object();
  if (!p.params_json().empty()) {
    out->params = nlohmann::json::parse(p.params_json(), nullptr, /*allow_exceptions=*/false);
    if (!out->params.is_object()) c.Fail("params", "expected a JSON object");
  }
  out->limit_bytes.reset();
  if (p.has_limit_bytes()) out->limit_bytes = p.limit_bytes();
  return c.status();
}

Status DecodePayload(std::string_view payload, ResultMessage* out) {
  MG_DECODE(pb::Result, MessageType::kResult);
  out->request_id = p.request_id();
  out->model = p.model();
  out->outputs.clear();
  out->error.reset();
  switch (p.outcome_case()) {
    case pb::Result::kError:
      out->error = FromProto(p.error(), c, "error");
      break;
    case pb::Result::kOutputs:
      c.RejectUnknown(p.outputs());
      out->outputs = FromProto(p.outputs().tensors(), c, "outputs");
      break;
    default:
      c.Fail("", "needs exactly one of 'outputs' and 'error'");
  }
  return c.status();
}

Status DecodePayload(std::string_view payload, OutputNeededMessage* out) {
  MG_DECODE(pb::OutputNeeded, MessageType::kOutputNeeded);
  out->request_id = MG_REQUIRED(c, p, request_id);
  out->model = MG_REQUIRED(c, p, model);
  out->bytes = MG_REQUIRED(c, p, bytes);
  return c.status();
}

Status DecodePayload(std::string_view payload, OutputRegionMessage* out) {
  MG_DECODE(pb::OutputRegion, MessageType::kOutputRegion);
  out->request_id = MG_REQUIRED(c, p, request_id);
  out->offset = MG_REQUIRED(c, p, offset);
  out->size = MG_REQUIRED(c, p, size);
  if (c.ok() && out->offset % kRegionAlignment != 0) {
    c.Fail("offset", std::to_string(out->offset) + " is not a multiple of " +
                         std::to_string(kRegionAlignment));
  }
  return c.status();
}

Status DecodePayload(std::string_view payload, StatsMessage* out) {
  MG_DECODE(pb::Stats, MessageType::kStats);
  out->current_bytes = MG_REQUIRED(c, p, current_bytes);
  out->peak_bytes = MG_REQUIRED(c, p, peak_bytes);
  out->models.clear();
  for (int i = 0; i < p.models_size() && c.ok(); ++i) {
    const pb::ModelMemory& q = p.models(i);
    Checker mc(context + ": models[" + std::to_string(i) + "]");
    mc.RejectUnknown(q);
    ModelMemory m;
    m.model = MG_REQUIRED(mc, q, model);
    m.current_bytes = MG_REQUIRED(mc, q, current_bytes);
    m.peak_bytes = MG_REQUIRED(mc, q, peak_bytes);
    m.swapped = q.swapped();  // opt false
    c.Adopt(mc.status());
    out->models.push_back(std::move(m));
  }
  out->cuda.clear();
  for (int i = 0; i < p.cuda_size() && c.ok(); ++i) {
    const pb::CudaMemory& q = p.cuda(i);
    Checker cc(context + ": cuda[" + std::to_string(i) + "]");
    cc.RejectUnknown(q);
    CudaMemory m;
    m.index = MG_REQUIRED(cc, q, index);
    m.allocated_bytes = MG_REQUIRED(cc, q, allocated_bytes);
    m.reserved_bytes = MG_REQUIRED(cc, q, reserved_bytes);
    m.peak_reserved_bytes = MG_REQUIRED(cc, q, peak_reserved_bytes);
    if (cc.ok() && m.index < 0)
      cc.Fail("index", "negative device index " + std::to_string(m.index));
    c.Adopt(cc.status());
    out->cuda.push_back(m);
  }
  return c.status();
}

Status DecodePayload(std::string_view payload, UnloadMessage* out) {
  MG_DECODE(pb::Unload, MessageType::kUnload);
  out->model = MG_REQUIRED(c, p, model);
  return c.status();
}

Status DecodePayload(std::string_view payload, UnloadedMessage* out) {
  MG_DECODE(pb::Unloaded, MessageType::kUnloaded);
  out->model = MG_REQUIRED(c, p, model);
  return c.status();
}

Status DecodePayload(std::string_view payload, AttachRegionMessage* out) {
  MG_DECODE(pb::AttachRegion, MessageType::kAttachRegion);
  out->id = MG_REQUIRED(c, p, id);
  out->map_bytes = MG_REQUIRED(c, p, map_bytes);
  if (c.ok() && out->id == 0) c.Fail("id", "must be at least 1 (0 is the arena)");
  return c.status();
}

Status DecodePayload(std::string_view payload, RegionAttachedMessage* out) {
  MG_DECODE(pb::RegionAttached, MessageType::kRegionAttached);
  out->id = MG_REQUIRED(c, p, id);
  out->error = OptionalError(p.has_error(), p.error(), c);
  return c.status();
}

Status DecodePayload(std::string_view payload, DetachRegionMessage* out) {
  MG_DECODE(pb::DetachRegion, MessageType::kDetachRegion);
  out->id = MG_REQUIRED(c, p, id);
  return c.status();
}

Status DecodePayload(std::string_view payload, SwapOutMessage* out) {
  MG_DECODE(pb::SwapOut, MessageType::kSwapOut);
  out->model = MG_REQUIRED(c, p, model);
  out->swap_dir = p.swap_dir();  // opt ""
  if (c.ok() && out->model.empty()) c.Fail("model", "empty");
  return c.status();
}

Status DecodePayload(std::string_view payload, SwappedOutMessage* out) {
  MG_DECODE(pb::SwappedOut, MessageType::kSwappedOut);
  out->model = MG_REQUIRED(c, p, model);
  out->bytes = MG_REQUIRED(c, p, bytes);
  out->duration_us = MG_REQUIRED(c, p, duration_us);
  out->rss_before_bytes = MG_REQUIRED(c, p, rss_before_bytes);
  out->rss_after_bytes = MG_REQUIRED(c, p, rss_after_bytes);
  out->error = OptionalError(p.has_error(), p.error(), c);
  return c.status();
}

Status DecodePayload(std::string_view payload, SwapInMessage* out) {
  MG_DECODE(pb::SwapIn, MessageType::kSwapIn);
  out->model = MG_REQUIRED(c, p, model);
  if (c.ok() && out->model.empty()) c.Fail("model", "empty");
  return c.status();
}

Status DecodePayload(std::string_view payload, SwappedInMessage* out) {
  MG_DECODE(pb::SwappedIn, MessageType::kSwappedIn);
  out->model = MG_REQUIRED(c, p, model);
  out->bytes = MG_REQUIRED(c, p, bytes);
  out->duration_us = MG_REQUIRED(c, p, duration_us);
  out->reloaded = MG_REQUIRED(c, p, reloaded);
  out->reason = p.reason();  // opt ""
  out->error = OptionalError(p.has_error(), p.error(), c);
  return c.status();
}

Status DecodePayload(std::string_view payload, SetLimitMessage* out) {
  MG_DECODE(pb::SetLimit, MessageType::kSetLimit);
  out->model = MG_REQUIRED(c, p, model);
  out->limit_bytes = MG_REQUIRED(c, p, limit_bytes);
  out->reason = p.reason();  // opt ""
  if (c.ok() && out->model.empty()) c.Fail("model", "empty");
  return c.status();
}

Status DecodePayload(std::string_view payload, LimitSetMessage* out) {
  MG_DECODE(pb::LimitSet, MessageType::kLimitSet);
  out->model = MG_REQUIRED(c, p, model);
  out->held_bytes = MG_REQUIRED(c, p, held_bytes);
  out->released_bytes = MG_REQUIRED(c, p, released_bytes);
  out->error = OptionalError(p.has_error(), p.error(), c);
  return c.status();
}

#undef MG_DECODE
#undef MG_REQUIRED

Status CheckTensorsWithin(const std::vector<TensorRef>& tensors, const Region& bounds) {
  for (const TensorRef& t : tensors) {
    const bool inside = t.offset >= bounds.offset && t.size <= bounds.size &&
                        t.offset - bounds.offset <= bounds.size - t.size;
    if (!inside) {
      return Status::Corruption(
          "tensor '" + t.name + "' {offset " + std::to_string(t.offset) + ", size " +
          std::to_string(t.size) + "} lies outside the region {offset " +
          std::to_string(bounds.offset) + ", size " + std::to_string(bounds.size) + "}");
    }
  }
  return Status::Ok();
}

}  // namespace modelgrid::ipc

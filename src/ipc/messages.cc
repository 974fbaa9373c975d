#include "modelgrid/ipc/messages.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "ipc/json_reader.h"
#include "ipc/message_checks.h"

namespace modelgrid::ipc {

namespace internal {

std::optional<StatusCode> ParseStatusCode(const std::string& name) {
  for (StatusCode code :
       {StatusCode::kOk, StatusCode::kInvalidArgument, StatusCode::kNotFound,
        StatusCode::kCorruption, StatusCode::kUnavailable, StatusCode::kResourceExhausted,
        StatusCode::kUnsupported, StatusCode::kAlreadyExists, StatusCode::kInternal}) {
    if (name == StatusCodeName(code)) return code;
  }
  return std::nullopt;
}

}  // namespace internal

namespace {

using internal::ParseStatusCode;

using internal::JsonReader;
using nlohmann::json;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string Context(MessageType type) {
  return "'" + std::string(MessageTypeName(type)) + "' message";
}

json ErrorToJson(const ErrorInfo& e) {
  json j{{"code", StatusCodeName(e.code)}, {"message", e.message}};
  if (e.memory_limit) {
    const MemoryLimitDetail& m = *e.memory_limit;
    j["memory_limit"] = json{{"model", m.model},
                             {"device", m.device},
                             {"limit_bytes", m.limit_bytes},
                             {"in_use_bytes", m.in_use_bytes},
                             {"requested_bytes", m.requested_bytes}};
  }
  return j;
}

ErrorInfo ReadError(JsonReader& r, const char* field) {
  ErrorInfo e;
  const json* obj = r.Object(field);
  if (obj == nullptr) return e;
  JsonReader er(*obj, r.context() + ": " + field);
  const std::string code = er.String("code");
  e.message = er.String("message");
  if (const json* limit = er.Object("memory_limit", /*optional=*/true)) {
    JsonReader lr(*limit, er.context() + ": memory_limit");
    MemoryLimitDetail m;
    m.model = lr.String("model");
    m.device = lr.String("device");
    m.limit_bytes = lr.Uint64("limit_bytes");
    m.in_use_bytes = lr.Uint64("in_use_bytes");
    m.requested_bytes = lr.Uint64("requested_bytes");
    lr.RejectUnknown({"model", "device", "limit_bytes", "in_use_bytes", "requested_bytes"});
    er.Adopt(lr.status());
    e.memory_limit = std::move(m);
  }
  er.RejectUnknown({"code", "message", "memory_limit"});
  if (er.ok()) {
    const auto parsed = ParseStatusCode(code);
    if (!parsed || *parsed == StatusCode::kOk) {
      er.Fail("code", "'" + code + "' is not an error code");
    } else {
      e.code = *parsed;
    }
  }
  r.Adopt(er.status());
  return e;
}

json RegionToJson(const Region& region) {
  return json{{"offset", region.offset}, {"size", region.size}};
}

Region ReadRegion(JsonReader& r, const char* field) {
  Region region;
  const json* obj = r.Object(field);
  if (obj == nullptr) return region;
  JsonReader rr(*obj, r.context() + ": " + field);
  region.offset = rr.Uint64("offset");
  region.size = rr.Uint64("size");
  rr.RejectUnknown({"offset", "size"});
  if (rr.ok() && region.offset % kRegionAlignment != 0) {
    rr.Fail("offset", std::to_string(region.offset) + " is not a multiple of " +
                          std::to_string(kRegionAlignment));
  }
  r.Adopt(rr.status());
  return region;
}

json TensorToJson(const TensorRef& t) {
  json j{{"name", t.name},
         {"datatype", DataTypeName(t.datatype)},
         {"shape", t.shape},
         {"offset", t.offset},
         {"size", t.size}};
  if (t.region_id != 0) j["region"] = t.region_id;
  return j;
}

// Checks what a tensor's fields must satisfy together.
void CheckTensor(JsonReader& r, const TensorRef& t) {
  if (t.name.empty()) r.Fail("name", "empty");
  if (t.region_id == 0 && t.offset % kRegionAlignment != 0) {  // arena offsets only
    r.Fail("offset",
           std::to_string(t.offset) + " is not a multiple of " + std::to_string(kRegionAlignment));
  }
  uint64_t elements = 1;
  bool overflow = false;
  for (int64_t dim : t.shape) {
    if (dim < 0) {
      r.Fail("shape", "negative dimension " + std::to_string(dim));
      return;
    }
    const uint64_t d = static_cast<uint64_t>(dim);
    if (d != 0 && elements > std::numeric_limits<uint64_t>::max() / d) overflow = true;
    elements *= d;
  }
  const uint64_t element_bytes = DataTypeSize(t.datatype);
  if (element_bytes == 0) return;  // BYTES: variable length, any size
  if (overflow || elements > std::numeric_limits<uint64_t>::max() / element_bytes) {
    r.Fail("shape", "element count overflows 64 bits");
  } else if (elements * element_bytes != t.size) {
    r.Fail("size", std::to_string(t.size) + " bytes, but the shape holds " +
                       std::to_string(elements) + " " + std::string(DataTypeName(t.datatype)) +
                       " elements = " + std::to_string(elements * element_bytes) + " bytes");
  }
}

std::vector<TensorRef> ReadTensors(JsonReader& r, const char* field) {
  std::vector<TensorRef> tensors;
  const json* array = r.Array(field);
  if (array == nullptr) return tensors;
  for (size_t i = 0; i < array->size() && r.ok(); ++i) {
    JsonReader tr((*array)[i], r.context() + ": " + field + "[" + std::to_string(i) + "]");
    TensorRef t;
    t.name = tr.String("name");
    const std::string datatype = tr.String("datatype");
    if (const json* shape = tr.Array("shape")) {
      for (const json& dim : *shape) {
        if (!dim.is_number_integer() ||
            (dim.is_number_unsigned() &&
             dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
          tr.Fail("shape", "expected integers, got " + dim.dump());
          break;
        }
        t.shape.push_back(dim.get<int64_t>());
      }
    }
    t.offset = tr.Uint64("offset");
    t.size = tr.Uint64("size");
    t.region_id = tr.OptionalUint64("region", 0);
    tr.RejectUnknown({"name", "datatype", "shape", "offset", "size", "region"});
    if (tr.ok()) {
      const auto type = ParseDataType(datatype);
      if (!type) {
        tr.Fail("datatype", "unknown datatype '" + datatype + "'");
      } else {
        t.datatype = *type;
        CheckTensor(tr, t);
      }
    }
    r.Adopt(tr.status());
    tensors.push_back(std::move(t));
  }
  return tensors;
}

std::vector<std::string> ReadStrings(JsonReader& r, const char* field) {
  std::vector<std::string> out;
  const json* array = r.Array(field, /*optional=*/true);
  if (array == nullptr) return out;
  for (const json& v : *array) {
    if (!v.is_string()) {
      r.Fail(field, "expected strings, got " + v.dump());
      break;
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

json SpecsToJson(const std::vector<TensorSpec>& specs) {
  json out = json::array();
  for (const TensorSpec& spec : specs) {
    out.push_back(
        json{{"name", spec.name}, {"datatype", DataTypeName(spec.datatype)}, {"dims", spec.dims}});
  }
  return out;
}

std::vector<TensorSpec> ReadSpecs(JsonReader& r, const char* field) {
  std::vector<TensorSpec> specs;
  const json* array = r.Array(field, /*optional=*/true);
  if (array == nullptr) return specs;
  for (size_t i = 0; i < array->size() && r.ok(); ++i) {
    JsonReader sr((*array)[i], r.context() + ": " + field + "[" + std::to_string(i) + "]");
    TensorSpec spec;
    spec.name = sr.String("name");
    const std::string datatype = sr.String("datatype");
    if (const json* dims = sr.Array("dims")) {
      for (const json& dim : *dims) {
        if (!dim.is_number_integer() ||
            (dim.is_number_unsigned() &&
             dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) ||
            dim.get<int64_t>() < -1) {
          sr.Fail("dims", "expected integers >= -1, got " + dim.dump());
          break;
        }
        spec.dims.push_back(dim.get<int64_t>());
      }
    }
    sr.RejectUnknown({"name", "datatype", "dims"});
    if (sr.ok()) {
      const auto type = ParseDataType(datatype);
      if (!type) {
        sr.Fail("datatype", "unknown datatype '" + datatype + "'");
      } else {
        spec.datatype = *type;
      }
    }
    r.Adopt(sr.status());
    specs.push_back(std::move(spec));
  }
  return specs;
}

bool SpecsEqual(const std::vector<TensorSpec>& a, const std::vector<TensorSpec>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const TensorSpec& x, const TensorSpec& y) {
                      return x.name == y.name && x.datatype == y.datatype && x.dims == y.dims;
                    });
}

json ModelMemoryToJson(const ModelMemory& m) {
  json j{{"model", m.model}, {"current_bytes", m.current_bytes}, {"peak_bytes", m.peak_bytes}};
  if (m.swapped) j["swapped"] = true;
  return j;
}

// Decodes a payload that must be an empty object.
Status EmptyFromJson(std::string_view text, MessageType type) {
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(text, Context(type)));
  JsonReader r(j, Context(type));
  r.RejectUnknown({});
  return r.status();
}

// Decodes a payload whose only field is "model".
Status ModelOnlyFromJson(std::string_view text, MessageType type, std::string* model) {
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(text, Context(type)));
  JsonReader r(j, Context(type));
  *model = r.String("model");
  r.RejectUnknown({"model"});
  return r.status();
}

// The "error" of a reply whose error is optional.
void MaybeError(json& j, const std::optional<ErrorInfo>& error) {
  if (error) j["error"] = ErrorToJson(*error);
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

namespace internal {

Status CheckTensorRef(const TensorRef& tensor, const std::string& context) {
  static const json kNoFields = json::object();
  JsonReader r(kNoFields, context);
  CheckTensor(r, tensor);
  return r.status();
}

}  // namespace internal

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

std::string ToJson(const PingMessage&) { return "{}"; }
std::string ToJson(const GetStatsMessage&) { return "{}"; }
std::string ToJson(const ShutdownMessage&) { return "{}"; }

std::string ToJson(const AttachRegionMessage& m) {
  return Dump({{"id", m.id}, {"map_bytes", m.map_bytes}});
}

std::string ToJson(const RegionAttachedMessage& m) {
  json j = {{"id", m.id}};
  if (m.error) j["error"] = ErrorToJson(*m.error);
  return Dump(j);
}

std::string ToJson(const DetachRegionMessage& m) { return Dump({{"id", m.id}}); }

std::string ToJson(const PongMessage& m) {
  return Dump({{"protocol_version", m.protocol_version}, {"pid", m.pid}});
}

std::string ToJson(const AttachArenaMessage& m) {
  return Dump({{"name", m.name}, {"capacity_bytes", m.capacity_bytes}});
}

std::string ToJson(const LoadMessage& m) {
  return Dump({{"model", m.model},
               {"path", m.path},
               {"device", m.device},
               {"limit_bytes", m.limit_bytes},
               {"request_bytes", m.request_bytes},
               {"max_batch_size", m.max_batch_size}});
}

bool LoadedMessage::operator==(const LoadedMessage& other) const {
  return model == other.model && current_bytes == other.current_bytes &&
         peak_bytes == other.peak_bytes && tasks == other.tasks &&
         SpecsEqual(inputs, other.inputs) && SpecsEqual(outputs, other.outputs);
}

std::string ToJson(const LoadedMessage& m) {
  return Dump({{"model", m.model},
               {"current_bytes", m.current_bytes},
               {"peak_bytes", m.peak_bytes},
               {"tasks", m.tasks},
               {"inputs", SpecsToJson(m.inputs)},
               {"outputs", SpecsToJson(m.outputs)}});
}

std::string ToJson(const LoadFailedMessage& m) {
  return Dump({{"model", m.model}, {"error", ErrorToJson(m.error)}});
}

std::string ToJson(const InferMessage& m) {
  json inputs = json::array();
  for (const TensorRef& t : m.inputs) inputs.push_back(TensorToJson(t));
  json j{{"request_id", m.request_id},
         {"model", m.model},
         {"task", m.task},
         {"inputs", std::move(inputs)},
         {"output", RegionToJson(m.output)},
         {"output_names", m.output_names},
         {"params", m.params.is_object() ? m.params : json::object()}};
  if (m.limit_bytes) j["limit_bytes"] = *m.limit_bytes;
  return Dump(j);
}

std::string ToJson(const OutputNeededMessage& m) {
  return Dump({{"request_id", m.request_id}, {"model", m.model}, {"bytes", m.bytes}});
}

std::string ToJson(const OutputRegionMessage& m) {
  return Dump({{"request_id", m.request_id}, {"offset", m.offset}, {"size", m.size}});
}

std::string ToJson(const ResultMessage& m) {
  json j = {{"request_id", m.request_id}, {"model", m.model}};
  if (m.error) {
    j["error"] = ErrorToJson(*m.error);
  } else {
    json outputs = json::array();
    for (const TensorRef& t : m.outputs) outputs.push_back(TensorToJson(t));
    j["outputs"] = std::move(outputs);
  }
  return Dump(j);
}

std::string ToJson(const StatsMessage& m) {
  json models = json::array();
  for (const ModelMemory& mm : m.models) models.push_back(ModelMemoryToJson(mm));
  json out = {{"current_bytes", m.current_bytes},
              {"peak_bytes", m.peak_bytes},
              {"models", std::move(models)}};
  if (!m.cuda.empty()) {
    json cuda = json::array();
    for (const CudaMemory& c : m.cuda) {
      cuda.push_back({{"index", c.index},
                      {"allocated_bytes", c.allocated_bytes},
                      {"reserved_bytes", c.reserved_bytes},
                      {"peak_reserved_bytes", c.peak_reserved_bytes}});
    }
    out["cuda"] = std::move(cuda);
  }
  return Dump(out);
}

std::string ToJson(const UnloadMessage& m) { return Dump({{"model", m.model}}); }

std::string ToJson(const SwapOutMessage& m) {
  return Dump({{"model", m.model}, {"swap_dir", m.swap_dir}});
}

std::string ToJson(const SwappedOutMessage& m) {
  json j{{"model", m.model},
         {"bytes", m.bytes},
         {"duration_us", m.duration_us},
         {"rss_before_bytes", m.rss_before_bytes},
         {"rss_after_bytes", m.rss_after_bytes}};
  MaybeError(j, m.error);
  return Dump(j);
}

std::string ToJson(const SwapInMessage& m) { return Dump({{"model", m.model}}); }

std::string ToJson(const SwappedInMessage& m) {
  json j{{"model", m.model},
         {"bytes", m.bytes},
         {"duration_us", m.duration_us},
         {"reloaded", m.reloaded},
         {"reason", m.reason}};
  MaybeError(j, m.error);
  return Dump(j);
}
std::string ToJson(const UnloadedMessage& m) { return Dump({{"model", m.model}}); }

std::string ToJson(const SetLimitMessage& m) {
  return Dump({{"model", m.model}, {"limit_bytes", m.limit_bytes}, {"reason", m.reason}});
}

std::string ToJson(const LimitSetMessage& m) {
  json j{{"model", m.model}, {"held_bytes", m.held_bytes}, {"released_bytes", m.released_bytes}};
  MaybeError(j, m.error);
  return Dump(j);
}

// ---- decoding ----

Status FromJson(std::string_view json_text, PingMessage*) {
  return EmptyFromJson(json_text, MessageType::kPing);
}
Status FromJson(std::string_view json_text, GetStatsMessage*) {
  return EmptyFromJson(json_text, MessageType::kGetStats);
}
Status FromJson(std::string_view json_text, ShutdownMessage*) {
  return EmptyFromJson(json_text, MessageType::kShutdown);
}

Status FromJson(std::string_view json_text, AttachRegionMessage* out) {
  const std::string context = Context(MessageType::kAttachRegion);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->id = r.Uint64("id");
  out->map_bytes = r.Uint64("map_bytes");
  r.RejectUnknown({"id", "map_bytes"});
  if (r.ok() && out->id == 0) r.Fail("id", "must be at least 1 (0 is the arena)");
  return r.status();
}

Status FromJson(std::string_view json_text, RegionAttachedMessage* out) {
  const std::string context = Context(MessageType::kRegionAttached);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->id = r.Uint64("id");
  out->error.reset();
  if (r.Has("error")) out->error = ReadError(r, "error");
  r.RejectUnknown({"id", "error"});
  return r.status();
}

Status FromJson(std::string_view json_text, DetachRegionMessage* out) {
  const std::string context = Context(MessageType::kDetachRegion);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->id = r.Uint64("id");
  r.RejectUnknown({"id"});
  return r.status();
}

Status FromJson(std::string_view json_text, UnloadMessage* out) {
  return ModelOnlyFromJson(json_text, MessageType::kUnload, &out->model);
}
Status FromJson(std::string_view json_text, UnloadedMessage* out) {
  return ModelOnlyFromJson(json_text, MessageType::kUnloaded, &out->model);
}

Status FromJson(std::string_view json_text, PongMessage* out) {
  const std::string context = Context(MessageType::kPong);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->protocol_version = r.Uint32("protocol_version");
  out->pid = r.Int64("pid");
  r.RejectUnknown({"protocol_version", "pid"});
  return r.status();
}

Status FromJson(std::string_view json_text, AttachArenaMessage* out) {
  const std::string context = Context(MessageType::kAttachArena);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->name = r.String("name");
  out->capacity_bytes = r.Uint64("capacity_bytes");
  r.RejectUnknown({"name", "capacity_bytes"});
  return r.status();
}

Status FromJson(std::string_view json_text, LoadMessage* out) {
  const std::string context = Context(MessageType::kLoad);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->model = r.String("model");
  out->path = r.String("path");
  out->device = r.String("device");
  out->limit_bytes = r.Uint64("limit_bytes");
  out->request_bytes = r.OptionalUint64("request_bytes", 0);
  out->max_batch_size = r.OptionalUint32("max_batch_size", 0);
  r.RejectUnknown({"model", "path", "device", "limit_bytes", "request_bytes", "max_batch_size"});
  return r.status();
}

Status FromJson(std::string_view json_text, LoadedMessage* out) {
  const std::string context = Context(MessageType::kLoaded);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->model = r.String("model");
  out->current_bytes = r.Uint64("current_bytes");
  out->peak_bytes = r.Uint64("peak_bytes");
  out->tasks = ReadStrings(r, "tasks");
  out->inputs = ReadSpecs(r, "inputs");
  out->outputs = ReadSpecs(r, "outputs");
  r.RejectUnknown({"model", "current_bytes", "peak_bytes", "tasks", "inputs", "outputs"});
  return r.status();
}

Status FromJson(std::string_view json_text, LoadFailedMessage* out) {
  const std::string context = Context(MessageType::kLoadFailed);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->model = r.String("model");
  out->error = ReadError(r, "error");
  r.RejectUnknown({"model", "error"});
  return r.status();
}

Status FromJson(std::string_view json_text, InferMessage* out) {
  const std::string context = Context(MessageType::kInfer);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->request_id = r.Uint64("request_id");
  out->model = r.String("model");
  out->task = r.String("task");
  out->inputs = ReadTensors(r, "inputs");
  out->output = ReadRegion(r, "output");
  out->output_names = ReadStrings(r, "output_names");
  const json* params = r.Object("params", /*optional=*/true);
  out->params = params != nullptr ? *params : json::object();
  out->limit_bytes.reset();
  if (r.Has("limit_bytes")) out->limit_bytes = r.Uint64("limit_bytes");
  r.RejectUnknown(
      {"request_id", "model", "task", "inputs", "output", "output_names", "params", "limit_bytes"});
  return r.status();
}

Status FromJson(std::string_view json_text, OutputNeededMessage* out) {
  const std::string context = Context(MessageType::kOutputNeeded);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->request_id = r.Uint64("request_id");
  out->model = r.String("model");
  out->bytes = r.Uint64("bytes");
  r.RejectUnknown({"request_id", "model", "bytes"});
  return r.status();
}

Status FromJson(std::string_view json_text, OutputRegionMessage* out) {
  const std::string context = Context(MessageType::kOutputRegion);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->request_id = r.Uint64("request_id");
  out->offset = r.Uint64("offset");
  out->size = r.Uint64("size");
  r.RejectUnknown({"request_id", "offset", "size"});
  if (r.ok() && out->offset % kRegionAlignment != 0) {
    r.Fail("offset", std::to_string(out->offset) + " is not a multiple of " +
                         std::to_string(kRegionAlignment));
  }
  return r.status();
}

Status FromJson(std::string_view json_text, ResultMessage* out) {
  const std::string context = Context(MessageType::kResult);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->request_id = r.Uint64("request_id");
  out->model = r.String("model");
  out->outputs.clear();
  out->error.reset();
  if (r.Has("outputs") == r.Has("error")) {
    r.Fail("", "needs exactly one of 'outputs' and 'error'");
  } else if (r.Has("error")) {
    out->error = ReadError(r, "error");
  } else {
    out->outputs = ReadTensors(r, "outputs");
  }
  r.RejectUnknown({"request_id", "model", "outputs", "error"});
  return r.status();
}

Status FromJson(std::string_view json_text, StatsMessage* out) {
  const std::string context = Context(MessageType::kStats);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->current_bytes = r.Uint64("current_bytes");
  out->peak_bytes = r.Uint64("peak_bytes");
  out->models.clear();
  if (const json* models = r.Array("models", /*optional=*/true)) {
    for (size_t i = 0; i < models->size() && r.ok(); ++i) {
      JsonReader mr((*models)[i], context + ": models[" + std::to_string(i) + "]");
      ModelMemory m;
      m.model = mr.String("model");
      m.current_bytes = mr.Uint64("current_bytes");
      m.peak_bytes = mr.Uint64("peak_bytes");
      m.swapped = mr.OptionalBool("swapped", false);
      mr.RejectUnknown({"model", "current_bytes", "peak_bytes", "swapped"});
      r.Adopt(mr.status());
      out->models.push_back(std::move(m));
    }
  }
  out->cuda.clear();
  if (const json* cuda = r.Array("cuda", /*optional=*/true)) {
    for (size_t i = 0; i < cuda->size() && r.ok(); ++i) {
      JsonReader cr((*cuda)[i], context + ": cuda[" + std::to_string(i) + "]");
      CudaMemory c;
      c.index = static_cast<int32_t>(cr.Uint64("index"));
      c.allocated_bytes = cr.Uint64("allocated_bytes");
      c.reserved_bytes = cr.Uint64("reserved_bytes");
      c.peak_reserved_bytes = cr.Uint64("peak_reserved_bytes");
      cr.RejectUnknown({"index", "allocated_bytes", "reserved_bytes", "peak_reserved_bytes"});
      r.Adopt(cr.status());
      out->cuda.push_back(c);
    }
  }
  r.RejectUnknown({"current_bytes", "peak_bytes", "models", "cuda"});
  return r.status();
}

Status FromJson(std::string_view json_text, SwapOutMessage* out) {
  const std::string context = Context(MessageType::kSwapOut);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->model = r.String("model");
  out->swap_dir = r.OptionalString("swap_dir", "");
  r.RejectUnknown({"model", "swap_dir"});
  if (r.ok() && out->model.empty()) r.Fail("model", "empty");
  return r.status();
}

Status FromJson(std::string_view json_text, SwappedOutMessage* out) {
  const std::string context = Context(MessageType::kSwappedOut);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->model = r.String("model");
  out->bytes = r.Uint64("bytes");
  out->duration_us = r.Uint64("duration_us");
  out->rss_before_bytes = r.Uint64("rss_before_bytes");
  out->rss_after_bytes = r.Uint64("rss_after_bytes");
  out->error.reset();
  if (r.Has("error")) out->error = ReadError(r, "error");
  r.RejectUnknown(
      {"model", "bytes", "duration_us", "rss_before_bytes", "rss_after_bytes", "error"});
  return r.status();
}

Status FromJson(std::string_view json_text, SwapInMessage* out) {
  const std::string context = Context(MessageType::kSwapIn);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->model = r.String("model");
  r.RejectUnknown({"model"});
  if (r.ok() && out->model.empty()) r.Fail("model", "empty");
  return r.status();
}

Status FromJson(std::string_view json_text, SwappedInMessage* out) {
  const std::string context = Context(MessageType::kSwappedIn);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->model = r.String("model");
  out->bytes = r.Uint64("bytes");
  out->duration_us = r.Uint64("duration_us");
  out->reloaded = r.Bool("reloaded");
  out->reason = r.OptionalString("reason", "");
  out->error.reset();
  if (r.Has("error")) out->error = ReadError(r, "error");
  r.RejectUnknown({"model", "bytes", "duration_us", "reloaded", "reason", "error"});
  return r.status();
}

Status FromJson(std::string_view json_text, SetLimitMessage* out) {
  const std::string context = Context(MessageType::kSetLimit);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->model = r.String("model");
  out->limit_bytes = r.Uint64("limit_bytes");
  out->reason = r.OptionalString("reason", "");
  r.RejectUnknown({"model", "limit_bytes", "reason"});
  if (r.ok() && out->model.empty()) r.Fail("model", "empty");
  return r.status();
}

Status FromJson(std::string_view json_text, LimitSetMessage* out) {
  const std::string context = Context(MessageType::kLimitSet);
  MG_ASSIGN_OR_RETURN(json j, internal::ParseObject(json_text, context));
  JsonReader r(j, context);
  out->model = r.String("model");
  out->held_bytes = r.Uint64("held_bytes");
  out->released_bytes = r.Uint64("released_bytes");
  out->error.reset();
  if (r.Has("error")) out->error = ReadError(r, "error");
  r.RejectUnknown({"model", "held_bytes", "released_bytes", "error"});
  return r.status();
}

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

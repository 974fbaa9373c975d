// ParseModelConfig: the per-model config.yaml (schema in modelgrid/repository.h),
// and the spellings of its enums (ResolverName/ParseResolver, LoadPolicyName/
// ParseLoadPolicy).

#include <cmath>
#include <yaml-cpp/yaml.h>

#include <set>
#include <type_traits>

#include "modelgrid/bytes.h"
#include "modelgrid/repository.h"
#include "modelgrid/utf8.h"

namespace modelgrid {

namespace {

// Reads one YAML node into a typed value, with errors naming file and field.
class FieldReader {
 public:
  explicit FieldReader(std::string file) : file_(std::move(file)) {}

  Status Error(const std::string& field, const std::string& what) const {
    return Status::InvalidArgument(file_ + ": field '" + field + "': " + what);
  }

  // Rejects keys of `map` not in `known`.
  Status CheckKeys(const YAML::Node& map, const std::string& where,
                   const std::set<std::string>& known) const {
    if (!map.IsMap()) return Error(where, "expected a mapping");
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>();
      if (known.count(key) == 0) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        return Status::InvalidArgument(file_ + ": unknown field '" +
                                       (where.empty() ? key : where + "." + key) +
                                       "' (known: " + list + ")");
      }
    }
    return Status::Ok();
  }

  template <typename T>
  Result<T> Scalar(const YAML::Node& node, const std::string& field, const char* type) const {
    if (!node.IsScalar()) return Error(field, std::string("expected ") + type);
    try {
      T value = node.as<T>();
      if constexpr (std::is_same_v<T, std::string>) {
        // Names and ids end up in JSON views and in config.yaml written
        // back (ModelConfigToYaml): bytes that are not text would change.
        if (const size_t bad = FindInvalidUtf8(value); bad != std::string::npos) {
          return Error(field, "is not UTF-8 text (bad byte at offset " + std::to_string(bad) + ")");
        }
      }
      return value;
    } catch (const YAML::Exception&) {
      return Error(field, std::string("expected ") + type + ", got '" + node.Scalar() + "'");
    }
  }

  Result<int64_t> NonNegative(const YAML::Node& node, const std::string& field) const {
    MG_ASSIGN_OR_RETURN(int64_t v, Scalar<int64_t>(node, field, "an integer"));
    if (v < 0) return Error(field, "must be >= 0, got " + std::to_string(v));
    return v;
  }

  // A memory size: a byte quantity (ParseBytes) of at least 1 byte.
  Result<uint64_t> Bytes(const YAML::Node& node, const std::string& field) const {
    if (!node.IsScalar()) return Error(field, "expected a byte quantity such as 2GiB");
    const std::string& text = node.Scalar();
    const size_t first = text.find_first_not_of(' ');
    if (first != std::string::npos && text[first] == '-') {
      return Error(field, "must not be negative, got '" + text + "'");
    }
    auto r = ParseBytes(text);
    if (!r.ok()) return Error(field, r.status().message());
    if (r.value() == 0) return Error(field, "must be at least 1 byte, got '" + text + "'");
    return r.value();
  }

  Result<std::vector<TensorSpec>> Tensors(const YAML::Node& node, const std::string& field) const {
    if (!node.IsSequence()) return Error(field, "expected a list of {name, datatype, dims}");
    std::vector<TensorSpec> out;
    for (size_t i = 0; i < node.size(); ++i) {
      const std::string where = field + "[" + std::to_string(i) + "]";
      const YAML::Node t = node[i];
      MG_RETURN_IF_ERROR(CheckKeys(t, where, {"name", "datatype", "dims"}));
      TensorSpec spec;
      if (!t["name"]) return Error(where + ".name", "is missing");
      MG_ASSIGN_OR_RETURN(spec.name, Scalar<std::string>(t["name"], where + ".name", "a string"));
      if (t["datatype"]) {
        MG_ASSIGN_OR_RETURN(std::string dt,
                            Scalar<std::string>(t["datatype"], where + ".datatype", "a string"));
        auto parsed = ParseDataType(dt);
        if (!parsed) {
          return Error(where + ".datatype",
                       "unknown datatype '" + dt + "' (expected a KServe v2 name such as FP32)");
        }
        spec.datatype = *parsed;
      }
      if (t["dims"]) {
        if (!t["dims"].IsSequence()) return Error(where + ".dims", "expected a list of integers");
        for (size_t d = 0; d < t["dims"].size(); ++d) {
          const std::string df = where + ".dims[" + std::to_string(d) + "]";
          MG_ASSIGN_OR_RETURN(int64_t v, Scalar<int64_t>(t["dims"][d], df, "an integer"));
          if (v < -1 || v == 0) return Error(df, "must be -1 (variable) or > 0, got " + std::to_string(v));
          spec.dims.push_back(v);
        }
      }
      out.push_back(std::move(spec));
    }
    return out;
  }

 private:
  std::string file_;
};

Status ParseBatching(const FieldReader& r, const YAML::Node& node, BatchingConfig& b) {
  MG_RETURN_IF_ERROR(r.CheckKeys(node, "dynamic_batching",
                                 {"enabled", "max_queue_delay_us", "preferred_batch_sizes",
                                  "max_queue_size", "default_timeout_us"}));
  const std::string p = "dynamic_batching.";
  if (node["enabled"]) {
    MG_ASSIGN_OR_RETURN(b.enabled, r.Scalar<bool>(node["enabled"], p + "enabled", "true or false"));
  }
  if (node["max_queue_delay_us"]) {
    MG_ASSIGN_OR_RETURN(int64_t v, r.NonNegative(node["max_queue_delay_us"], p + "max_queue_delay_us"));
    b.max_queue_delay_us = static_cast<uint64_t>(v);
  }
  if (node["max_queue_size"]) {
    MG_ASSIGN_OR_RETURN(int64_t v, r.NonNegative(node["max_queue_size"], p + "max_queue_size"));
    b.max_queue_size = static_cast<uint64_t>(v);
  }
  if (node["default_timeout_us"]) {
    MG_ASSIGN_OR_RETURN(int64_t v, r.NonNegative(node["default_timeout_us"], p + "default_timeout_us"));
    b.default_timeout_us = static_cast<uint64_t>(v);
  }
  if (node["preferred_batch_sizes"]) {
    const YAML::Node list = node["preferred_batch_sizes"];
    if (!list.IsSequence()) return r.Error(p + "preferred_batch_sizes", "expected a list of integers");
    b.preferred_batch_sizes.clear();  // replaces a base's list (config.pbtxt)
    for (size_t i = 0; i < list.size(); ++i) {
      MG_ASSIGN_OR_RETURN(int64_t v, r.NonNegative(list[i], p + "preferred_batch_sizes[" + std::to_string(i) + "]"));
      b.preferred_batch_sizes.push_back(v);
    }
  }
  return Status::Ok();
}

Status ParseFields(const FieldReader& r, const YAML::Node& root, ModelConfig& c) {
  MG_RETURN_IF_ERROR(r.CheckKeys(root, "",
                                 {"platform", "max_batch_size", "sequence_length", "inputs",
                                  "outputs", "memory", "devices", "replicas", "priority",
                                  "resolver", "load", "pinned", "latency_sensitive",
                                  "expected_load", "dynamic_batching", "tasks", "backend",
                                  "dtype"}));
  if (root["backend"]) {
    MG_ASSIGN_OR_RETURN(c.backend, r.Scalar<std::string>(root["backend"], "backend", "a string"));
    if (c.backend != "torchscript" && c.backend != "huggingface") {
      return r.Error("backend", "expected torchscript or huggingface, got '" + c.backend + "'");
    }
  }
  if (root["dtype"]) {
    MG_ASSIGN_OR_RETURN(c.dtype, r.Scalar<std::string>(root["dtype"], "dtype", "a string"));
    if (c.dtype != "float32" && c.dtype != "float16" && c.dtype != "bfloat16") {
      return r.Error("dtype", "expected float32, float16 or bfloat16, got '" + c.dtype + "'");
    }
  }
  if (root["platform"]) {
    MG_ASSIGN_OR_RETURN(c.platform, r.Scalar<std::string>(root["platform"], "platform", "a string"));
    if (c.platform != "pytorch_torchscript" && c.platform != "huggingface") {
      return r.Error("platform", "expected pytorch_torchscript or huggingface, got '" + c.platform + "'");
    }
  }
  if (root["max_batch_size"]) {
    MG_ASSIGN_OR_RETURN(c.max_batch_size, r.NonNegative(root["max_batch_size"], "max_batch_size"));
  }
  if (root["sequence_length"]) {
    MG_ASSIGN_OR_RETURN(c.sequence_length, r.NonNegative(root["sequence_length"], "sequence_length"));
    if (c.sequence_length == 0) return r.Error("sequence_length", "must be > 0");
  }
  if (root["inputs"]) {
    MG_ASSIGN_OR_RETURN(c.inputs, r.Tensors(root["inputs"], "inputs"));
  }
  if (root["outputs"]) {
    MG_ASSIGN_OR_RETURN(c.outputs, r.Tensors(root["outputs"], "outputs"));
  }
  if (root["memory"]) {
    MG_RETURN_IF_ERROR(r.CheckKeys(root["memory"], "memory", {"request", "limit"}));
    if (root["memory"]["request"]) {
      MG_ASSIGN_OR_RETURN(c.memory_request, r.Bytes(root["memory"]["request"], "memory.request"));
    }
    if (root["memory"]["limit"]) {
      MG_ASSIGN_OR_RETURN(c.memory_limit, r.Bytes(root["memory"]["limit"], "memory.limit"));
    }
    if (c.memory_request && c.memory_limit && *c.memory_limit < *c.memory_request) {
      return r.Error("memory.limit", "must be >= memory.request (" +
                                         std::to_string(*c.memory_limit) + " < " +
                                         std::to_string(*c.memory_request) + " bytes)");
    }
  }
  if (root["devices"]) {
    if (!root["devices"].IsSequence()) return r.Error("devices", "expected a list such as [cuda:0, cpu]");
    c.devices.clear();  // replaces a base's pins (config.pbtxt instance_group)
    for (size_t i = 0; i < root["devices"].size(); ++i) {
      MG_ASSIGN_OR_RETURN(std::string d, r.Scalar<std::string>(root["devices"][i], "devices", "a device id"));
      c.devices.push_back(d);
    }
  }
  if (root["replicas"]) {
    MG_ASSIGN_OR_RETURN(int64_t v, r.NonNegative(root["replicas"], "replicas"));
    if (v < 1 || v > 1024) return r.Error("replicas", "must be between 1 and 1024");
    c.replicas = static_cast<int>(v);
  }
  if (root["priority"]) {
    MG_ASSIGN_OR_RETURN(c.priority, r.Scalar<int>(root["priority"], "priority", "an integer"));
  }
  if (root["resolver"]) {
    MG_ASSIGN_OR_RETURN(std::string v, r.Scalar<std::string>(root["resolver"], "resolver", "a string"));
    auto parsed = ParseResolver(v);
    if (!parsed.ok()) return r.Error("resolver", parsed.status().message());
    c.resolver = *parsed;
  }
  if (root["load"]) {
    MG_ASSIGN_OR_RETURN(std::string v, r.Scalar<std::string>(root["load"], "load", "a string"));
    auto parsed = ParseLoadPolicy(v);
    if (!parsed.ok()) return r.Error("load", parsed.status().message());
    c.load = *parsed;
  }
  if (root["pinned"]) {
    MG_ASSIGN_OR_RETURN(c.pinned, r.Scalar<bool>(root["pinned"], "pinned", "true or false"));
  }
  if (root["latency_sensitive"]) {
    MG_ASSIGN_OR_RETURN(c.latency_sensitive,
                        r.Scalar<bool>(root["latency_sensitive"], "latency_sensitive", "true or false"));
  }
  if (root["expected_load"]) {
    MG_ASSIGN_OR_RETURN(c.expected_load, r.Scalar<double>(root["expected_load"], "expected_load", "a number"));
    if (!std::isfinite(c.expected_load) || c.expected_load < 0) {
      return r.Error("expected_load", "must be a finite number >= 0");
    }
  }
  if (root["dynamic_batching"]) MG_RETURN_IF_ERROR(ParseBatching(r, root["dynamic_batching"], c.batching));
  if (root["tasks"]) {
    if (!root["tasks"].IsMap()) return r.Error("tasks", "expected a mapping task: method");
    for (const auto& kv : root["tasks"]) {
      const std::string task = kv.first.as<std::string>();
      MG_ASSIGN_OR_RETURN(std::string method, r.Scalar<std::string>(kv.second, "tasks." + task, "a method name"));
      c.tasks[task] = method;
    }
  }
  return Status::Ok();
}

}  // namespace

const char* ResolverName(Resolver resolver) {
  switch (resolver) {
    case Resolver::kWait: return "wait";
    case Resolver::kPriority: return "priority";
    case Resolver::kSwap: return "swap";
  }
  return "unknown";
}

Result<Resolver> ParseResolver(const std::string& text) {
  for (Resolver r : {Resolver::kWait, Resolver::kPriority, Resolver::kSwap}) {
    if (text == ResolverName(r)) return r;
  }
  return Status::InvalidArgument("unknown resolver '" + text + "' (expected wait, priority or swap)");
}

const char* LoadPolicyName(LoadPolicy policy) {
  switch (policy) {
    case LoadPolicy::kDefault: return "default";
    case LoadPolicy::kEager: return "eager";
    case LoadPolicy::kOnDemand: return "on_demand";
  }
  return "unknown";
}

Result<LoadPolicy> ParseLoadPolicy(const std::string& text) {
  for (LoadPolicy p : {LoadPolicy::kEager, LoadPolicy::kOnDemand}) {
    if (text == LoadPolicyName(p)) return p;
  }
  return Status::InvalidArgument("unknown load policy '" + text + "' (expected eager or on_demand)");
}

Result<ModelConfig> ParseModelConfig(const std::string& yaml_text, const std::string& file) {
  return ParseModelConfig(yaml_text, file, ModelConfig{});
}

Result<ModelConfig> ParseModelConfig(const std::string& yaml_text, const std::string& file,
                                     const ModelConfig& base) {
  ModelConfig config = base;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(file + ": not valid YAML: " + e.what());
  }
  if (root.IsNull()) return config;  // an empty file: all defaults
  FieldReader reader(file);
  try {
    MG_RETURN_IF_ERROR(ParseFields(reader, root, config));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(file + ": " + e.what());
  }
  return config;
}

}  // namespace modelgrid

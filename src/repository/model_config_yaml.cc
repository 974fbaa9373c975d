// ModelConfigToYaml: a ModelConfig back to config.yaml text (the inverse of
// ParseModelConfig in model_config.cc), with yaml-cpp's emitter.
#include <yaml-cpp/yaml.h>

#include "modelgrid/repository.h"

namespace modelgrid {
namespace {

void EmitString(YAML::Emitter& out, const std::string& s) { out << YAML::DoubleQuoted << s; }

void EmitTensors(YAML::Emitter& out, const char* key, const std::vector<TensorSpec>& specs) {
  out << YAML::Key << key << YAML::Value << YAML::BeginSeq;
  for (const TensorSpec& t : specs) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value;
    EmitString(out, t.name);
    out << YAML::Key << "datatype" << YAML::Value << std::string(DataTypeName(t.datatype));
    out << YAML::Key << "dims" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (int64_t d : t.dims) out << d;
    out << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

}  // namespace

std::string ModelConfigToYaml(const ModelConfig& c) {
  YAML::Emitter out;
  out.SetDoublePrecision(17);
  out << YAML::BeginMap;
  if (!c.platform.empty()) {
    out << YAML::Key << "platform" << YAML::Value;
    EmitString(out, c.platform);
  }
  if (!c.backend.empty()) {
    out << YAML::Key << "backend" << YAML::Value;
    EmitString(out, c.backend);
  }
  if (!c.dtype.empty()) {
    out << YAML::Key << "dtype" << YAML::Value;
    EmitString(out, c.dtype);
  }
  out << YAML::Key << "max_batch_size" << YAML::Value << c.max_batch_size;
  out << YAML::Key << "sequence_length" << YAML::Value << c.sequence_length;
  EmitTensors(out, "inputs", c.inputs);
  EmitTensors(out, "outputs", c.outputs);
  if (c.memory_request || c.memory_limit) {
    out << YAML::Key << "memory" << YAML::Value << YAML::BeginMap;
    if (c.memory_request) out << YAML::Key << "request" << YAML::Value << *c.memory_request;
    if (c.memory_limit) out << YAML::Key << "limit" << YAML::Value << *c.memory_limit;
    out << YAML::EndMap;
  }
  out << YAML::Key << "devices" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const std::string& d : c.devices) EmitString(out, d);
  out << YAML::EndSeq;
  out << YAML::Key << "replicas" << YAML::Value << c.replicas;
  out << YAML::Key << "priority" << YAML::Value << c.priority;
  out << YAML::Key << "resolver" << YAML::Value << ResolverName(c.resolver);
  // kDefault has no spelling: config.yaml says it by leaving `load` out.
  if (c.load != LoadPolicy::kDefault) {
    out << YAML::Key << "load" << YAML::Value << LoadPolicyName(c.load);
  }
  out << YAML::Key << "pinned" << YAML::Value << c.pinned;
  out << YAML::Key << "latency_sensitive" << YAML::Value << c.latency_sensitive;
  out << YAML::Key << "expected_load" << YAML::Value << c.expected_load;

  const BatchingConfig& b = c.batching;
  out << YAML::Key << "dynamic_batching" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "enabled" << YAML::Value << b.enabled;
  out << YAML::Key << "max_queue_delay_us" << YAML::Value << b.max_queue_delay_us;
  out << YAML::Key << "preferred_batch_sizes" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (int64_t n : b.preferred_batch_sizes) out << n;
  out << YAML::EndSeq;
  out << YAML::Key << "max_queue_size" << YAML::Value << b.max_queue_size;
  out << YAML::Key << "default_timeout_us" << YAML::Value << b.default_timeout_us;
  out << YAML::EndMap;

  out << YAML::Key << "tasks" << YAML::Value << YAML::BeginMap;
  for (const auto& [task, method] : c.tasks) {
    out << YAML::Key;
    EmitString(out, task);
    out << YAML::Value;
    EmitString(out, method);
  }
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace modelgrid

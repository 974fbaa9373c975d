// InferenceService::Config: a model's configuration as Triton's JSON
// (GET /v2/models/{m}/config, gRPC ModelConfig). Triton's field names
// (model_config.proto of triton-inference-server/common, mirrored in
// src/repository/triton_model_config.proto); what config.yaml alone says
// (memory, priority, resolver, ...) goes under "modelgrid", which Triton's
// clients ignore.
#include "modelgrid/service/inference_service.h"

namespace modelgrid {

namespace {

using nlohmann::json;

// Triton's TYPE_* name of a datatype (TYPE_STRING for BYTES).
std::string TritonTypeName(DataType type) {
  if (type == DataType::kBytes) return "TYPE_STRING";
  return "TYPE_" + std::string(DataTypeName(type));
}

json TensorList(const std::vector<TensorSpec>& specs) {
  json list = json::array();
  for (const TensorSpec& spec : specs) {
    json t = {{"name", spec.name}, {"data_type", TritonTypeName(spec.datatype)}, {"dims", spec.dims}};
    list.push_back(std::move(t));
  }
  return list;
}

// instance_group from the replicas and device pins: KIND_CPU for "cpu",
// KIND_GPU with the ordinals of cuda:N pins, KIND_AUTO without pins.
json InstanceGroups(const ModelConfig& c) {
  std::vector<int64_t> gpus;
  bool cpu = false;
  for (const std::string& d : c.devices) {
    if (d == "cpu") {
      cpu = true;
    } else if (d.rfind("cuda:", 0) == 0) {
      try {
        gpus.push_back(std::stoll(d.substr(5)));
      } catch (...) {
      }
    }
  }
  json groups = json::array();
  if (c.devices.empty()) {
    groups.push_back({{"name", "modelgrid"}, {"kind", "KIND_AUTO"}, {"count", c.replicas}});
  } else if (!gpus.empty()) {
    groups.push_back({{"name", "modelgrid"}, {"kind", "KIND_GPU"}, {"count", c.replicas},
                      {"gpus", gpus}});
  } else if (cpu) {
    groups.push_back({{"name", "modelgrid"}, {"kind", "KIND_CPU"}, {"count", c.replicas}});
  }
  return groups;
}

json VersionPolicyJson(const VersionPolicy& p) {
  switch (p.kind) {
    case VersionPolicy::Kind::kAll:
      return {{"all", json::object()}};
    case VersionPolicy::Kind::kSpecific:
      return {{"specific", {{"versions", p.versions}}}};
    case VersionPolicy::Kind::kLatest:
      break;
  }
  return {{"latest", {{"num_versions", p.num_versions}}}};
}

}  // namespace

Result<json> InferenceService::Config(const std::string& model, const std::string& version) const {
  MG_ASSIGN_OR_RETURN(ModelStatus status, FindModel(model, version));
  MG_ASSIGN_OR_RETURN(ModelEntry entry, grid_->Entry(status.name));
  const ModelConfig& c = entry.config;
  // A loaded model knows its tensors for sure (its backend read them);
  // before that, the configuration's declaration is all there is.
  const bool loaded = !status.inputs.empty() || !status.outputs.empty();
  json config = json::object();
  config["name"] = model;
  config["platform"] = "pytorch_libtorch";
  config["backend"] = "pytorch";
  config["version_policy"] = VersionPolicyJson(entry.version_policy);
  config["max_batch_size"] = loaded ? status.max_batch_size : c.max_batch_size;
  config["input"] = TensorList(loaded ? status.inputs : c.inputs);
  config["output"] = TensorList(loaded ? status.outputs : c.outputs);
  config["instance_group"] = InstanceGroups(c);
  if (c.batching.enabled) {
    config["dynamic_batching"] = {
        {"preferred_batch_size", c.batching.preferred_batch_sizes},
        {"max_queue_delay_microseconds", c.batching.max_queue_delay_us},
        {"default_queue_policy",
         {{"default_timeout_microseconds", c.batching.default_timeout_us},
          {"max_queue_size", c.batching.max_queue_size}}}};
  }
  json parameters = json::object();
  for (const auto& [key, value] : entry.parameters) parameters[key] = {{"string_value", value}};
  config["parameters"] = parameters;
  json mg = {{"priority", c.priority},
             {"resolver", ResolverName(c.resolver)},
             {"load", LoadPolicyName(status.load)},
             {"pinned", c.pinned},
             {"request_bytes", status.request_bytes},
             {"limit_bytes", status.limit_bytes},
             {"versions", entry.versions},
             {"tasks", status.tasks}};
  if (c.memory_request) mg["memory_request_bytes"] = *c.memory_request;
  if (c.memory_limit) mg["memory_limit_bytes"] = *c.memory_limit;
  config["modelgrid"] = mg;
  return config;
}

}  // namespace modelgrid

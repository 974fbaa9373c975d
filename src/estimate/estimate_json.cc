#include "modelgrid/estimate_json.h"

namespace modelgrid {

nlohmann::json EstimateToJson(const MemoryEstimate& e) {
  nlohmann::json j = {
      {"model", e.model},
      {"batch", e.batch},
      {"sequence_length", e.sequence_length},
      {"device_type", e.device_type},
      {"parameters", e.parameters},
      {"weights_bytes", e.weights},
      {"activations_bytes", e.activations},
      {"kv_cache_bytes", e.kv_cache},
      {"workspace_bytes", e.workspace},
      {"allocator_slack_bytes", e.allocator_slack},
      {"margin_bytes", e.margin},
      {"context_bytes", e.context},
      {"instance_peak_bytes", e.instance_peak()},
      {"request_bytes", e.request()},
      {"total_bytes", e.total()},
      {"method", e.method},
      {"notes", e.notes},
  };
  if (!e.tasks.empty()) {
    // Each task's activations and the instance peak they give.
    nlohmann::json tasks = nlohmann::json::object();
    for (const auto& t : e.tasks) {
      tasks[t.task] = {{"activations_bytes", t.activations},
                       {"instance_peak_bytes", e.instance_peak() - e.activations + t.activations}};
    }
    j["tasks"] = std::move(tasks);
    j["task"] = e.task.empty() ? nlohmann::json(nullptr) : nlohmann::json(e.task);
  }
  if (e.calibrated_peak) j["calibrated_peak_bytes"] = *e.calibrated_peak;
  if (!e.activations_unknown.empty()) j["activations_unknown"] = e.activations_unknown;
  return j;
}

}  // namespace modelgrid

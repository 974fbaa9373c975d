#include "cli/json_output.h"

namespace modelgrid::cli {

nlohmann::json PlanToJson(const Plan& plan) {
  nlohmann::json devices = nlohmann::json::array();
  for (const auto& d : plan.devices) {
    devices.push_back({{"device", d.device},
                       {"total_bytes", d.total_bytes},
                       {"used_by_others_bytes", d.used_by_others},
                       {"buffer_bytes", d.buffer_bytes},
                       {"context_bytes", d.context_bytes},
                       {"model_bytes", d.model_bytes},
                       {"committed_bytes", d.committed()},
                       {"workers", d.workers},
                       {"models", d.models}});
  }
  nlohmann::json placed = nlohmann::json::array();
  for (const auto& a : plan.placed) {
    placed.push_back({{"model", a.model}, {"replica", a.replica}, {"device", a.device},
                      {"request_bytes", a.request_bytes}});
  }
  nlohmann::json unplaced = nlohmann::json::array();
  for (const auto& u : plan.unplaced) {
    unplaced.push_back({{"model", u.model}, {"replica", u.replica},
                        {"request_bytes", u.request_bytes}, {"reason", u.reason}});
  }
  return {{"strategy", StrategyName(plan.strategy)},
          {"isolation", IsolationName(plan.isolation)},
          {"optimal_proven", plan.optimal_proven},
          {"devices", devices},
          {"placed", placed},
          {"unplaced", unplaced}};
}

}  // namespace modelgrid::cli

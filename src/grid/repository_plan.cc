#include "modelgrid/repository_plan.h"

namespace modelgrid {

DeviceKind EstimateKindFor(const std::vector<Device>& devices) {
  for (const auto& d : devices) {
    if (d.is_accelerator()) return DeviceKind::kCuda;
  }
  return DeviceKind::kCpu;
}

namespace {

ModelEstimateOutcome EstimateOne(const ModelEntry& model, const EstimateOptions& options,
                                 GraphWalker* walker) {
  ModelEstimateOutcome out;
  out.model = model.name;
  auto estimate = EstimateModel(model, options, walker);
  if (!estimate.ok()) {
    out.error = estimate.status();
    if (!model.config.memory_request) return out;
  } else {
    out.estimate = std::move(estimate).value();
    out.request_bytes = out.estimate->request();
  }
  // An explicit memory.request in config.yaml overrides the estimate.
  if (model.config.memory_request) {
    out.request_bytes = *model.config.memory_request;
    out.error = Status::Ok();
  }
  out.limit_bytes = model.config.memory_limit.value_or(out.request_bytes);
  return out;
}

}  // namespace

Result<RepositoryPlan> PlanRepository(const std::vector<ModelEntry>& models,
                                      const std::vector<Device>& devices,
                                      const PlanOptions& plan_options,
                                      const EstimateOptions& estimate_options, GraphWalker* walker,
                                      const std::function<bool(const ModelEntry&)>& offer) {
  RepositoryPlan result;
  EstimateOptions options = estimate_options;
  options.device = EstimateKindFor(devices);
  std::vector<PlacementItem> items;
  std::vector<Unplaced> failed;
  for (const auto& model : models) {
    ModelEstimateOutcome outcome = EstimateOne(model, options, walker);
    const bool offered = !offer || offer(model);
    for (int r = 0; offered && r < model.config.replicas; ++r) {
      if (!outcome.error.ok()) {
        failed.push_back({model.name, r, 0, "estimate failed: " + outcome.error.message(),
                          /*estimate_failed=*/true});
        continue;
      }
      PlacementItem item;
      item.model = model.name;
      item.replica = r;
      item.request_bytes = outcome.request_bytes;
      item.allowed = model.config.devices;
      item.priority = model.config.priority;
      item.latency_sensitive = model.config.latency_sensitive;
      item.expected_load = model.config.expected_load;
      items.push_back(std::move(item));
    }
    result.estimates.push_back(std::move(outcome));
  }
  MG_ASSIGN_OR_RETURN(result.plan, MakePlan(devices, items, plan_options));
  result.plan.unplaced.insert(result.plan.unplaced.end(), failed.begin(), failed.end());
  return result;
}

}  // namespace modelgrid

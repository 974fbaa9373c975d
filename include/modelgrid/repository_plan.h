// From a repository to a plan: estimate every model, turn each into placement
// items (one per replica), and run the planner. Used by `modelgrid plan` and,
// later, by `modelgrid serve` before it starts workers.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/device.h"
#include "modelgrid/estimate.h"
#include "modelgrid/placement.h"
#include "modelgrid/repository.h"
#include "modelgrid/status.h"

namespace modelgrid {

// The estimate of one model, or why there is none.
struct ModelEstimateOutcome {
  std::string model;
  std::optional<MemoryEstimate> estimate;  // absent when estimation failed
  Status error;                            // OK when `estimate` is present
  uint64_t request_bytes = 0;  // what placement packs: config memory.request, else estimate.request()
  uint64_t limit_bytes = 0;    // config memory.limit, else request_bytes
};

struct RepositoryPlan {
  std::vector<ModelEstimateOutcome> estimates;  // one per model, in repository order
  Plan plan;  // models whose estimate failed appear in plan.unplaced with the error
};

// The estimator device kind that applies to a device list: kCuda when any
// device is an accelerator (its allocator model is the stricter one), else kCpu.
DeviceKind EstimateKindFor(const std::vector<Device>& devices);

// Estimates each of `models` (EstimateModel with `estimate_options`, the
// device kind forced to EstimateKindFor(devices)), builds one PlacementItem per
// replica (pins, priority, latency_sensitive, expected_load from config.yaml)
// and calls MakePlan. A model whose estimate fails is not an error of the
// whole call: it is listed unplaced with the estimator's message.
// `offer` (optional) says which models go to the planner: the others are
// estimated only (the grid's on-demand models), and appear in neither
// plan.placed nor plan.unplaced.
// Errors: those of MakePlan (no devices, duplicate ids).
Result<RepositoryPlan> PlanRepository(const std::vector<ModelEntry>& models,
                                      const std::vector<Device>& devices,
                                      const PlanOptions& plan_options,
                                      const EstimateOptions& estimate_options, GraphWalker* walker,
                                      const std::function<bool(const ModelEntry&)>& offer = {});

}  // namespace modelgrid

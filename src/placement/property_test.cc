// Properties of every strategy over random instances, checked by an
// independent re-computation of the memory model (placement_test_util.h).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "modelgrid/placement.h"
#include "placement/placement_test_util.h"
#include "placement/random_instance.h"
#include "placement/strategies.h"

namespace modelgrid {
namespace {

using testing::CheckPlan;
using testing::DrawInstance;
using testing::Instance;

constexpr Strategy kHeuristics[] = {Strategy::kFillFirst, Strategy::kBalance,
                                    Strategy::kMemoryOptimized, Strategy::kLatencySensitive};

Plan PlanOrDie(const Instance& in, Strategy s) {
  PlanOptions opt = in.options;
  opt.strategy = s;
  auto plan = MakePlan(in.devices, in.items, opt);
  RC_ASSERT(plan.ok());
  return *plan;
}

// No unplaced item could go on any device as the plan leaves it: each
// device it may use is missing, pinned away, holds its sibling, is a full
// CPU fallback, or lacks the bytes (request + a new worker's context).
std::string CheckNothingLeftBehind(const Instance& in, const Plan& plan) {
  const bool accelerators = std::any_of(in.devices.begin(), in.devices.end(),
                                        [](const Device& d) { return d.is_accelerator(); });
  int on_cpu = 0;
  for (const Assignment& a : plan.placed) {
    for (const Device& d : in.devices) on_cpu += (d.id == a.device && !d.is_accelerator());
  }
  for (const Unplaced& u : plan.unplaced) {
    const PlacementItem* item = nullptr;
    for (const PlacementItem& it : in.items) {
      if (it.model == u.model && it.replica == u.replica) item = &it;
    }
    for (size_t i = 0; i < in.devices.size(); ++i) {
      const Device& d = in.devices[i];
      const DeviceUsage& usage = plan.devices[i];
      if (!item->allowed.empty() &&
          std::find(item->allowed.begin(), item->allowed.end(), d.id) == item->allowed.end()) {
        continue;
      }
      bool sibling = false;
      for (const Assignment& a : plan.placed) sibling |= a.model == u.model && a.device == d.id;
      if (sibling) continue;
      if (!d.is_accelerator() && accelerators && in.options.max_cpu_models >= 0 &&
          on_cpu >= in.options.max_cpu_models) {
        continue;
      }
      const bool new_worker = in.options.isolation == Isolation::kModel ||
                              (in.options.isolation == Isolation::kDevice && usage.workers == 0);
      const unsigned __int128 after = static_cast<unsigned __int128>(usage.committed()) +
                                      item->request_bytes + (new_worker ? d.context_bytes : 0);
      if (after <= d.total_bytes) return u.model + " fits " + d.id + " but was left unplaced";
    }
  }
  return "";
}

RC_GTEST_PROP(PlacementProperty, EveryStrategyHonoursTheMemoryModel, ()) {
  const Instance in = DrawInstance(14, 4);
  for (Strategy s : {Strategy::kFillFirst, Strategy::kBalance, Strategy::kMemoryOptimized,
                     Strategy::kLatencySensitive, Strategy::kOptimal}) {
    PlanOptions opt = in.options;
    opt.strategy = s;
    const Plan plan = PlanOrDie(in, s);
    RC_LOG() << StrategyName(s) << "\n";
    RC_ASSERT(CheckPlan(in.devices, in.items, opt, plan) == "");
    RC_ASSERT(CheckNothingLeftBehind(in, plan) == "");
  }
}

RC_GTEST_PROP(PlacementProperty, OptimalIsAtLeastEveryHeuristic, ()) {
  const Instance in = DrawInstance(16, 4);
  const Plan best = PlanOrDie(in, Strategy::kOptimal);
  const auto best_key = std::make_pair(best.placed.size(), testing::PlacedBytes(best));
  for (Strategy s : kHeuristics) {
    const Plan plan = PlanOrDie(in, s);
    RC_ASSERT(best.placed.size() >= plan.placed.size());
    RC_ASSERT(best_key >= std::make_pair(plan.placed.size(), testing::PlacedBytes(plan)));
  }
}

RC_GTEST_PROP(PlacementProperty, MemoryOptimizedIsNeverWorseThanBestFitDecreasing, ()) {
  const Instance in = DrawInstance(30, 4);
  const Plan plan = PlanOrDie(in, Strategy::kMemoryOptimized);
  const auto bfd =
      placement::RunBestFitDecreasing(placement::BuildProblem(in.devices, in.items, in.options));
  RC_ASSERT(std::make_pair(static_cast<int>(plan.placed.size()), testing::PlacedBytes(plan)) >=
            std::make_pair(bfd.objective().count, bfd.objective().bytes));
}

RC_GTEST_PROP(PlacementProperty, SameInputSamePlan, ()) {
  const Instance in = DrawInstance(20, 4);
  for (Strategy s : kHeuristics) {
    const Plan a = PlanOrDie(in, s);
    const Plan b = PlanOrDie(in, s);
    RC_ASSERT(testing::Where(a) == testing::Where(b));
  }
}

}  // namespace
}  // namespace modelgrid

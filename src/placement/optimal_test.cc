// The optimal strategy against a brute-force enumeration written here,
// independent of the planner: every item to every device or nowhere.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <functional>

#include "modelgrid/placement.h"
#include "placement/placement_test_util.h"
#include "placement/random_instance.h"
#include "placement/strategies.h"

namespace modelgrid {
namespace {

using testing::DrawInstance;
using testing::Gpu;
using testing::Inst;
using testing::Instance;

// Best (instances placed, bytes placed) over all (devices + 1)^items
// assignments that respect the memory model and the constraints.
std::pair<int, uint64_t> BruteForce(const Instance& in) {
  const auto& devs = in.devices;
  const auto& items = in.items;
  const bool accelerators =
      std::any_of(devs.begin(), devs.end(), [](const Device& d) { return d.is_accelerator(); });
  std::vector<int> where(items.size(), -1);
  std::pair<int, uint64_t> best{0, 0};
  auto feasible = [&]() {
    int on_cpu = 0;
    for (size_t d = 0; d < devs.size(); ++d) {
      unsigned __int128 bytes = 0;
      int count = 0;
      for (size_t i = 0; i < items.size(); ++i) {
        if (where[i] != static_cast<int>(d)) continue;
        bytes += items[i].request_bytes;
        ++count;
        for (size_t j = 0; j < i; ++j) {
          if (where[j] == static_cast<int>(d) && items[j].model == items[i].model) return false;
        }
        const auto& allowed = items[i].allowed;
        if (!allowed.empty() &&
            std::find(allowed.begin(), allowed.end(), devs[d].id) == allowed.end()) {
          return false;
        }
      }
      if (count == 0) continue;
      int workers = 0;
      if (in.options.isolation == Isolation::kModel) workers = count;
      if (in.options.isolation == Isolation::kDevice) workers = 1;
      bytes += devs[d].used_bytes;
      bytes += static_cast<unsigned __int128>(devs[d].context_bytes) * workers;
      if (devs[d].is_accelerator()) bytes += in.options.buffer_bytes;
      if (bytes > devs[d].total_bytes) return false;
      if (!devs[d].is_accelerator()) on_cpu += count;
    }
    return !(accelerators && in.options.max_cpu_models >= 0 && on_cpu > in.options.max_cpu_models);
  };
  std::function<void(size_t)> enumerate = [&](size_t i) {
    if (i == items.size()) {
      if (!feasible()) return;
      std::pair<int, uint64_t> value{0, 0};
      for (size_t k = 0; k < items.size(); ++k) {
        if (where[k] >= 0) {
          ++value.first;
          value.second += items[k].request_bytes;
        }
      }
      best = std::max(best, value);
      return;
    }
    for (int d = -1; d < static_cast<int>(devs.size()); ++d) {
      where[i] = d;
      enumerate(i + 1);
    }
    where[i] = -1;
  };
  enumerate(0);
  return best;
}

RC_GTEST_PROP(OptimalProperty, MatchesBruteForceOnSmallInstances, ()) {
  Instance in = DrawInstance(7, 3);
  in.options.strategy = Strategy::kOptimal;
  in.options.time_budget = std::chrono::milliseconds(20000);
  auto plan = MakePlan(in.devices, in.items, in.options);
  RC_ASSERT(plan.ok());
  RC_ASSERT(plan->optimal_proven);
  RC_ASSERT(testing::CheckPlan(in.devices, in.items, in.options, *plan) == "");
  const auto expected = BruteForce(in);
  RC_ASSERT(static_cast<int>(plan->placed.size()) == expected.first);
  RC_ASSERT(testing::PlacedBytes(*plan) == expected.second);
}

// The search alone, from an empty incumbent: the bounds and symmetry cuts
// must still find the optimum without help from the heuristics.
RC_GTEST_PROP(OptimalProperty, SearchFromNothingMatchesBruteForce, ()) {
  const Instance in = DrawInstance(7, 3);
  const placement::Problem p = placement::BuildProblem(in.devices, in.items, in.options);
  const auto result = placement::RunBranchAndBound(
      p, placement::Clock::now() + std::chrono::seconds(20), placement::CapacityState(p));
  RC_ASSERT(result.proven);
  const auto expected = BruteForce(in);
  RC_ASSERT(result.state.objective().count == expected.first);
  RC_ASSERT(result.state.objective().bytes == expected.second);
}

// Identical devices and identical items exercise the symmetry breaking:
// shapes where a wrong cut would lose the optimum.
RC_GTEST_PROP(OptimalProperty, MatchesBruteForceWithManyTwins, ()) {
  Instance in;
  const int num_devices = testing::Uniform(2, 4);
  const uint64_t cap = static_cast<uint64_t>(testing::Uniform(6, 14)) * kGiB;
  for (int d = 0; d < num_devices; ++d) {
    Device dev = Gpu("g" + std::to_string(d), 0, 0);
    dev.total_bytes = cap;
    dev.context_bytes = *rc::gen::element<uint64_t>(0, kGiB);
    in.devices.push_back(dev);
  }
  const int n = testing::Uniform(1, 8);
  for (int i = 0; i < n; ++i) {
    const bool replica = i > 0 && testing::Uniform(0, 3) == 0;
    PlacementItem it = Inst(replica ? in.items.back().model : "m" + std::to_string(i), 0,
                            replica ? in.items.back().replica + 1 : 0);
    it.request_bytes = replica ? in.items.back().request_bytes
                               : static_cast<uint64_t>(testing::Uniform(1, 6)) * kGiB;
    in.items.push_back(it);
  }
  in.options.isolation = *rc::gen::element(Isolation::kModel, Isolation::kDevice);
  in.options.strategy = Strategy::kOptimal;
  in.options.time_budget = std::chrono::milliseconds(20000);
  auto plan = MakePlan(in.devices, in.items, in.options);
  RC_ASSERT(plan.ok());
  RC_ASSERT(plan->optimal_proven);
  const auto expected = BruteForce(in);
  RC_ASSERT(static_cast<int>(plan->placed.size()) == expected.first);
  RC_ASSERT(testing::PlacedBytes(*plan) == expected.second);
  const placement::Problem p = placement::BuildProblem(in.devices, in.items, in.options);
  const auto search = placement::RunBranchAndBound(
      p, placement::Clock::now() + std::chrono::seconds(20), placement::CapacityState(p));
  RC_ASSERT(search.proven);
  RC_ASSERT(search.state.objective().count == expected.first);
  RC_ASSERT(search.state.objective().bytes == expected.second);
}

TEST(OptimalTest, BruteForceAgreesWithAHandSolvedInstance) {
  // The checker itself: 2 × 10 GiB, items 4, 4, 3, 3, 3, 3 all fit (4+3+3 each).
  Instance in;
  in.devices = {Gpu("a", 10), Gpu("b", 10)};
  in.items = {Inst("f1", 4), Inst("f2", 4), Inst("t1", 3),
              Inst("t2", 3), Inst("t3", 3), Inst("t4", 3)};
  EXPECT_EQ(BruteForce(in), std::make_pair(6, 20 * kGiB));
  in.options.isolation = Isolation::kModel;
  in.devices[0].context_bytes = kGiB;  // a now holds at most 4 + 3 plus two contexts
  EXPECT_EQ(BruteForce(in).first, 5);
}

}  // namespace
}  // namespace modelgrid

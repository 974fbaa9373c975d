// The constraints every strategy honours (pins, replica anti-affinity, CPU
// fallback) and the reasons given for what does not fit.
#include <gtest/gtest.h>

#include "modelgrid/placement.h"
#include "placement/placement_test_util.h"

namespace modelgrid {
namespace {

using testing::Cpu;
using testing::FindReason;
using testing::Gpu;
using testing::Inst;
using testing::Where;

}  // namespace

// Readable parameter names in gtest output.
void PrintTo(Strategy s, std::ostream* os) { *os << StrategyName(s); }

namespace {

constexpr Strategy kAll[] = {Strategy::kFillFirst, Strategy::kBalance, Strategy::kMemoryOptimized,
                             Strategy::kLatencySensitive, Strategy::kOptimal};

class EveryStrategy : public ::testing::TestWithParam<Strategy> {
 protected:
  Plan Run(const std::vector<Device>& devices, const std::vector<PlacementItem>& items,
           PlanOptions opt = {}) {
    opt.strategy = GetParam();
    auto plan = MakePlan(devices, items, opt);
    EXPECT_TRUE(plan.ok()) << plan.status().ToString();
    EXPECT_EQ(testing::CheckPlan(devices, items, opt, *plan), "");
    return *plan;
  }
};

INSTANTIATE_TEST_SUITE_P(Constraints, EveryStrategy, ::testing::ValuesIn(kAll),
                         [](const auto& info) {
                           std::string name = StrategyName(info.param);
                           std::erase(name, '-');
                           return name;
                         });

TEST_P(EveryStrategy, PinsAreHonoured) {
  std::vector<Device> devices = {Gpu("cuda:0", 10), Gpu("cuda:1", 10)};
  std::vector<PlacementItem> items = {Inst("a", 1, 0, {"cuda:1"}), Inst("b", 1),
                                      Inst("c", 1, 0, {"cuda:9", "cuda:1"})};
  Plan plan = Run(devices, items);
  EXPECT_EQ(Where(plan).at("a#0"), "cuda:1");
  EXPECT_EQ(Where(plan).at("c#0"), "cuda:1");
  EXPECT_EQ(plan.placed.size(), 3u);
}

TEST_P(EveryStrategy, PinToAMissingDeviceIsReported) {
  Plan plan = Run({Gpu("cuda:0", 10)}, {Inst("a", 1, 0, {"cuda:3"}), Inst("b", 1, 0, {"x", "y"})});
  EXPECT_EQ(FindReason(plan, "a"), "pinned to cuda:3 which is not a device");
  EXPECT_EQ(FindReason(plan, "b"), "pinned to x, y which are not devices");
}

TEST_P(EveryStrategy, PinnedDeviceFullNamesItsFreeCapacity) {
  std::vector<Device> devices = {Gpu("cuda:0", 10), Gpu("cuda:1", 40)};
  Plan plan = Run(devices, {Inst("big", 8, 0, {"cuda:0"}), Inst("other", 4, 0, {"cuda:0"})});
  EXPECT_EQ(Where(plan).at("big#0"), "cuda:0");
  EXPECT_EQ(FindReason(plan, "other"),
            "needs 4.00 GiB, largest free capacity on its pinned devices is 2.00 GiB (cuda:0)");
}

TEST_P(EveryStrategy, ReplicasNeverShareADevice) {
  std::vector<Device> devices = {Gpu("sim:a#0", 80), Gpu("sim:a#1", 80)};
  std::vector<PlacementItem> items = {Inst("bert", 1, 0), Inst("bert", 1, 1), Inst("bert", 1, 2)};
  Plan plan = Run(devices, items);
  ASSERT_EQ(plan.placed.size(), 2u);
  EXPECT_NE(plan.placed[0].device, plan.placed[1].device);
  ASSERT_EQ(plan.unplaced.size(), 1u);
  EXPECT_EQ(plan.unplaced[0].replica, 2);
  const std::string& reason = plan.unplaced[0].reason;
  EXPECT_EQ(reason.rfind("replica 2 cannot share a device with replicas 0, 1 and no other device "
                         "fits (replica 0 is on sim:a#0, replica 1 is on sim:a#1; needs 1.00 GiB",
                         0),
            0u)
      << reason;
  // Display names carry the replica.
  EXPECT_EQ(plan.devices[0].models, std::vector<std::string>{"bert#0"});
}

TEST_P(EveryStrategy, ReplicaReasonNamesTheOtherDevices) {
  // Replica 1 would fit next to replica 0; the only other device is too small.
  std::vector<Device> devices = {Gpu("g0", 10), Gpu("g1", 3)};
  Plan plan = Run(devices, {Inst("gpt2", 4, 0), Inst("gpt2", 4, 1)});
  ASSERT_EQ(plan.unplaced.size(), 1u);
  EXPECT_EQ(plan.unplaced[0].reason,
            "replica 1 cannot share a device with replica 0 and no other device fits (replica 0 "
            "is on g0; needs 4.00 GiB, largest free capacity elsewhere is 3.00 GiB (g1))");
}

TEST_P(EveryStrategy, CpuTakesWhatFitsNoAcceleratorUpToTheBound) {
  std::vector<Device> devices = {Gpu("cuda:0", 10), Cpu(100)};
  std::vector<PlacementItem> items = {Inst("a", 8), Inst("b", 8), Inst("c", 8), Inst("d", 8)};
  PlanOptions opt;
  opt.max_cpu_models = 2;
  Plan plan = Run(devices, items, opt);
  EXPECT_EQ(plan.devices[0].models.size(), 1u);
  EXPECT_EQ(plan.devices[1].models.size(), 2u);
  ASSERT_EQ(plan.unplaced.size(), 1u);
  EXPECT_EQ(plan.unplaced[0].reason,
            "needs 8.00 GiB, largest free accelerator capacity is 2.00 GiB (cuda:0); CPU "
            "fallback full (max_cpu_models=2)");
}

TEST_P(EveryStrategy, AcceleratorsComeBeforeTheCpu) {
  std::vector<Device> devices = {Cpu(100), Gpu("cuda:0", 10)};
  Plan plan = Run(devices, {Inst("a", 4), Inst("b", 4), Inst("c", 4)});
  EXPECT_EQ(plan.devices[1].models.size(), 2u);  // cuda:0
  EXPECT_EQ(plan.devices[0].models.size(), 1u);  // cpu
}

TEST_P(EveryStrategy, NoCpuFallbackWhenTheBoundIsZero) {
  PlanOptions opt;
  opt.max_cpu_models = 0;
  Plan plan = Run({Gpu("cuda:0", 10), Cpu(100)}, {Inst("a", 8), Inst("b", 8)}, opt);
  EXPECT_EQ(plan.placed.size(), 1u);
  EXPECT_EQ(plan.devices[1].models.size(), 0u);
}

TEST_P(EveryStrategy, CpuOnlyIsSimplyADevice) {
  // Without accelerators the bound does not apply, and no buffer is kept.
  PlanOptions opt;
  opt.max_cpu_models = 0;
  opt.buffer_bytes = 4 * kGiB;
  Plan plan = Run({Cpu(16, 128)}, {Inst("a", 7), Inst("b", 7), Inst("c", 7)}, opt);
  EXPECT_EQ(plan.placed.size(), 2u);
  EXPECT_EQ(plan.devices[0].workers, 2);
  ASSERT_EQ(plan.unplaced.size(), 1u);
  // 16 − 2 × (7 GiB + 128 MiB) = 1.75 GiB left, 1.625 GiB after a new context.
  EXPECT_EQ(plan.unplaced[0].reason.rfind("needs 7.00 GiB, largest free capacity is 1.6", 0), 0u)
      << plan.unplaced[0].reason;
}

TEST_P(EveryStrategy, TooLargeForEveryDeviceSaysSo) {
  std::vector<Device> devices = {Gpu("sim:a100#0", 80, 512)};
  Plan plan = Run(devices, {Inst("huge", 90)});
  EXPECT_EQ(plan.unplaced[0].reason,
            "needs 90.00 GiB, largest free capacity is 79.50 GiB (sim:a100#0, after its 512.00 MiB "
            "worker context); larger than any device it may use (79.50 GiB when empty)");
}

TEST_P(EveryStrategy, MemoryUsedByOthersIsNotFree) {
  Plan plan = Run({Gpu("g", 10, 0, 4)}, {Inst("a", 7)});
  EXPECT_EQ(plan.unplaced[0].reason,
            "needs 7.00 GiB, largest free capacity is 6.00 GiB (g); larger than any device it "
            "may use (6.00 GiB when empty)");
}

TEST_P(EveryStrategy, OverCommittedDeviceTakesNothing) {
  // Others already use more than the buffer leaves.
  PlanOptions opt;
  opt.buffer_bytes = 2 * kGiB;
  Plan plan = Run({Gpu("g", 10, 0, 9)}, {Inst("tiny", 0)}, opt);
  EXPECT_TRUE(plan.placed.empty());
}

}  // namespace
}  // namespace modelgrid

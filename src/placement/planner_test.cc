// MakePlan's contract: names, validation errors, and the per-device report.
#include <gtest/gtest.h>

#include "modelgrid/placement.h"
#include "placement/placement_test_util.h"

namespace modelgrid {
namespace {

using testing::Cpu;
using testing::Gpu;
using testing::Inst;

TEST(PlannerTest, StrategyNamesRoundTrip) {
  for (Strategy s : {Strategy::kFillFirst, Strategy::kBalance, Strategy::kMemoryOptimized,
                     Strategy::kLatencySensitive, Strategy::kOptimal}) {
    auto parsed = ParseStrategy(StrategyName(s));
    ASSERT_TRUE(parsed.ok()) << StrategyName(s);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_STREQ(StrategyName(Strategy::kFillFirst), "fill-first");
  EXPECT_STREQ(StrategyName(Strategy::kMemoryOptimized), "memory-optimized");
}

TEST(PlannerTest, UnknownStrategyListsValidNames) {
  auto r = ParseStrategy("densest");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  for (const char* name :
       {"'densest'", "fill-first", "balance", "memory-optimized", "latency-sensitive", "optimal"}) {
    EXPECT_NE(r.status().message().find(name), std::string::npos) << r.status().message();
  }
}

TEST(PlannerTest, IsolationNamesRoundTrip) {
  for (Isolation i : {Isolation::kModel, Isolation::kDevice, Isolation::kNone}) {
    EXPECT_EQ(*ParseIsolation(IsolationName(i)), i);
  }
  EXPECT_STREQ(IsolationName(Isolation::kDevice), "device");
  auto r = ParseIsolation("process");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("model, device, none"), std::string::npos);
}

TEST(PlannerTest, RejectsNoDevices) {
  auto r = MakePlan({}, {Inst("a", 1)}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(PlannerTest, RejectsDuplicateDeviceIds) {
  auto r = MakePlan({Gpu("sim:a#0", 10), Gpu("sim:a#0", 20)}, {Inst("a", 1)}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("sim:a#0"), std::string::npos);
}

TEST(PlannerTest, RejectsDuplicateInstances) {
  auto r = MakePlan({Gpu("g", 10)}, {Inst("bert", 1, 1), Inst("bert", 2, 1)}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("bert"), std::string::npos);
  // Different replicas of one model are fine.
  EXPECT_TRUE(MakePlan({Gpu("g", 10)}, {Inst("bert", 1, 0), Inst("bert", 1, 1)}, {}).ok());
}

TEST(PlannerTest, NoItemsGivesAnEmptyPlan) {
  auto r = MakePlan({Gpu("g", 10)}, {}, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->placed.empty());
  EXPECT_TRUE(r->unplaced.empty());
  ASSERT_EQ(r->devices.size(), 1u);
  EXPECT_EQ(r->devices[0].workers, 0);
}

TEST(PlannerTest, DeviceUsageChargesContextsBufferAndModels) {
  // g0: 20 GiB, 1 GiB used by others, 1 GiB buffer, 512 MiB context per worker.
  std::vector<Device> devices = {Gpu("g0", 20, 512, 1), Gpu("g1", 20, 512), Cpu(64, 128)};
  std::vector<PlacementItem> items = {Inst("bert", 4, 0), Inst("bert", 4, 1), Inst("resnet", 2)};
  PlanOptions opt;
  opt.strategy = Strategy::kFillFirst;
  opt.buffer_bytes = 1 * kGiB;
  auto plan = MakePlan(devices, items, opt);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->devices.size(), 3u);
  const DeviceUsage& g0 = plan->devices[0];
  EXPECT_EQ(g0.device, "g0");
  EXPECT_EQ(g0.models, (std::vector<std::string>{"bert#0", "resnet"}));
  EXPECT_EQ(g0.workers, 2);
  EXPECT_EQ(g0.context_bytes, 1 * kGiB);
  EXPECT_EQ(g0.model_bytes, 6 * kGiB);
  EXPECT_EQ(g0.buffer_bytes, 1 * kGiB);
  EXPECT_EQ(g0.used_by_others, 1 * kGiB);
  EXPECT_EQ(g0.committed(), 9 * kGiB);
  const DeviceUsage& g1 = plan->devices[1];
  EXPECT_EQ(g1.models, (std::vector<std::string>{"bert#1"}));
  EXPECT_EQ(g1.committed(), 1 * kGiB + 512 * kMiB + 4 * kGiB);
  // The buffer is kept on accelerators only.
  EXPECT_EQ(plan->devices[2].buffer_bytes, 0u);
  EXPECT_EQ(plan->devices[2].workers, 0);
  EXPECT_EQ(plan->strategy, Strategy::kFillFirst);
  EXPECT_EQ(plan->isolation, Isolation::kModel);
  EXPECT_FALSE(plan->optimal_proven);
  EXPECT_EQ(testing::CheckPlan(devices, items, opt, *plan), "");
}

TEST(PlannerTest, PlacedAndUnplacedKeepInputOrder) {
  std::vector<PlacementItem> items = {Inst("small", 1), Inst("huge", 50), Inst("mid", 3)};
  auto plan = MakePlan({Gpu("g", 10)}, items, {});
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->placed.size(), 2u);
  EXPECT_EQ(plan->placed[0].model, "small");
  EXPECT_EQ(plan->placed[1].model, "mid");
  ASSERT_EQ(plan->unplaced.size(), 1u);
  EXPECT_EQ(plan->unplaced[0].model, "huge");
  EXPECT_EQ(plan->unplaced[0].request_bytes, 50 * kGiB);
}

TEST(PlannerTest, HeuristicsAreDeterministic) {
  std::vector<Device> devices = {Gpu("a", 10, 256), Gpu("b", 12, 256)};
  std::vector<PlacementItem> items;
  for (int i = 0; i < 12; ++i) items.push_back(Inst("m" + std::to_string(i), 0.5 + (i * 7 % 5)));
  for (Strategy s : {Strategy::kFillFirst, Strategy::kBalance, Strategy::kMemoryOptimized,
                     Strategy::kLatencySensitive}) {
    PlanOptions opt;
    opt.strategy = s;
    auto a = MakePlan(devices, items, opt);
    auto b = MakePlan(devices, items, opt);
    EXPECT_EQ(testing::Where(*a), testing::Where(*b)) << StrategyName(s);
  }
}

}  // namespace
}  // namespace modelgrid

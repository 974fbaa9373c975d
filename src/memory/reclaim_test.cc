// PlanReclaim and ChooseEvictions, rule by rule, with figures computed by
// hand (MiB); then the rules checked over random devices (rapidcheck).
#include "modelgrid/memory/reclaim.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <limits>
#include <map>
#include <set>

#include "memory/memory_test_util.h"

namespace modelgrid::memory {
namespace {

using testing::Account;
using testing::At;

constexpr uint64_t M = kMiB;

ReclaimAction Act(const std::string& instance, ReclaimKind kind, uint64_t mib) {
  return ReclaimAction{instance, kind, mib * M};
}

InstanceFacts Idle(const std::string& instance, double last_used, bool can_swap,
                   uint64_t cached_mib = 0, double loaded_at = 0) {
  InstanceFacts f;
  f.instance = instance;
  f.idle = true;
  f.cached_bytes = cached_mib * M;
  f.last_used = At(last_used);
  f.loaded_at = At(loaded_at);
  f.can_swap = can_swap;
  return f;
}

InstanceFacts Busy(const std::string& instance, uint64_t burst_mib, uint64_t cached_mib = 0) {
  InstanceFacts f = Idle(instance, 0, true, cached_mib);
  f.idle = false;
  f.busy_burst_bytes = burst_mib * M;
  return f;
}

// Exact grants (no chunk) so the figures stay round.
class ReclaimTest : public ::testing::Test {
 protected:
  ReclaimTest() : ledger_(LedgerOptions{1}) {}
  void SetUp() override {
    ASSERT_TRUE(ledger_.AddDevice("cuda:0", 2000 * M).ok());
    ledger_.SetHostCapacity(10000 * M);
  }
  void Admit(const InstanceAccount& a, uint64_t grant_mib = 0) {
    ASSERT_TRUE(ledger_.Admit(a).ok());
    if (grant_mib > 0) {
      ASSERT_TRUE(ledger_.Grant(a.instance, grant_mib * M).ok());
    }
  }
  DeviceLedger Snap() { return *ledger_.Snapshot("cuda:0"); }

  // The priority scenario: held 1600, free 400.
  //   req#0  prio 5 request 100 (the requester)
  //   low1#0 prio 1 request 200 + 100 granted, 64 of them cached, can swap, used at 50
  //   low2#0 prio 2 request 300, cannot swap, used at 10
  //   eq#0   prio 5 request 400;  high#0 prio 9 request 500 (both idle, swappable)
  void PriorityScenario() {
    Admit(Account("req#0", "cuda:0", 100, 1000, 5, Resolver::kPriority));
    Admit(Account("low1#0", "cuda:0", 200, 600, 1), 100);
    Admit(Account("low2#0", "cuda:0", 300, 300, 2));
    Admit(Account("eq#0", "cuda:0", 400, 400, 5));
    Admit(Account("high#0", "cuda:0", 500, 500, 9));
    facts_ = {Idle("low1#0", 50, true, 64), Idle("low2#0", 10, false), Idle("eq#0", 0, true, 100),
              Idle("high#0", 0, true, 100), Idle("req#0", 0, true)};
  }
  Requester Asking(uint64_t mib, Resolver resolver = Resolver::kPriority, int priority = 5) {
    Requester r;
    r.instance = "req#0";
    r.priority = priority;
    r.resolver = resolver;
    r.asked_bytes = mib * M;
    r.now = At(100);
    return r;
  }
  InstanceFacts& FactsOf(const std::string& instance) {
    for (InstanceFacts& f : facts_) {
      if (f.instance == instance) return f;
    }
    facts_.push_back(InstanceFacts{});
    facts_.back().instance = instance;
    return facts_.back();
  }

  MemoryLedger ledger_;
  std::vector<InstanceFacts> facts_;
};

TEST_F(ReclaimTest, NothingIsTakenWhenTheBytesAreFree) {
  PriorityScenario();
  for (Resolver r : {Resolver::kWait, Resolver::kPriority, Resolver::kSwap}) {
    const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Asking(400, r));
    EXPECT_FALSE(plan.wait);
    EXPECT_TRUE(plan.actions.empty());
    EXPECT_EQ(plan.shortfall_bytes, 0u);
  }
  const ReclaimPlan evict = ChooseEvictions(Snap(), facts_, 400 * M, At(100));
  EXPECT_FALSE(evict.wait);
  EXPECT_TRUE(evict.actions.empty());
}

// One worker per instance: unloading one also frees its worker's context
// (unload_extra_bytes), which a swap-out (the worker stays) does not.
TEST_F(ReclaimTest, AnUnloadCountsTheContextItsWorkerFrees) {
  ASSERT_TRUE(ledger_.ChargeContext("cuda:0", "a#0", 500 * M).ok());
  ASSERT_TRUE(ledger_.ChargeContext("cuda:0", "b#0", 500 * M).ok());
  Admit(Account("a#0", "cuda:0", 400, 400));
  Admit(Account("b#0", "cuda:0", 400, 400));  // held 1800 of 2000
  InstanceFacts a = Idle("a#0", 10, false);
  a.unload_extra_bytes = 500 * M;
  InstanceFacts b = Idle("b#0", 20, false);
  b.unload_extra_bytes = 500 * M;
  // A cold model with its own context: 100 + 500 asked, 400 short.
  const ReclaimPlan plan = ChooseEvictions(Snap(), {a, b}, 600 * M, At(100));
  EXPECT_FALSE(plan.wait) << plan.reason;
  ASSERT_EQ(plan.actions.size(), 1u);  // a's 400 + its 500 context cover the 400 short
  EXPECT_EQ(plan.actions[0].kind, ReclaimKind::kUnload);
  EXPECT_EQ(plan.actions[0].bytes, 900 * M);
  // Without the context figures two instances' requests (800) still cover it,
  // but a need of 1000 short is out of reach of the requests alone.
  a.unload_extra_bytes = b.unload_extra_bytes = 0;
  EXPECT_TRUE(ChooseEvictions(Snap(), {a, b}, 1200 * M, At(100)).wait);
  a.unload_extra_bytes = b.unload_extra_bytes = 500 * M;
  EXPECT_FALSE(ChooseEvictions(Snap(), {a, b}, 1200 * M, At(100)).wait);
}

TEST_F(ReclaimTest, WaitNeverTakesAnything) {
  PriorityScenario();
  const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Asking(401, Resolver::kWait));
  EXPECT_TRUE(plan.wait);
  EXPECT_TRUE(plan.actions.empty());
  EXPECT_EQ(plan.shortfall_bytes, 1 * M);
  EXPECT_EQ(plan.freed_bytes, 0u);
  EXPECT_NE(plan.reason.find("wait"), std::string::npos);
}

TEST_F(ReclaimTest, PriorityShrinksLowerCachesFirst) {
  PriorityScenario();
  const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Asking(450));  // short 50
  EXPECT_FALSE(plan.wait);
  EXPECT_EQ(plan.shortfall_bytes, 50 * M);
  EXPECT_EQ(plan.actions,
            (std::vector<ReclaimAction>{Act("low1#0", ReclaimKind::kShrinkCache, 64)}));
  EXPECT_EQ(plan.freed_bytes, 64 * M);
}

TEST_F(ReclaimTest, PriorityThenSwapsTheLowestPriorityIdleInstance) {
  PriorityScenario();
  // Short 100: the cache (64) is not enough; low1 (priority 1) goes before
  // low2 (priority 2) although low2 was used longer ago; low1 frees what it
  // still holds after its cache: 300 − 64.
  const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Asking(500));
  EXPECT_FALSE(plan.wait);
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("low1#0", ReclaimKind::kShrinkCache, 64),
                                                      Act("low1#0", ReclaimKind::kSwapOut, 236)}));
  EXPECT_EQ(plan.freed_bytes, 300 * M);
}

TEST_F(ReclaimTest, PriorityUnloadsWhatCannotSwap) {
  PriorityScenario();
  const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Asking(1000));  // short 600
  EXPECT_FALSE(plan.wait);
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("low1#0", ReclaimKind::kShrinkCache, 64),
                                                      Act("low1#0", ReclaimKind::kSwapOut, 236),
                                                      Act("low2#0", ReclaimKind::kUnload, 300)}));
  EXPECT_EQ(plan.freed_bytes, 600 * M);
}

TEST_F(ReclaimTest, PriorityNeverTouchesEqualOrHigherAndWaitsInstead) {
  PriorityScenario();
  // Lower priorities hold 600; eq#0 and high#0 (900) would cover 601 but
  // are not lower.
  const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Asking(1001));
  EXPECT_TRUE(plan.wait);
  EXPECT_TRUE(plan.actions.empty());
  EXPECT_EQ(plan.shortfall_bytes, 601 * M);
  // A requester of priority 1 has nobody below it.
  const ReclaimPlan low = PlanReclaim(Snap(), facts_, Asking(401, Resolver::kPriority, 1));
  EXPECT_TRUE(low.wait);
}

TEST_F(ReclaimTest, PriorityPreemptsALowerBurstLast) {
  PriorityScenario();
  // low1 is running a batch on 36 of its 100 granted bytes; 64 are cache.
  FactsOf("low1#0") = Busy("low1#0", 36, 64);
  // Short 400 = 64 (cache) + 300 (low2 unloaded) + 36 (low1's burst).
  ReclaimPlan plan = PlanReclaim(Snap(), facts_, Asking(800));
  EXPECT_FALSE(plan.wait);
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("low1#0", ReclaimKind::kShrinkCache, 64),
                                                      Act("low2#0", ReclaimKind::kUnload, 300),
                                                      Act("low1#0", ReclaimKind::kPreempt, 36)}));
  EXPECT_EQ(plan.freed_bytes, 400 * M);
  // A busy instance is never swapped or unloaded: one byte more is a wait.
  plan = PlanReclaim(Snap(), facts_, Asking(801));
  EXPECT_TRUE(plan.wait);
  EXPECT_TRUE(plan.actions.empty());
}

TEST_F(ReclaimTest, ALoweredCapacityAddsItsExcessToTheShortfall) {
  PriorityScenario();
  ASSERT_TRUE(ledger_.SetCapacity("cuda:0", 1500 * M).ok());  // held 1600: 100 over
  const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Asking(50));
  EXPECT_EQ(plan.shortfall_bytes, 150 * M);
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("low1#0", ReclaimKind::kShrinkCache, 64),
                                                      Act("low1#0", ReclaimKind::kSwapOut, 236)}));
  EXPECT_EQ(ChooseEvictions(Snap(), facts_, 50 * M, At(100)).shortfall_bytes, 150 * M);
}

TEST_F(ReclaimTest, PinnedInstancesAreNeverTouched) {
  PriorityScenario();
  InstanceUpdate pin;
  pin.pinned = true;
  ASSERT_TRUE(ledger_.Update("low1#0", pin).ok());
  const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Asking(500));  // short 100
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("low2#0", ReclaimKind::kUnload, 300)}));
  EXPECT_TRUE(PlanReclaim(Snap(), facts_, Asking(701)).wait);  // short 301 > 300
}

TEST_F(ReclaimTest, MinimumResidencyProtectsFreshInstancesFromEviction) {
  PriorityScenario();
  FactsOf("low1#0").loaded_at = At(96);  // 4 s before now (100) < 5 s
  ReclaimPlan plan = PlanReclaim(Snap(), facts_, Asking(500));
  // Its cache may still shrink; the eviction falls to low2.
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("low1#0", ReclaimKind::kShrinkCache, 64),
                                                      Act("low2#0", ReclaimKind::kUnload, 300)}));
  EXPECT_EQ(plan.freed_bytes, 364 * M);
  ReclaimOptions lax;
  lax.min_residency = std::chrono::seconds(4);  // exactly 4 s resident is enough
  plan = PlanReclaim(Snap(), facts_, Asking(500), lax);
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("low1#0", ReclaimKind::kShrinkCache, 64),
                                                      Act("low1#0", ReclaimKind::kSwapOut, 236)}));
}

TEST_F(ReclaimTest, SwapOutsFitTheHostTierOrBecomeUnloads) {
  PriorityScenario();
  ledger_.SetHostCapacity(199 * M);  // low1's request (200) does not fit
  const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Asking(500));
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("low1#0", ReclaimKind::kShrinkCache, 64),
                                                      Act("low1#0", ReclaimKind::kUnload, 236)}));
}

TEST_F(ReclaimTest, InstancesWithoutFactsAreNeverTouched) {
  PriorityScenario();
  std::vector<InstanceFacts> facts;
  for (const InstanceFacts& f : facts_) {
    if (f.instance != "low2#0") facts.push_back(f);
  }
  EXPECT_TRUE(PlanReclaim(Snap(), facts, Asking(1000)).wait);  // only 300 reachable
  const ReclaimPlan plan = PlanReclaim(Snap(), facts, Asking(700));
  EXPECT_FALSE(plan.wait);
  EXPECT_EQ(plan.freed_bytes, 300 * M);
}

// The swap scenario: held 1300, free 700.
//   req#0 request 100 (the requester, idle and swappable: still excluded)
//   a#0 prio 9 request 300, used at 10    b#0 request 200 + 50 granted, used at 5
//   c#0 request 400, busy                  d#0 request 100, cannot swap
//   e#0 request 150, pinned
class SwapResolverTest : public ReclaimTest {
 protected:
  void SetUp() override {
    ReclaimTest::SetUp();
    Admit(Account("req#0", "cuda:0", 100, 100, 0, Resolver::kSwap));
    Admit(Account("a#0", "cuda:0", 300, 300, 9));
    Admit(Account("b#0", "cuda:0", 200, 300, 0), 50);
    Admit(Account("c#0", "cuda:0", 400, 400, 1));
    Admit(Account("d#0", "cuda:0", 100, 100));
    Admit(Account("e#0", "cuda:0", 150, 150, 0, Resolver::kWait, true));
    facts_ = {Idle("req#0", 0, true), Idle("a#0", 10, true), Idle("b#0", 5, true),
              Busy("c#0", 0),         Idle("d#0", 2, false), Idle("e#0", 1, true)};
  }
  Requester Swapper(uint64_t mib) { return Asking(mib, Resolver::kSwap, 0); }
};

TEST_F(SwapResolverTest, SwapsTheLeastRecentlyUsedIdleInstance) {
  const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Swapper(800));  // short 100
  EXPECT_FALSE(plan.wait);
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("b#0", ReclaimKind::kSwapOut, 250)}));
}

TEST_F(SwapResolverTest, TakesAnyPriorityInLruOrder) {
  const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Swapper(1000));  // short 300
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("b#0", ReclaimKind::kSwapOut, 250),
                                                      Act("a#0", ReclaimKind::kSwapOut, 300)}));
  EXPECT_EQ(plan.freed_bytes, 550 * M);
}

TEST_F(SwapResolverTest, WaitsWhenIdleSwappableBytesCannotCover) {
  // Busy c, unswappable d, pinned e and the requester itself are out: 550.
  const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Swapper(1251));  // short 551
  EXPECT_TRUE(plan.wait);
  EXPECT_TRUE(plan.actions.empty());
}

TEST_F(SwapResolverTest, SkipsWhatTheHostTierCannotHold) {
  ledger_.SetHostCapacity(400 * M);  // b (200) fits, then a (300) does not
  EXPECT_TRUE(PlanReclaim(Snap(), facts_, Swapper(1000)).wait);
  const ReclaimPlan plan = PlanReclaim(Snap(), facts_, Swapper(900));  // short 200
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("b#0", ReclaimKind::kSwapOut, 250)}));
}

TEST(EvictionScoreTest, IdleSecondsTimesBytesOverReloadCost) {
  InstanceFacts f;
  f.last_used = At(90);
  f.reload_cost_s = 2;
  EXPECT_DOUBLE_EQ(EvictionScore(f, 1000, At(100)), 10.0 * 1000 / 2);
  EXPECT_DOUBLE_EQ(EvictionScore(f, 1000, At(80)), 0.0);  // used "in the future"
  f.reload_cost_s = 0;
  EXPECT_DOUBLE_EQ(EvictionScore(f, 1000, At(100)), 10.0 * 1000 / 0.001);
  f.reload_cost_s = std::numeric_limits<double>::quiet_NaN();
  EXPECT_DOUBLE_EQ(EvictionScore(f, 1000, At(100)), 10.0 * 1000 / 0.001);
}

// The eviction scenario, at t = 100: held 1900, free 100.
//   a#0 100 MiB idle 100 s, reload 1 s  → 10000 MiB·s   (swap resolver, cannot swap)
//   g#0 the same figures as a#0         → 10000 (after a#0 by name)
//   b#0 500 MiB idle 10 s, reload 1 s   →  5000         (swap resolver, can swap)
//   c#0 100 MiB idle 100 s, reload 10 s →  1000         (wait resolver, can swap)
//   d#0 600 MiB busy; e#0 300 MiB pinned; f#0 200 MiB loaded 2 s ago: never chosen
class EvictionTest : public ReclaimTest {
 protected:
  void SetUp() override {
    ReclaimTest::SetUp();
    Admit(Account("a#0", "cuda:0", 100, 100, 0, Resolver::kSwap));
    Admit(Account("g#0", "cuda:0", 100, 100));
    Admit(Account("b#0", "cuda:0", 400, 600, 0, Resolver::kSwap), 100);
    Admit(Account("c#0", "cuda:0", 100, 100));
    Admit(Account("d#0", "cuda:0", 600, 600));
    Admit(Account("e#0", "cuda:0", 300, 300, 0, Resolver::kWait, true));
    Admit(Account("f#0", "cuda:0", 200, 200));
    facts_ = {Idle("a#0", 0, false),      Idle("g#0", 0, false), Idle("b#0", 90, true),
              Idle("c#0", 0, true),       Busy("d#0", 0),        Idle("e#0", 0, true),
              Idle("f#0", 0, true, 0, 98)};
    FactsOf("c#0").reload_cost_s = 10;
  }
  std::vector<std::string> Chosen(const ReclaimPlan& plan) {
    std::vector<std::string> out;
    for (const ReclaimAction& a : plan.actions) out.push_back(a.instance);
    return out;
  }
};

TEST_F(EvictionTest, HighestScoreFirstStoppingWhenCovered) {
  ReclaimPlan plan = ChooseEvictions(Snap(), facts_, 150 * M, At(100));  // short 50
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("a#0", ReclaimKind::kUnload, 100)}));
  plan = ChooseEvictions(Snap(), facts_, 300 * M, At(100));  // short 200
  EXPECT_EQ(Chosen(plan), (std::vector<std::string>{"a#0", "g#0"}));
  plan = ChooseEvictions(Snap(), facts_, 700 * M, At(100));  // short 600
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("a#0", ReclaimKind::kUnload, 100),
                                                      Act("g#0", ReclaimKind::kUnload, 100),
                                                      Act("b#0", ReclaimKind::kSwapOut, 500)}));
  EXPECT_EQ(plan.freed_bytes, 700 * M);
  plan = ChooseEvictions(Snap(), facts_, 900 * M, At(100));  // short 800: all four
  EXPECT_EQ(Chosen(plan), (std::vector<std::string>{"a#0", "g#0", "b#0", "c#0"}));
  EXPECT_EQ(plan.actions.back().kind, ReclaimKind::kUnload);  // c#0's resolver is wait
}

TEST_F(EvictionTest, WaitsWhenTheCandidatesCannotCover) {
  const ReclaimPlan plan = ChooseEvictions(Snap(), facts_, 901 * M, At(100));
  EXPECT_TRUE(plan.wait);
  EXPECT_TRUE(plan.actions.empty());
  EXPECT_EQ(plan.shortfall_bytes, 801 * M);
}

TEST_F(EvictionTest, ReloadCostAndSizeReorder) {
  // b#0 used at 99.9 (idle 0.1 s): score 50 < c#0's 1000.
  FactsOf("b#0").last_used = At(99.9);
  ReclaimPlan plan = ChooseEvictions(Snap(), facts_, 900 * M, At(100));
  EXPECT_EQ(Chosen(plan), (std::vector<std::string>{"a#0", "g#0", "c#0", "b#0"}));
  // A cheap reload makes c#0 the first victim: 100 MiB × 100 s / 0.01 s.
  FactsOf("c#0").reload_cost_s = 0.01;
  plan = ChooseEvictions(Snap(), facts_, 150 * M, At(100));
  EXPECT_EQ(Chosen(plan), (std::vector<std::string>{"c#0"}));
}

TEST_F(EvictionTest, SwapNeedsHostRoom) {
  ledger_.SetHostCapacity(399 * M);  // b#0's request is 400
  const ReclaimPlan plan = ChooseEvictions(Snap(), facts_, 700 * M, At(100));
  EXPECT_EQ(plan.actions.back(), Act("b#0", ReclaimKind::kUnload, 500));
}

TEST_F(EvictionTest, MinimumResidencyIsAnOption) {
  ReclaimOptions none;
  none.min_residency = std::chrono::seconds(0);
  // f#0 (200 MiB, idle 100 s) now scores 20000: first.
  const ReclaimPlan plan = ChooseEvictions(Snap(), facts_, 150 * M, At(100), none);
  EXPECT_EQ(Chosen(plan), (std::vector<std::string>{"f#0"}));
}

// In `model` isolation each instance has its own worker, whose context is
// charged to the device while the instance is resident or swapped out. A
// swap-out keeps it; kUnloadOnly unloads instead, and also reaches instances
// swapped out before, whose unload frees their context.
class UnloadOnlyTest : public ReclaimTest {
 protected:
  void SetUp() override {
    ReclaimTest::SetUp();
    // held: contexts 300 + 300 + 300 + 300, requests 100 + 100 (s#0's 200
    // and p#0's 100 are in the host tier) = 1400 of 2000.
    for (const char* w : {"a#0", "s#0", "p#0", "n#0"}) {
      ASSERT_TRUE(ledger_.ChargeContext("cuda:0", w, 300 * M).ok());
    }
    Admit(Account("a#0", "cuda:0", 100, 100, 0, Resolver::kSwap));
    Admit(Account("s#0", "cuda:0", 200, 200, 0, Resolver::kSwap));
    ASSERT_TRUE(ledger_.SwapOut("s#0").ok());
    Admit(Account("p#0", "cuda:0", 100, 100, 0, Resolver::kSwap, /*pinned=*/true));
    ASSERT_TRUE(ledger_.SwapOut("p#0").ok());
    Admit(Account("n#0", "cuda:0", 100, 100, 0, Resolver::kSwap));
    ASSERT_TRUE(ledger_.SwapOut("n#0").ok());
    Admit(Account("b#0", "cuda:0", 100, 100, 0, Resolver::kSwap));
    facts_ = {Idle("a#0", 10, true), Idle("s#0", 50, true), Idle("p#0", 0, true),
              Idle("n#0", 0, true), Idle("b#0", 80, true)};
    for (const char* w : {"a#0", "s#0", "p#0"}) FactsOf(w).unload_extra_bytes = 300 * M;
    // n#0's worker hosts others too (device isolation): unloading it frees nothing.
  }
};

TEST_F(UnloadOnlyTest, SwapOutsThatCannotCoverWaitWhereUnloadsFreeTheContexts) {
  // A cold model and its worker: 801 asked, 201 short. Swapping a#0 and
  // b#0 out frees their requests only (200)...
  ReclaimPlan swaps = ChooseEvictions(Snap(), facts_, 801 * M, At(100));
  EXPECT_TRUE(swaps.wait) << "two swap-outs free 200 of the 201 missing";
  EXPECT_EQ(swaps.shortfall_bytes, 201 * M);
  // ... unloading a#0 frees its context too.
  ReclaimPlan unloads =
      ChooseEvictions(Snap(), facts_, 801 * M, At(100), {}, EvictionMode::kUnloadOnly);
  EXPECT_FALSE(unloads.wait) << unloads.reason;
  EXPECT_EQ(unloads.actions, (std::vector<ReclaimAction>{Act("a#0", ReclaimKind::kUnload, 400)}));
  EXPECT_EQ(unloads.freed_bytes, 400 * M);
}

TEST_F(UnloadOnlyTest, ASwappedOutInstanceIsUnloadedForItsContextOnlyInUnloadOnlyMode) {
  facts_ = {Idle("s#0", 50, true), Idle("p#0", 0, true), Idle("n#0", 0, true)};
  FactsOf("s#0").unload_extra_bytes = 300 * M;
  FactsOf("p#0").unload_extra_bytes = 300 * M;
  // 700 asked, 100 short: no resident candidate has facts; s#0 is swapped.
  EXPECT_TRUE(ChooseEvictions(Snap(), facts_, 700 * M, At(100)).wait);
  ReclaimPlan plan =
      ChooseEvictions(Snap(), facts_, 700 * M, At(100), {}, EvictionMode::kUnloadOnly);
  EXPECT_FALSE(plan.wait) << plan.reason;
  // Its context (300), nothing of its request: that is in the host tier. The
  // pinned p#0 and n#0 (whose unload frees nothing here) are never chosen.
  EXPECT_EQ(plan.actions, (std::vector<ReclaimAction>{Act("s#0", ReclaimKind::kUnload, 300)}));
  EXPECT_TRUE(
      ChooseEvictions(Snap(), facts_, 901 * M, At(100), {}, EvictionMode::kUnloadOnly).wait);
  // Busy or too fresh: not a candidate either.
  FactsOf("s#0").idle = false;
  EXPECT_TRUE(
      ChooseEvictions(Snap(), facts_, 700 * M, At(100), {}, EvictionMode::kUnloadOnly).wait);
  FactsOf("s#0").idle = true;
  FactsOf("s#0").loaded_at = At(98);
  EXPECT_TRUE(
      ChooseEvictions(Snap(), facts_, 700 * M, At(100), {}, EvictionMode::kUnloadOnly).wait);
}

TEST(ReclaimKindTest, Names) {
  EXPECT_STREQ(ReclaimKindName(ReclaimKind::kShrinkCache), "shrink-cache");
  EXPECT_STREQ(ReclaimKindName(ReclaimKind::kSwapOut), "swap-out");
  EXPECT_STREQ(ReclaimKindName(ReclaimKind::kUnload), "unload");
  EXPECT_STREQ(ReclaimKindName(ReclaimKind::kPreempt), "preempt");
}

// --- The rules over random devices ---

struct RandomDevice {
  DeviceLedger snapshot;
  std::vector<InstanceFacts> facts;
  Requester requester;
};

// Up to 10 instances on one device with random figures, grants and facts;
// the requester is one of them or a newcomer.
RandomDevice DrawDevice() {
  MemoryLedger ledger(LedgerOptions{1});
  RC_ASSERT(ledger.AddDevice("d", *rc::gen::inRange<uint64_t>(0, 5000)).ok());
  ledger.SetHostCapacity(*rc::gen::inRange<uint64_t>(0, 3000));
  RandomDevice out;
  const int n = *rc::gen::inRange(0, 10);
  for (int i = 0; i < n; ++i) {
    InstanceAccount a;
    a.instance = "m" + std::to_string(i) + "#0";
    a.model = "m" + std::to_string(i);
    a.device = "d";
    a.request_bytes = *rc::gen::inRange<uint64_t>(0, 800);
    a.limit_bytes = a.request_bytes + *rc::gen::inRange<uint64_t>(0, 400);
    a.priority = *rc::gen::inRange(0, 4);
    a.resolver = *rc::gen::element(Resolver::kWait, Resolver::kPriority, Resolver::kSwap);
    a.pinned = *rc::gen::inRange(0, 5) == 0;
    if (!ledger.Admit(a).ok()) continue;
    uint64_t granted = 0;
    const uint64_t want = *rc::gen::inRange<uint64_t>(0, 300);
    if (auto g = ledger.Grant(a.instance, want); g.ok()) granted = *g;
    if (*rc::gen::inRange(0, 8) == 0) (void)ledger.SwapOut(a.instance);  // may lack host room
    if (*rc::gen::inRange(0, 10) == 0) continue;                         // no facts
    InstanceFacts f;
    f.instance = a.instance;
    f.idle = *rc::gen::arbitrary<bool>();
    f.busy_burst_bytes = f.idle ? 0 : *rc::gen::inRange<uint64_t>(0, granted + 1);
    f.cached_bytes = *rc::gen::inRange<uint64_t>(0, granted + 50);
    f.last_used = At(*rc::gen::inRange(0, 100));
    f.loaded_at = At(*rc::gen::inRange(0, 100));
    f.can_swap = *rc::gen::arbitrary<bool>();
    f.reload_cost_s = *rc::gen::inRange(0, 20) / 4.0;
    out.facts.push_back(f);
  }
  // Sometimes the capacity drops under what is held.
  if (*rc::gen::inRange(0, 4) == 0) {
    RC_ASSERT(ledger.SetCapacity("d", *rc::gen::inRange<uint64_t>(0, 5000)).ok());
  }
  out.snapshot = *ledger.Snapshot("d");
  const int who = *rc::gen::inRange(-1, n);
  out.requester.instance = who < 0 ? "newcomer#0" : "m" + std::to_string(who) + "#0";
  out.requester.priority = *rc::gen::inRange(0, 5);
  out.requester.resolver = *rc::gen::element(Resolver::kWait, Resolver::kPriority, Resolver::kSwap);
  out.requester.asked_bytes = *rc::gen::inRange<uint64_t>(0, 3000);
  out.requester.now = At(100);
  return out;
}

// The rules every plan keeps (reclaim.h), checked against the inputs.
void CheckPlanRules(const RandomDevice& in, const ReclaimPlan& plan, bool eviction) {
  const DeviceLedger& s = in.snapshot;
  const uint64_t asked = in.requester.asked_bytes;
  // Needed: held + asked ≤ capacity after the plan.
  const uint64_t shortfall =
      s.held_bytes + asked > s.capacity_bytes ? s.held_bytes + asked - s.capacity_bytes : 0;
  RC_ASSERT(plan.shortfall_bytes == shortfall);
  if (plan.wait) {
    RC_ASSERT(plan.actions.empty());
    RC_ASSERT(shortfall > 0);
    return;
  }
  std::map<std::string, const InstanceView*> rows;
  for (const InstanceView& v : s.instances) rows[v.account.instance] = &v;
  std::map<std::string, const InstanceFacts*> facts;
  for (const InstanceFacts& f : in.facts) facts[f.instance] = &f;
  uint64_t freed = 0;
  uint64_t host = 0;
  std::map<std::string, uint64_t> taken;
  std::set<std::string> gone;
  for (size_t i = 0; i < plan.actions.size(); ++i) {
    const ReclaimAction& a = plan.actions[i];
    RC_ASSERT(rows.count(a.instance) == 1u);
    RC_ASSERT(facts.count(a.instance) == 1u);
    const InstanceView& v = *rows[a.instance];
    const InstanceFacts& f = *facts[a.instance];
    RC_ASSERT(!v.account.pinned);
    RC_ASSERT(!v.swapped);
    RC_ASSERT(gone.count(a.instance) == 0u);
    RC_ASSERT(a.bytes > 0u);
    if (!eviction) RC_ASSERT(a.instance != in.requester.instance);
    if (!eviction && in.requester.resolver == Resolver::kPriority) {
      RC_ASSERT(v.account.priority < in.requester.priority);
    }
    if (!eviction && in.requester.resolver == Resolver::kSwap) {
      RC_ASSERT(a.kind == ReclaimKind::kSwapOut);
    }
    RC_ASSERT(!eviction || a.kind == ReclaimKind::kSwapOut || a.kind == ReclaimKind::kUnload);
    if (a.kind == ReclaimKind::kSwapOut || a.kind == ReclaimKind::kUnload) {
      RC_ASSERT(f.idle);
      RC_ASSERT(in.requester.now - f.loaded_at >= std::chrono::seconds(5));
      RC_ASSERT(a.bytes + taken[a.instance] == v.device_bytes);
      gone.insert(a.instance);
    } else {
      // Cache and preemption take only granted bytes.
      RC_ASSERT(a.bytes + taken[a.instance] <= v.granted_bytes);
      if (a.kind == ReclaimKind::kShrinkCache) RC_ASSERT(a.bytes <= f.cached_bytes);
      if (a.kind == ReclaimKind::kPreempt) {
        RC_ASSERT(!f.idle);
        RC_ASSERT(a.bytes <= f.busy_burst_bytes);
      }
    }
    if (a.kind == ReclaimKind::kSwapOut) {
      RC_ASSERT(f.can_swap);
      host += v.account.request_bytes;
    }
    taken[a.instance] += a.bytes;
    // Stops as soon as covered: before the last action it was not.
    if (i + 1 < plan.actions.size()) RC_ASSERT(freed + a.bytes < shortfall);
    freed += a.bytes;
  }
  RC_ASSERT(freed == plan.freed_bytes);
  RC_ASSERT(freed >= shortfall);
  RC_ASSERT(host <= s.host_free_bytes);
  if (!eviction && in.requester.resolver == Resolver::kWait) RC_ASSERT(plan.actions.empty());
}

RC_GTEST_PROP(ReclaimProperty, PlansKeepTheRules, ()) {
  const RandomDevice in = DrawDevice();
  CheckPlanRules(in, PlanReclaim(in.snapshot, in.facts, in.requester), false);
  CheckPlanRules(
      in, ChooseEvictions(in.snapshot, in.facts, in.requester.asked_bytes, in.requester.now), true);
}

// Unloads-only evictions over random devices whose instances' unloads may
// free a worker context: only unloads, of idle, unpinned instances past
// their minimum residency with facts, each freeing what it holds on the
// device plus its context (a swapped-out one only its context, never 0),
// stopping once covered; a wait only when all of them could not cover.
RC_GTEST_PROP(ReclaimProperty, UnloadOnlyEvictionsKeepTheirRules, ()) {
  RandomDevice in = DrawDevice();
  for (InstanceFacts& f : in.facts) {
    if (*rc::gen::arbitrary<bool>()) f.unload_extra_bytes = *rc::gen::inRange<uint64_t>(1, 500);
  }
  const DeviceLedger& s = in.snapshot;
  const uint64_t asked = in.requester.asked_bytes;
  const uint64_t shortfall =
      s.held_bytes + asked > s.capacity_bytes ? s.held_bytes + asked - s.capacity_bytes : 0;
  const ReclaimPlan plan =
      ChooseEvictions(s, in.facts, asked, in.requester.now, {}, EvictionMode::kUnloadOnly);
  RC_ASSERT(plan.shortfall_bytes == shortfall);
  std::map<std::string, const InstanceFacts*> facts;
  for (const InstanceFacts& f : in.facts) facts[f.instance] = &f;
  uint64_t possible = 0;  // what every allowed unload together frees
  for (const InstanceView& v : s.instances) {
    auto f = facts.find(v.account.instance);
    if (f == facts.end() || v.account.pinned || !f->second->idle ||
        in.requester.now - f->second->loaded_at < std::chrono::seconds(5)) {
      continue;
    }
    possible += v.device_bytes + f->second->unload_extra_bytes;
  }
  if (plan.wait) {
    RC_ASSERT(plan.actions.empty());
    RC_ASSERT(possible < shortfall);
    return;
  }
  RC_ASSERT(shortfall == 0 || possible >= shortfall);
  uint64_t freed = 0;
  std::set<std::string> seen;
  for (size_t i = 0; i < plan.actions.size(); ++i) {
    const ReclaimAction& a = plan.actions[i];
    RC_ASSERT(a.kind == ReclaimKind::kUnload);
    RC_ASSERT(seen.insert(a.instance).second);
    const InstanceView* v = nullptr;
    for (const InstanceView& row : s.instances) {
      if (row.account.instance == a.instance) v = &row;
    }
    RC_ASSERT(v != nullptr);
    RC_ASSERT(facts.count(a.instance) == 1u);
    const InstanceFacts& f = *facts[a.instance];
    RC_ASSERT(!v->account.pinned);
    RC_ASSERT(f.idle);
    RC_ASSERT(in.requester.now - f.loaded_at >= std::chrono::seconds(5));
    RC_ASSERT(a.bytes == v->device_bytes + f.unload_extra_bytes);
    RC_ASSERT(a.bytes > 0u);
    if (i + 1 < plan.actions.size()) RC_ASSERT(freed + a.bytes < shortfall);
    freed += a.bytes;
  }
  RC_ASSERT(freed == plan.freed_bytes);
  RC_ASSERT(freed >= shortfall);
}

// A plan waits only when the bytes its rules allow cannot cover: here, the
// swap resolver against an independent sum of what it may take.
RC_GTEST_PROP(ReclaimProperty, SwapWaitsOnlyWhenIdleBytesFallShort, ()) {
  RandomDevice in = DrawDevice();
  in.requester.resolver = Resolver::kSwap;
  const ReclaimPlan plan = PlanReclaim(in.snapshot, in.facts, in.requester);
  std::map<std::string, const InstanceFacts*> facts;
  for (const InstanceFacts& f : in.facts) facts[f.instance] = &f;
  uint64_t reachable = 0;
  bool host_limited = false;
  uint64_t host_need = 0;
  for (const InstanceView& v : in.snapshot.instances) {
    auto it = facts.find(v.account.instance);
    if (it == facts.end() || v.swapped || v.account.pinned ||
        v.account.instance == in.requester.instance || !it->second->idle || !it->second->can_swap ||
        in.requester.now - it->second->loaded_at < std::chrono::seconds(5)) {
      continue;
    }
    reachable += v.device_bytes;
    host_need += v.account.request_bytes;
  }
  host_limited = host_need > in.snapshot.host_free_bytes;
  if (plan.wait && !host_limited) RC_ASSERT(reachable < plan.shortfall_bytes);
  if (!plan.wait) RC_ASSERT(reachable >= plan.shortfall_bytes);
}

}  // namespace
}  // namespace modelgrid::memory

// MemoryLedger, rule by rule, with figures computed by hand (MiB).
#include "modelgrid/memory/ledger.h"

#include <gtest/gtest.h>

#include "memory/memory_test_util.h"

namespace modelgrid::memory {
namespace {

using testing::Account;

constexpr uint64_t M = kMiB;

// A ledger with one 1000 MiB device "cuda:0" and the default 32 MiB chunk.
class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(ledger_.AddDevice("cuda:0", 1000 * M).ok()); }

  DeviceLedger Snap(const std::string& device = "cuda:0") {
    auto s = ledger_.Snapshot(device);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : DeviceLedger{};
  }

  MemoryLedger ledger_;
};

TEST_F(LedgerTest, DevicesAreOpenedOnce) {
  EXPECT_EQ(ledger_.AddDevice("cuda:0", 5).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ledger_.AddDevice("", 5).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_.SetCapacity("cuda:7", 5).code(), StatusCode::kNotFound);
  EXPECT_EQ(ledger_.Snapshot("cuda:7").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ledger_.FreeBytes("cuda:7"), 0u);
  EXPECT_TRUE(ledger_.Instances("cuda:7").empty());
  ASSERT_TRUE(ledger_.AddDevice("cpu", 64 * M).ok());
  EXPECT_EQ(ledger_.Devices(), (std::vector<std::string>{"cpu", "cuda:0"}));
  EXPECT_EQ(ledger_.FreeBytes("cpu"), 64 * M);
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 1000 * M);
}

TEST_F(LedgerTest, AdmitHoldsTheRequest) {
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 300, 400)).ok());
  ASSERT_TRUE(ledger_.Admit(Account("b#0", "cuda:0", 500, 500, 3)).ok());
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 200 * M);  // 1000 − 300 − 500
  const auto a = ledger_.Find("a#0");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->device_bytes, 300 * M);
  EXPECT_EQ(a->granted_bytes, 0u);
  EXPECT_FALSE(a->swapped);
  EXPECT_EQ(ledger_.CheckConsistency(), "");
}

TEST_F(LedgerTest, AdmitWithoutFreeBytesIsACollisionNamingTheHolders) {
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 300, 400, 1)).ok());
  ASSERT_TRUE(ledger_.Admit(Account("b#0", "cuda:0", 500, 500, 3)).ok());
  ASSERT_TRUE(ledger_.Grant("a#0", 10 * M).ok());  // a holds 300 + 32
  // free = 1000 − 832 = 168
  const Status s = ledger_.Admit(Account("c#1", "cuda:0", 169, 169, 7, Resolver::kPriority));
  ASSERT_EQ(s.code(), StatusCode::kResourceExhausted);
  const CollisionDetail* c = s.collision();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->model, "c");
  EXPECT_EQ(c->device, "cuda:0");
  EXPECT_EQ(c->resolver, "priority");
  EXPECT_EQ(c->asked_bytes, 169 * M);
  EXPECT_EQ(c->free_bytes, 168 * M);
  ASSERT_EQ(c->holders.size(), 2u);  // largest first
  EXPECT_EQ(c->holders[0].instance, "b#0");
  EXPECT_EQ(c->holders[0].bytes, 500 * M);
  EXPECT_EQ(c->holders[0].priority, 3);
  EXPECT_EQ(c->holders[1].instance, "a#0");
  EXPECT_EQ(c->holders[1].bytes, 332 * M);
  EXPECT_EQ(c->holders[1].priority, 1);
  EXPECT_FALSE(ledger_.Find("c#1").has_value());
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 168 * M);
  // Exactly the free bytes fit.
  EXPECT_TRUE(ledger_.Admit(Account("c#1", "cuda:0", 168, 168)).ok());
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 0u);
}

TEST_F(LedgerTest, AdmitRejectsBadAccounts) {
  EXPECT_EQ(ledger_.Admit(Account("a#0", "cuda:0", 300, 299)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_.Admit(Account("", "cuda:0", 1, 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_.Admit(Account("a#0", "cuda:9", 1, 1)).code(), StatusCode::kNotFound);
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 1, 1)).ok());
  EXPECT_EQ(ledger_.Admit(Account("a#0", "cuda:0", 1, 1)).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 999 * M);
}

TEST_F(LedgerTest, ContextsAreHeldPerWorker) {
  ASSERT_TRUE(ledger_.ChargeContext("cuda:0", "worker-1", 300 * M).ok());
  ASSERT_TRUE(ledger_.ChargeContext("cuda:0", "worker-2", 300 * M).ok());
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 400 * M);
  EXPECT_EQ(ledger_.ChargeContext("cuda:0", "worker-1", 1).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(ledger_.ChargeContext("cuda:3", "worker-3", 1).code(), StatusCode::kNotFound);
  const Status s = ledger_.ChargeContext("cuda:0", "worker-3", 401 * M);
  ASSERT_EQ(s.code(), StatusCode::kResourceExhausted);
  ASSERT_NE(s.collision(), nullptr);
  EXPECT_EQ(s.collision()->model, "worker-3");
  EXPECT_EQ(s.collision()->asked_bytes, 401 * M);
  EXPECT_EQ(s.collision()->free_bytes, 400 * M);
  // Contexts take bytes requests could have used.
  EXPECT_EQ(ledger_.Admit(Account("a#0", "cuda:0", 401, 401)).code(),
            StatusCode::kResourceExhausted);
  ledger_.ReleaseContext("worker-1");
  ledger_.ReleaseContext("nobody");
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 700 * M);
  EXPECT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 401, 401)).ok());
  const DeviceLedger snap = Snap();
  EXPECT_EQ(snap.context_bytes, 300 * M);
  ASSERT_EQ(snap.contexts.size(), 1u);
  EXPECT_EQ(snap.contexts[0], (ContextView{"worker-2", 300 * M}));
}

TEST_F(LedgerTest, GrantRoundsUpToTheChunkWithinTheLimit) {
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 100, 200)).ok());
  auto g = ledger_.Grant("a#0", 10 * M);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(*g, 32 * M);
  g = ledger_.Grant("a#0", 1);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g, 32 * M);
  // Room left: 200 − 100 − 64 = 36 MiB; 33 MiB rounds to 64 but is cut to 36.
  g = ledger_.Grant("a#0", 33 * M);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g, 36 * M);
  EXPECT_EQ(ledger_.Find("a#0")->granted_bytes, 100 * M);
  EXPECT_EQ(ledger_.Find("a#0")->device_bytes, 200 * M);
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 800 * M);
  // At the limit: one more byte is refused with the limit's figures.
  const auto over = ledger_.Grant("a#0", 1);
  ASSERT_EQ(over.status().code(), StatusCode::kResourceExhausted);
  const MemoryLimitDetail* l = over.status().memory_limit();
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->model, "a");
  EXPECT_EQ(l->device, "cuda:0");
  EXPECT_EQ(l->limit_bytes, 200 * M);
  EXPECT_EQ(l->in_use_bytes, 200 * M);
  EXPECT_EQ(l->requested_bytes, 1u);
  EXPECT_EQ(over.status().collision(), nullptr);
}

TEST_F(LedgerTest, GrantAskingPastTheLimitIsRefusedEvenWhenFree) {
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 100, 150)).ok());
  const auto g = ledger_.Grant("a#0", 51 * M);
  ASSERT_EQ(g.status().code(), StatusCode::kResourceExhausted);
  ASSERT_NE(g.status().memory_limit(), nullptr);
  EXPECT_EQ(g.status().memory_limit()->in_use_bytes, 100 * M);
  EXPECT_EQ(ledger_.Find("a#0")->granted_bytes, 0u);
  const auto exact = ledger_.Grant("a#0", 50 * M);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(*exact, 50 * M);
}

TEST_F(LedgerTest, GrantTakesOnlyFreeBytesAndNeverWaits) {
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 100, 900, 0, Resolver::kSwap)).ok());
  ASSERT_TRUE(ledger_.Admit(Account("b#0", "cuda:0", 880, 880, 4)).ok());
  // free = 1000 − 980 = 20: 5 MiB rounds to 32 but is cut to the free 20.
  auto g = ledger_.Grant("a#0", 5 * M);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g, 20 * M);
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 0u);
  g = ledger_.Grant("a#0", 1);
  ASSERT_EQ(g.status().code(), StatusCode::kResourceExhausted);
  const CollisionDetail* c = g.status().collision();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->model, "a");
  EXPECT_EQ(c->resolver, "swap");
  EXPECT_EQ(c->asked_bytes, 1u);
  EXPECT_EQ(c->free_bytes, 0u);
  ASSERT_EQ(c->holders.size(), 2u);
  EXPECT_EQ(c->holders[0].bytes, 880 * M);
  EXPECT_EQ(c->holders[1].bytes, 120 * M);
  EXPECT_EQ(ledger_.Find("a#0")->granted_bytes, 20 * M);
}

TEST_F(LedgerTest, GrantEdgeCases) {
  EXPECT_EQ(ledger_.Grant("x#0", 1).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 100, 100)).ok());
  auto g = ledger_.Grant("a#0", 0);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g, 0u);
  MemoryLedger exact(LedgerOptions{0});
  ASSERT_TRUE(exact.AddDevice("cpu", 100).ok());
  InstanceAccount a = Account("a#0", "cpu", 0, 0);
  a.request_bytes = 10;
  a.limit_bytes = 90;
  ASSERT_TRUE(exact.Admit(a).ok());
  g = exact.Grant("a#0", 7);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g, 7u);  // no chunk: exactly what was asked
  EXPECT_EQ(exact.FreeBytes("cpu"), 83u);
}

TEST_F(LedgerTest, ReturnGivesBackAtMostTheGrant) {
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 100, 500)).ok());
  ASSERT_TRUE(ledger_.Grant("a#0", 96 * M).ok());  // 96 is 3 chunks
  ledger_.Return("a#0", 32 * M);
  EXPECT_EQ(ledger_.Find("a#0")->granted_bytes, 64 * M);
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 836 * M);
  ledger_.Return("a#0", 1000 * M);
  EXPECT_EQ(ledger_.Find("a#0")->granted_bytes, 0u);
  EXPECT_EQ(ledger_.Find("a#0")->device_bytes, 100 * M);  // the request stays
  ASSERT_TRUE(ledger_.Grant("a#0", 64 * M).ok());
  ledger_.ReturnAll("a#0");
  ledger_.ReturnAll("nobody");
  ledger_.Return("nobody", 5);
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 900 * M);
  EXPECT_EQ(ledger_.CheckConsistency(), "");
}

TEST_F(LedgerTest, SwapMovesTheRequestToTheHostTier) {
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 300, 400, 2, Resolver::kSwap)).ok());
  ASSERT_TRUE(ledger_.Grant("a#0", 32 * M).ok());
  // No host tier yet (capacity 0).
  Status s = ledger_.SwapOut("a#0");
  ASSERT_EQ(s.code(), StatusCode::kResourceExhausted);
  ASSERT_NE(s.collision(), nullptr);
  EXPECT_EQ(s.collision()->device, kHostTier);
  EXPECT_EQ(s.collision()->asked_bytes, 300 * M);
  EXPECT_EQ(s.collision()->free_bytes, 0u);
  EXPECT_FALSE(ledger_.IsSwapped("a#0"));

  ledger_.SetHostCapacity(500 * M);
  ASSERT_TRUE(ledger_.SwapOut("a#0").ok());
  EXPECT_TRUE(ledger_.IsSwapped("a#0"));
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 1000 * M);  // request and grant left
  EXPECT_EQ(ledger_.host_bytes(), 300 * M);
  EXPECT_EQ(ledger_.HostFreeBytes(), 200 * M);
  const auto row = ledger_.Find("a#0");
  EXPECT_EQ(row->device_bytes, 0u);
  EXPECT_EQ(row->host_bytes, 300 * M);
  EXPECT_EQ(row->granted_bytes, 0u);
  EXPECT_EQ(ledger_.SwapOut("a#0").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_.Grant("a#0", 1).status().code(), StatusCode::kUnavailable);

  DeviceLedger snap = Snap();
  EXPECT_EQ(snap.swapped_bytes, 300 * M);
  EXPECT_EQ(snap.host_free_bytes, 200 * M);
  EXPECT_EQ(snap.request_bytes, 0u);

  // Someone takes the device; swapping back in is then a collision.
  ASSERT_TRUE(ledger_.Admit(Account("b#0", "cuda:0", 800, 800)).ok());
  s = ledger_.SwapIn("a#0");
  ASSERT_EQ(s.code(), StatusCode::kResourceExhausted);
  ASSERT_NE(s.collision(), nullptr);
  EXPECT_EQ(s.collision()->asked_bytes, 300 * M);
  EXPECT_EQ(s.collision()->free_bytes, 200 * M);
  EXPECT_TRUE(ledger_.IsSwapped("a#0"));
  ledger_.Remove("b#0");
  ASSERT_TRUE(ledger_.SwapIn("a#0").ok());
  EXPECT_FALSE(ledger_.IsSwapped("a#0"));
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 700 * M);
  EXPECT_EQ(ledger_.host_bytes(), 0u);
  EXPECT_EQ(ledger_.SwapIn("a#0").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_.SwapIn("x#0").code(), StatusCode::kNotFound);
  EXPECT_EQ(ledger_.SwapOut("x#0").code(), StatusCode::kNotFound);
  EXPECT_FALSE(ledger_.IsSwapped("x#0"));
}

TEST_F(LedgerTest, SwapOutNamesTheHostTiersHolders) {
  ledger_.SetHostCapacity(450 * M);
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 300, 300, 1)).ok());
  ASSERT_TRUE(ledger_.Admit(Account("b#0", "cuda:0", 200, 200, 2)).ok());
  ASSERT_TRUE(ledger_.SwapOut("a#0").ok());
  const Status s = ledger_.SwapOut("b#0");  // 200 > 450 − 300
  ASSERT_EQ(s.code(), StatusCode::kResourceExhausted);
  ASSERT_NE(s.collision(), nullptr);
  EXPECT_EQ(s.collision()->free_bytes, 150 * M);
  ASSERT_EQ(s.collision()->holders.size(), 1u);
  EXPECT_EQ(s.collision()->holders[0].instance, "a#0");
  EXPECT_EQ(s.collision()->holders[0].bytes, 300 * M);
}

TEST_F(LedgerTest, RemoveReturnsEverything) {
  ledger_.SetHostCapacity(1000 * M);
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 300, 400)).ok());
  ASSERT_TRUE(ledger_.Admit(Account("b#0", "cuda:0", 200, 400)).ok());
  ASSERT_TRUE(ledger_.Grant("a#0", 64 * M).ok());
  ASSERT_TRUE(ledger_.SwapOut("b#0").ok());
  ledger_.Remove("a#0");
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 1000 * M);
  EXPECT_EQ(ledger_.host_bytes(), 200 * M);
  ledger_.Remove("b#0");
  ledger_.Remove("b#0");
  EXPECT_EQ(ledger_.host_bytes(), 0u);
  EXPECT_TRUE(ledger_.Instances("cuda:0").empty());
  EXPECT_EQ(ledger_.CheckConsistency(), "");
}

TEST_F(LedgerTest, UpdateRaisingTheRequestNeedsFreeBytes) {
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 300, 400)).ok());
  ASSERT_TRUE(ledger_.Admit(Account("b#0", "cuda:0", 600, 600)).ok());
  InstanceUpdate u;
  u.request_bytes = 401 * M;
  u.limit_bytes = 500 * M;
  u.priority = 9;
  Status s = ledger_.Update("a#0", u);  // needs 101, 100 free
  ASSERT_EQ(s.code(), StatusCode::kResourceExhausted);
  ASSERT_NE(s.collision(), nullptr);
  EXPECT_EQ(s.collision()->asked_bytes, 101 * M);
  EXPECT_EQ(s.collision()->free_bytes, 100 * M);
  // All or nothing.
  EXPECT_EQ(ledger_.Find("a#0")->account, Account("a#0", "cuda:0", 300, 400));
  u.request_bytes = 400 * M;
  ASSERT_TRUE(ledger_.Update("a#0", u).ok());
  EXPECT_EQ(ledger_.Find("a#0")->account, Account("a#0", "cuda:0", 400, 500, 9));
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 0u);
  // Lowering frees at once.
  InstanceUpdate down;
  down.request_bytes = 250 * M;
  down.resolver = Resolver::kSwap;
  down.pinned = true;
  ASSERT_TRUE(ledger_.Update("a#0", down).ok());
  EXPECT_EQ(ledger_.Find("a#0")->account,
            Account("a#0", "cuda:0", 250, 500, 9, Resolver::kSwap, true));
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 150 * M);
  InstanceUpdate bad;
  bad.limit_bytes = 249 * M;
  EXPECT_EQ(ledger_.Update("a#0", bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ledger_.Update("x#0", bad).code(), StatusCode::kNotFound);
}

TEST_F(LedgerTest, UpdateLoweringTheLimitBelowTheGrantShrinksItOnReturn) {
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 100, 300)).ok());
  ASSERT_TRUE(ledger_.Grant("a#0", 160 * M).ok());  // holds 260
  InstanceUpdate u;
  u.limit_bytes = 150 * M;
  ASSERT_TRUE(ledger_.Update("a#0", u).ok());
  EXPECT_EQ(ledger_.Find("a#0")->granted_bytes, 160 * M);  // nothing taken back
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 740 * M);
  const auto g = ledger_.Grant("a#0", 1);
  ASSERT_EQ(g.status().code(), StatusCode::kResourceExhausted);
  ASSERT_NE(g.status().memory_limit(), nullptr);
  EXPECT_EQ(g.status().memory_limit()->limit_bytes, 150 * M);
  EXPECT_EQ(g.status().memory_limit()->in_use_bytes, 260 * M);
  ledger_.Return("a#0", 120 * M);  // holds 140: 10 MiB of room again
  const auto again = ledger_.Grant("a#0", 1);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, 10 * M);
}

TEST_F(LedgerTest, UpdateOfASwappedInstanceUsesTheHostTier) {
  ledger_.SetHostCapacity(350 * M);
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 300, 400)).ok());
  ASSERT_TRUE(ledger_.SwapOut("a#0").ok());
  InstanceUpdate u;
  u.request_bytes = 351 * M;
  u.limit_bytes = 400 * M;
  const Status s = ledger_.Update("a#0", u);
  ASSERT_EQ(s.code(), StatusCode::kResourceExhausted);
  ASSERT_NE(s.collision(), nullptr);
  EXPECT_EQ(s.collision()->device, kHostTier);
  EXPECT_EQ(s.collision()->asked_bytes, 51 * M);
  u.request_bytes = 350 * M;
  ASSERT_TRUE(ledger_.Update("a#0", u).ok());
  EXPECT_EQ(ledger_.host_bytes(), 350 * M);
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 1000 * M);  // the device is untouched
  ASSERT_TRUE(ledger_.SwapIn("a#0").ok());
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 650 * M);
}

TEST_F(LedgerTest, LoweredCapacityTakesNothingBackAndGivesNothingNew) {
  ASSERT_TRUE(ledger_.ChargeContext("cuda:0", "w", 100 * M).ok());
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 500, 800)).ok());
  ASSERT_TRUE(ledger_.Grant("a#0", 100 * M).ok());  // rounds to 128: held 728
  ASSERT_TRUE(ledger_.SetCapacity("cuda:0", 600 * M).ok());
  DeviceLedger snap = Snap();
  EXPECT_EQ(snap.held_bytes, 728 * M);
  EXPECT_EQ(snap.free_bytes, 0u);
  EXPECT_EQ(ledger_.Find("a#0")->device_bytes, 628 * M);  // kept
  EXPECT_EQ(ledger_.Admit(Account("b#0", "cuda:0", 0, 0)).code(), StatusCode::kOk);
  EXPECT_EQ(ledger_.Admit(Account("c#0", "cuda:0", 1, 1)).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ledger_.Grant("a#0", 1).status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ledger_.ChargeContext("cuda:0", "w2", 1).code(), StatusCode::kResourceExhausted);
  ledger_.Return("a#0", 100 * M);  // held 628: still over
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 0u);
  ledger_.ReturnAll("a#0");  // held 600 = capacity
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 0u);
  ledger_.ReleaseContext("w");  // held 500
  EXPECT_EQ(ledger_.FreeBytes("cuda:0"), 100 * M);
  EXPECT_TRUE(ledger_.Admit(Account("c#0", "cuda:0", 100, 100)).ok());
  EXPECT_EQ(ledger_.CheckConsistency(), "");
}

TEST_F(LedgerTest, LoweredHostCapacityStillLetsInstancesBackIn) {
  ledger_.SetHostCapacity(500 * M);
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 300, 300)).ok());
  ASSERT_TRUE(ledger_.Admit(Account("b#0", "cuda:0", 100, 100)).ok());
  ASSERT_TRUE(ledger_.SwapOut("a#0").ok());
  ledger_.SetHostCapacity(200 * M);
  EXPECT_EQ(ledger_.HostFreeBytes(), 0u);
  EXPECT_EQ(ledger_.SwapOut("b#0").code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(ledger_.SwapIn("a#0").ok());
  EXPECT_EQ(ledger_.HostFreeBytes(), 200 * M);
  EXPECT_TRUE(ledger_.SwapOut("b#0").ok());
}

TEST_F(LedgerTest, SnapshotFiguresAddUp) {
  ASSERT_TRUE(ledger_.AddDevice("cuda:1", 2000 * M).ok());
  ledger_.SetHostCapacity(1000 * M);
  ASSERT_TRUE(ledger_.ChargeContext("cuda:0", "w0", 50 * M).ok());
  ASSERT_TRUE(ledger_.ChargeContext("cuda:1", "w1", 70 * M).ok());
  ASSERT_TRUE(ledger_.Admit(Account("b#0", "cuda:0", 200, 300)).ok());
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 100, 400)).ok());
  ASSERT_TRUE(ledger_.Admit(Account("c#0", "cuda:0", 150, 150)).ok());
  ASSERT_TRUE(ledger_.Admit(Account("d#0", "cuda:1", 900, 900)).ok());
  ASSERT_TRUE(ledger_.Grant("a#0", 40 * M).ok());  // 64
  ASSERT_TRUE(ledger_.Grant("b#0", 32 * M).ok());  // 32
  ASSERT_TRUE(ledger_.SwapOut("c#0").ok());
  const DeviceLedger s = Snap();
  EXPECT_EQ(s.device, "cuda:0");
  EXPECT_EQ(s.capacity_bytes, 1000 * M);
  EXPECT_EQ(s.request_bytes, 300 * M);
  EXPECT_EQ(s.context_bytes, 50 * M);
  EXPECT_EQ(s.borrowed_bytes, 96 * M);
  EXPECT_EQ(s.held_bytes, 446 * M);
  EXPECT_EQ(s.free_bytes, 554 * M);
  EXPECT_EQ(s.swapped_bytes, 150 * M);
  EXPECT_EQ(s.host_free_bytes, 850 * M);
  ASSERT_EQ(s.instances.size(), 3u);
  EXPECT_EQ(s.instances[0].account.instance, "a#0");
  EXPECT_EQ(s.instances[0].device_bytes, 164 * M);
  EXPECT_EQ(s.instances[1].account.instance, "b#0");
  EXPECT_EQ(s.instances[1].device_bytes, 232 * M);
  EXPECT_EQ(s.instances[2].account.instance, "c#0");
  EXPECT_TRUE(s.instances[2].swapped);
  EXPECT_EQ(s.instances[2].host_bytes, 150 * M);
  ASSERT_EQ(s.contexts.size(), 1u);
  EXPECT_EQ(s.contexts[0].worker, "w0");
  const DeviceLedger s1 = Snap("cuda:1");
  EXPECT_EQ(s1.free_bytes, (2000 - 70 - 900) * M);
  EXPECT_EQ(s1.swapped_bytes, 0u);
  EXPECT_EQ(ledger_.CheckConsistency(), "");
}

TEST_F(LedgerTest, AnotherInstancesOperationsLeaveARequestWhole) {
  ledger_.SetHostCapacity(1000 * M);
  ASSERT_TRUE(ledger_.Admit(Account("a#0", "cuda:0", 300, 300)).ok());
  ASSERT_TRUE(ledger_.Admit(Account("b#0", "cuda:0", 100, 800)).ok());
  const InstanceView before = *ledger_.Find("a#0");
  ASSERT_TRUE(ledger_.Grant("b#0", 600 * M).ok());
  EXPECT_EQ(ledger_.Grant("b#0", 1).status().code(), StatusCode::kResourceExhausted);
  ledger_.ReturnAll("b#0");
  ASSERT_TRUE(ledger_.SwapOut("b#0").ok());
  ASSERT_TRUE(ledger_.SetCapacity("cuda:0", 10 * M).ok());
  EXPECT_EQ(ledger_.SwapIn("b#0").code(), StatusCode::kResourceExhausted);
  ledger_.Remove("b#0");
  EXPECT_EQ(*ledger_.Find("a#0"), before);
}

}  // namespace
}  // namespace modelgrid::memory

// MemoryArbiter (arbiter.h) with fake ArbiterActions: the `priority`
// resolver preempting a lower-priority batch in flight (who, when, how
// often, the record the executor takes, the collision counts), what it never
// preempts, and on-demand admissions that make room by unloading when
// swap-outs cannot (worker contexts in `model` isolation).
#include "grid/arbiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modelgrid/bytes.h"

namespace modelgrid::grid_internal {
namespace {

using std::chrono::milliseconds;

constexpr uint64_t M = kMiB;

// Records every action; swap-outs and evictions update the ledger as the
// grid's do; a preemption runs `on_preempt` (default: OK, nothing else).
class FakeActions : public ArbiterActions {
 public:
  MemoryArbiter* arbiter = nullptr;
  std::function<Status(const std::string&, const Preemption&)> on_preempt;

  Status SwapOutInstance(const std::string& instance, const std::string&) override {
    Record("swap-out " + instance);
    return arbiter->WithLedger([&](memory::MemoryLedger& l) { return l.SwapOut(instance); });
  }
  Status EvictInstance(const std::string& instance, const std::string&) override {
    Record("evict " + instance);
    arbiter->WithLedger([&](memory::MemoryLedger& l) {
      l.Remove(instance);
      l.ReleaseContext(instance);  // one worker per instance: it stops
      return 0;
    });
    return Status::Ok();
  }
  Status PreemptInstance(const std::string& instance, const Preemption& p) override {
    Record("preempt " + instance);
    {
      std::lock_guard<std::mutex> lock(mu_);
      preemptions_.push_back(p);
    }
    return on_preempt ? on_preempt(instance, p) : Status::Ok();
  }

  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  std::vector<Preemption> Preemptions() {
    std::lock_guard<std::mutex> lock(mu_);
    return preemptions_;
  }

 private:
  void Record(const std::string& call) {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(call);
  }
  std::mutex mu_;
  std::vector<std::string> calls_;
  std::vector<Preemption> preemptions_;
};

// A grid that does not preempt: ArbiterActions::PreemptInstance's default.
class NoPreemptActions : public ArbiterActions {
 public:
  Status SwapOutInstance(const std::string&, const std::string&) override {
    return Status::Unavailable("no");
  }
  Status EvictInstance(const std::string&, const std::string&) override {
    return Status::Unavailable("no");
  }
};

memory::InstanceAccount Account(const std::string& instance, uint64_t request_mib,
                                uint64_t limit_mib, int priority,
                                Resolver resolver = Resolver::kWait, bool pinned = false) {
  memory::InstanceAccount a;
  a.instance = instance;
  a.model = instance.substr(0, instance.find('#'));
  a.device = "cpu";
  a.request_bytes = request_mib * M;
  a.limit_bytes = limit_mib * M;
  a.priority = priority;
  a.resolver = resolver;
  a.pinned = pinned;
  return a;
}

class ArbiterTest : public ::testing::Test {
 protected:
  // 1000 MiB on "cpu", exact grants, no minimum residency, a host tier.
  explicit ArbiterTest(ArbiterActions* actions = nullptr)
      : arbiter_(memory::LedgerOptions{1}, Options(), actions ? actions : &fake_,
                 /*swap_possible=*/true) {
    fake_.arbiter = &arbiter_;
    Status s = arbiter_.WithLedger([](memory::MemoryLedger& l) {
      l.SetHostCapacity(10'000 * M);
      return l.AddDevice("cpu", 1000 * M);
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  ~ArbiterTest() override {
    for (auto& t : threads_) t.join();
  }
  static memory::ReclaimOptions Options() {
    memory::ReclaimOptions o;
    o.min_residency = std::chrono::nanoseconds(0);
    return o;
  }

  // Admits and tracks an instance, idle, loaded and last used 10 s ago.
  void Add(const memory::InstanceAccount& a) {
    Status s = arbiter_.WithLedger([&](memory::MemoryLedger& l) { return l.Admit(a); });
    ASSERT_TRUE(s.ok()) << s.ToString();
    InstanceRuntime r;
    r.model = a.model;
    r.last_used = r.loaded_at = ArbiterClock::now() - std::chrono::seconds(10);
    arbiter_.Track(a.instance, r);
  }
  // `instance` runs a batch holding `grant_mib` granted past its request.
  void RunBatch(const std::string& instance, uint64_t grant_mib) {
    arbiter_.SetBusy(instance, true);
    auto g = arbiter_.Grant(instance, grant_mib * M, ArbiterClock::now());
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    ASSERT_EQ(*g, grant_mib * M);
  }
  // What the grid's executor does when that batch ends `after` from now: the
  // grant back, then idle.
  void EndBatchLater(const std::string& instance, uint64_t grant_mib, milliseconds after) {
    threads_.emplace_back([this, instance, grant_mib, after] {
      std::this_thread::sleep_for(after);
      arbiter_.Return(instance, grant_mib * M);
      arbiter_.SetBusy(instance, false);
    });
  }
  uint64_t Granted(const std::string& instance) {
    return arbiter_.WithLedger([&](memory::MemoryLedger& l) {
      auto v = l.Find(instance);
      return v ? v->granted_bytes : uint64_t{0};
    });
  }
  uint64_t Count(const std::string& model, const std::string& outcome) {
    const CollisionCounts c = arbiter_.Collisions();
    auto m = c.find(model);
    if (m == c.end()) return 0;
    auto o = m->second.find(outcome);
    return o == m->second.end() ? 0 : o->second;
  }
  static ArbiterClock::time_point In(milliseconds ms) { return ArbiterClock::now() + ms; }

  FakeActions fake_;
  MemoryArbiter arbiter_;
  std::vector<std::thread> threads_;
};

// hi (priority 5) needs 300 MiB past its request; only lo's batch in flight
// (priority 1, 300 MiB granted) holds them: lo is preempted, the record says
// by whom, and hi gets the grant once lo's executor gave it back.
TEST_F(ArbiterTest, PriorityPreemptsALowerBatchInFlightAndWaitsForItsGrant) {
  Add(Account("lo#0", 300, 900, 1));
  Add(Account("hi#0", 300, 900, 5, Resolver::kPriority));
  RunBatch("lo#0", 300);  // held 900 of 1000
  std::atomic<bool> returned{false};
  fake_.on_preempt = [&](const std::string& instance, const Preemption&) {
    // The worker fails the batch; its executor returns the grant later.
    threads_.emplace_back([&, instance] {
      std::this_thread::sleep_for(milliseconds(50));
      returned = true;
      arbiter_.Return(instance, 300 * M);
      arbiter_.SetBusy(instance, false);
    });
    return Status::Ok();
  };
  arbiter_.SetBusy("hi#0", true);
  auto g = arbiter_.Grant("hi#0", 300 * M, In(milliseconds(5000)));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(*g, 300 * M);
  EXPECT_TRUE(returned) << "granted only once lo's grant came back";
  EXPECT_EQ(fake_.Calls(), (std::vector<std::string>{"preempt lo#0"}));
  ASSERT_EQ(fake_.Preemptions().size(), 1u);
  const Preemption p = fake_.Preemptions()[0];
  EXPECT_EQ(p.by_instance, "hi#0");
  EXPECT_EQ(p.by_model, "hi");
  EXPECT_EQ(p.by_priority, 5);
  EXPECT_EQ(p.bytes, 300 * M);
  EXPECT_EQ(p.reason, "preempted by model 'hi' (priority 5)");
  EXPECT_EQ(p.reason, PreemptionReason("hi", 5));
  // lo's executor asks who preempted its failed batch, once.
  auto taken = arbiter_.TakePreemption("lo#0");
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->by_model, "hi");
  EXPECT_EQ(taken->reason, p.reason);
  EXPECT_FALSE(arbiter_.TakePreemption("lo#0").has_value());
  EXPECT_FALSE(arbiter_.TakePreemption("hi#0").has_value());
  EXPECT_EQ(Count("hi", "priority/preempted"), 1u);
  EXPECT_EQ(Granted("hi#0"), 300 * M);
  EXPECT_EQ(Granted("lo#0"), 0u);
}

// Equal and higher priorities are never preempted: that collision waits and
// times out naming the holders.
TEST_F(ArbiterTest, EqualOrHigherPriorityBatchesAreNeverPreempted) {
  Add(Account("eq#0", 300, 900, 5));
  Add(Account("top#0", 100, 900, 9));
  Add(Account("hi#0", 300, 900, 5, Resolver::kPriority));
  RunBatch("eq#0", 200);
  RunBatch("top#0", 100);  // held 1000 of 1000
  auto g = arbiter_.Grant("hi#0", 100 * M, In(milliseconds(250)));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kResourceExhausted) << g.status().ToString();
  ASSERT_NE(g.status().collision(), nullptr);
  EXPECT_EQ(g.status().collision()->resolver, "priority");
  EXPECT_TRUE(g.status().collision()->preempted_by.empty());
  EXPECT_TRUE(fake_.Calls().empty());
  EXPECT_FALSE(arbiter_.TakePreemption("eq#0").has_value());
  EXPECT_FALSE(arbiter_.TakePreemption("top#0").has_value());
  EXPECT_EQ(Count("hi", "priority/timed_out"), 1u);
  EXPECT_EQ(Granted("eq#0"), 200 * M);
}

// Pinned instances are never reclaimed, so never preempted either; nor is
// the requester's own batch; nor anything for a `wait` model.
TEST_F(ArbiterTest, PinnedInstancesTheRequesterItselfAndWaitModelsPreemptNothing) {
  Add(Account("pin#0", 200, 900, 1, Resolver::kWait, /*pinned=*/true));
  Add(Account("hi#0", 300, 900, 5, Resolver::kPriority));
  Add(Account("w#0", 100, 900, 5, Resolver::kWait));
  RunBatch("pin#0", 200);
  RunBatch("hi#0", 200);  // held 1000 of 1000, 400 of them by bursts
  auto more = arbiter_.Grant("hi#0", 100 * M, In(milliseconds(250)));
  EXPECT_EQ(more.status().code(), StatusCode::kResourceExhausted) << more.status().ToString();
  auto w = arbiter_.Grant("w#0", 100 * M, In(milliseconds(150)));
  EXPECT_EQ(w.status().code(), StatusCode::kResourceExhausted) << w.status().ToString();
  EXPECT_TRUE(fake_.Calls().empty());
  EXPECT_EQ(Count("hi", "priority/timed_out"), 1u);
  EXPECT_EQ(Count("w", "wait/timed_out"), 1u);
}

// Stages in order: an idle lower instance is swapped out before a lower
// batch in flight is preempted.
TEST_F(ArbiterTest, IdleLowerInstancesAreReclaimedBeforeABatchIsPreempted) {
  Add(Account("idle#0", 300, 300, 1));
  Add(Account("busy#0", 100, 900, 1));
  Add(Account("hi#0", 200, 900, 5, Resolver::kPriority));
  RunBatch("busy#0", 300);  // held 900 of 1000
  auto g = arbiter_.Grant("hi#0", 250 * M, In(milliseconds(5000)));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(fake_.Calls(), (std::vector<std::string>{"swap-out idle#0"}));
  EXPECT_EQ(Count("hi", "priority/reclaimed"), 1u);
  EXPECT_EQ(Granted("busy#0"), 300 * M) << "the batch in flight keeps its grant";
  EXPECT_FALSE(arbiter_.TakePreemption("busy#0").has_value());
}

// A preempted batch is asked once: while its grant is on its way the
// arbiter re-plans (every 100 ms) without asking again, and without
// preempting another batch for bytes that are coming.
TEST_F(ArbiterTest, APreemptedBatchIsAskedOnceAndItsGrantCountsAsComing) {
  Add(Account("lo1#0", 100, 900, 1));
  Add(Account("lo2#0", 100, 900, 2));
  Add(Account("hi#0", 100, 900, 5, Resolver::kPriority));
  RunBatch("lo1#0", 300);
  RunBatch("lo2#0", 300);  // held 900 of 1000
  fake_.on_preempt = [&](const std::string& instance, const Preemption&) {
    EndBatchLater(instance, 300, milliseconds(350));
    return Status::Ok();
  };
  const auto start = ArbiterClock::now();
  auto g = arbiter_.Grant("hi#0", 250 * M, In(milliseconds(5000)));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_GE(ArbiterClock::now() - start, milliseconds(300));
  // The lowest priority first; lo2's batch runs on.
  EXPECT_EQ(fake_.Calls(), (std::vector<std::string>{"preempt lo1#0"}));
  EXPECT_EQ(Granted("lo2#0"), 300 * M);
  EXPECT_EQ(Count("hi", "priority/preempted"), 1u);
  EXPECT_TRUE(arbiter_.TakePreemption("lo1#0").has_value());
  EXPECT_FALSE(arbiter_.TakePreemption("lo2#0").has_value());
}

// When the grid cannot preempt (here it says so), the instance is not asked
// again during that collision, no record is left, and the burst is let
// finish: its grant comes back when it ends.
TEST_F(ArbiterTest, ADeclinedPreemptionLetsTheBatchFinish) {
  Add(Account("lo#0", 300, 900, 1));
  Add(Account("hi#0", 300, 900, 5, Resolver::kPriority));
  RunBatch("lo#0", 300);
  fake_.on_preempt = [](const std::string& instance, const Preemption&) {
    return Status::Unsupported("isolation none: " + instance + " cannot be preempted");
  };
  EndBatchLater("lo#0", 300, milliseconds(350));
  auto g = arbiter_.Grant("hi#0", 300 * M, In(milliseconds(5000)));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(fake_.Calls(), (std::vector<std::string>{"preempt lo#0"}));
  EXPECT_FALSE(arbiter_.TakePreemption("lo#0").has_value());
  EXPECT_EQ(Count("hi", "priority/granted"), 1u);
  EXPECT_EQ(Count("hi", "priority/preempted"), 0u);
}

// A grid whose actions do not override PreemptInstance (the default,
// kUnsupported) keeps the old behaviour: the burst is let finish.
class DefaultActionsTest : public ArbiterTest {
 protected:
  DefaultActionsTest() : ArbiterTest(&none_) {}
  NoPreemptActions none_;
};

TEST_F(DefaultActionsTest, WithoutPreemptionTheBurstIsLetFinish) {
  Preemption p;
  EXPECT_EQ(none_.PreemptInstance("lo#0", p).code(), StatusCode::kUnsupported);
  Add(Account("lo#0", 300, 900, 1));
  Add(Account("hi#0", 300, 900, 5, Resolver::kPriority));
  RunBatch("lo#0", 300);
  EndBatchLater("lo#0", 300, milliseconds(150));
  auto g = arbiter_.Grant("hi#0", 300 * M, In(milliseconds(5000)));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_FALSE(arbiter_.TakePreemption("lo#0").has_value());
  EXPECT_EQ(Count("hi", "priority/granted"), 1u);
}

// A record belongs to the batch it preempted: the instance's next batch
// starts without it, and a forgotten instance has none.
TEST_F(ArbiterTest, ANewBatchForgetsTheRecordOfTheOneBefore) {
  Add(Account("lo#0", 300, 900, 1));
  Add(Account("hi#0", 300, 900, 5, Resolver::kPriority));
  RunBatch("lo#0", 300);
  fake_.on_preempt = [&](const std::string& instance, const Preemption&) {
    EndBatchLater(instance, 300, milliseconds(20));
    return Status::Ok();
  };
  ASSERT_TRUE(arbiter_.Grant("hi#0", 300 * M, In(milliseconds(5000))).ok());
  for (auto& t : threads_) t.join();
  threads_.clear();
  arbiter_.SetBusy("lo#0", true);  // lo's next batch
  EXPECT_FALSE(arbiter_.TakePreemption("lo#0").has_value());
}

// On-demand admission in `model` isolation: each instance's worker context
// is charged to the device. A swap-out keeps the worker, so it frees the
// request only; when that cannot make room the arbiter plans again with
// unloads, which free the contexts too. (Before, such an admission waited
// out its deadline.)
TEST_F(ArbiterTest, AnAdmissionUnloadsWhenSwapOutsCannotMakeRoom) {
  ASSERT_TRUE(arbiter_
                  .WithLedger([](memory::MemoryLedger& l) {
                    return l.ChargeContext("cpu", "a#0", 400 * M);
                  })
                  .ok());
  Add(Account("a#0", 100, 100, 0, Resolver::kSwap));  // held 500 of 1000
  // A cold b#0: 500 + a new worker's 200 = 700, 200 short. Swapping a#0 out
  // frees 100; unloading it frees 500.
  const memory::InstanceAccount b = Account("b#0", 500, 500, 0);
  const auto start = ArbiterClock::now();
  Status s = arbiter_.AdmitWithRoom(b, "b#0", 200 * M, In(milliseconds(3000)));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_LT(ArbiterClock::now() - start, milliseconds(1000)) << "it did not wait";
  EXPECT_EQ(fake_.Calls(), (std::vector<std::string>{"evict a#0"}));
  EXPECT_EQ(Count("b", "evict/reclaimed"), 1u);
  auto snap = arbiter_.WithLedger([](memory::MemoryLedger& l) { return l.Snapshot("cpu"); });
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->held_bytes, 700 * M);
  ASSERT_EQ(snap->contexts.size(), 1u);
  EXPECT_EQ(snap->contexts[0].worker, "b#0");
}

// An instance swapped out earlier keeps its worker and so its context: the
// swap-first plan cannot touch it, the unloads-only plan unloads it.
TEST_F(ArbiterTest, AnAdmissionUnloadsASwappedOutInstanceToFreeItsWorkersContext) {
  ASSERT_TRUE(arbiter_
                  .WithLedger([](memory::MemoryLedger& l) {
                    return l.ChargeContext("cpu", "a#0", 400 * M);
                  })
                  .ok());
  Add(Account("a#0", 300, 300, 0, Resolver::kSwap));
  ASSERT_TRUE(arbiter_.WithLedger([](memory::MemoryLedger& l) { return l.SwapOut("a#0"); }).ok());
  // 400 held (a#0's context); b#0 asks 500 + 200.
  Status s =
      arbiter_.AdmitWithRoom(Account("b#0", 500, 500, 0), "b#0", 200 * M, In(milliseconds(3000)));
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(fake_.Calls(), (std::vector<std::string>{"evict a#0"}));
  const bool gone =
      arbiter_.WithLedger([](memory::MemoryLedger& l) { return !l.Find("a#0").has_value(); });
  EXPECT_TRUE(gone);
}

// What an unload cannot cover either still waits, and times out.
TEST_F(ArbiterTest, AnAdmissionThatNothingCanCoverStillTimesOut) {
  ASSERT_TRUE(arbiter_
                  .WithLedger([](memory::MemoryLedger& l) {
                    return l.ChargeContext("cpu", "a#0", 400 * M);
                  })
                  .ok());
  Add(Account("a#0", 100, 100, 0, Resolver::kSwap, /*pinned=*/true));
  Status s =
      arbiter_.AdmitWithRoom(Account("b#0", 500, 500, 0), "b#0", 200 * M, In(milliseconds(200)));
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  ASSERT_NE(s.collision(), nullptr);
  EXPECT_EQ(s.collision()->resolver, "evict");
  EXPECT_TRUE(fake_.Calls().empty());
  EXPECT_EQ(Count("b", "evict/timed_out"), 1u);
}

}  // namespace
}  // namespace modelgrid::grid_internal

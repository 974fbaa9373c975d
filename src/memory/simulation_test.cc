// A simulated server: 50 instances on 4 devices for 10,000 random steps of
// bursts that borrow past their request and return, swap-ins, cold loads,
// reconfigurations and capacity changes. Collisions go to the requester's
// resolver (PlanReclaim), cold loads to ChooseEvictions, and the plans are
// applied the way reclaim.h tells the grid to. After every step:
//   - the ledger's totals agree with its rows, and with the simulation's own
//     state (resident, swapped, unloaded; a burst never exceeds the grant);
//   - held bytes never rose above a device's capacity, host bytes never
//     above the host tier's;
//   - every resident instance holds its whole request;
//   - a plan, when it did not wait, delivered the bytes asked;
//   - who lost bytes: nobody but the requester on an ordinary step; nobody
//     at all when a `wait` resolver settled a collision; only lower
//     priorities for `priority`; only idle, unpinned instances, swapped out,
//     for `swap`.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "memory/memory_test_util.h"
#include "modelgrid/memory/ledger.h"
#include "modelgrid/memory/reclaim.h"

namespace modelgrid::memory {
namespace {

using testing::At;

constexpr uint64_t M = kMiB;
constexpr int kInstances = 50;
constexpr int kDevices = 4;
constexpr int kSteps = 10'000;
constexpr uint64_t kCapacity = 4096 * M;
constexpr uint64_t kContext = 300 * M;

enum class Where { kUnloaded, kResident, kSwapped };

struct Sim {
  InstanceAccount account;
  Where where = Where::kUnloaded;
  bool busy = false;
  uint64_t burst = 0;  // granted bytes the batch in flight uses
  ReclaimTime last_used{};
  ReclaimTime loaded_at{};
  bool can_swap = false;
  double reload_cost_s = 1;
};

// Why bytes were taken from others in a step.
enum class Cause { kNone, kResolver, kEviction };

struct Counters {
  std::map<std::string, int> counts;
  void Add(const std::string& what) { ++counts[what]; }
  int operator[](const std::string& what) const {
    auto it = counts.find(what);
    return it == counts.end() ? 0 : it->second;
  }
};

class Simulation {
 public:
  explicit Simulation(uint64_t seed) : rng_(seed) {
    for (int d = 0; d < kDevices; ++d) {
      const std::string device = "cuda:" + std::to_string(d);
      EXPECT_TRUE(ledger_.AddDevice(device, kCapacity).ok());
      EXPECT_TRUE(ledger_.ChargeContext(device, "worker-" + device, kContext).ok());
      capacity_[device] = kCapacity;
    }
    ledger_.SetHostCapacity(6144 * M);
    for (int i = 0; i < kInstances; ++i) {
      Sim s;
      s.account.model = "m" + std::to_string(i);
      s.account.instance = s.account.model + "#0";
      s.account.device = "cuda:" + std::to_string(i % kDevices);
      s.account.request_bytes = Uniform(100, 800) * M;
      s.account.limit_bytes = s.account.request_bytes + Uniform(0, 600) * M;
      s.account.priority = static_cast<int>(Uniform(0, 3));
      s.account.resolver = static_cast<Resolver>(Uniform(0, 2));
      s.account.pinned = Uniform(0, 19) == 0;
      s.can_swap = Uniform(0, 9) < 7;
      s.reload_cost_s = 0.5 + static_cast<double>(Uniform(0, 40)) / 10;
      index_[s.account.instance] = i;
      sims_.push_back(s);
      if (ledger_.Admit(s.account).ok()) sims_.back().where = Where::kResident;
    }
  }

  void Run() {
    for (int step = 0; step < kSteps && !::testing::Test::HasFatalFailure(); ++step) {
      now_ = At(step * 0.1);
      Step(step);
    }
  }

  const Counters& counters() const { return counters_; }

 private:
  uint64_t Uniform(uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_);
  }

  uint64_t Granted(const Sim& s) const {
    const auto row = ledger_.Find(s.account.instance);
    return row ? row->granted_bytes : 0;
  }

  std::vector<InstanceFacts> Facts(const std::string& device) const {
    std::vector<InstanceFacts> out;
    for (const Sim& s : sims_) {
      if (s.account.device != device || s.where != Where::kResident) continue;
      InstanceFacts f;
      f.instance = s.account.instance;
      f.idle = !s.busy;
      f.busy_burst_bytes = s.burst;
      f.cached_bytes = Granted(s) - s.burst;
      f.last_used = s.last_used;
      f.loaded_at = s.loaded_at;
      f.can_swap = s.can_swap;
      f.reload_cost_s = s.reload_cost_s;
      out.push_back(f);
    }
    return out;
  }

  Requester RequesterOf(const Sim& s, uint64_t asked) const {
    Requester r;
    r.instance = s.account.instance;
    r.priority = s.account.priority;
    r.resolver = s.account.resolver;
    r.asked_bytes = asked;
    r.now = now_;
    return r;
  }

  // Applies `plan` for a requester on `device`, as reclaim.h prescribes.
  void Apply(const ReclaimPlan& plan, const std::string& device, uint64_t asked) {
    ASSERT_FALSE(plan.wait);
    for (const ReclaimAction& a : plan.actions) {
      Sim& victim = sims_[index_.at(a.instance)];
      ASSERT_EQ(victim.account.device, device);
      ASSERT_EQ(victim.where, Where::kResident) << a.instance;
      switch (a.kind) {
        case ReclaimKind::kShrinkCache:
          ASSERT_LE(a.bytes, Granted(victim) - victim.burst) << "cache of " << a.instance;
          ledger_.Return(a.instance, a.bytes);
          counters_.Add("shrink-cache");
          break;
        case ReclaimKind::kSwapOut: {
          ASSERT_FALSE(victim.busy);
          const Status s = ledger_.SwapOut(a.instance);
          ASSERT_TRUE(s.ok()) << s.ToString();
          victim.where = Where::kSwapped;
          counters_.Add("swap-out");
          break;
        }
        case ReclaimKind::kUnload:
          ASSERT_FALSE(victim.busy);
          ledger_.Remove(a.instance);
          victim.where = Where::kUnloaded;
          counters_.Add("unload");
          break;
        case ReclaimKind::kPreempt:
          ASSERT_TRUE(victim.busy);
          ASSERT_LE(a.bytes, victim.burst);
          ledger_.Return(a.instance, a.bytes);
          victim.busy = false;  // its batch fails with 507 naming the preemptor
          victim.burst = 0;
          victim.last_used = now_;
          counters_.Add("preempt");
          break;
      }
    }
    ASSERT_GE(ledger_.FreeBytes(device), asked) << "the plan did not deliver";
  }

  // Settles a collision of `s` asking `asked` on its device; true when the
  // bytes are now free.
  bool Settle(Sim& s, uint64_t asked) {
    const std::string& device = s.account.device;
    const ReclaimPlan plan =
        PlanReclaim(*ledger_.Snapshot(device), Facts(device), RequesterOf(s, asked));
    cause_ = Cause::kResolver;
    resolver_ = s.account.resolver;
    requester_priority_ = s.account.priority;
    if (plan.wait) {
      counters_.Add(std::string("wait-") + ResolverName(s.account.resolver));
      return false;
    }
    Apply(plan, device, asked);
    counters_.Add(std::string("settled-") + ResolverName(s.account.resolver));
    return !::testing::Test::HasFatalFailure();
  }

  void StartBurst(Sim& s) {
    const uint64_t room = s.account.limit_bytes - s.account.request_bytes;
    if (room == 0) {
      counters_.Add("within-request");  // never asks the ledger
      s.busy = true;
      return;
    }
    const uint64_t want = Uniform(1, room / M) * M;
    const uint64_t cache = Granted(s);
    if (want > cache) {
      auto g = ledger_.Grant(s.account.instance, want - cache);
      if (!g.ok() && g.status().memory_limit() != nullptr) {
        counters_.Add("over-limit");  // only after the limit was lowered under it
        return;
      }
      if (!g.ok()) {
        ASSERT_NE(g.status().collision(), nullptr) << g.status().ToString();
        if (!Settle(s, want - cache)) return;
        g = ledger_.Grant(s.account.instance, want - cache);
        ASSERT_TRUE(g.ok()) << "settled but the grant failed: " << g.status().ToString();
      }
      counters_.Add("grant");
    }
    s.busy = true;
    s.burst = want;
  }

  void EndBurst(Sim& s) {
    s.busy = false;
    s.burst = 0;
    s.last_used = now_;
    // Keep part of the grant as cache, return the rest.
    ledger_.Return(s.account.instance, Uniform(0, Granted(s) / M) * M);
  }

  void SwapIn(Sim& s) {
    Status st = ledger_.SwapIn(s.account.instance);
    if (!st.ok()) {
      ASSERT_NE(st.collision(), nullptr) << st.ToString();
      if (!Settle(s, s.account.request_bytes)) return;
      st = ledger_.SwapIn(s.account.instance);
      ASSERT_TRUE(st.ok()) << "settled but the swap-in failed: " << st.ToString();
    }
    s.where = Where::kResident;
    s.loaded_at = s.last_used = now_;
    counters_.Add("swap-in");
  }

  void ColdLoad(Sim& s) {
    Status st = ledger_.Admit(s.account);
    if (!st.ok()) {
      ASSERT_NE(st.collision(), nullptr) << st.ToString();
      const std::string& device = s.account.device;
      const ReclaimPlan plan =
          ChooseEvictions(*ledger_.Snapshot(device), Facts(device), s.account.request_bytes, now_);
      cause_ = Cause::kEviction;
      if (plan.wait) {
        counters_.Add("cold-wait");
        return;
      }
      Apply(plan, device, s.account.request_bytes);
      if (::testing::Test::HasFatalFailure()) return;
      st = ledger_.Admit(s.account);
      ASSERT_TRUE(st.ok()) << "evicted but the load failed: " << st.ToString();
      counters_.Add("evicted-for-load");
    }
    s.where = Where::kResident;
    s.loaded_at = s.last_used = now_;
    counters_.Add("load");
  }

  void Reconfigure(Sim& s) {
    InstanceUpdate u;
    u.request_bytes = Uniform(100, 800) * M;
    u.limit_bytes = *u.request_bytes + Uniform(0, 600) * M;
    if (s.where == Where::kUnloaded) {  // takes effect at its next load
      s.account.request_bytes = *u.request_bytes;
      s.account.limit_bytes = *u.limit_bytes;
      return;
    }
    const Status st = ledger_.Update(s.account.instance, u);
    if (st.ok()) {
      s.account.request_bytes = *u.request_bytes;
      s.account.limit_bytes = *u.limit_bytes;
      counters_.Add("update");
    } else {
      ASSERT_NE(st.collision(), nullptr) << st.ToString();
      counters_.Add("update-refused");
    }
  }

  void Step(int step) {
    cause_ = Cause::kNone;
    const auto before = Rows();
    std::map<std::string, uint64_t> held_before;
    for (const auto& [d, cap] : capacity_) held_before[d] = ledger_.Snapshot(d)->held_bytes;
    const uint64_t host_before = ledger_.host_bytes();
    std::map<std::string, bool> idle_before;
    for (const Sim& s : sims_) idle_before[s.account.instance] = !s.busy;

    const uint64_t dice = Uniform(0, 999);
    Sim& s = sims_[Uniform(0, kInstances - 1)];
    const std::string actor = s.account.instance;
    if (dice < 10) {
      const std::string device = "cuda:" + std::to_string(Uniform(0, kDevices - 1));
      capacity_[device] = Uniform(3584, 4608) * M;
      ASSERT_TRUE(ledger_.SetCapacity(device, capacity_[device]).ok());
    } else if (dice < 15 && s.where != Where::kUnloaded && !s.busy) {
      ledger_.Remove(actor);
      s.where = Where::kUnloaded;
    } else if (dice < 35 && !s.busy) {
      Reconfigure(s);
    } else if (s.where == Where::kUnloaded) {
      ColdLoad(s);
    } else if (s.where == Where::kSwapped) {
      SwapIn(s);
    } else if (s.busy) {
      EndBurst(s);
    } else if (dice < 100) {
      ledger_.ReturnAll(actor);  // the worker emptied its cache
    } else {
      StartBurst(s);
    }
    if (::testing::Test::HasFatalFailure()) return;
    Check(step, actor, before, held_before, host_before, idle_before);
  }

  std::map<std::string, InstanceView> Rows() const {
    std::map<std::string, InstanceView> rows;
    for (const auto& [d, cap] : capacity_) {
      for (const InstanceView& v : ledger_.Instances(d)) rows[v.account.instance] = v;
    }
    return rows;
  }

  void Check(int step, const std::string& actor, const std::map<std::string, InstanceView>& before,
             const std::map<std::string, uint64_t>& held_before, uint64_t host_before,
             const std::map<std::string, bool>& idle_before) {
    SCOPED_TRACE("step " + std::to_string(step) + ", actor " + actor);
    ASSERT_EQ(ledger_.CheckConsistency(), "");
    for (const auto& [d, cap] : capacity_) {
      const DeviceLedger snap = *ledger_.Snapshot(d);
      ASSERT_EQ(snap.capacity_bytes, cap);
      ASSERT_TRUE(snap.held_bytes <= cap || snap.held_bytes <= held_before.at(d))
          << d << " rose to " << snap.held_bytes << " over " << cap;
      ASSERT_EQ(snap.free_bytes, snap.held_bytes <= cap ? cap - snap.held_bytes : 0);
      ASSERT_EQ(snap.context_bytes, kContext);
    }
    ASSERT_TRUE(ledger_.host_bytes() <= ledger_.host_capacity_bytes() ||
                ledger_.host_bytes() <= host_before);
    const auto after = Rows();
    for (const Sim& s : sims_) {
      const std::string& n = s.account.instance;
      const auto it = after.find(n);
      ASSERT_EQ(it != after.end(), s.where != Where::kUnloaded) << n;
      if (it == after.end()) continue;
      const InstanceView& v = it->second;
      ASSERT_EQ(v.swapped, s.where == Where::kSwapped) << n;
      ASSERT_EQ(v.account, s.account) << n;
      ASSERT_LE(s.burst, v.granted_bytes) << n;
      if (!v.swapped) {
        ASSERT_GE(v.device_bytes, s.account.request_bytes) << n;
      }
    }
    // Who lost bytes on the device, or its residency, this step.
    for (const auto& [n, v] : before) {
      if (n == actor || v.swapped) continue;
      const auto it = after.find(n);
      const bool lost =
          it == after.end() || it->second.swapped || it->second.device_bytes < v.device_bytes;
      if (!lost) continue;
      const Sim& victim = sims_[index_.at(n)];
      ASSERT_NE(cause_, Cause::kNone) << n << " lost bytes on an ordinary step";
      ASSERT_FALSE(v.account.pinned) << n;
      ASSERT_TRUE(idle_before.at(n) || cause_ == Cause::kResolver) << n;
      if (cause_ != Cause::kResolver) continue;
      ASSERT_NE(resolver_, Resolver::kWait) << "a wait resolver took bytes from " << n;
      if (resolver_ == Resolver::kPriority) {
        ASSERT_LT(v.account.priority, requester_priority_) << n;
      } else {
        ASSERT_TRUE(idle_before.at(n)) << n;
        ASSERT_EQ(victim.where, Where::kSwapped) << n;
      }
    }
  }

  std::mt19937_64 rng_;
  MemoryLedger ledger_;
  std::map<std::string, uint64_t> capacity_;
  std::vector<Sim> sims_;
  std::map<std::string, int> index_;
  ReclaimTime now_{};
  Cause cause_ = Cause::kNone;
  Resolver resolver_ = Resolver::kWait;
  int requester_priority_ = 0;
  Counters counters_;
};

TEST(MemorySimulationTest, FiftyInstancesFourDevicesTenThousandSteps) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Simulation sim(seed);
    sim.Run();
    ASSERT_FALSE(::testing::Test::HasFailure());
    const Counters& c = sim.counters();
    std::string summary;
    for (const auto& [what, n] : c.counts) summary += what + "=" + std::to_string(n) + " ";
    RecordProperty("seed" + std::to_string(seed), summary);
    // The run went through every path it is meant to check.
    for (const char* what : {"grant", "wait-wait", "wait-priority", "wait-swap", "settled-priority",
                             "settled-swap", "shrink-cache", "swap-out", "unload", "preempt",
                             "swap-in", "load", "evicted-for-load", "update", "update-refused"}) {
      EXPECT_GT(c[what], 0) << what << " never happened; " << summary;
    }
  }
}

}  // namespace
}  // namespace modelgrid::memory

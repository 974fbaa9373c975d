// The memory arbiter of the grid (docs/design.md, "Memory model"): the one
// owner of the device memory ledger (modelgrid/memory/ledger.h) at run time.
// Executors ask it for bytes past their instance's request (grants), for the
// bytes of a swap-in and for room for an on-demand load; when the ledger
// cannot give them from free bytes (a collision), the arbiter settles it with
// the asking model's resolver (modelgrid/memory/reclaim.h): `wait` blocks
// until bytes come back or the deadline passes, `priority` and `swap` have
// the grid swap out or evict other instances through ArbiterActions, then
// ask again; `priority` also preempts lower-priority batches in flight
// (ArbiterActions::PreemptInstance) and waits for their grants to come
// back. Internal to the grid component.
//
// Thread-safety: every method may be called from any thread. The arbiter's
// mutex is never held while an ArbiterActions method runs, so actions may
// call back into the arbiter.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/memory/ledger.h"
#include "modelgrid/memory/reclaim.h"
#include "modelgrid/status.h"

namespace modelgrid::grid_internal {

using ArbiterClock = std::chrono::steady_clock;

// Who preempted an instance's batch in flight (resolver `priority`), as the
// arbiter records it for that batch's error.
struct Preemption {
  std::string by_instance;  // the requester, "model#replica"
  std::string by_model;     // its model
  int by_priority = 0;      // its priority (strictly above the victim's)
  uint64_t bytes = 0;       // the victim's grant the requester waits for (bytes)
  // "preempted by model 'hi' (priority 5)": what the worker appends to the
  // batch's memory-limit error (WorkerClient::SetLimit's reason) and what
  // the batch's 507 says (PreemptionReason).
  std::string reason;
};

// The reason text of a preemption by `by_model` at `by_priority`:
// "preempted by model 'hi' (priority 5)".
std::string PreemptionReason(const std::string& by_model, int by_priority);

// What the arbiter has the grid do to other instances to free bytes.
// SwapOutInstance and EvictInstance return OK when the instance's bytes went
// back to the ledger (the action itself updates the ledger), else an error
// (e.g. the instance turned busy): the arbiter then plans again.
// PreemptInstance frees nothing at once: the bytes come back later, through
// MemoryArbiter::Return.
class ArbiterActions {
 public:
  virtual ~ArbiterActions() = default;
  // Moves an idle instance's weights to the host tier (ledger SwapOut).
  virtual Status SwapOutInstance(const std::string& instance, const std::string& reason) = 0;
  // Unloads an idle (or swapped-out) instance; its model goes back to
  // standby (ledger Remove; its worker's context too when the worker stops).
  virtual Status EvictInstance(const std::string& instance, const std::string& reason) = 0;
  // Fails `instance`'s batch in flight early so that its grant comes back
  // (resolver `priority`, stage 3 of memory::PlanReclaim). The arbiter asks
  // only for busy instances of strictly lower priority than the requester
  // that hold a grant on the device, never for pinned instances nor the
  // requester itself, and at most once per batch while its grant is not
  // back. The grid has the instance's worker lower its cap to its request
  // now (WorkerClient::SetLimit(model, request_bytes, preemption.reason)),
  // which also gives its cached-but-unused bytes back, so that the batch
  // fails at its next allocation past its request; it must not wait for the
  // batch (its exec lock is held by it) nor touch the ledger: the grant
  // comes back through MemoryArbiter::Return when the batch ends, as every
  // grant does. Returns OK when the cap was lowered; an error when the
  // instance cannot be preempted (no worker, isolation `none`, not busy any
  // more, the worker's error): the arbiter then waits for its batch to end,
  // and does not ask again for that instance during this collision. The
  // default (a grid that does not preempt): kUnsupported.
  virtual Status PreemptInstance(const std::string& instance, const Preemption& preemption);
};

// Run-time facts of one instance that the ledger does not keep.
struct InstanceRuntime {
  std::string model;
  bool busy = false;              // a batch (or swap) in flight
  ArbiterClock::time_point last_used{};
  ArbiterClock::time_point loaded_at{};
  double reload_cost_s = 1.0;     // measured load (or swap-in) time
};

// Collision outcomes per model, by "resolver/outcome".
using CollisionCounts = std::map<std::string, std::map<std::string, uint64_t>>;

class MemoryArbiter {
 public:
  // `actions` is not owned and must outlive the arbiter. `swap_possible`:
  // the host tier exists (its capacity is set with the ledger's
  // SetHostCapacity through WithLedger).
  MemoryArbiter(memory::LedgerOptions ledger_options, memory::ReclaimOptions reclaim,
                ArbiterActions* actions, bool swap_possible);

  // Runs `f` on the ledger under the arbiter's lock and wakes waiters
  // afterwards (bytes may have come back). `f` must not call the arbiter.
  template <typename F>
  auto WithLedger(F&& f) {
    std::unique_lock<std::mutex> lock(mu_);
    struct Notify {
      std::condition_variable& cv;
      ~Notify() { cv.notify_all(); }
    } notify{cv_};
    return f(ledger_);
  }

  // Registers or updates an instance's run-time facts; Forget drops them.
  void Track(const std::string& instance, InstanceRuntime runtime);
  void Forget(const std::string& instance);
  // Marks `instance` busy (a batch starts) or idle (it ended, now = last
  // use). A batch that starts forgets the preemption recorded for the one
  // before (TakePreemption).
  void SetBusy(const std::string& instance, bool busy);
  // Marks `instance` resident from now (loaded or swapped in).
  void SetResident(const std::string& instance, double reload_cost_s);

  // Grants `instance` `bytes` past its request for one burst, settling a
  // collision with its resolver until `deadline` (nullopt: no deadline).
  // Returns the bytes granted (a multiple of the chunk, >= bytes; 0 for 0).
  // Errors: kResourceExhausted with a MemoryLimitDetail when `bytes` exceed
  // the instance's limit room (no waiting helps); kResourceExhausted with a
  // CollisionDetail naming the model, the bytes asked and the holders when
  // the deadline passed first; the ledger's other errors.
  Result<uint64_t> Grant(const std::string& instance, uint64_t bytes,
                         std::optional<ArbiterClock::time_point> deadline);
  // Gives a grant back (the burst ended) and wakes waiters.
  void Return(const std::string& instance, uint64_t bytes);

  // The preemption of `instance`'s batch (ArbiterActions::PreemptInstance)
  // recorded since that batch began, and forgets it; nullopt when there was
  // none. The grid calls it when a batch of the instance has ended (after
  // Return, before its next SetBusy(true)): a batch that failed with
  // kResourceExhausted while a preemption is recorded is answered 507
  // naming the preempter (CollisionDetail::preempted_by) and is not
  // retried; a batch that succeeded anyway ignores it.
  std::optional<Preemption> TakePreemption(const std::string& instance);

  // Brings a swapped instance's request back onto its device in the ledger,
  // settling a collision with its resolver (a `wait` model waits, a `swap`
  // model swaps out idle others: time-sharing). Errors as Grant.
  Status SwapIn(const std::string& instance, std::optional<ArbiterClock::time_point> deadline);

  // Admits an instance being loaded on demand on `device`, evicting idle
  // least-recently-used instances there (memory::ChooseEvictions: swapped
  // when their resolver is swap and the host tier has room, else unloaded;
  // when swap-outs cannot make room, e.g. because swapped-out instances
  // keep their workers' contexts in `model` isolation, planned again with
  // unloads only, swapped-out instances included, which free those
  // contexts) until `account.request_bytes` plus `context_bytes` (a new
  // worker's context, charged to `worker_key`; 0 = none) fit, or waiting for
  // bytes until `deadline`. Errors: kResourceExhausted with a
  // CollisionDetail when the deadline passed first; the ledger's other
  // errors.
  Status AdmitWithRoom(const memory::InstanceAccount& account, const std::string& worker_key,
                       uint64_t context_bytes, std::optional<ArbiterClock::time_point> deadline);

  // Counts of collisions so far, per model and "resolver/outcome". Outcomes:
  // "granted" (bytes came back by themselves), "reclaimed" (others were
  // swapped out or unloaded), "preempted" (a lower-priority batch in flight
  // was preempted for it), "timed_out"; resolver "evict" for on-demand
  // admissions.
  CollisionCounts Collisions() const;

 private:
  enum class Need { kGrant, kSwapIn, kAdmit };
  // One try under the lock: OK, a collision to settle (plan filled), or a
  // final error.
  Status TryOnce(Need need, const std::string& instance, uint64_t bytes,
                 const memory::InstanceAccount* account, const std::string& worker_key,
                 uint64_t context_bytes, uint64_t* granted);
  // The loop shared by Grant, SwapIn and AdmitWithRoom.
  Status Settle(Need need, const std::string& instance, const std::string& model,
                const std::string& device, uint64_t bytes,
                const memory::InstanceAccount* account, const std::string& worker_key,
                uint64_t context_bytes, std::optional<ArbiterClock::time_point> deadline,
                uint64_t* granted);
  std::vector<memory::InstanceFacts> FactsLocked(const memory::DeviceLedger& snapshot) const;
  void CountLocked(const std::string& model, const std::string& key);
  // True while `instance` has a preemption whose grant has not come back.
  bool PendingPreemptionLocked(const std::string& instance) const;

  memory::ReclaimOptions reclaim_;
  ArbiterActions* const actions_;
  const bool swap_possible_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  memory::MemoryLedger ledger_;
  std::map<std::string, InstanceRuntime> runtime_;
  CollisionCounts collisions_;
  // Preemptions per victim instance until TakePreemption (or its next
  // batch, or Forget). `pending` until its grant is back (Return) or its
  // batch ended (SetBusy false): a pending victim is not preempted again
  // and its grant counts as coming for the waiters on its device.
  struct PreemptionRecord {
    Preemption what;
    bool pending = true;
  };
  std::map<std::string, PreemptionRecord> preemptions_;
};

}  // namespace modelgrid::grid_internal

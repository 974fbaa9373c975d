// The memory arbiter of the grid (docs/design.md, "Memory model"): the one
// owner of the device memory ledger (modelgrid/memory/ledger.h) at run time.
// Executors ask it for bytes past their instance's request (grants), for the
// bytes of a swap-in and for room for an on-demand load; when the ledger
// cannot give them from free bytes (a collision), the arbiter settles it with
// the asking model's resolver (modelgrid/memory/reclaim.h): `wait` blocks
// until bytes come back or the deadline passes, `priority` and `swap` have
// the grid swap out or evict other instances through ArbiterActions, then
// ask again. Internal to the grid component.
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

// What the arbiter has the grid do to other instances to free bytes. Each
// returns OK when the instance's bytes went back to the ledger (the action
// itself updates the ledger), else an error (e.g. the instance turned busy):
// the arbiter then plans again.
class ArbiterActions {
 public:
  virtual ~ArbiterActions() = default;
  // Moves an idle instance's weights to the host tier (ledger SwapOut).
  virtual Status SwapOutInstance(const std::string& instance, const std::string& reason) = 0;
  // Unloads an idle instance; its model goes back to standby (ledger Remove).
  virtual Status EvictInstance(const std::string& instance, const std::string& reason) = 0;
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
  // Marks `instance` busy (a batch starts) or idle (it ended, now = last use).
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

  // Brings a swapped instance's request back onto its device in the ledger,
  // settling a collision with its resolver (a `wait` model waits, a `swap`
  // model swaps out idle others: time-sharing). Errors as Grant.
  Status SwapIn(const std::string& instance, std::optional<ArbiterClock::time_point> deadline);

  // Admits an instance being loaded on demand on `device`, evicting idle
  // least-recently-used instances there (memory::ChooseEvictions: swapped
  // when their resolver is swap and the host tier has room, else unloaded)
  // until `account.request_bytes` plus `context_bytes` (a new worker's
  // context, charged to `worker_key`; 0 = none) fit, or waiting for bytes
  // until `deadline`. Errors: kResourceExhausted with a CollisionDetail when
  // the deadline passed first; the ledger's other errors.
  Status AdmitWithRoom(const memory::InstanceAccount& account, const std::string& worker_key,
                       uint64_t context_bytes, std::optional<ArbiterClock::time_point> deadline);

  // Counts of collisions so far, per model and "resolver/outcome".
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

  memory::ReclaimOptions reclaim_;
  ArbiterActions* const actions_;
  const bool swap_possible_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  memory::MemoryLedger ledger_;
  std::map<std::string, InstanceRuntime> runtime_;
  CollisionCounts collisions_;
};

}  // namespace modelgrid::grid_internal

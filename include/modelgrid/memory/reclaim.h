// How a collision on a device is settled (docs/design.md, "Memory model",
// resolvers) and which instances to evict to load a cold model: pure
// decisions over a ledger snapshot (ledger.h) and runtime facts the caller
// supplies. Nothing here changes the ledger, sleeps or reads a clock; the
// caller applies a plan in order:
//   kShrinkCache — the worker releases `bytes` of cached-but-unused memory,
//                  then MemoryLedger::Return(instance, bytes);
//   kSwapOut     — the worker moves the weights to pinned host memory, then
//                  MemoryLedger::SwapOut(instance);
//   kUnload      — the instance is unloaded, then MemoryLedger::Remove;
//   kPreempt     — the instance's batch in flight fails with HTTP 507 /
//                  RESOURCE_EXHAUSTED naming the preemptor
//                  (CollisionDetail::preempted_by), then
//                  MemoryLedger::Return(instance, bytes).
// A plan that says `wait` takes nothing: the requester queues until bytes
// free up, bounded by its request's timeout (resolver wait), or fails.
//
// Rules every plan keeps:
//   - pinned instances, the requester itself, swapped-out instances and
//     instances without facts are never touched (one exception: an
//     unloads-only ChooseEvictions may unload a swapped-out instance whose
//     unload frees its worker's context, EvictionMode::kUnloadOnly);
//   - an instance loaded less than `min_residency` ago is never swapped out
//     or unloaded (no thrashing); shrinking its cache or preempting its burst
//     evicts nothing and stays allowed;
//   - swap-outs together fit the snapshot's host_free_bytes (each moves its
//     request there); one that would not fit is unloaded instead, or skipped
//     by the swap resolver;
//   - actions are taken in order and the plan stops as soon as the shortfall
//     is covered, so it frees at most the shortfall plus one action's bytes;
//   - when everything the rules allow cannot cover the shortfall, the plan
//     is `wait` with no actions (nothing is taken for nothing).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "modelgrid/memory/ledger.h"
#include "modelgrid/repository.h"

namespace modelgrid::memory {

// Times on the steady clock, supplied by the caller.
using ReclaimTime = std::chrono::steady_clock::time_point;

// What the ledger does not know about an instance: its runtime state now.
struct InstanceFacts {
  std::string instance;           // "model#replica", as in the ledger
  bool idle = true;               // no batch in flight
  uint64_t busy_burst_bytes = 0;  // granted bytes a batch in flight is using (bytes)
  uint64_t cached_bytes = 0;      // granted bytes reserved but unused, e.g. the CUDA
                                  // caching allocator's cache above the request (bytes);
                                  // counted only up to the instance's grant
  ReclaimTime last_used{};        // end of its last batch (or its load)
  ReclaimTime loaded_at{};        // when it became resident
  bool can_swap = false;          // the model supports swapping (the planners also
                                  // check the snapshot's host_free_bytes, swaps summed)
  double reload_cost_s = 1.0;     // estimated seconds to bring it back (load or swap in)
  // Bytes an unload frees beyond the instance's own (its worker's context,
  // when the worker goes with it: one worker per instance); a swap-out keeps
  // the worker and frees none of them.
  uint64_t unload_extra_bytes = 0;
};

// Who needs bytes on the snapshot's device.
struct Requester {
  std::string instance;  // "model#replica"; may be absent from the snapshot (cold load)
  int priority = 0;
  Resolver resolver = Resolver::kWait;
  uint64_t asked_bytes = 0;  // what it wants from the device; the plan frees
                             // the shortfall (ReclaimPlan)
  ReclaimTime now{};
};

// Tunables of the planners.
struct ReclaimOptions {
  // Instances resident for less than this are never swapped out or unloaded.
  std::chrono::nanoseconds min_residency = std::chrono::seconds(5);
};

enum class ReclaimKind { kShrinkCache, kSwapOut, kUnload, kPreempt };

// "shrink-cache", "swap-out", "unload", "preempt".
const char* ReclaimKindName(ReclaimKind kind);

// One step of a plan: what to do to `instance` and the device bytes it frees.
struct ReclaimAction {
  std::string instance;
  ReclaimKind kind = ReclaimKind::kShrinkCache;
  uint64_t bytes = 0;

  bool operator==(const ReclaimAction&) const = default;
};

// The decision. When `wait` is false, applying `actions` in order frees
// `freed_bytes` ≥ `shortfall_bytes` on the device (both 0 and no actions when
// the asked bytes are already free).
struct ReclaimPlan {
  bool wait = false;
  std::vector<ReclaimAction> actions;
  // asked + held − capacity at the snapshot (0 when it fits): asked − free,
  // plus, on a device whose capacity was lowered under what it holds, the
  // excess, which must go before anything new fits.
  uint64_t shortfall_bytes = 0;
  uint64_t freed_bytes = 0;  // Σ actions' bytes
  std::string reason;        // why it waits ("" otherwise), for logs and errors
};

// Settles `requester`'s collision on `snapshot`'s device by its resolver:
//   kWait     — takes nothing: wait (unless the asked bytes are free).
//   kPriority — only from instances of strictly lower priority, in stages:
//               1. their cached-but-unused bytes (kShrinkCache);
//               2. idle ones, swapped out (kSwapOut) when they can swap and
//                  the host tier has room, else unloaded (kUnload), each
//                  freeing what it still holds on the device;
//               3. a burst in flight preempted (kPreempt), freeing its burst.
//               Within a stage: lowest priority first, then least recently
//               used, then instance name. Equal or higher priorities are
//               never touched; if the lower ones cannot cover, wait.
//   kSwap     — idle instances of any priority that can swap (and fit the
//               host tier), swapped out least recently used first (then by
//               name), each freeing request + grant; wait if not enough.
// `facts` lists the device's instances' runtime facts (others are ignored).
ReclaimPlan PlanReclaim(const DeviceLedger& snapshot, const std::vector<InstanceFacts>& facts,
                        const Requester& requester, const ReclaimOptions& options = {});

// The eviction score of ChooseEvictions (higher goes first):
//   idle seconds × bytes freed / max(reload_cost_s, 0.001)
// Least recently used first, weighed by how much it frees and how cheap it is
// to bring back: an instance idle twice as long, or twice as large, or twice
// as cheap to reload is twice as good a victim. idle seconds = now −
// last_used, 0 when last_used is in the future; a reload cost below 1 ms (or
// NaN) counts as 1 ms. A product keeps it one number, so no weight needs
// tuning, and it is deterministic for the same inputs.
double EvictionScore(const InstanceFacts& facts, uint64_t bytes_freed, ReclaimTime now);

// How ChooseEvictions may free an instance.
enum class EvictionMode {
  // Swapped out when its resolver is kSwap, it can swap and the host tier
  // has room, else unloaded; swapped-out instances are not candidates.
  kSwapWhenPossible,
  // Every victim unloaded (freeing its worker's context too,
  // InstanceFacts::unload_extra_bytes), and swapped-out instances whose
  // unload frees such a context are candidates as well: in `model`
  // isolation a swapped-out instance keeps its worker, so its context stays
  // charged to the device until it is unloaded.
  kUnloadOnly,
};

// Chooses instances of `snapshot`'s device to evict so a cold model's
// `asked_bytes` fit (the plan frees the shortfall, see ReclaimPlan).
// Candidates: idle, not pinned, with facts, loaded at least `min_residency`
// before `now`, and resident (kUnloadOnly: or swapped out with
// unload_extra_bytes > 0). Order: EvictionScore (of the bytes each frees)
// descending, then older last_used, then instance name. With
// kSwapWhenPossible each is kSwapOut when its resolver is kSwap, it can swap
// and the host tier has room for its request (swaps summed), freeing its
// request + grant, else kUnload, freeing request + grant +
// unload_extra_bytes; with kUnloadOnly each is kUnload (a swapped-out one
// frees its unload_extra_bytes only). Stops as soon as the shortfall is
// covered; wait when the candidates cannot.
ReclaimPlan ChooseEvictions(const DeviceLedger& snapshot, const std::vector<InstanceFacts>& facts,
                            uint64_t asked_bytes, ReclaimTime now,
                            const ReclaimOptions& options = {},
                            EvictionMode mode = EvictionMode::kSwapWhenPossible);

}  // namespace modelgrid::memory

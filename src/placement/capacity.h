// Per-device capacity bookkeeping shared by every strategy (docs/design.md,
// "Memory model"):
//
//   committed(d) = used_by_others + buffer + context × workers + Σ requests
//   room(d)      = total − committed(d)
//
// where workers depends on the isolation mode: model — one per instance on
// d; device — one when d holds at least one instance; none — zero. Placing an
// item charges its request plus, when it starts a new worker, one context.
// The state also enforces the hard constraints: pins, replica anti-affinity
// and the CPU-fallback bound. Not thread-safe; strategies own their copy.
#pragma once

#include <compare>
#include <cstdint>
#include <vector>

#include "placement/problem.h"

namespace modelgrid::placement {

// What every strategy maximizes, compared lexicographically: instances
// placed first, then bytes placed.
struct Objective {
  int count = 0;       // instances placed
  uint64_t bytes = 0;  // sum of their requests
  auto operator<=>(const Objective&) const = default;
};

class CapacityState {
 public:
  // Starts with nothing placed. `problem` must outlive the state.
  explicit CapacityState(const Problem& problem);

  const Problem& problem() const { return *p_; }

  // Bytes still free on `d` for requests and new contexts (0 when the device
  // is already over-committed by others, see Over()).
  uint64_t Room(int d) const;
  // True when used_by_others + buffer (+ contexts) already exceed the total.
  bool Over(int d) const { return Committed(d) > p_->device(d).total_bytes; }
  // Committed bytes on `d`, as DeviceUsage::committed() will report them.
  uint64_t Committed(int d) const { return committed_[d]; }
  // True when placing one more instance on `d` starts a new worker process.
  bool AddsWorker(int d) const;
  // Context bytes one more instance on `d` adds (0 or Device::context_bytes).
  uint64_t NewContextBytes(int d) const;
  // Bytes placing `item` on `d` charges: request + NewContextBytes(d).
  uint64_t Charge(int item, int d) const;

  // The hard constraints, each alone.
  bool Allowed(int item, int d) const { return p_->items[item].allowed[d] != 0; }
  bool HoldsSibling(int item, int d) const;  // another replica of its model is on d
  bool CpuFull(int d) const;                 // d is a fallback CPU and the bound is reached
  bool FitsBytes(int item, int d) const { return !Over(d) && Charge(item, d) <= Room(d); }
  // All of the above: `item` (unplaced) may go on `d` now.
  bool CanPlace(int item, int d) const {
    return Allowed(item, d) && FitsBytes(item, d) && !CpuFull(d) && !HoldsSibling(item, d);
  }

  // Places an unplaced item; the caller checked CanPlace.
  void Place(int item, int d);
  // Takes a placed item off its device.
  void Remove(int item);

  // Reading the state back.
  int DeviceOf(int item) const { return assign_[item]; }          // -1 when unplaced
  const std::vector<int>& assignment() const { return assign_; }  // per item: DeviceOf
  int Instances(int d) const { return instances_[d]; }            // instances on d
  int Workers(int d) const;                                       // worker processes charged on d
  uint64_t ModelBytes(int d) const { return model_bytes_[d]; }    // Σ requests on d
  double Load(int d) const { return load_[d]; }                   // Σ expected_load on d
  int LatencySensitive(int d) const { return latency_sensitive_[d]; }  // such instances on d
  int CpuInstances() const { return cpu_instances_; }                  // instances on fallback CPUs
  Objective objective() const { return {count_, bytes_}; }

 private:
  uint64_t ComputeCommitted(int d) const;

  const Problem* p_;
  std::vector<int> assign_;
  std::vector<uint64_t> committed_;  // per device, see Committed()
  std::vector<int> instances_;
  std::vector<uint64_t> model_bytes_;
  std::vector<double> load_;
  std::vector<int> latency_sensitive_;
  std::vector<int> model_on_device_;  // [model * num_devices + d] instance count
  int cpu_instances_ = 0;
  int count_ = 0;
  uint64_t bytes_ = 0;
};

// --- inline definitions: these run in every strategy's innermost loop ---

inline int CapacityState::Workers(int d) const {
  switch (p_->options.isolation) {
    case Isolation::kModel:
      return instances_[d];
    case Isolation::kDevice:
      return instances_[d] > 0 ? 1 : 0;
    case Isolation::kNone:
      return 0;
  }
  return 0;
}

inline uint64_t CapacityState::Room(int d) const {
  const uint64_t total = p_->device(d).total_bytes;
  return committed_[d] >= total ? 0 : total - committed_[d];
}

inline bool CapacityState::AddsWorker(int d) const {
  switch (p_->options.isolation) {
    case Isolation::kModel:
      return true;
    case Isolation::kDevice:
      return instances_[d] == 0;
    case Isolation::kNone:
      return false;
  }
  return false;
}

inline uint64_t CapacityState::NewContextBytes(int d) const {
  return AddsWorker(d) ? p_->device(d).context_bytes : 0;
}

inline uint64_t CapacityState::Charge(int item, int d) const {
  return SatAdd(p_->items[item].request, NewContextBytes(d));
}

inline bool CapacityState::HoldsSibling(int item, int d) const {
  const size_t m = static_cast<size_t>(p_->items[item].model_id);
  return model_on_device_[m * p_->num_devices() + d] > 0;
}

inline bool CapacityState::CpuFull(int d) const {
  return p_->is_fallback[d] && p_->cpu_limit >= 0 && cpu_instances_ >= p_->cpu_limit;
}

}  // namespace modelgrid::placement

// The planner: which instance goes on which device (docs/design.md, "Placement
// strategies", "Memory model").
//
// Capacity of a device for placement =
//   total − used by others − buffer − context × (worker processes placed there)
// where the number of worker processes depends on the isolation mode:
//   model  — one per instance placed on the device;
//   device — one per device that holds at least one instance;
//   none   — zero (instances run inside the frontend process).
// Placement packs each instance's *request* bytes. No device is ever
// over-committed: sum(requests) + contexts + buffer + used ≤ total.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/device.h"
#include "modelgrid/status.h"

namespace modelgrid {

enum class Strategy {
  kFillFirst,         // first-fit decreasing: fill a device before using the next
  kBalance,           // worst-fit: spread memory and expected load evenly
  kMemoryOptimized,   // best-fit decreasing, then local improvement toward the optimum
  kLatencySensitive,  // keep latency-sensitive / busy models on different devices
  kOptimal,           // branch and bound within a time budget (best found when it runs out)
};

enum class Isolation { kModel, kDevice, kNone };

// "fill-first", "balance", "memory-optimized", "latency-sensitive", "optimal".
const char* StrategyName(Strategy s);
// Errors: kInvalidArgument listing the valid names.
Result<Strategy> ParseStrategy(const std::string& name);
// "model", "device", "none".
const char* IsolationName(Isolation i);
Result<Isolation> ParseIsolation(const std::string& name);

// One instance to place.
struct PlacementItem {
  std::string model;                 // model name
  int replica = 0;                   // 0..replicas-1; replicas of a model never share a device
  uint64_t request_bytes = 0;        // what placement packs
  std::vector<std::string> allowed;  // device ids it may use (pins); empty = any
  int priority = 0;
  bool latency_sensitive = false;
  double expected_load = 0.0;        // requests per second, for balance / latency-sensitive
};

struct PlanOptions {
  Strategy strategy = Strategy::kMemoryOptimized;
  Isolation isolation = Isolation::kModel;
  uint64_t buffer_bytes = 0;  // kept free on every accelerator device
  // Most instances that may go to CPU devices when accelerators exist
  // (CPU fallback). -1 = no bound. When the CPU is the only device, it is not
  // a fallback and this bound does not apply.
  int max_cpu_models = -1;
  // Time budget of the optimal strategy (and of memory-optimized's improvement step).
  std::chrono::milliseconds time_budget{2000};
};

// An instance placed on a device.
struct Assignment {
  std::string model;
  int replica = 0;
  std::string device;        // Device::id
  uint64_t request_bytes = 0;
};

// An instance that fits nowhere, with the reason (e.g. "needs 90.00 GiB,
// largest free capacity 79.50 GiB on sim:a100#0").
struct Unplaced {
  std::string model;
  int replica = 0;
  uint64_t request_bytes = 0;
  std::string reason;
  // The model's estimate failed (PlanRepository): it was never offered to the
  // planner, so it failed rather than did not fit.
  bool estimate_failed = false;
};

// What a device holds after planning.
struct DeviceUsage {
  std::string device;            // Device::id
  uint64_t total_bytes = 0;
  uint64_t used_by_others = 0;
  uint64_t buffer_bytes = 0;
  uint64_t context_bytes = 0;    // contexts charged (per-process context × workers)
  uint64_t model_bytes = 0;      // sum of placed requests
  int workers = 0;               // worker processes charged
  std::vector<std::string> models;  // "name" or "name#replica" when replicas > 1

  // Bytes committed: used_by_others + buffer + contexts + model requests.
  uint64_t committed() const { return used_by_others + buffer_bytes + context_bytes + model_bytes; }
};

struct Plan {
  Strategy strategy = Strategy::kMemoryOptimized;
  Isolation isolation = Isolation::kModel;
  std::vector<Assignment> placed;
  std::vector<Unplaced> unplaced;
  std::vector<DeviceUsage> devices;  // same order as the input devices
  bool optimal_proven = false;       // optimal strategy finished within its budget
};

// Places `items` on `devices` with `options.strategy`. Deterministic for the
// same inputs (except the optimal strategy when its time budget runs out).
// Errors: kInvalidArgument for an empty device list, duplicate device ids or
// duplicate (model, replica) items. Items that fit nowhere are not errors:
// they are listed in Plan::unplaced with the reason.
Result<Plan> MakePlan(const std::vector<Device>& devices, const std::vector<PlacementItem>& items,
                      const PlanOptions& options);

}  // namespace modelgrid

// The planner's internal view of one planning request: devices and items
// resolved to dense indices, pins resolved to per-device flags, and the CPU
// fallback rule decided once. Built by BuildProblem after MakePlan has
// validated its inputs; read-only afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modelgrid/device.h"
#include "modelgrid/placement.h"

namespace modelgrid::placement {

// One instance to place, as the strategies see it.
struct Item {
  int index = 0;     // position in MakePlan's `items`
  int model_id = 0;  // dense id of PlacementItem::model; replicas share it
  int replica = 0;
  uint64_t request = 0;  // bytes packed (PlacementItem::request_bytes)
  // allowed[d] != 0 when the item may use device d (pins resolved; a pin
  // naming no device allows nothing).
  std::vector<char> allowed;
  int priority = 0;
  bool latency_sensitive = false;
  double expected_load = 0.0;  // requests per second
};

// Everything a strategy needs, with indices into the caller's vectors.
struct Problem {
  const std::vector<Device>* devices = nullptr;
  const std::vector<PlacementItem>* inputs = nullptr;
  PlanOptions options;
  std::vector<Item> items;  // same order as `inputs`
  int num_models = 0;
  // Per model id: true when the model has more than one replica (it is then
  // displayed as "name#replica").
  std::vector<char> model_has_replicas;
  // Per model id: its items (indices into `items`), in input order.
  std::vector<std::vector<int>> model_items;

  // Per device: bytes kept free (the buffer applies to accelerators only).
  std::vector<uint64_t> buffer;
  // Devices a strategy packs first: the accelerators, or every device when
  // there is none (the CPU is then simply a device).
  std::vector<int> primary;
  // CPU devices that take what fits no accelerator (empty without accelerators).
  std::vector<int> fallback;
  std::vector<char> is_fallback;  // per device
  // Most instances on fallback devices; -1 = no bound. Always -1 when
  // there is no accelerator.
  int cpu_limit = -1;

  int num_devices() const { return static_cast<int>(devices->size()); }
  int num_items() const { return static_cast<int>(items.size()); }
  const Device& device(int d) const { return (*devices)[d]; }
};

// Builds the problem. Inputs must already be validated (non-empty devices,
// unique device ids, unique (model, replica)).
Problem BuildProblem(const std::vector<Device>& devices, const std::vector<PlacementItem>& items,
                     const PlanOptions& options);

// Saturating addition and multiplication on byte counts: absurd inputs
// (near 2^64 bytes) clamp instead of wrapping around.
inline uint64_t SatAdd(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }
inline uint64_t SatMul(uint64_t a, uint64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

}  // namespace modelgrid::placement

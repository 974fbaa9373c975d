// Random planning instances for the rapidcheck properties: devices (GPUs and
// sometimes a CPU), models with 1–3 replicas, pins (sometimes to ids that are
// not devices), every isolation mode, buffers and CPU-fallback bounds. Sizes
// are mostly multiples of 256 MiB so exact fits and ties are common.
#pragma once

#include <rapidcheck.h>

#include <string>
#include <vector>

#include "modelgrid/bytes.h"
#include "modelgrid/placement.h"

namespace modelgrid::testing {

// A uniform integer in [lo, hi): rapidcheck's inRange scales with the test
// size (small early cases); planning instances should be full-sized.
inline int Uniform(int lo, int hi) {
  return *rc::gen::resize(rc::kNominalSize, rc::gen::inRange(lo, hi));
}

struct Instance {
  std::vector<Device> devices;
  std::vector<PlacementItem> items;
  PlanOptions options;
};

// Draws an instance with up to `max_items` items and 1..`max_devices`
// devices. Call inside a rapidcheck property.
inline Instance DrawInstance(int max_items, int max_devices) {
  constexpr uint64_t kUnit = 256 * kMiB;
  Instance in;
  const int num_devices = Uniform(1, max_devices + 1);
  for (int d = 0; d < num_devices; ++d) {
    Device dev;
    const bool cpu = Uniform(0, 5) == 0;
    dev.kind = cpu ? DeviceKind::kCpu : DeviceKind::kSimulated;
    dev.id = (cpu ? "cpu" : "sim:g#") + std::to_string(d);
    dev.name = dev.id;
    dev.total_bytes = static_cast<uint64_t>(Uniform(2, 48)) * kUnit;
    if (Uniform(0, 4) == 0) dev.used_bytes = static_cast<uint64_t>(Uniform(0, 12)) * kUnit;
    dev.context_bytes = *rc::gen::element<uint64_t>(0, 128 * kMiB, 256 * kMiB, 512 * kMiB);
    in.devices.push_back(dev);
  }
  const int target = Uniform(0, max_items + 1);
  int model = 0;
  while (static_cast<int>(in.items.size()) < target) {
    const int replicas =
        std::min(target - static_cast<int>(in.items.size()), *rc::gen::element(1, 1, 1, 2, 3));
    uint64_t request = static_cast<uint64_t>(Uniform(0, 20)) * kUnit;
    if (Uniform(0, 4) == 0) request += Uniform(0, 100000);
    std::vector<std::string> allowed;
    if (Uniform(0, 5) == 0) {
      for (const Device& dev : in.devices) {
        if (*rc::gen::arbitrary<bool>()) allowed.push_back(dev.id);
      }
      if (Uniform(0, 3) == 0) allowed.push_back("cuda:9");
    }
    const bool latency_sensitive = Uniform(0, 4) == 0;
    const double load = Uniform(0, 3) == 0 ? Uniform(0, 100) : 0.0;
    for (int r = 0; r < replicas; ++r) {
      PlacementItem it;
      it.model = "m" + std::to_string(model);
      it.replica = r;
      it.request_bytes = request;
      it.allowed = allowed;
      it.latency_sensitive = latency_sensitive;
      it.expected_load = load;
      it.priority = Uniform(0, 3);
      in.items.push_back(it);
    }
    ++model;
  }
  in.options.isolation = *rc::gen::element(Isolation::kModel, Isolation::kDevice, Isolation::kNone);
  in.options.buffer_bytes = *rc::gen::element<uint64_t>(0, 0, 256 * kMiB, 1 * kGiB);
  in.options.max_cpu_models = *rc::gen::element(-1, 0, 1, 2);
  return in;
}

}  // namespace modelgrid::testing

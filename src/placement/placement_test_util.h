// Helpers shared by the planner tests: building devices and items in GiB,
// reading a plan back, and an independent checker of the memory model
// (written from docs/design.md, not from the planner's own bookkeeping).
#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "modelgrid/bytes.h"
#include "modelgrid/placement.h"

namespace modelgrid::testing {

// A simulated GPU of `total_gib` GiB with a per-worker context of `ctx_mib` MiB.
inline Device Gpu(const std::string& id, double total_gib, double ctx_mib = 0,
                  double used_gib = 0) {
  Device d;
  d.id = id;
  d.kind = DeviceKind::kSimulated;
  d.name = id;
  d.total_bytes = static_cast<uint64_t>(total_gib * kGiB);
  d.context_bytes = static_cast<uint64_t>(ctx_mib * kMiB);
  d.used_bytes = static_cast<uint64_t>(used_gib * kGiB);
  return d;
}

inline Device Cpu(double total_gib, double ctx_mib = 0, const std::string& id = "cpu") {
  Device d = Gpu(id, total_gib, ctx_mib);
  d.kind = DeviceKind::kCpu;
  return d;
}

inline PlacementItem Inst(const std::string& model, double gib, int replica = 0,
                          std::vector<std::string> allowed = {}) {
  PlacementItem it;
  it.model = model;
  it.replica = replica;
  it.request_bytes = static_cast<uint64_t>(gib * kGiB);
  it.allowed = std::move(allowed);
  return it;
}

// "model#replica" → device id, for every placed instance.
inline std::map<std::string, std::string> Where(const Plan& plan) {
  std::map<std::string, std::string> out;
  for (const Assignment& a : plan.placed) {
    out[a.model + "#" + std::to_string(a.replica)] = a.device;
  }
  return out;
}

inline uint64_t PlacedBytes(const Plan& plan) {
  uint64_t sum = 0;
  for (const Assignment& a : plan.placed) sum += a.request_bytes;
  return sum;
}

inline std::string FindReason(const Plan& plan, const std::string& model, int replica = 0) {
  for (const Unplaced& u : plan.unplaced) {
    if (u.model == model && u.replica == replica) return u.reason;
  }
  return "<placed>";
}

// Independent check of a plan against its inputs. Returns "" when the plan
// honours every rule, else what is wrong:
// - every item appears exactly once, placed or unplaced, with its bytes;
// - placed on an existing device its pins allow;
// - replicas of a model on distinct devices;
// - per device, used + buffer (accelerators) + context × workers + Σ
//   requests ≤ total, and Plan::devices reports exactly those figures;
// - at most max_cpu_models instances on CPUs when accelerators exist.
inline std::string CheckPlan(const std::vector<Device>& devices,
                             const std::vector<PlacementItem>& items, const PlanOptions& options,
                             const Plan& plan) {
  std::map<std::pair<std::string, int>, const PlacementItem*> by_key;
  for (const PlacementItem& it : items) by_key[{it.model, it.replica}] = &it;
  std::map<std::pair<std::string, int>, int> seen;
  std::map<std::string, const Device*> dev_by_id;
  for (const Device& d : devices) dev_by_id[d.id] = &d;
  std::map<std::string, uint64_t> bytes_on;
  std::map<std::string, int> count_on;
  std::set<std::pair<std::string, std::string>> model_device;
  const bool accelerators = std::any_of(devices.begin(), devices.end(),
                                        [](const Device& d) { return d.is_accelerator(); });
  int on_cpu = 0;
  for (const Assignment& a : plan.placed) {
    auto key = std::make_pair(a.model, a.replica);
    if (!by_key.count(key)) return "placed an unknown item " + a.model;
    ++seen[key];
    const PlacementItem& it = *by_key[key];
    if (a.request_bytes != it.request_bytes) return "bytes changed for " + a.model;
    if (!dev_by_id.count(a.device)) return "placed on unknown device " + a.device;
    if (!it.allowed.empty() &&
        std::find(it.allowed.begin(), it.allowed.end(), a.device) == it.allowed.end()) {
      return a.model + " placed on " + a.device + " against its pins";
    }
    if (!model_device.insert({a.model, a.device}).second) {
      return "two replicas of " + a.model + " on " + a.device;
    }
    bytes_on[a.device] += a.request_bytes;
    ++count_on[a.device];
    if (!dev_by_id[a.device]->is_accelerator()) ++on_cpu;
  }
  for (const Unplaced& u : plan.unplaced) {
    auto key = std::make_pair(u.model, u.replica);
    if (!by_key.count(key)) return "unplaced an unknown item " + u.model;
    ++seen[key];
    if (u.reason.empty()) return "no reason for unplaced " + u.model;
    if (u.request_bytes != by_key[key]->request_bytes) return "bytes changed for " + u.model;
  }
  for (const PlacementItem& it : items) {
    if (seen[{it.model, it.replica}] != 1) return it.model + " not reported exactly once";
  }
  if (plan.devices.size() != devices.size()) return "wrong number of DeviceUsage";
  for (size_t i = 0; i < devices.size(); ++i) {
    const Device& d = devices[i];
    const int n = count_on[d.id];
    int workers = 0;
    if (options.isolation == Isolation::kModel) workers = n;
    if (options.isolation == Isolation::kDevice) workers = n > 0 ? 1 : 0;
    const uint64_t buffer = d.is_accelerator() ? options.buffer_bytes : 0;
    const unsigned __int128 committed = static_cast<unsigned __int128>(d.used_bytes) + buffer +
                                        static_cast<unsigned __int128>(d.context_bytes) * workers +
                                        bytes_on[d.id];
    if (n > 0 && committed > d.total_bytes) return "device " + d.id + " over-committed";
    const DeviceUsage& u = plan.devices[i];
    if (u.device != d.id || u.model_bytes != bytes_on[d.id] || u.workers != workers ||
        u.context_bytes != d.context_bytes * workers || u.buffer_bytes != buffer ||
        u.models.size() != static_cast<size_t>(n) || u.total_bytes != d.total_bytes ||
        u.used_by_others != d.used_bytes) {
      return "DeviceUsage of " + d.id + " disagrees with the assignments";
    }
  }
  if (accelerators && options.max_cpu_models >= 0 && on_cpu > options.max_cpu_models) {
    return "too many instances on CPUs";
  }
  return "";
}

}  // namespace modelgrid::testing

#include "placement/report.h"

#include <algorithm>

#include "modelgrid/bytes.h"

namespace modelgrid::placement {
namespace {

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& s : parts) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// Free capacity of `d` for `item`'s request: room minus the context a new
// worker there would cost.
uint64_t FreeFor(const CapacityState& s, int item, int d) {
  if (s.Over(d)) return 0;
  const uint64_t room = s.Room(d);
  const uint64_t ctx = s.NewContextBytes(d);
  return room > ctx ? room - ctx : 0;
}

// "79.50 GiB (sim:a100#0)" or "79.00 GiB (sim:a100#0, after its 512.00 MiB
// worker context)".
std::string FreeText(const CapacityState& s, int item, int d) {
  std::string text = FormatBytes(FreeFor(s, item, d)) + " (" + s.problem().device(d).id;
  const uint64_t ctx = s.NewContextBytes(d);
  if (ctx > 0) text += ", after its " + FormatBytes(ctx) + " worker context";
  return text + ")";
}

// Free capacity when `d` holds nothing: total − used − buffer − one context.
uint64_t EmptyCapacity(const Problem& p, int d) {
  const Device& dev = p.device(d);
  const uint64_t ctx = p.options.isolation == Isolation::kNone ? 0 : dev.context_bytes;
  const uint64_t taken = SatAdd(SatAdd(dev.used_bytes, p.buffer[d]), ctx);
  return dev.total_bytes > taken ? dev.total_bytes - taken : 0;
}

std::string PinReason(const Problem& p, int item, std::vector<std::string>* unknown) {
  for (const std::string& id : (*p.inputs)[item].allowed) {
    bool known = false;
    for (int d = 0; d < p.num_devices() && !known; ++d) known = p.device(d).id == id;
    if (!known) unknown->push_back(id);
  }
  for (char a : p.items[item].allowed) {
    if (a) return "";
  }
  return "pinned to " + Join(*unknown) +
         (unknown->size() == 1 ? " which is not a device" : " which are not devices");
}

// "replica 1 cannot share a device with replica 0 and no other device fits
// (replica 0 is on sim:a#0; ...)".
std::string SiblingReason(const CapacityState& s, int item, const std::vector<int>& blocked) {
  const Problem& p = s.problem();
  const Item& it = p.items[item];
  std::vector<std::string> replicas, where;
  for (int d : blocked) {
    for (int j : p.model_items[it.model_id]) {
      if (s.DeviceOf(j) == d) {
        replicas.push_back(std::to_string(p.items[j].replica));
        where.push_back("replica " + replicas.back() + " is on " + p.device(d).id);
      }
    }
  }
  return "replica " + std::to_string(it.replica) + " cannot share a device with " +
         (replicas.size() == 1 ? "replica " : "replicas ") + Join(replicas) +
         " and no other device fits (" + Join(where) + ")";
}

}  // namespace

std::string UnplacedReason(const CapacityState& s, int item) {
  const Problem& p = s.problem();
  const Item& it = p.items[item];
  std::vector<std::string> unknown;
  std::string reason = PinReason(p, item, &unknown);
  if (!reason.empty()) return reason;

  const bool pinned = !(*p.inputs)[item].allowed.empty();
  int open_best = -1, any_best = -1, fits_open = -1;
  std::vector<int> sibling_blocked;
  bool cpu_blocked = false;
  uint64_t largest_empty = 0;
  for (int d = 0; d < p.num_devices(); ++d) {
    if (!s.Allowed(item, d)) continue;
    largest_empty = std::max(largest_empty, EmptyCapacity(p, d));
    const bool fits = s.FitsBytes(item, d);
    if (any_best < 0 || FreeFor(s, item, d) > FreeFor(s, item, any_best)) any_best = d;
    if (s.HoldsSibling(item, d)) {
      if (fits) sibling_blocked.push_back(d);
      continue;
    }
    if (s.CpuFull(d)) {
      cpu_blocked = cpu_blocked || fits;
      continue;
    }
    if (fits && fits_open < 0) fits_open = d;
    if (open_best < 0 || FreeFor(s, item, d) > FreeFor(s, item, open_best)) open_best = d;
  }

  const std::string needs = "needs " + FormatBytes(it.request);
  const std::string cpu_full =
      "CPU fallback full (max_cpu_models=" + std::to_string(p.cpu_limit) + ")";
  if (fits_open >= 0) {  // FillRemaining places such items; kept for safety
    reason = needs + " and fits " + p.device(fits_open).id + ", but the strategy left it out";
  } else if (!sibling_blocked.empty()) {
    reason = SiblingReason(s, item, sibling_blocked);
    reason.pop_back();  // the closing parenthesis: add the numbers first
    reason += "; " + needs;
    if (open_best >= 0)
      reason += ", largest free capacity elsewhere is " + FreeText(s, item, open_best);
    reason += ")";
    if (cpu_blocked) reason += "; " + cpu_full;
  } else if (cpu_blocked) {
    reason = needs;
    if (open_best >= 0)
      reason += ", largest free accelerator capacity is " + FreeText(s, item, open_best);
    reason += "; " + cpu_full;
  } else {
    const int d = open_best >= 0 ? open_best : any_best;
    reason = needs + ", largest free capacity " + (pinned ? "on its pinned devices " : "") + "is " +
             FreeText(s, item, d);
    if (it.request > largest_empty) {
      reason +=
          "; larger than any device it may use (" + FormatBytes(largest_empty) + " when empty)";
    }
  }
  if (!unknown.empty()) reason += "; pins that are not devices: " + Join(unknown);
  return reason;
}

Plan BuildPlan(const CapacityState& s, bool optimal_proven) {
  const Problem& p = s.problem();
  Plan plan;
  plan.strategy = p.options.strategy;
  plan.isolation = p.options.isolation;
  plan.optimal_proven = optimal_proven;
  for (int d = 0; d < p.num_devices(); ++d) {
    const Device& dev = p.device(d);
    DeviceUsage u;
    u.device = dev.id;
    u.total_bytes = dev.total_bytes;
    u.used_by_others = dev.used_bytes;
    u.buffer_bytes = p.buffer[d];
    u.workers = s.Workers(d);
    u.context_bytes = SatMul(dev.context_bytes, static_cast<uint64_t>(u.workers));
    u.model_bytes = s.ModelBytes(d);
    plan.devices.push_back(std::move(u));
  }
  for (int i = 0; i < p.num_items(); ++i) {
    const PlacementItem& in = (*p.inputs)[i];
    const int d = s.DeviceOf(i);
    if (d < 0) {
      plan.unplaced.push_back({in.model, in.replica, in.request_bytes, UnplacedReason(s, i)});
      continue;
    }
    plan.placed.push_back({in.model, in.replica, p.device(d).id, in.request_bytes});
    std::string name = in.model;
    if (p.model_has_replicas[p.items[i].model_id]) name += "#" + std::to_string(in.replica);
    plan.devices[d].models.push_back(std::move(name));
  }
  return plan;
}

}  // namespace modelgrid::placement

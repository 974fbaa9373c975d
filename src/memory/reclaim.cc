#include "modelgrid/memory/reclaim.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace modelgrid::memory {
namespace {

uint64_t Minus(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

// The bytes to free so that `asked` fit: asked + held − capacity. A device
// whose capacity was lowered under what it holds must first shed the excess,
// which free_bytes (0 there) does not show.
uint64_t Shortfall(const DeviceLedger& s, uint64_t asked) {
  if (s.held_bytes >= s.capacity_bytes) return s.held_bytes - s.capacity_bytes + asked;
  return Minus(asked, s.capacity_bytes - s.held_bytes);
}

// An instance of the snapshot with its facts.
struct Candidate {
  const InstanceView* view = nullptr;
  const InstanceFacts* facts = nullptr;
  const std::string& name() const { return view->account.instance; }
};

// The snapshot's instances that any plan may touch: resident (or swapped
// out too, with `swapped`), not pinned, with facts, not the requester
// (`exclude`).
std::vector<Candidate> Touchable(const DeviceLedger& snapshot,
                                 const std::vector<InstanceFacts>& facts,
                                 const std::string& exclude, bool swapped = false) {
  std::map<std::string, const InstanceFacts*> by_name;
  for (const InstanceFacts& f : facts) by_name.emplace(f.instance, &f);
  std::vector<Candidate> out;
  for (const InstanceView& v : snapshot.instances) {
    if ((v.swapped && !swapped) || v.account.pinned || v.account.instance == exclude) continue;
    auto it = by_name.find(v.account.instance);
    if (it == by_name.end()) continue;
    out.push_back(Candidate{&v, it->second});
  }
  return out;
}

// Resident for at least min_residency: may be swapped out or unloaded.
bool Evictable(const Candidate& c, ReclaimTime now, const ReclaimOptions& options) {
  return c.facts->idle && now - c.facts->loaded_at >= options.min_residency;
}

// Keeps the prefix of `all` that covers `plan.shortfall_bytes`, or makes
// `plan` wait (no actions) when all of them do not.
void Settle(std::vector<ReclaimAction> all, const std::string& what, ReclaimPlan& plan) {
  uint64_t total = 0;
  for (const ReclaimAction& a : all) total += a.bytes;
  if (total < plan.shortfall_bytes) {
    plan.wait = true;
    plan.reason = what + " can free " + FormatBytes(total) + " of the " +
                  FormatBytes(plan.shortfall_bytes) + " missing";
    return;
  }
  for (ReclaimAction& a : all) {
    if (plan.freed_bytes >= plan.shortfall_bytes) break;
    plan.freed_bytes += a.bytes;
    plan.actions.push_back(std::move(a));
  }
}

ReclaimPlan PlanPriority(const DeviceLedger& snapshot, const std::vector<InstanceFacts>& facts,
                         const Requester& requester, const ReclaimOptions& options,
                         ReclaimPlan plan) {
  std::vector<Candidate> lower;
  for (const Candidate& c : Touchable(snapshot, facts, requester.instance)) {
    if (c.view->account.priority < requester.priority) lower.push_back(c);
  }
  std::sort(lower.begin(), lower.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(a.view->account.priority, a.facts->last_used, a.name()) <
           std::tie(b.view->account.priority, b.facts->last_used, b.name());
  });
  std::vector<ReclaimAction> all;
  std::map<std::string, uint64_t> taken;  // bytes earlier stages took per instance
  // 1. Caches: granted bytes no batch uses.
  for (const Candidate& c : lower) {
    const uint64_t bytes = std::min(c.facts->cached_bytes, c.view->granted_bytes);
    if (bytes == 0) continue;
    all.push_back(ReclaimAction{c.name(), ReclaimKind::kShrinkCache, bytes});
    taken[c.name()] = bytes;
  }
  // 2. Idle instances, swapped out while the host tier has room, else unloaded.
  uint64_t host_room = snapshot.host_free_bytes;
  for (const Candidate& c : lower) {
    if (!Evictable(c, requester.now, options)) continue;
    const uint64_t bytes = Minus(c.view->device_bytes, taken[c.name()]);
    if (bytes == 0) continue;
    const uint64_t request = c.view->account.request_bytes;
    const bool swap = c.facts->can_swap && request <= host_room;
    if (swap) host_room -= request;
    const uint64_t freed = swap ? bytes : bytes + c.facts->unload_extra_bytes;
    all.push_back(
        ReclaimAction{c.name(), swap ? ReclaimKind::kSwapOut : ReclaimKind::kUnload, freed});
    taken[c.name()] += bytes;
  }
  // 3. Bursts in flight: their grant is taken back and their batch fails.
  for (const Candidate& c : lower) {
    if (c.facts->idle) continue;
    const uint64_t left = Minus(c.view->granted_bytes, taken[c.name()]);
    const uint64_t bytes = std::min(c.facts->busy_burst_bytes, left);
    if (bytes == 0) continue;
    all.push_back(ReclaimAction{c.name(), ReclaimKind::kPreempt, bytes});
  }
  Settle(std::move(all),
         "resolver priority: instances below priority " + std::to_string(requester.priority), plan);
  return plan;
}

ReclaimPlan PlanSwap(const DeviceLedger& snapshot, const std::vector<InstanceFacts>& facts,
                     const Requester& requester, const ReclaimOptions& options, ReclaimPlan plan) {
  std::vector<Candidate> idle;
  for (const Candidate& c : Touchable(snapshot, facts, requester.instance)) {
    if (c.facts->can_swap && Evictable(c, requester.now, options)) idle.push_back(c);
  }
  std::sort(idle.begin(), idle.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(a.facts->last_used, a.name()) < std::tie(b.facts->last_used, b.name());
  });
  std::vector<ReclaimAction> all;
  uint64_t host_room = snapshot.host_free_bytes;
  for (const Candidate& c : idle) {
    const uint64_t request = c.view->account.request_bytes;
    if (c.view->device_bytes == 0 || request > host_room) continue;
    host_room -= request;
    all.push_back(ReclaimAction{c.name(), ReclaimKind::kSwapOut, c.view->device_bytes});
  }
  Settle(std::move(all), "resolver swap: idle instances that can swap", plan);
  return plan;
}

}  // namespace

const char* ReclaimKindName(ReclaimKind kind) {
  switch (kind) {
    case ReclaimKind::kShrinkCache:
      return "shrink-cache";
    case ReclaimKind::kSwapOut:
      return "swap-out";
    case ReclaimKind::kUnload:
      return "unload";
    case ReclaimKind::kPreempt:
      return "preempt";
  }
  return "shrink-cache";
}

ReclaimPlan PlanReclaim(const DeviceLedger& snapshot, const std::vector<InstanceFacts>& facts,
                        const Requester& requester, const ReclaimOptions& options) {
  ReclaimPlan plan;
  plan.shortfall_bytes = Shortfall(snapshot, requester.asked_bytes);
  if (plan.shortfall_bytes == 0) return plan;
  switch (requester.resolver) {
    case Resolver::kWait:
      plan.wait = true;
      plan.reason = "resolver wait: takes nothing; " + FormatBytes(plan.shortfall_bytes) +
                    " missing on " + snapshot.device;
      return plan;
    case Resolver::kPriority:
      return PlanPriority(snapshot, facts, requester, options, std::move(plan));
    case Resolver::kSwap:
      return PlanSwap(snapshot, facts, requester, options, std::move(plan));
  }
  plan.wait = true;
  plan.reason = "unknown resolver";
  return plan;
}

double EvictionScore(const InstanceFacts& facts, uint64_t bytes_freed, ReclaimTime now) {
  const double idle_s =
      now > facts.last_used ? std::chrono::duration<double>(now - facts.last_used).count() : 0.0;
  // `!(x >= floor)` also catches NaN, which would break the sort's ordering.
  const double cost = !(facts.reload_cost_s >= 0.001) ? 0.001 : facts.reload_cost_s;
  return idle_s * static_cast<double>(bytes_freed) / cost;
}

ReclaimPlan ChooseEvictions(const DeviceLedger& snapshot, const std::vector<InstanceFacts>& facts,
                            uint64_t asked_bytes, ReclaimTime now, const ReclaimOptions& options,
                            EvictionMode mode) {
  ReclaimPlan plan;
  plan.shortfall_bytes = Shortfall(snapshot, asked_bytes);
  if (plan.shortfall_bytes == 0) return plan;
  const bool unload_only = mode == EvictionMode::kUnloadOnly;
  struct Scored {
    Candidate c;
    double score;
  };
  std::vector<Scored> victims;
  for (const Candidate& c : Touchable(snapshot, facts, "", /*swapped=*/unload_only)) {
    if (!Evictable(c, now, options)) continue;
    // What an unload frees on the device (a swap-out frees less: no context).
    const uint64_t unload_bytes = c.view->device_bytes + c.facts->unload_extra_bytes;
    if (unload_only ? unload_bytes == 0 : c.view->device_bytes == 0) continue;
    victims.push_back(
        Scored{c, EvictionScore(*c.facts, unload_only ? unload_bytes : c.view->device_bytes, now)});
  }
  std::sort(victims.begin(), victims.end(), [](const Scored& a, const Scored& b) {
    if (a.score != b.score) return a.score > b.score;
    return std::tie(a.c.facts->last_used, a.c.name()) < std::tie(b.c.facts->last_used, b.c.name());
  });
  std::vector<ReclaimAction> all;
  uint64_t host_room = snapshot.host_free_bytes;
  for (const Scored& s : victims) {
    const uint64_t request = s.c.view->account.request_bytes;
    const bool swap = !unload_only && s.c.view->account.resolver == Resolver::kSwap &&
                      s.c.facts->can_swap && request <= host_room;
    if (swap) host_room -= request;
    all.push_back(ReclaimAction{
        s.c.name(), swap ? ReclaimKind::kSwapOut : ReclaimKind::kUnload,
        s.c.view->device_bytes + (swap ? 0 : s.c.facts->unload_extra_bytes)});
  }
  Settle(std::move(all),
         unload_only ? "eviction (unloads only): idle instances past their minimum residency"
                     : "eviction: idle instances past their minimum residency",
         plan);
  return plan;
}

}  // namespace modelgrid::memory

// MemoryArbiter (arbiter.h): grants, swap-ins and on-demand admissions
// through the ledger, collisions settled by the asking model's resolver.
#include "grid/arbiter.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

namespace modelgrid::grid_internal {

namespace {

// A waiter looks again at least this often: an instance whose minimum
// residency ran out may have become evictable without any bytes coming back.
constexpr auto kReplanInterval = std::chrono::milliseconds{100};

std::string Holders(const CollisionDetail& c) {
  std::string out;
  for (const auto& h : c.holders) {
    out += (out.empty() ? "" : ", ") + h.instance + " (" + std::to_string(h.bytes) +
           " bytes, priority " + std::to_string(h.priority) + ")";
  }
  return out.empty() ? "worker contexts" : out;
}

}  // namespace

std::string PreemptionReason(const std::string& by_model, int by_priority) {
  return "preempted by model '" + by_model + "' (priority " + std::to_string(by_priority) + ")";
}

Status ArbiterActions::PreemptInstance(const std::string& instance, const Preemption&) {
  return Status::Unsupported("preempting the batch of " + instance +
                             " is not supported here: its grant comes back when it ends");
}

MemoryArbiter::MemoryArbiter(memory::LedgerOptions ledger_options, memory::ReclaimOptions reclaim,
                             ArbiterActions* actions, bool swap_possible)
    : reclaim_(reclaim), actions_(actions), swap_possible_(swap_possible),
      ledger_(ledger_options) {}

void MemoryArbiter::Track(const std::string& instance, InstanceRuntime runtime) {
  std::lock_guard<std::mutex> lock(mu_);
  runtime_[instance] = std::move(runtime);
}

void MemoryArbiter::Forget(const std::string& instance) {
  std::lock_guard<std::mutex> lock(mu_);
  runtime_.erase(instance);
  preemptions_.erase(instance);
  cv_.notify_all();
}

void MemoryArbiter::SetBusy(const std::string& instance, bool busy) {
  std::lock_guard<std::mutex> lock(mu_);
  if (busy) {
    preemptions_.erase(instance);  // a record is about the batch before
  } else if (auto p = preemptions_.find(instance); p != preemptions_.end()) {
    p->second.pending = false;
  }
  auto it = runtime_.find(instance);
  if (it == runtime_.end()) return;
  it->second.busy = busy;
  if (!busy) {
    it->second.last_used = ArbiterClock::now();
    cv_.notify_all();  // an idle instance may now be swapped out for a waiter
  }
}

void MemoryArbiter::SetResident(const std::string& instance, double reload_cost_s) {
  std::lock_guard<std::mutex> lock(mu_);
  InstanceRuntime& r = runtime_[instance];
  r.loaded_at = r.last_used = ArbiterClock::now();
  if (reload_cost_s > 0) r.reload_cost_s = reload_cost_s;
}

Result<uint64_t> MemoryArbiter::Grant(const std::string& instance, uint64_t bytes,
                                      std::optional<ArbiterClock::time_point> deadline) {
  if (bytes == 0) return uint64_t{0};
  std::string model, device;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto view = ledger_.Find(instance);
    if (!view) return Status::NotFound("no ledger account for instance '" + instance + "'");
    model = view->account.model;
    device = view->account.device;
  }
  uint64_t granted = 0;
  MG_RETURN_IF_ERROR(Settle(Need::kGrant, instance, model, device, bytes, nullptr, "", 0,
                            deadline, &granted));
  return granted;
}

void MemoryArbiter::Return(const std::string& instance, uint64_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  ledger_.Return(instance, bytes);
  if (auto p = preemptions_.find(instance); p != preemptions_.end()) {
    auto view = ledger_.Find(instance);
    if (!view || view->granted_bytes == 0) p->second.pending = false;
  }
  cv_.notify_all();
}

std::optional<Preemption> MemoryArbiter::TakePreemption(const std::string& instance) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = preemptions_.find(instance);
  if (it == preemptions_.end()) return std::nullopt;
  Preemption p = std::move(it->second.what);
  preemptions_.erase(it);
  return p;
}

bool MemoryArbiter::PendingPreemptionLocked(const std::string& instance) const {
  auto it = preemptions_.find(instance);
  return it != preemptions_.end() && it->second.pending;
}

Status MemoryArbiter::SwapIn(const std::string& instance,
                             std::optional<ArbiterClock::time_point> deadline) {
  std::string model, device;
  uint64_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto view = ledger_.Find(instance);
    if (!view) return Status::NotFound("no ledger account for instance '" + instance + "'");
    model = view->account.model;
    device = view->account.device;
    bytes = view->account.request_bytes;
  }
  return Settle(Need::kSwapIn, instance, model, device, bytes, nullptr, "", 0, deadline, nullptr);
}

Status MemoryArbiter::AdmitWithRoom(const memory::InstanceAccount& account,
                                    const std::string& worker_key, uint64_t context_bytes,
                                    std::optional<ArbiterClock::time_point> deadline) {
  return Settle(Need::kAdmit, account.instance, account.model, account.device,
                account.request_bytes + context_bytes, &account, worker_key, context_bytes,
                deadline, nullptr);
}

CollisionCounts MemoryArbiter::Collisions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return collisions_;
}

Status MemoryArbiter::TryOnce(Need need, const std::string& instance, uint64_t bytes,
                              const memory::InstanceAccount* account,
                              const std::string& worker_key, uint64_t context_bytes,
                              uint64_t* granted) {
  switch (need) {
    case Need::kGrant: {
      MG_ASSIGN_OR_RETURN(*granted, ledger_.Grant(instance, bytes));
      return Status::Ok();
    }
    case Need::kSwapIn: return ledger_.SwapIn(instance);
    case Need::kAdmit: {
      // Context and request together, or neither.
      if (context_bytes > 0 && ledger_.FreeBytes(account->device) < bytes) {
        // Let Admit describe the collision (holders, free bytes), asking for both.
        memory::InstanceAccount both = *account;
        both.request_bytes = bytes;
        both.limit_bytes = std::max(both.limit_bytes, bytes);
        Status s = ledger_.Admit(both);
        if (s.ok()) ledger_.Remove(both.instance);  // cannot happen: bytes were not free
        return s.ok() ? Status::ResourceExhausted("device " + account->device + " is full") : s;
      }
      MG_RETURN_IF_ERROR(ledger_.Admit(*account));
      if (context_bytes > 0) {
        Status c = ledger_.ChargeContext(account->device, worker_key, context_bytes);
        if (!c.ok()) {
          ledger_.Remove(account->instance);
          return c;
        }
      }
      return Status::Ok();
    }
  }
  return Status::Internal("unknown need");
}

std::vector<memory::InstanceFacts> MemoryArbiter::FactsLocked(
    const memory::DeviceLedger& snapshot) const {
  std::vector<memory::InstanceFacts> out;
  for (const auto& view : snapshot.instances) {
    auto it = runtime_.find(view.account.instance);
    if (it == runtime_.end()) continue;  // no facts: never touched
    memory::InstanceFacts f;
    f.instance = view.account.instance;
    f.idle = !it->second.busy;
    // A batch already preempted is not preempted again: its grant is coming.
    f.busy_burst_bytes =
        it->second.busy && !PendingPreemptionLocked(f.instance) ? view.granted_bytes : 0;
    f.last_used = it->second.last_used;
    f.loaded_at = it->second.loaded_at;
    f.can_swap = swap_possible_;
    f.reload_cost_s = it->second.reload_cost_s;
    // One worker per instance (isolation `model`): its worker is charged
    // under the instance's own key, and an unload stops it.
    for (const auto& ctx : snapshot.contexts) {
      if (ctx.worker == f.instance) f.unload_extra_bytes = ctx.bytes;
    }
    out.push_back(std::move(f));
  }
  return out;
}

void MemoryArbiter::CountLocked(const std::string& model, const std::string& key) {
  ++collisions_[model][key];
}

Status MemoryArbiter::Settle(Need need, const std::string& instance, const std::string& model,
                             const std::string& device, uint64_t bytes,
                             const memory::InstanceAccount* account,
                             const std::string& worker_key, uint64_t context_bytes,
                             std::optional<ArbiterClock::time_point> deadline,
                             uint64_t* granted) {
  std::unique_lock<std::mutex> lock(mu_);
  bool collided = false, reclaimed = false, preempted = false;
  // Instances whose preemption the grid declined during this collision: not
  // asked again (their batches end by themselves).
  std::set<std::string> declined;
  std::string resolver_name = ResolverName(Resolver::kWait);
  Status last;
  for (;;) {
    uint64_t got = 0;
    last = TryOnce(need, instance, bytes, account, worker_key, context_bytes, &got);
    if (last.ok()) {
      if (granted) *granted = got;
      if (collided) {
        CountLocked(model, resolver_name + (preempted   ? "/preempted"
                                            : reclaimed ? "/reclaimed"
                                                        : "/granted"));
      }
      return Status::Ok();
    }
    if (last.collision() == nullptr) return last;  // not a matter of free bytes
    const auto now = ArbiterClock::now();
    auto snapshot = ledger_.Snapshot(device);
    if (!snapshot.ok()) return snapshot.status();
    std::vector<memory::InstanceFacts> facts = FactsLocked(*snapshot);
    for (memory::InstanceFacts& f : facts) {
      if (declined.contains(f.instance)) f.busy_burst_bytes = 0;
    }
    memory::ReclaimPlan plan;
    int priority = 0;
    if (need == Need::kAdmit) {
      // Making room for a cold model: evict by bytes, whatever its resolver.
      resolver_name = "evict";
      plan = memory::ChooseEvictions(*snapshot, facts, bytes, now, reclaim_);
      if (plan.wait) {
        // Swap-outs keep the workers, and in `model` isolation each worker's
        // context stays charged to the device, also for the instances
        // swapped out before: they alone may never make room. Unloads free
        // the contexts too.
        memory::ReclaimPlan unloads = memory::ChooseEvictions(
            *snapshot, facts, bytes, now, reclaim_, memory::EvictionMode::kUnloadOnly);
        if (!unloads.wait) plan = std::move(unloads);
      }
    } else {
      auto view = ledger_.Find(instance);
      if (!view) return Status::NotFound("no ledger account for instance '" + instance + "'");
      resolver_name = ResolverName(view->account.resolver);
      priority = view->account.priority;
      // Grants of batches preempted already, not back yet, are coming: only
      // the rest is planned for (a preempted burst is not preempted again).
      uint64_t incoming = 0;
      for (const auto& v : snapshot->instances) {
        if (PendingPreemptionLocked(v.account.instance)) incoming += v.granted_bytes;
      }
      memory::Requester req;
      req.instance = instance;
      req.priority = priority;
      req.resolver = view->account.resolver;
      req.asked_bytes = bytes > incoming ? bytes - incoming : 0;
      req.now = now;
      plan = memory::PlanReclaim(*snapshot, facts, req, reclaim_);
    }
    collided = true;
    bool freed_any = false;
    if (!plan.wait && !plan.actions.empty()) {
      const std::string why = "to make room for " + instance + " on " + device;
      Preemption by;
      by.by_instance = instance;
      by.by_model = model;
      by.by_priority = priority;
      by.reason = PreemptionReason(model, priority);
      // Recorded before the grid acts, so that a batch failing at once finds
      // its record (TakePreemption) however fast its executor is.
      for (const auto& a : plan.actions) {
        if (a.kind != memory::ReclaimKind::kPreempt) continue;
        by.bytes = a.bytes;
        preemptions_[a.instance] = PreemptionRecord{by, true};
      }
      lock.unlock();
      std::vector<std::string> refused;
      for (const auto& a : plan.actions) {
        Status done;
        switch (a.kind) {
          case memory::ReclaimKind::kSwapOut: done = actions_->SwapOutInstance(a.instance, why); break;
          case memory::ReclaimKind::kUnload: done = actions_->EvictInstance(a.instance, why); break;
          case memory::ReclaimKind::kPreempt: {
            by.bytes = a.bytes;
            done = actions_->PreemptInstance(a.instance, by);
            if (done.ok()) {
              spdlog::info("{}: batch in flight {} ({} granted bytes) {}", a.instance, by.reason,
                           a.bytes, why);
              preempted = true;
            } else {
              refused.push_back(a.instance);
              spdlog::info("preempt of {} {}: {}", a.instance, why, done.ToString());
            }
            continue;  // its grant comes back when its batch ends: waited for below
          }
          // The ledger counts no cache past a grant (a CUDA worker gives its
          // cache back after every burst, and set_limit with a preemption):
          // FactsLocked reports none, so no plan shrinks one.
          case memory::ReclaimKind::kShrinkCache:
            continue;
        }
        if (done.ok()) {
          freed_any = true;
        } else {
          spdlog::info("{} of {} {}: {}", memory::ReclaimKindName(a.kind), a.instance, why,
                       done.ToString());
        }
      }
      lock.lock();
      for (const std::string& victim : refused) {
        declined.insert(victim);
        preemptions_.erase(victim);
      }
      if (freed_any) {
        reclaimed = true;
        continue;
      }
    }
    if (deadline && now >= *deadline) break;
    auto until = now + kReplanInterval;
    if (deadline && *deadline < until) until = *deadline;
    cv_.wait_until(lock, until);
  }
  CountLocked(model, resolver_name + "/timed_out");
  CollisionDetail detail = *last.collision();
  detail.model = model;
  detail.resolver = resolver_name;
  StatusDetail typed;
  const std::string holders = Holders(detail);
  const uint64_t free_bytes = detail.free_bytes;
  typed.collision = std::move(detail);
  return Status::ResourceExhausted("model '" + model + "': " + std::to_string(bytes) +
                                   " bytes on " + device + " could not be had before the "
                                   "deadline (resolver " + resolver_name + "): " +
                                   std::to_string(free_bytes) + " bytes free, held by " +
                                   holders)
      .WithDetail(std::move(typed));
}

}  // namespace modelgrid::grid_internal

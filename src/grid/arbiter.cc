// MemoryArbiter (arbiter.h): grants, swap-ins and on-demand admissions
// through the ledger, collisions settled by the asking model's resolver.
#include "grid/arbiter.h"

#include <algorithm>

#include <spdlog/spdlog.h>

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
  cv_.notify_all();
}

void MemoryArbiter::SetBusy(const std::string& instance, bool busy) {
  std::lock_guard<std::mutex> lock(mu_);
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
  cv_.notify_all();
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
    f.busy_burst_bytes = it->second.busy ? view.granted_bytes : 0;
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
  bool collided = false, reclaimed = false;
  std::string resolver_name = ResolverName(Resolver::kWait);
  Status last;
  for (;;) {
    uint64_t got = 0;
    last = TryOnce(need, instance, bytes, account, worker_key, context_bytes, &got);
    if (last.ok()) {
      if (granted) *granted = got;
      if (collided) CountLocked(model, resolver_name + (reclaimed ? "/reclaimed" : "/granted"));
      return Status::Ok();
    }
    if (last.collision() == nullptr) return last;  // not a matter of free bytes
    const auto now = ArbiterClock::now();
    auto snapshot = ledger_.Snapshot(device);
    if (!snapshot.ok()) return snapshot.status();
    const std::vector<memory::InstanceFacts> facts = FactsLocked(*snapshot);
    memory::ReclaimPlan plan;
    if (need == Need::kAdmit) {
      // Making room for a cold model: evict by bytes, whatever its resolver.
      resolver_name = "evict";
      plan = memory::ChooseEvictions(*snapshot, facts, bytes, now, reclaim_);
    } else {
      auto view = ledger_.Find(instance);
      if (!view) return Status::NotFound("no ledger account for instance '" + instance + "'");
      resolver_name = ResolverName(view->account.resolver);
      memory::Requester req;
      req.instance = instance;
      req.priority = view->account.priority;
      req.resolver = view->account.resolver;
      req.asked_bytes = bytes;
      req.now = now;
      plan = memory::PlanReclaim(*snapshot, facts, req, reclaim_);
    }
    collided = true;
    bool freed_any = false;
    if (!plan.wait && !plan.actions.empty()) {
      lock.unlock();
      const std::string why = "to make room for " + instance + " on " + device;
      for (const auto& a : plan.actions) {
        Status done;
        switch (a.kind) {
          case memory::ReclaimKind::kSwapOut: done = actions_->SwapOutInstance(a.instance, why); break;
          case memory::ReclaimKind::kUnload: done = actions_->EvictInstance(a.instance, why); break;
          // A CPU instance caches nothing past its request and a CUDA one gives its
          // cache back after every burst; a burst in flight is let finish (its
          // grant comes back when it ends): both settle by waiting below.
          case memory::ReclaimKind::kShrinkCache:
          case memory::ReclaimKind::kPreempt: continue;
        }
        if (done.ok()) {
          freed_any = true;
        } else {
          spdlog::info("{} of {} {}: {}", memory::ReclaimKindName(a.kind), a.instance, why,
                       done.ToString());
        }
      }
      lock.lock();
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
  return Status::ResourceExhausted("model '" + model + "': " + std::to_string(bytes) +
                                   " bytes on " + device + " could not be had before the "
                                   "deadline (resolver " + resolver_name + "): " +
                                   std::to_string(detail.free_bytes) + " bytes free, held by " +
                                   Holders(detail))
      .WithDetail(StatusDetail{.collision = std::move(detail)});
}

}  // namespace modelgrid::grid_internal

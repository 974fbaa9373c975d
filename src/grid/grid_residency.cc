// Grid::Impl's executor path and residency: grants per batch, swap-in and
// swap-out, eviction (grid_impl.h).

#include <spdlog/spdlog.h>

#include <algorithm>

#include "grid/grid_impl.h"
#include "modelgrid/bytes.h"

namespace modelgrid {

uint64_t Grid::Impl::BurstBytes(const Instance& inst, int64_t rows) const {
  const uint64_t need =
      inst.weight_bytes + inst.per_row_bytes * static_cast<uint64_t>(std::max<int64_t>(1, rows));
  return need > inst.request_bytes ? need - inst.request_bytes : 0;
}

uint64_t Grid::Impl::BatchBudget(const Instance& inst) {
  const uint64_t own =
      inst.request_bytes > inst.weight_bytes ? inst.request_bytes - inst.weight_bytes : 0;
  const uint64_t room =
      inst.limit_bytes > inst.request_bytes ? inst.limit_bytes - inst.request_bytes : 0;
  if (room == 0) return own;
  const std::string device = inst.device;
  const uint64_t free = device.empty() ? room : arbiter->WithLedger([&](memory::MemoryLedger& l) {
    return l.FreeBytes(device);
  });
  return own + std::min(room, free);
}

Result<std::vector<InferTensor>> Grid::Impl::Execute(Instance& inst, const ExecuteContext& ctx,
                                                     const std::string& task,
                                                     std::vector<InferTensor> inputs,
                                                     const nlohmann::json& params) {
  std::lock_guard<std::mutex> exec(inst.exec_mu);
  // Busy from here: an instance being swapped in or loaded for this batch
  // is no eviction candidate for other waiters.
  const std::string key = inst.key();
  arbiter->SetBusy(key, true);
  struct Idle {
    MemoryArbiter* a;
    const std::string& k;
    ~Idle() { a->SetBusy(k, false); }
  } idle{arbiter.get(), key};
  MG_RETURN_IF_ERROR(EnsureResident(inst, ctx.deadline));
  // The estimate may be pessimistic: ask at most what the limit allows and
  // let the worker's allocator say whether the batch really fits.
  const uint64_t room =
      inst.limit_bytes > inst.request_bytes ? inst.limit_bytes - inst.request_bytes : 0;
  const uint64_t burst = std::min(BurstBytes(inst, ctx.rows), room);
  if (burst > 0 && !inst.device.empty()) {
    auto granted = arbiter->Grant(key, burst, ctx.deadline);
    if (!granted.ok()) return granted.status();
    inst.granted_bytes = *granted;
  }
  auto result = RunOnce(inst, ctx, task, inputs, params);
  // A higher-priority model lowered this batch's cap while it ran
  // (resolver priority, PreemptInstance): its 507 names the preempter, and
  // it is not retried (the bytes went to the preempter).
  if (!result.ok() && result.status().code() == StatusCode::kResourceExhausted) {
    if (auto pre = arbiter->TakePreemption(key)) {
      if (inst.granted_bytes > 0) {
        arbiter->Return(key, inst.granted_bytes);
        inst.granted_bytes = 0;
      }
      StatusDetail detail;
      if (const MemoryLimitDetail* m = result.status().memory_limit()) detail.memory_limit = *m;
      CollisionDetail c;
      c.model = inst.model;
      c.device = inst.device;
      c.resolver = "priority";
      c.asked_bytes = pre->bytes;
      c.preempted_by = pre->by_model;
      detail.collision = std::move(c);
      return Status::ResourceExhausted("model '" + inst.model + "': its batch was " +
                                       pre->reason + ": " + result.status().message())
          .WithDetail(std::move(detail));
    }
  }
  // The estimate fell short of what the batch needed: when the limit allows
  // more, ask the ledger for what the worker reported missing, once.
  if (!result.ok() && result.status().memory_limit() != nullptr) {
    const MemoryLimitDetail& m = *result.status().memory_limit();
    const uint64_t cap = inst.request_bytes + inst.granted_bytes;
    const uint64_t want = m.in_use_bytes + m.requested_bytes;
    if (want > cap && inst.limit_bytes > cap && !inst.device.empty() && inst.slot) {
      auto more = arbiter->Grant(key, std::min(want, inst.limit_bytes) - cap, ctx.deadline);
      if (more.ok()) {
        inst.granted_bytes += *more;
        result = RunOnce(inst, ctx, task, inputs, params);
      }
    }
  }
  if (inst.granted_bytes > 0) {
    arbiter->Return(key, inst.granted_bytes);
    inst.granted_bytes = 0;
  }
  return result;
}

Result<std::vector<InferTensor>> Grid::Impl::RunOnce(Instance& inst, const ExecuteContext& ctx,
                                                     const std::string& task,
                                                     const std::vector<InferTensor>& inputs,
                                                     const nlohmann::json& params) {
  if (inst.backend) return inst.backend->Run(task, inputs, params);
  std::shared_ptr<WorkerClient> client = inst.slot ? inst.slot->Client() : nullptr;
  if (!client || !client->alive()) {
    return WithRetryAfter(
        Status::Unavailable("model '" + inst.model + "': its worker is restarting"),
        kRestartRetryAfterSeconds);
  }
  auto result =
      client->Infer(inst.model, task, inputs, params, TimeoutUntil(ctx.deadline, Clock::now()),
                    inst.request_bytes + inst.granted_bytes, ctx.output_names);
  // The worker died under the request: the watchdog restarts it.
  if (!result.ok() && result.status().code() == StatusCode::kUnavailable && !client->alive()) {
    return WithRetryAfter(result.status(), kRestartRetryAfterSeconds);
  }
  return result;
}

Status Grid::Impl::EnsureResident(Instance& inst, std::optional<SchedulerTime> deadline) {
  ModelState state;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = models.find(inst.model);
    if (it == models.end()) return Status::NotFound("unknown model '" + inst.model + "'");
    state = it->second.status.state;
    if (state != ModelState::kReady && state != ModelState::kSwapped &&
        state != ModelState::kStandby) {
      return WithRetryAfter(
          Status::Unavailable(
              "model '" + inst.model + "' is not ready (state " + ModelStateName(state) +
              (it->second.status.reason.empty() ? "" : ": " + it->second.status.reason) + ")"),
          kRestartRetryAfterSeconds);
    }
  }
  if (state == ModelState::kReady) return Status::Ok();
  if (state == ModelState::kSwapped) return SwapIn(inst, deadline);
  return DemandLoad(inst, deadline);
}

Status Grid::Impl::SwapIn(Instance& inst, std::optional<SchedulerTime> deadline) {
  const std::string key = inst.key();
  MG_RETURN_IF_ERROR(arbiter->SwapIn(key, deadline));  // the device bytes first
  {
    std::lock_guard<std::mutex> lock(mu);
    Apply(inst.model, LifecycleEvent::kSwapIn);
  }
  const auto start = Clock::now();
  SwapEvent ev{inst.model, "in", 0, 0};
  Status s;
  bool worker_died = false;
  if (inst.backend) {
    auto r = inst.backend->SwapIn();
    if (r.ok()) {
      ev.bytes = r->bytes;
      if (r->reloaded) ev.direction = "reload";
    }
    s = r.status();
  } else if (auto client = inst.slot ? inst.slot->Client() : nullptr) {
    auto r = client->SwapIn(inst.model, options.load_timeout);
    if (r.ok()) {
      ev.bytes = r->bytes;
      if (r->reloaded) {
        ev.direction = "reload";
        spdlog::warn("{}: swap-in reloaded it from its files: {}", key, r->reason);
      }
    }
    s = r.status();
    worker_died = !s.ok() && !client->alive();
  } else {
    s = Status::Unavailable("model '" + inst.model + "': its worker is restarting");
  }
  ev.duration_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
  std::unique_lock<std::mutex> lock(mu);
  ModelRecord& rec = models.at(inst.model);
  if (rec.status.state != ModelState::kSwappingIn) {  // its worker died meanwhile
    return s.ok() ? Status::Unavailable("model '" + inst.model + "': its worker is restarting")
                  : s.WithPrefix("model '" + inst.model + "': swap-in");
  }
  if (!s.ok() && worker_died) {
    // Its worker died under the swap-in, before the watchdog heard of it:
    // not a failure of the model. The ledger holds its request on the
    // device again, so the watchdog's restart loads it from its files.
    Apply(rec, LifecycleEvent::kWorkerDied, "its worker died during the swap-in: " + s.message());
    return Status::Unavailable("model '" + inst.model + "': its worker died during the swap-in; " +
                               "it is restarting");
  }
  if (!s.ok()) {
    Apply(rec, LifecycleEvent::kSwapInFailed);
    Apply(rec, LifecycleEvent::kLoadFailed, "swap-in failed: " + s.message());
    lock.unlock();
    // A failed model holds nothing: its request goes back to the device
    // and its worker stops (or unloads it), so that the others can use
    // the bytes and a later Load can place it afresh. exec_mu is held.
    arbiter->Forget(key);
    ReleaseResidency(inst);
    return s.WithPrefix("model '" + inst.model + "': swap-in");
  }
  Apply(rec, LifecycleEvent::kSwappedIn);
  ++rec.status.swaps_in;
  rec.status.swap_in_us += ev.duration_us;
  if (ev.direction == "reload") ++rec.status.reloads;
  arbiter->SetResident(key, static_cast<double>(ev.duration_us) / 1e6);
  RecordSwap(std::move(ev));
  return Status::Ok();
}

Status Grid::Impl::SwapOutInstance(const std::string& key, const std::string& reason) {
  std::shared_ptr<Instance> inst;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto [rec, found] = FindInstance(key);
    if (!found || rec->status.state != ModelState::kReady || rec->status.pinned) {
      return Status::Unavailable(key + " cannot be swapped out now");
    }
    inst = found;
  }
  std::unique_lock<std::mutex> exec(inst->exec_mu, std::try_to_lock);
  if (!exec.owns_lock()) return Status::Unavailable(key + " is busy");
  const bool room = arbiter->WithLedger(
      [&](memory::MemoryLedger& l) { return l.HostFreeBytes() >= inst->request_bytes; });
  if (!room) return Status::ResourceExhausted("the host swap tier has no room for " + key);
  {
    std::lock_guard<std::mutex> lock(mu);
    auto [rec, found] = FindInstance(key);
    if (!found || rec->status.state != ModelState::kReady) {
      return Status::Unavailable(key + " cannot be swapped out now");
    }
    Apply(*rec, LifecycleEvent::kSwapOut);
  }
  const auto start = Clock::now();
  SwapEvent ev{inst->model, "out", 0, 0};
  Status s;
  if (inst->backend) {
    SwapTarget target;
    target.swap_dir = swap_dir.string();
    auto r = inst->backend->SwapOut(target);
    if (r.ok()) ev.bytes = r->bytes;
    s = r.status();
  } else if (auto client = inst->slot ? inst->slot->Client() : nullptr) {
    auto r = client->SwapOut(inst->model, swap_dir.string(), options.load_timeout);
    if (r.ok()) ev.bytes = r->bytes;
    s = r.status();
  } else {
    s = Status::Unavailable("its worker is restarting");
  }
  ev.duration_us = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
  if (s.ok()) {
    s = arbiter->WithLedger([&](memory::MemoryLedger& l) { return l.SwapOut(key); });
  }
  std::lock_guard<std::mutex> lock(mu);
  ModelRecord& rec = models.at(inst->model);
  if (rec.status.state != ModelState::kSwappingOut) {  // its worker died meanwhile
    return s.ok() ? Status::Unavailable(key + ": its worker died during the swap-out")
                  : s.WithPrefix("swap-out of " + key);
  }
  if (!s.ok()) {
    Apply(rec, LifecycleEvent::kSwapOutFailed);
    return s.WithPrefix("swap-out of " + key);
  }
  Apply(rec, LifecycleEvent::kSwappedOut, "swapped out " + reason);
  ++rec.status.swaps_out;
  rec.status.swap_out_us += ev.duration_us;
  spdlog::info("{}: swapped out {} bytes in {} us {}", key, ev.bytes, ev.duration_us, reason);
  RecordSwap(std::move(ev));
  return Status::Ok();
}

Status Grid::Impl::PreemptInstance(const std::string& key,
                                   const grid_internal::Preemption& preemption) {
  std::shared_ptr<WorkerClient> client;
  std::string model;
  uint64_t request = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto [rec, inst] = FindInstance(key);
    if (rec == nullptr || inst == nullptr) {
      return Status::NotFound("no instance '" + key + "' to preempt");
    }
    if (rec->status.state != ModelState::kReady) {
      return Status::Unavailable("instance '" + key + "' is " +
                                        ModelStateName(rec->status.state) + ", not ready");
    }
    if (rec->status.pinned) return Status::Unavailable("instance '" + key + "' is pinned");
    if (!inst->slot) {
      return Status::Unsupported("instance '" + key +
                                 "' runs in-process (isolation none): no cap to lower");
    }
    client = inst->slot->Client();
    model = inst->model;
    request = inst->request_bytes;
  }
  if (!client || !client->alive()) {
    return Status::Unavailable("instance '" + key + "': its worker is restarting");
  }
  auto set = client->SetLimit(model, request, preemption.reason, std::chrono::milliseconds{5'000});
  if (!set.ok()) return set.status();
  spdlog::info("{}: {}: cap lowered to its request {} bytes while its batch runs ({} bytes of "
               "cache given back)",
               key, preemption.reason, request, set->released_bytes);
  return Status::Ok();
}

Status Grid::Impl::EvictInstance(const std::string& key, const std::string& reason) {
  std::shared_ptr<Instance> inst;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto [rec, found] = FindInstance(key);
    if (!found || rec->status.pinned ||
        (rec->status.state != ModelState::kReady && rec->status.state != ModelState::kSwapped)) {
      return Status::Unavailable(key + " cannot be evicted now");
    }
    inst = found;
  }
  std::unique_lock<std::mutex> exec(inst->exec_mu, std::try_to_lock);
  if (!exec.owns_lock()) return Status::Unavailable(key + " is busy");
  {
    std::lock_guard<std::mutex> lock(mu);
    ModelRecord& rec = models.at(inst->model);
    if (rec.status.state != ModelState::kReady && rec.status.state != ModelState::kSwapped) {
      return Status::Unavailable(key + " cannot be evicted now");
    }
    Apply(rec, LifecycleEvent::kEvict, "evicted " + reason);
    ++rec.status.evictions;
    RecordSwap(SwapEvent{inst->model, "evict", inst->request_bytes, 0});
  }
  spdlog::info("{}: evicted {}", key, reason);
  ReleaseResidency(*inst);
  return Status::Ok();
}

void Grid::Impl::ReleaseResidency(Instance& inst) {
  const std::string key = inst.key();
  arbiter->WithLedger([&](memory::MemoryLedger& l) {
    l.Remove(key);
    return 0;
  });
  inst.backend.reset();
  std::shared_ptr<WorkerSlot> slot;
  {
    std::lock_guard<std::mutex> lock(mu);  // PreemptInstance reads inst.slot under mu
    slot = std::move(inst.slot);
    inst.device.clear();
    inst.current_bytes = inst.peak_bytes = 0;
    if (auto it = models.find(inst.model); it != models.end()) Summarize(it->second);
  }
  if (slot) ReleaseFromSlot(slot, inst.model, key);
}

void Grid::Impl::ReleaseFromSlot(const std::shared_ptr<WorkerSlot>& slot, const std::string& model,
                                 const std::string& key) {
  std::shared_ptr<grid_internal::WorkerProcess> stop;
  bool empty = false;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto& h = slot->hosted;
    h.erase(std::remove(h.begin(), h.end(), key), h.end());
    empty = h.empty();
    if (empty) stop = pool->Retire(slot);
  }
  if (!empty) {
    if (auto c = slot->Client()) (void)c->Unload(model, std::chrono::milliseconds{10'000});
    return;
  }
  arbiter->WithLedger([&](memory::MemoryLedger& l) {
    l.ReleaseContext(slot->key);
    return 0;
  });
  if (stop) stop->Shutdown();
}

}  // namespace modelgrid

// modelgrid::Grid: registry, placement on top of what is loaded, worker
// slots, schedulers and the watchdog (grid.h).
#include "modelgrid/grid.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "grid/arbiter.h"
#include "grid/grid_internal.h"
#include "grid/lifecycle.h"
#include "modelgrid/bytes.h"
#include "modelgrid/device/nvml.h"
#include "modelgrid/repository_plan.h"
#include "modelgrid/torch/graph_walk.h"

namespace modelgrid {

using grid_internal::ArbiterActions;
using grid_internal::Clock;
using grid_internal::Instance;
using grid_internal::InstanceRuntime;
using grid_internal::MemoryArbiter;
using grid_internal::WorkerSlot;

// ModelStateName (modelgrid/grid.h) is defined in lifecycle.cc, beside the
// lifecycle table, so that the state machine's test builds without LibTorch.

namespace {

// A worker that stayed up this long resets its restart backoff.
constexpr auto kStableUptime = std::chrono::seconds{60};

// modelgrid-worker next to this executable, else on PATH; "" when neither.
std::string FindWorkerExecutable() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto sibling = self.parent_path() / "modelgrid-worker";
    if (std::filesystem::exists(sibling, ec)) return sibling.string();
  }
  if (const char* path = std::getenv("PATH")) {
    std::string p = path;
    size_t start = 0;
    while (start <= p.size()) {
      size_t end = p.find(':', start);
      if (end == std::string::npos) end = p.size();
      auto candidate = std::filesystem::path(p.substr(start, end - start)) / "modelgrid-worker";
      if (end > start && ::access(candidate.c_str(), X_OK) == 0) return candidate.string();
      start = end + 1;
    }
  }
  return "";
}

// Simulated devices exist for planning; their models run on the CPU.
std::string ExecDevice(const Device& d) { return d.kind == DeviceKind::kCuda ? d.id : "cpu"; }

// States in which a model has instances with schedulers: requests queue
// for it (a swapped or standby one is brought back by its executor).
bool IsPlaced(ModelState s) {
  switch (s) {
    case ModelState::kLoading:
    case ModelState::kReady:
    case ModelState::kRestarting:
    case ModelState::kStandby:
    case ModelState::kSwappingOut:
    case ModelState::kSwapped:
    case ModelState::kSwappingIn: return true;
    default: return false;
  }
}

// The model of an instance key "model#replica".
std::string ModelOfKey(const std::string& key) { return key.substr(0, key.rfind('#')); }

// Bytes the ledger may hand out on `d`: total - used by others - buffer.
uint64_t LedgerCapacity(const Device& d, uint64_t buffer_bytes) {
  const uint64_t taken = d.used_bytes + (d.is_accelerator() ? buffer_bytes : 0);
  return d.total_bytes > taken ? d.total_bytes - taken : 0;
}

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// Resolves the inputs of a call to `model` that name a registered
// shared-memory region (InferCall, grid.h): sets InferTensor::shared and
// removes the three parameters. Errors: kInvalidArgument for data next to a
// region, a parameter of the wrong type or a range outside the region;
// kNotFound for an unknown region. Every message names the model and input.
Status ResolveSharedInputs(const ipc::SharedMemoryRegistry& registry, const std::string& model,
                           std::vector<InferTensor>* inputs) {
  for (InferTensor& in : *inputs) {
    const auto region = in.parameters.find("shared_memory_region");
    if (region == in.parameters.end()) continue;
    const std::string who = "model '" + model + "': input '" + in.name + "'";
    if (!in.data.empty()) {
      return Status::InvalidArgument(who + ": has both data and shared_memory_region");
    }
    const auto size = in.parameters.find("shared_memory_byte_size");
    const auto offset = in.parameters.find("shared_memory_offset");
    if (!region->is_string()) {
      return Status::InvalidArgument(who + ": shared_memory_region must be a string");
    }
    if (size == in.parameters.end() || !size->is_number_unsigned()) {
      return Status::InvalidArgument(
          who +
          ": shared_memory_byte_size must be a non-negative integer next to "
          "shared_memory_region");
    }
    if (offset != in.parameters.end() && !offset->is_number_unsigned()) {
      return Status::InvalidArgument(who + ": shared_memory_offset must be a non-negative integer");
    }
    auto slice = registry.Slice(region->get<std::string>(),
                                offset == in.parameters.end() ? 0 : offset->get<uint64_t>(),
                                size->get<uint64_t>());
    if (!slice.ok()) return slice.status().WithPrefix(who);
    in.shared = std::move(slice).value();
    in.parameters.erase("shared_memory_region");
    in.parameters.erase("shared_memory_byte_size");
    in.parameters.erase("shared_memory_offset");
  }
  return Status::Ok();
}

}  // namespace

namespace {

using ExecuteFn = std::function<Result<std::vector<InferTensor>>(
    Instance&, const ExecuteContext&, const std::string&, std::vector<InferTensor>,
    const nlohmann::json&)>;

// Runs an instance's batches through the grid (Grid::Impl::Execute): brings
// a swapped or standby instance back, takes a grant for the burst, runs it
// in the worker or in-process, gives the grant back.
class GridExecutor final : public BatchExecutor {
 public:
  GridExecutor(ExecuteFn fn, Instance* inst) : fn_(std::move(fn)), inst_(inst) {}
  Result<std::vector<InferTensor>> Execute(const ExecuteContext& ctx, const std::string& task,
                                           std::vector<InferTensor> inputs,
                                           const nlohmann::json& params) override {
    return fn_(*inst_, ctx, task, std::move(inputs), params);
  }

 private:
  ExecuteFn fn_;
  Instance* inst_;
};

}  // namespace

struct ModelRecord {
  ModelEntry entry;
  ModelStatus status;
  ModelLifecycle life{""};
  std::vector<std::shared_ptr<Instance>> instances;
  // Counters of instances released by Unload or a reload, so that the
  // model's statistics keep counting across them (queued excluded).
  ModelCounters retired;
};

// Adds `s` to `c`; the queue length only when `live` (a released
// scheduler's queue is empty or failed).
void AddCounters(const SchedulerStats& s, bool live, ModelCounters* c) {
  c->success += s.succeeded;
  c->failure += s.failed + s.timed_out;
  c->executions += s.executed_batches;
  c->inferences += s.executed_inferences;
  c->queue_us += s.queue_duration_us;
  c->compute_us += s.compute_duration_us;
  c->request_us += s.request_duration_us;
  if (live) c->queued += s.queued;
  c->rejected += s.rejected;
  c->timed_out += s.timed_out;
}

// Folds the statistics of released `instances` into `c` (their queues are
// empty or failed, so queued is left out).
void RetireCounters(const std::vector<std::shared_ptr<Instance>>& instances, ModelCounters* c) {
  for (const auto& inst : instances) {
    if (inst->scheduler) AddCounters(inst->scheduler->Stats(), /*live=*/false, c);
  }
}

struct Grid::Impl final : public ArbiterActions, public grid_internal::WorkerPoolListener {
  GridOptions options;
  ipc::SharedMemoryRegistry shared_memory;  // thread-safe on its own
  std::filesystem::path private_scratch;  // made by NewModelFolder; removed by ~Grid
  uint64_t next_folder = 0;
  std::vector<Device> devices;
  std::unique_ptr<GraphWalker> own_walker;  // when options.walker was null
  std::set<std::string> measured_context;    // guarded by mu: devices whose context_bytes is measured

  std::mutex load_mu;  // serializes LoadAll / Load / Unload (placement decisions)

  mutable std::mutex mu;  // guards everything below
  std::vector<std::string> order;
  std::map<std::string, ModelRecord> models;
  bool shutting_down = false;

  // The ledger's owner at run time (arbiter.h): grants, swap-ins, room for
  // on-demand loads. Created by Grid::Create.
  std::unique_ptr<MemoryArbiter> arbiter;
  std::filesystem::path swap_dir;     // where CPU weights swap to (options or private)
  bool private_swap_dir = false;      // made by the grid: removed with it
  std::deque<SwapEvent> swap_events;  // guarded by mu; the last kMaxSwapEvents
  std::vector<std::string> change_log;  // guarded by mu

  // The worker slots and their watchdog (worker_pool.h); processes come
  // from `env`. Created by Grid::Create; thread-safe on their own.
  std::shared_ptr<grid_internal::WorkerEnv> env;
  std::unique_ptr<grid_internal::WorkerPool> pool;

  // Has every running worker forget the shared-memory regions `ids`.
  // Takes mu itself.
  void DetachFromWorkers(const std::vector<uint64_t>& ids) {
    std::vector<std::shared_ptr<WorkerClient>> clients;
    for (const auto& slot : pool->Slots()) {
      if (auto client = slot->Client()) clients.push_back(std::move(client));
    }
    for (const auto& client : clients) {
      for (uint64_t id : ids) client->DetachRegion(id);
    }
  }

  // ---- helpers (mu held unless said otherwise) ----

  int ThreadsPerWorker(size_t workers) const {
    if (options.worker_threads > 0) return options.worker_threads;
    unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    if (options.isolation == Isolation::kNone || workers == 0) return static_cast<int>(cores);
    return static_cast<int>(std::max<size_t>(1, cores / workers));
  }

  const Device* FindDevice(const std::string& id) const {
    for (const auto& d : devices) {
      if (d.id == id) return &d;
    }
    return nullptr;
  }

  // Devices with what the ledger holds there (requests of resident
  // instances, grants, worker contexts) counted as used: what the planner
  // may still pack. mu held.
  std::vector<Device> DevicesAfterLoaded() const {
    std::vector<Device> out = devices;
    for (auto& d : out) {
      auto snap = arbiter->WithLedger([&](memory::MemoryLedger& l) { return l.Snapshot(d.id); });
      if (!snap.ok()) continue;
      uint64_t held = snap->held_bytes;
      // In `device` isolation the planner charges one context to a device
      // that receives a model; an existing device worker already paid it.
      if (options.isolation != Isolation::kModel && !snap->contexts.empty()) {
        held -= std::min(held, d.context_bytes);
      }
      d.used_bytes += held;
    }
    return out;
  }

  // Every change of a model's state goes through its lifecycle table
  // (lifecycle.h); the status mirrors it. An event the state does not
  // accept is a bug: logged, state unchanged. mu held.
  Status Apply(ModelRecord& rec, LifecycleEvent event, std::string reason = "") {
    Status s = rec.life.Apply(event, std::move(reason));
    if (!s.ok()) spdlog::error("{}", s.message());
    rec.status.state = rec.life.state();
    rec.status.reason = rec.life.reason();
    return s;
  }
  Status Apply(const std::string& model, LifecycleEvent event, std::string reason = "") {
    auto it = models.find(model);
    if (it == models.end()) return Status::NotFound("unknown model '" + model + "'");
    return Apply(it->second, event, std::move(reason));
  }

  // Instance `key` and its model record, or nulls. mu held.
  std::pair<ModelRecord*, std::shared_ptr<Instance>> FindInstance(const std::string& key) {
    auto it = models.find(ModelOfKey(key));
    if (it == models.end()) return {nullptr, nullptr};
    for (const auto& inst : it->second.instances) {
      if (inst->key() == key) return {&it->second, inst};
    }
    return {&it->second, nullptr};
  }

  void RecordSwap(SwapEvent e) {  // mu held
    constexpr size_t kMaxSwapEvents = 4096;
    swap_events.push_back(std::move(e));
    if (swap_events.size() > kMaxSwapEvents) swap_events.pop_front();
  }

  // The status of `rec` with the ledger's figures (borrowed, swapped) and
  // the arbiter's collision counts. mu held.
  ModelStatus StatusOf(const ModelRecord& rec, const grid_internal::CollisionCounts& all) const {
    ModelStatus s = rec.status;
    s.borrowed_bytes = s.swapped_bytes = 0;
    for (const auto& inst : rec.instances) {
      auto view = arbiter->WithLedger([&](memory::MemoryLedger& l) { return l.Find(inst->key()); });
      if (!view) continue;
      s.borrowed_bytes += view->granted_bytes;
      s.swapped_bytes += view->host_bytes;
    }
    if (auto it = all.find(s.name); it != all.end()) s.collisions = it->second;
    return s;
  }

  // Recomputes a model's status fields that derive from its instances.
  void Summarize(ModelRecord& rec) {
    ModelStatus& s = rec.status;
    s.current_bytes = s.peak_bytes = 0;
    s.device.clear();
    s.worker_pid = 0;
    for (const auto& inst : rec.instances) {
      s.current_bytes += inst->current_bytes;
      s.peak_bytes += inst->peak_bytes;
      if (!s.device.empty()) s.device += ",";
      s.device += inst->device;
      if (s.worker_pid == 0 && inst->slot) {
        if (auto c = inst->slot->Client()) s.worker_pid = c->pid();
      }
    }
    s.context_bytes = 0;
    s.context_measured = false;
    if (!rec.instances.empty() && rec.instances.front()->slot) {
      const auto& first = rec.instances.front();
      const Device* d = FindDevice(first->device);
      s.context_measured = first->slot->context_measured;
      s.context_bytes = s.context_measured ? first->slot->context_bytes
                                           : (d ? d->context_bytes : 0);
    }
  }

  // On a CUDA device, measures the worker's context once it has loaded:
  // NVML's bytes for its pid minus its caching allocator's reserve. The
  // device's per-worker charge becomes the measured figure, so later plans
  // charge it instead of the configured default. Failures are logged: the
  // default charge stays. mu not held.
  void MeasureContext(const std::shared_ptr<WorkerSlot>& slot, WorkerClient& client) {
    Device device;
    {
      std::lock_guard<std::mutex> lock(mu);
      const Device* d = FindDevice(slot->device);
      if (d == nullptr || d->kind != DeviceKind::kCuda) return;
      device = *d;
    }
    auto stats = client.Stats(std::chrono::milliseconds{5'000});
    if (!stats.ok()) {
      spdlog::warn("{}: no allocator figures to measure its context: {}", slot->key,
                   stats.status().ToString());
      return;
    }
    uint64_t reserved = 0;
    const std::string index = device.id.substr(device.id.find(':') + 1);
    for (const ipc::CudaMemory& c : stats->cuda) {
      if (std::to_string(c.index) == index) reserved = c.reserved_bytes;
    }
    auto ctx = MeasureWorkerContext(device, static_cast<uint32_t>(client.pid()), reserved);
    if (!ctx.ok()) {
      spdlog::warn("{} on {}: context not measured, charging the default {} bytes: {}", slot->key,
                   device.id, device.context_bytes, ctx.status().ToString());
      return;
    }
    spdlog::info("{} on {}: measured context {} bytes (NVML per-process minus {} reserved by "
                 "the allocator); the planner now charges it per worker",
                 slot->key, device.id, *ctx, reserved);
    std::lock_guard<std::mutex> lock(mu);
    slot->context_bytes = *ctx;
    slot->context_measured = true;
    for (Device& d : devices) {
      if (d.id == device.id) d.context_bytes = *ctx;
    }
    measured_context.insert(device.id);
  }

  // The worker slot `inst` runs in on its device: the live slot of its key
  // (the instance in isolation `model`, the device in `device`), or a new
  // one, not yet in `slots` (*is_new). Null in isolation `none`. mu held.
  std::shared_ptr<WorkerSlot> SlotFor(const Instance& inst, bool* is_new) const {
    *is_new = false;
    if (options.isolation == Isolation::kNone) return nullptr;
    const std::string key = options.isolation == Isolation::kModel ? inst.key() : inst.device;
    if (auto live = pool->Find(key)) return live;
    const Device* d = FindDevice(inst.device);
    *is_new = true;
    return pool->NewSlot(key, inst.device, d ? ExecDevice(*d) : "cpu");
  }

  // ---- execution and residency (an instance's exec_mu held) ----

  // The bytes a batch of `rows` rows needs past the instance's request.
  uint64_t BurstBytes(const Instance& inst, int64_t rows) const {
    const uint64_t need = inst.weight_bytes + inst.per_row_bytes * static_cast<uint64_t>(
                                                   std::max<int64_t>(1, rows));
    return need > inst.request_bytes ? need - inst.request_bytes : 0;
  }

  // The scheduler's budget (BatchSchedulerOptions::budget_bytes): bytes past
  // the weights the instance holds or could be granted now.
  uint64_t BatchBudget(const Instance& inst) {
    const uint64_t own = inst.request_bytes > inst.weight_bytes
                             ? inst.request_bytes - inst.weight_bytes : 0;
    const uint64_t room = inst.limit_bytes > inst.request_bytes
                              ? inst.limit_bytes - inst.request_bytes : 0;
    if (room == 0) return own;
    const std::string device = inst.device;
    const uint64_t free = device.empty() ? room : arbiter->WithLedger([&](memory::MemoryLedger& l) {
      return l.FreeBytes(device);
    });
    return own + std::min(room, free);
  }

  // Runs one batch on `inst` (GridExecutor).
  Result<std::vector<InferTensor>> Execute(Instance& inst, const ExecuteContext& ctx,
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
    const uint64_t room = inst.limit_bytes > inst.request_bytes
                              ? inst.limit_bytes - inst.request_bytes : 0;
    const uint64_t burst = std::min(BurstBytes(inst, ctx.rows), room);
    if (burst > 0 && !inst.device.empty()) {
      auto granted = arbiter->Grant(key, burst, ctx.deadline);
      if (!granted.ok()) return granted.status();
      inst.granted_bytes = *granted;
    }
    auto result = RunOnce(inst, ctx, task, inputs, params);
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

  Result<std::vector<InferTensor>> RunOnce(Instance& inst, const ExecuteContext& ctx,
                                           const std::string& task,
                                           const std::vector<InferTensor>& inputs,
                                           const nlohmann::json& params) {
    if (inst.backend) return inst.backend->Run(task, inputs, params);
    std::shared_ptr<WorkerClient> client = inst.slot ? inst.slot->Client() : nullptr;
    if (!client || !client->alive()) {
      return Status::Unavailable("model '" + inst.model + "': its worker is restarting");
    }
    return client->Infer(inst.model, task, inputs, params, TimeoutUntil(ctx.deadline, Clock::now()),
                         inst.request_bytes + inst.granted_bytes);
  }

  // Brings `inst` back onto a device when it is swapped out or on standby,
  // within `deadline`. Errors: kUnavailable when its worker is restarting or
  // it failed; the arbiter's collision (507) when no room came in time; the
  // load error.
  Status EnsureResident(Instance& inst, std::optional<SchedulerTime> deadline) {
    ModelState state;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = models.find(inst.model);
      if (it == models.end()) return Status::NotFound("unknown model '" + inst.model + "'");
      state = it->second.status.state;
      if (state != ModelState::kReady && state != ModelState::kSwapped &&
          state != ModelState::kStandby) {
        return Status::Unavailable("model '" + inst.model + "' is not ready (state " +
                                   ModelStateName(state) +
                                   (it->second.status.reason.empty()
                                        ? "" : ": " + it->second.status.reason) + ")");
      }
    }
    if (state == ModelState::kReady) return Status::Ok();
    if (state == ModelState::kSwapped) return SwapIn(inst, deadline);
    return DemandLoad(inst, deadline);
  }

  Status SwapIn(Instance& inst, std::optional<SchedulerTime> deadline) {
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

  // ArbiterActions: moves an idle instance's weights to the host tier.
  Status SwapOutInstance(const std::string& key, const std::string& reason) override {
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
    const bool room = arbiter->WithLedger([&](memory::MemoryLedger& l) {
      return l.HostFreeBytes() >= inst->request_bytes;
    });
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

  // ArbiterActions: unloads an idle instance; its model goes back to standby
  // and loads again on its next request.
  Status EvictInstance(const std::string& key, const std::string& reason) override {
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

  // Frees what a resident instance holds (worker side, ledger) and leaves
  // it on standby: its scheduler stays. mu not held; exec_mu held or the
  // scheduler stopped.
  void ReleaseResidency(Instance& inst) {
    const std::string key = inst.key();
    arbiter->WithLedger([&](memory::MemoryLedger& l) {
      l.Remove(key);
      return 0;
    });
    inst.backend.reset();
    std::shared_ptr<WorkerSlot> slot = std::move(inst.slot);
    {
      std::lock_guard<std::mutex> lock(mu);
      inst.device.clear();
      inst.current_bytes = inst.peak_bytes = 0;
      if (auto it = models.find(inst.model); it != models.end()) Summarize(it->second);
    }
    if (slot) ReleaseFromSlot(slot, inst.model, key);
  }

  // Removes instance `key` from `slot`: unloads it from the worker, or stops
  // the worker when it hosted nothing else (its context goes back to the
  // ledger). mu not held.
  void ReleaseFromSlot(const std::shared_ptr<WorkerSlot>& slot, const std::string& model,
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

  // ---- loading (load_mu held, mu not held) ----

  // How a worker for `slot` starts, with `threads` LibTorch threads.
  WorkerOptions WorkerOptionsFor(const WorkerSlot& slot, int threads) const {
    WorkerOptions wo;
    wo.executable = options.worker_executable;
    wo.name = slot.key;
    wo.arena_bytes = options.arena_bytes;
    wo.spin = options.spin;
    wo.threads = threads;
    return wo;
  }

  // Starts the first worker of `slot` (the pool restarts it when it dies).
  // Errors: WorkerEnv::Launch's.
  Status StartWorker(const std::shared_ptr<WorkerSlot>& slot, int threads) {
    return pool->Start(slot, WorkerOptionsFor(*slot, threads));
  }

  // Loads one instance onto its executor (worker or in-process). Fills the
  // model status fields a load reveals. mu not held.
  Status LoadInstance(const ModelEntry& entry, Instance& inst, int threads) {
    if (!inst.slot) {
      auto backend = std::make_unique<TorchScriptBackend>();
      uint64_t before = backend->MemoryStats().current_bytes;
      const Device* d = FindDevice(inst.device);
      MG_RETURN_IF_ERROR(backend->Load(entry, d ? ExecDevice(*d) : "cpu", threads));
      BackendMemoryStats after = backend->MemoryStats();
      inst.current_bytes = after.current_bytes > before ? after.current_bytes - before : 0;
      inst.peak_bytes = inst.current_bytes;
      std::lock_guard<std::mutex> lock(mu);
      ModelStatus& s = models.at(inst.model).status;
      s.tasks = backend->Tasks();
      s.inputs = backend->Inputs("infer");
      s.outputs = backend->Outputs();
      inst.backend = std::move(backend);
      return Status::Ok();
    }
    std::shared_ptr<WorkerClient> client = inst.slot->Client();
    if (!client) return Status::Unavailable("worker '" + inst.slot->key + "' is not running");
    ipc::LoadMessage load;
    load.model = inst.model;
    load.path = entry.dir.string();
    load.device = inst.slot->exec_device;
    load.limit_bytes = inst.limit_bytes;
    load.request_bytes = inst.request_bytes;
    load.max_batch_size = static_cast<uint32_t>(std::max<int64_t>(0, entry.config.max_batch_size));
    MG_ASSIGN_OR_RETURN(ipc::LoadedMessage loaded, client->Load(load, options.load_timeout));
    inst.current_bytes = loaded.current_bytes;
    inst.peak_bytes = loaded.peak_bytes;
    if (load.device != "cpu") MeasureContext(inst.slot, *client);
    std::lock_guard<std::mutex> lock(mu);
    ModelStatus& s = models.at(inst.model).status;
    s.tasks = loaded.tasks;
    s.inputs = loaded.inputs;
    s.outputs = loaded.outputs;
    return Status::Ok();
  }

  // Gives `inst` its executor and scheduler (once: a standby instance keeps
  // its queue while it is loaded, evicted and loaded again).
  void AttachScheduler(const ModelEntry& entry, Instance& inst) {
    if (inst.scheduler) return;
    inst.executor = std::make_unique<GridExecutor>(
        [this](Instance& i, const ExecuteContext& ctx, const std::string& task,
               std::vector<InferTensor> inputs, const nlohmann::json& params) {
          return Execute(i, ctx, task, std::move(inputs), params);
        },
        &inst);
    BatchSchedulerOptions so = BatchSchedulerOptions::FromConfig(inst.model, entry.config);
    if (inst.per_row_bytes > 0) {
      Instance* raw = &inst;
      so.batch_bytes = [raw](int64_t rows) {
        return raw->per_row_bytes * static_cast<uint64_t>(std::max<int64_t>(1, rows));
      };
      so.budget_bytes = [this, raw] { return BatchBudget(*raw); };
    }
    inst.scheduler = std::make_unique<BatchScheduler>(std::move(so), inst.executor.get());
  }

  // A new instance of `rec` with its memory figures (no device yet).
  std::shared_ptr<Instance> NewInstance(const ModelRecord& rec, int replica,
                                        uint64_t request_bytes) const {
    auto inst = std::make_shared<Instance>();
    inst->model = rec.status.name;
    inst->replica = replica;
    inst->request_bytes = request_bytes;
    inst->limit_bytes = std::max(rec.status.limit_bytes, request_bytes);
    if (rec.status.estimate) {
      const MemoryEstimate& e = *rec.status.estimate;
      inst->weight_bytes = e.weights;
      const uint64_t batch = static_cast<uint64_t>(std::max<int64_t>(1, e.batch));
      const uint64_t peak = e.instance_peak();
      inst->per_row_bytes = peak > e.weights ? (peak - e.weights + batch - 1) / batch : 0;
    }
    return inst;
  }

  memory::InstanceAccount AccountOf(const ModelRecord& rec, const Instance& inst) const {
    memory::InstanceAccount a;
    a.instance = inst.key();
    a.model = inst.model;
    a.device = inst.device;
    a.request_bytes = inst.request_bytes;
    a.limit_bytes = inst.limit_bytes;
    a.priority = rec.status.priority;
    a.resolver = rec.status.resolver;
    a.pinned = rec.status.pinned;
    return a;
  }

  // The devices `entry` may use (its pins, else all), accelerators first.
  std::vector<const Device*> AllowedDevices(const ModelEntry& entry) const {
    std::vector<const Device*> out;
    for (const Device& d : devices) {
      const auto& pins = entry.config.devices;
      if (!pins.empty() && std::find(pins.begin(), pins.end(), d.id) == pins.end()) continue;
      out.push_back(&d);
    }
    std::stable_sort(out.begin(), out.end(), [](const Device* a, const Device* b) {
      return a->is_accelerator() && !b->is_accelerator();
    });
    return out;
  }

  // Could `inst` fit on some device it may use with every other model gone?
  bool CouldEverFit(const ModelEntry& entry, const Instance& inst) const {
    for (const Device* d : AllowedDevices(entry)) {
      const uint64_t context = options.isolation == Isolation::kNone ? 0 : d->context_bytes;
      if (inst.request_bytes + context <= LedgerCapacity(*d, options.buffer_bytes)) return true;
    }
    return false;
  }

  // Puts `rec` on standby with one instance and its scheduler: requests
  // queue and the first one loads it (DemandLoad). mu held.
  void Park(ModelRecord& rec, const std::string& reason) {
    RetireCounters(rec.instances, &rec.retired);
    rec.instances.clear();
    auto inst = NewInstance(rec, 0, rec.status.request_bytes);
    AttachScheduler(rec.entry, *inst);
    rec.instances.push_back(inst);
    // Already on standby (Load of a model that still does not fit): it
    // stays there, with its new instance.
    if (rec.status.state != ModelState::kStandby) Apply(rec, LifecycleEvent::kPark, reason);
  }

  // Loads a standby instance on its first request: the device with the most
  // free bytes that it may use, else the first one it fits on once idle
  // instances are evicted there (MemoryArbiter::AdmitWithRoom), waiting for
  // room until `deadline`. Concurrent first requests queue behind this one
  // in the instance's scheduler: one load.
  Status DemandLoad(Instance& inst, std::optional<SchedulerTime> deadline) {
    ModelEntry entry;
    memory::InstanceAccount account;
    std::shared_ptr<WorkerSlot> slot;
    bool new_slot = false;
    uint64_t context = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      ModelRecord& rec = models.at(inst.model);
      entry = rec.entry;
      const Device* best = nullptr;
      uint64_t best_free = 0;
      for (const Device* d : AllowedDevices(entry)) {
        const uint64_t ctx = options.isolation == Isolation::kNone ? 0 : d->context_bytes;
        if (inst.request_bytes + ctx > LedgerCapacity(*d, options.buffer_bytes)) continue;
        const uint64_t free =
            arbiter->WithLedger([&](memory::MemoryLedger& l) { return l.FreeBytes(d->id); });
        if (best == nullptr || free > best_free) {
          best = d;
          best_free = free;
        }
      }
      if (best == nullptr) {
        return Status::ResourceExhausted("model '" + inst.model + "' (request " +
                                         std::to_string(inst.request_bytes) +
                                         " bytes) fits on no device it may use");
      }
      inst.device = best->id;
      account = AccountOf(rec, inst);
      slot = SlotFor(inst, &new_slot);
      if (new_slot) context = best->context_bytes;
    }
    Status admitted = arbiter->AdmitWithRoom(account, slot ? slot->key : "", context, deadline);
    if (!admitted.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      inst.device.clear();
      return admitted.WithPrefix("model '" + inst.model + "': no room to load it on demand");
    }
    size_t workers = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      ModelRecord& rec = models.at(inst.model);
      Apply(rec, LifecycleEvent::kDemand);
      if (slot) {
        if (new_slot) pool->Add(slot);
        slot->hosted.push_back(inst.key());
        inst.slot = slot;
      }
      workers = pool->LiveCount();
    }
    const int threads = ThreadsPerWorker(workers);
    const auto start = Clock::now();
    Status s = new_slot ? StartWorker(slot, threads) : Status::Ok();
    if (s.ok()) s = LoadInstance(entry, inst, threads);
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (!s.ok()) {
      ReleaseResidency(inst);
      std::lock_guard<std::mutex> lock(mu);
      Apply(inst.model, LifecycleEvent::kLoadFailed, "on-demand load failed: " + s.message());
      return s.WithPrefix("model '" + inst.model + "': on-demand load");
    }
    InstanceRuntime runtime{inst.model};
    runtime.busy = true;  // the batch that asked for the load runs next
    arbiter->Track(inst.key(), runtime);
    arbiter->SetResident(inst.key(), seconds);
    std::lock_guard<std::mutex> lock(mu);
    ModelRecord& rec = models.at(inst.model);
    Apply(rec, LifecycleEvent::kLoaded);
    Summarize(rec);
    spdlog::info("{}: loaded on demand on {} in {:.3f} s", inst.key(), inst.device, seconds);
    return Status::Ok();
  }

  // True when `entry` is registered without loading (load: on_demand, or
  // the server's default), unless it is pinned resident.
  bool OnDemand(const ModelEntry& entry) const {
    if (entry.config.pinned) return false;
    return entry.config.load == LoadPolicy::kOnDemand ||
           (entry.config.load == LoadPolicy::kDefault &&
            options.default_load == LoadPolicy::kOnDemand);
  }

  // Estimates and places `names` on top of the loaded models, then starts
  // and loads them. A model that does not fit now but could on its own goes
  // to standby (loads on its first request); one that could never fit is
  // unplaced. load_mu held.
  Result<Plan> PlaceAndLoad(const std::vector<std::string>& names,
                            const std::function<void(const ModelStatus&)>& on_model,
                            const std::function<void(const Plan&)>& on_plan = {}) {
    std::vector<ModelEntry> entries;
    std::vector<Device> devs;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& n : names) entries.push_back(models.at(n).entry);
      devs = DevicesAfterLoaded();
    }
    PlanOptions po;
    po.strategy = options.strategy;
    po.isolation = options.isolation;
    po.buffer_bytes = options.buffer_bytes;
    po.max_cpu_models = options.max_cpu_models;
    // On-demand models are estimated (their status shows the figures) but
    // not offered to the planner: they load on their first request.
    MG_ASSIGN_OR_RETURN(
        RepositoryPlan rp,
        PlanRepository(entries, devs, po, options.estimate, options.walker,
                       [this](const ModelEntry& e) { return !OnDemand(e); }));

    // Record estimates, unplaced reasons and the new instances.
    std::vector<std::pair<const ModelEntry*, std::shared_ptr<Instance>>> todo;
    std::map<std::string, std::shared_ptr<WorkerSlot>> new_slots;
    std::vector<std::string> reported;
    // Models whose state this pass already settled (on standby, failed or
    // unplaced through one of their replicas): their other replicas are not
    // placed. Their state before the pass (a model Load retries after it
    // failed, or loads from standby) says nothing about this pass.
    std::set<std::string> settled;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (size_t i = 0; i < entries.size(); ++i) {
        ModelRecord& rec = models.at(entries[i].name);
        const ModelEstimateOutcome& out = rp.estimates[i];
        rec.status.estimate = out.estimate;
        rec.status.request_bytes = out.request_bytes;
        rec.status.limit_bytes = out.limit_bytes;
        RetireCounters(rec.instances, &rec.retired);
        rec.instances.clear();
        if (OnDemand(entries[i])) {
          if (!out.estimate) {
            Apply(rec, LifecycleEvent::kEstimateFailed,
                  "estimate failed: " + out.error.message());
          } else {
            Park(rec, "load: on_demand (loads on its first request)");
          }
          reported.push_back(rec.status.name);
          settled.insert(rec.status.name);
        }
      }
      for (const auto& u : rp.plan.unplaced) {
        ModelRecord& rec = models.at(u.model);
        if (!settled.insert(u.model).second) continue;  // another replica already settled it
        if (u.estimate_failed) {
          Apply(rec, LifecycleEvent::kEstimateFailed, u.reason);
        } else if (CouldEverFit(rec.entry, *NewInstance(rec, 0, rec.status.request_bytes))) {
          Park(rec, "does not fit now (" + u.reason + "); loads on its first request");
        } else {
          Apply(rec, LifecycleEvent::kNoFit, u.reason);
        }
        reported.push_back(rec.status.name);
      }
      for (const auto& a : rp.plan.placed) {
        ModelRecord& rec = models.at(a.model);
        if (settled.count(a.model)) continue;  // another replica did not fit: not served
        auto inst = NewInstance(rec, a.replica, a.request_bytes);
        inst->device = a.device;
        bool new_slot = false;
        std::shared_ptr<WorkerSlot> slot = SlotFor(*inst, &new_slot);
        uint64_t context = 0;
        if (new_slot) {
          const Device* d = FindDevice(a.device);
          context = d ? d->context_bytes : 0;
        }
        Status admitted = arbiter->WithLedger([&](memory::MemoryLedger& l) {
          MG_RETURN_IF_ERROR(l.Admit(AccountOf(rec, *inst)));
          if (context > 0) {
            Status c = l.ChargeContext(a.device, slot->key, context);
            if (!c.ok()) l.Remove(inst->key());
            return c;
          }
          return Status::Ok();
        });
        if (!admitted.ok()) {  // the plan and the ledger disagree: say so, do not load
          // Replicas of this model admitted before this one give back
          // their bytes, their slot places and their new workers.
          for (const auto& earlier : rec.instances) {
            const std::string key = earlier->key();
            arbiter->WithLedger([&](memory::MemoryLedger& l) {
              l.Remove(key);
              return 0;
            });
            todo.erase(std::remove_if(todo.begin(), todo.end(),
                                      [&](const auto& t) { return t.second == earlier; }),
                       todo.end());
            if (auto held = earlier->slot) {
              auto& h = held->hosted;
              h.erase(std::remove(h.begin(), h.end(), key), h.end());
              if (h.empty() && new_slots.erase(held->key) > 0) {
                pool->Retire(held);  // never started: no process to stop
                arbiter->WithLedger([&](memory::MemoryLedger& l) {
                  l.ReleaseContext(held->key);
                  return 0;
                });
              }
            }
          }
          RetireCounters(rec.instances, &rec.retired);
          rec.instances.clear();
          Park(rec, "the ledger refused its placement on " + a.device + ": " + admitted.message());
          reported.push_back(rec.status.name);
          settled.insert(rec.status.name);
          continue;
        }
        if (slot) {
          if (new_slot) {
            pool->Add(slot);
            new_slots[slot->key] = slot;
          }
          slot->hosted.push_back(inst->key());
          inst->slot = slot;
        }
        rec.instances.push_back(inst);
        if (rec.status.state != ModelState::kLoading) Apply(rec, LifecycleEvent::kPlace);
        todo.emplace_back(&rec.entry, inst);
      }
    }
    if (on_plan) on_plan(rp.plan);  // before any worker starts
    if (on_model) {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& n : reported) on_model(models.at(n).status);
    }

    const int threads = ThreadsPerWorker(pool->LiveCount());

    // Start the new workers, in parallel.
    std::map<std::string, Status> start_errors;
    {
      std::vector<std::pair<std::string, std::future<Status>>> starts;
      for (auto& [key, slot] : new_slots) {
        starts.emplace_back(key, std::async(std::launch::async, [this, slot = slot, threads] {
                              return StartWorker(slot, threads);
                            }));
      }
      for (auto& [key, f] : starts) {
        Status s = f.get();
        if (!s.ok()) start_errors[key] = s;
      }
    }

    // Load the instances: in parallel across workers, in order within one.
    std::map<std::string, std::vector<std::pair<const ModelEntry*, std::shared_ptr<Instance>>>>
        by_worker;
    for (auto& t : todo) by_worker[t.second->slot ? t.second->slot->key : t.second->key()].push_back(t);
    std::mutex report_mu;
    std::vector<std::future<void>> loads;
    for (auto& [key, list] : by_worker) {
      loads.push_back(std::async(std::launch::async, [&, key = key, list = list] {
        for (const auto& [entry, inst] : list) {
          Status s;
          const auto start = Clock::now();
          auto err = start_errors.find(key);
          if (err != start_errors.end()) {
            s = err->second;
          } else {
            s = LoadInstance(*entry, *inst, threads);
          }
          if (s.ok()) {
            AttachScheduler(*entry, *inst);
            arbiter->Track(inst->key(), InstanceRuntime{inst->model});
            arbiter->SetResident(inst->key(),
                                 std::chrono::duration<double>(Clock::now() - start).count());
          }
          std::lock_guard<std::mutex> lock(mu);
          ModelRecord& rec = models.at(inst->model);
          if (!s.ok()) {
            if (rec.status.state == ModelState::kLoading) {
              Apply(rec, LifecycleEvent::kLoadFailed, "load failed: " + s.message());
            }
          } else if (rec.status.state == ModelState::kLoading) {
            bool all = std::all_of(rec.instances.begin(), rec.instances.end(),
                                   [](const auto& i) { return i->scheduler != nullptr; });
            if (all) Apply(rec, LifecycleEvent::kLoaded);
          }
          Summarize(rec);
          bool final_state = rec.status.state != ModelState::kLoading;
          if (on_model && final_state) {
            std::lock_guard<std::mutex> report(report_mu);
            on_model(rec.status);
          }
        }
      }));
    }
    for (auto& f : loads) f.get();

    // Models that failed release their instances (and workers hosting nothing else).
    std::vector<std::shared_ptr<Instance>> dropped;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& n : names) {
        ModelRecord& rec = models.at(n);
        if (rec.status.state != ModelState::kFailed) continue;
        for (auto& inst : rec.instances) dropped.push_back(inst);
        rec.instances.clear();
      }
    }
    ReleaseInstances(dropped);
    return rp.plan;
  }

  // Stops the schedulers of `instances`, unloads them from their workers,
  // stops workers left empty and gives their bytes back to the ledger.
  // mu not held.
  void ReleaseInstances(const std::vector<std::shared_ptr<Instance>>& instances) {
    for (const auto& inst : instances) {
      if (inst->scheduler) inst->scheduler->Shutdown();
      arbiter->Forget(inst->key());
      std::lock_guard<std::mutex> exec(inst->exec_mu);
      ReleaseResidency(*inst);
    }
  }

  // ---- watchdog (WorkerPoolListener: the pool restarts, the grid reloads) ----

  // A worker died: its models are restarting until the pool starts a new one.
  void OnWorkerDied(const std::shared_ptr<WorkerSlot>& slot, const std::string& why) override {
    std::lock_guard<std::mutex> lock(mu);
    if (shutting_down) return;
    for (const auto& key : slot->hosted) {
      auto it = models.find(ModelOfKey(key));
      if (it != models.end() && IsPlaced(it->second.status.state) &&
          it->second.status.state != ModelState::kStandby) {
        Apply(it->second, LifecycleEvent::kWorkerDied, why);
      }
    }
  }

  // The instances `slot` hosts, with their model's entry. mu held.
  std::vector<std::pair<ModelEntry, std::shared_ptr<Instance>>> HostedBy(const WorkerSlot& slot) {
    std::vector<std::pair<ModelEntry, std::shared_ptr<Instance>>> out;
    for (const auto& key : slot.hosted) {
      auto it = models.find(ModelOfKey(key));
      if (it == models.end()) continue;
      for (const auto& inst : it->second.instances) {
        if (inst->key() == key) out.emplace_back(it->second.entry, inst);
      }
    }
    return out;
  }

  // A restart of `slot` is due. Instances that were swapped out when the
  // worker died lost their host copy with it: they go back to standby
  // (their ledger bytes return) and load again from their files on their
  // next request. Nothing left: the worker's context goes back too.
  std::optional<WorkerOptions> OnRestartDue(const std::shared_ptr<WorkerSlot>& slot) override {
    std::vector<std::pair<ModelEntry, std::shared_ptr<Instance>>> hosted;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (shutting_down) return std::nullopt;
      hosted = HostedBy(*slot);
    }
    for (auto& [entry, inst] : hosted) {
      const std::string key = inst->key();
      const bool swapped = arbiter->WithLedger([&](memory::MemoryLedger& l) {
        if (!l.IsSwapped(key)) return false;
        l.Remove(key);
        return true;
      });
      if (!swapped) continue;
      std::lock_guard<std::mutex> lock(mu);
      auto& h = slot->hosted;
      h.erase(std::remove(h.begin(), h.end(), key), h.end());
      inst->slot.reset();
      inst->device.clear();
      if (auto it = models.find(inst->model); it != models.end()) {
        Apply(it->second, LifecycleEvent::kEvict,
              "its worker died while it was swapped out; loads again on its next request");
        Summarize(it->second);  // no worker pid or device while on standby
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    if (slot->hosted.empty()) {  // nothing left to restart
      arbiter->WithLedger([&](memory::MemoryLedger& l) {
        l.ReleaseContext(slot->key);
        return 0;
      });
      return std::nullopt;
    }
    return WorkerOptionsFor(*slot, ThreadsPerWorker(pool->LiveCount()));
  }

  // Starting the new worker failed: its models say so until the next try.
  void OnRestartFailed(const std::shared_ptr<WorkerSlot>& slot, const Status& error,
                       std::chrono::milliseconds delay) override {
    std::lock_guard<std::mutex> guard(load_mu);
    std::lock_guard<std::mutex> lock(mu);
    if (shutting_down) return;
    for (auto& [entry, inst] : HostedBy(*slot)) {
      Apply(inst->model, LifecycleEvent::kWorkerDied,
            "restart failed: " + error.message() + "; retrying in " +
                std::to_string(delay.count()) + " ms");
    }
  }

  // The new worker runs: loads the slot's instances again. Models that
  // cannot be reloaded hold nothing: their bytes go back to the ledger and
  // the worker stops when it hosts nothing else.
  void OnRestarted(const std::shared_ptr<WorkerSlot>& slot) override {
    std::lock_guard<std::mutex> guard(load_mu);
    std::vector<std::pair<ModelEntry, std::shared_ptr<Instance>>> hosted;
    {
      std::lock_guard<std::mutex> lock(mu);
      hosted = HostedBy(*slot);
    }
    const int threads = ThreadsPerWorker(pool->LiveCount());
    std::vector<std::shared_ptr<Instance>> failed;
    for (auto& [entry, inst] : hosted) {
      Status s = LoadInstance(entry, *inst, threads);
      std::lock_guard<std::mutex> lock(mu);
      auto it = models.find(inst->model);
      if (it == models.end()) continue;
      ModelRecord& rec = it->second;
      ++rec.status.restarts;
      if (rec.status.state != ModelState::kRestarting) {
        // Unloaded meanwhile: nothing to report.
      } else if (!s.ok()) {
        Apply(rec, LifecycleEvent::kRestartFailed,
              "reload after worker restart failed: " + s.message());
        failed.push_back(inst);
      } else {
        Apply(rec, LifecycleEvent::kRestarted);
        arbiter->SetResident(inst->key(), 0);
      }
      Summarize(rec);
    }
    if (failed.empty()) return;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& inst : failed) {
        auto& list = models.at(inst->model).instances;
        list.erase(std::remove(list.begin(), list.end(), inst), list.end());
        RetireCounters({inst}, &models.at(inst->model).retired);
      }
    }
    ReleaseInstances(failed);
  }
};

Grid::Grid(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Grid::~Grid() {
  Shutdown();
  if (impl_ && impl_->private_swap_dir) {
    std::error_code ec;
    std::filesystem::remove_all(impl_->swap_dir, ec);
  }
  if (impl_ && !impl_->private_scratch.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(impl_->private_scratch, ec);
    if (ec) {
      spdlog::warn("cannot remove the grid's model folders {}: {}", impl_->private_scratch.string(),
                   ec.message());
    }
  }
}

Result<std::unique_ptr<Grid>> Grid::Create(GridOptions options) {
  auto impl = std::make_unique<Impl>();
  if (options.devices.empty()) {
    MG_ASSIGN_OR_RETURN(impl->devices, DiscoverDevices());
  } else {
    MG_ASSIGN_OR_RETURN(impl->devices, ParseDeviceSpecs(options.devices));
  }
  if (impl->devices.empty()) return Status::InvalidArgument("no devices to place models on");
  if (options.isolation != Isolation::kNone) {
    if (options.worker_executable.empty()) options.worker_executable = FindWorkerExecutable();
    if (options.worker_executable.empty() ||
        ::access(options.worker_executable.c_str(), X_OK) != 0) {
      return Status::NotFound(
          "modelgrid-worker not found" +
          (options.worker_executable.empty() ? std::string(" next to this executable or on PATH")
                                             : ": '" + options.worker_executable + "'") +
          " (needed for isolation '" + IsolationName(options.isolation) + "')");
    }
  }
  if (!options.walker) {
    impl->own_walker = std::make_unique<TorchScriptGraphWalker>();
    options.walker = impl->own_walker.get();
  }
  if (options.min_residency.count() < 0) {
    return Status::InvalidArgument("min_residency must not be negative");
  }
  if (options.grant_chunk_bytes == 0) {
    return Status::InvalidArgument("grant_chunk_bytes must be at least 1 byte");
  }
  impl->options = std::move(options);
  const GridOptions& o = impl->options;
  // The swap tier: the caller's folder, or a private one made now.
  if (o.swap_space_bytes > 0) {
    std::error_code ec;
    if (!o.swap_dir.empty()) {
      std::filesystem::create_directories(o.swap_dir, ec);
      if (ec) {
        return Status::InvalidArgument("swap dir " + o.swap_dir.string() +
                                       " cannot be made: " + ec.message());
      }
      impl->swap_dir = o.swap_dir;
    } else {
      std::string tmpl =
          (std::filesystem::temp_directory_path(ec) / "modelgrid-swap-XXXXXX").string();
      if (ec || ::mkdtemp(tmpl.data()) == nullptr) {
        return Status::Internal("cannot make a swap directory under the temp dir");
      }
      impl->swap_dir = tmpl;
      impl->private_swap_dir = true;
    }
  }
  memory::LedgerOptions lo;
  lo.grant_chunk_bytes = o.grant_chunk_bytes;
  memory::ReclaimOptions ro;
  ro.min_residency = o.min_residency;
  impl->arbiter = std::make_unique<MemoryArbiter>(lo, ro, impl.get(), o.swap_space_bytes > 0);
  Status ledger = impl->arbiter->WithLedger([&](memory::MemoryLedger& l) {
    l.SetHostCapacity(o.swap_space_bytes);
    for (const Device& d : impl->devices) {
      MG_RETURN_IF_ERROR(l.AddDevice(d.id, LedgerCapacity(d, o.buffer_bytes)));
    }
    return Status::Ok();
  });
  MG_RETURN_IF_ERROR(ledger);
  impl->env = o.worker_env ? o.worker_env : grid_internal::ProcessWorkerEnv();
  grid_internal::RestartPolicy restart{o.initial_backoff, o.max_backoff, kStableUptime};
  impl->pool = std::make_unique<grid_internal::WorkerPool>(impl->env.get(), restart, impl.get());
  impl->pool->StartWatchdog();
  return std::unique_ptr<Grid>(new Grid(std::move(impl)));
}

Status Grid::AddModel(const ModelSpec& spec) {
  MG_ASSIGN_OR_RETURN(ModelEntry entry, OpenModel(spec.path));
  if (!spec.name.empty()) entry.name = spec.name;
  if (spec.memory_request) {
    if (*spec.memory_request == 0) {
      return Status::InvalidArgument("model '" + entry.name + "': memory_request must be >= 1 byte");
    }
    entry.config.memory_request = spec.memory_request;
  }
  if (spec.memory_limit) entry.config.memory_limit = spec.memory_limit;
  if (entry.config.memory_request && entry.config.memory_limit &&
      *entry.config.memory_limit < *entry.config.memory_request) {
    return Status::InvalidArgument("model '" + entry.name + "': memory limit " +
                                   std::to_string(*entry.config.memory_limit) +
                                   " bytes is below its request " +
                                   std::to_string(*entry.config.memory_request) + " bytes");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->models.count(entry.name)) {
    return Status::AlreadyExists("model '" + entry.name + "' was already added");
  }
  ModelRecord rec;
  rec.status.name = entry.name;
  rec.status.type = entry.format == ModelFormat::kHuggingFace ? "huggingface" : "torchscript";
  rec.status.version = entry.version;
  rec.status.max_batch_size = entry.config.max_batch_size;
  rec.status.priority = entry.config.priority;
  rec.status.resolver = entry.config.resolver;
  rec.status.pinned = entry.config.pinned;
  rec.status.load = impl_->OnDemand(entry) ? LoadPolicy::kOnDemand : LoadPolicy::kEager;
  rec.life = ModelLifecycle(entry.name);
  rec.entry = std::move(entry);
  impl_->order.push_back(rec.status.name);
  impl_->models.emplace(rec.status.name, std::move(rec));
  return Status::Ok();
}

Result<std::filesystem::path> Grid::NewModelFolder(const std::string& name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return Status::InvalidArgument("model name '" + name +
                                   "' cannot name a folder (empty, '.', '..', or holds '/')");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->models.count(name)) {
    return Status::AlreadyExists("model '" + name + "' was already added");
  }
  std::filesystem::path base = impl_->options.scratch_dir;
  if (base.empty()) {
    if (impl_->private_scratch.empty()) {
      std::error_code ec;
      std::string tmpl =
          (std::filesystem::temp_directory_path(ec) / "modelgrid-models-XXXXXX").string();
      if (ec) return Status::Internal("no temp directory for model folders: " + ec.message());
      if (::mkdtemp(tmpl.data()) == nullptr) {
        return Status::Internal("cannot make a directory for model folders from " + tmpl + ": " +
                                std::strerror(errno));
      }
      impl_->private_scratch = tmpl;
    }
    base = impl_->private_scratch;
  }
  for (;;) {
    std::filesystem::path folder = base / (name + "-" + std::to_string(impl_->next_folder++));
    std::error_code ec;
    if (std::filesystem::create_directory(folder, ec)) return folder;
    if (ec) {
      return Status::Internal("cannot make model folder " + folder.string() + ": " + ec.message());
    }
    // It existed already (a folder left in scratch_dir): take the next number.
  }
}

Status Grid::AddRepository(const std::filesystem::path& root) {
  MG_ASSIGN_OR_RETURN(std::vector<ModelEntry> entries, ScanRepository(root));
  for (const auto& e : entries) {
    ModelSpec spec;
    spec.name = e.name;
    spec.path = e.dir;
    MG_RETURN_IF_ERROR(AddModel(spec));
  }
  return Status::Ok();
}

Result<Plan> Grid::LoadAll(std::function<void(const ModelStatus&)> on_model,
                           std::function<void(const Plan&)> on_plan) {
  std::lock_guard<std::mutex> guard(impl_->load_mu);
  std::vector<std::string> names;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->shutting_down) return Status::Unavailable("grid is shutting down");
    for (const auto& n : impl_->order) {
      ModelState s = impl_->models.at(n).status.state;
      if (s == ModelState::kAdded || s == ModelState::kUnplaced || s == ModelState::kFailed) {
        names.push_back(n);
      }
    }
  }
  if (names.empty()) {
    Plan empty;
    empty.strategy = impl_->options.strategy;
    empty.isolation = impl_->options.isolation;
    return empty;
  }
  return impl_->PlaceAndLoad(names, on_model, on_plan);
}

Status Grid::Load(const std::string& model) {
  std::lock_guard<std::mutex> guard(impl_->load_mu);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->shutting_down) return Status::Unavailable("grid is shutting down");
    auto it = impl_->models.find(model);
    if (it == impl_->models.end()) return Status::NotFound("unknown model '" + model + "'");
    ModelState s = it->second.status.state;
    if (s == ModelState::kReady) return Status::Ok();
    if (IsPlaced(s) && s != ModelState::kStandby) {
      return Status::Unavailable("model '" + model + "' is " + ModelStateName(s));
    }
  }
  MG_ASSIGN_OR_RETURN(Plan plan, impl_->PlaceAndLoad({model}, {}));
  (void)plan;
  std::lock_guard<std::mutex> lock(impl_->mu);
  const ModelStatus& st = impl_->models.at(model).status;
  switch (st.state) {
    case ModelState::kReady: return Status::Ok();
    case ModelState::kUnplaced:
      return Status::ResourceExhausted("model '" + model + "' does not fit: " + st.reason);
    default: return Status::Unavailable("model '" + model + "': " + st.reason);
  }
}

Status Grid::Unload(const std::string& model) {
  std::lock_guard<std::mutex> guard(impl_->load_mu);
  std::vector<std::shared_ptr<Instance>> instances;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->models.find(model);
    if (it == impl_->models.end()) return Status::NotFound("unknown model '" + model + "'");
    ModelStatus& st = it->second.status;
    if (!IsPlaced(st.state)) {
      return Status::InvalidArgument("model '" + model + "' is not loaded (state " +
                                     ModelStateName(st.state) + ")");
    }
    if (st.state == ModelState::kSwappingIn || st.state == ModelState::kSwappingOut) {
      return Status::Unavailable("model '" + model + "' is " + ModelStateName(st.state) +
                                 "; unload it once the swap has settled");
    }
    MG_RETURN_IF_ERROR(impl_->Apply(it->second, LifecycleEvent::kUnload));
    instances = std::move(it->second.instances);
    it->second.instances.clear();
    impl_->Summarize(it->second);
  }
  impl_->ReleaseInstances(instances);
  std::lock_guard<std::mutex> lock(impl_->mu);
  RetireCounters(instances, &impl_->models.at(model).retired);
  return Status::Ok();
}

void Grid::InferAsync(const std::string& model, InferCall call, InferCallback done) {
  std::shared_ptr<Instance> inst;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    auto it = impl_->models.find(model);
    if (it == impl_->models.end()) {
      done(Status::NotFound("unknown model '" + model + "'"));
      return;
    }
    const ModelStatus& st = it->second.status;
    // Swapped and standby models take requests: their executor brings them
    // back first (the client sees latency, not an error).
    // So does a model loading on demand (its first request's batch is
    // loading it): later requests queue behind that load, not fail.
    const bool demand_loading = st.state == ModelState::kLoading &&
                                it->second.life.last_event() == LifecycleEvent::kDemand;
    const bool serving = st.state == ModelState::kReady || st.state == ModelState::kSwapped ||
                         st.state == ModelState::kStandby ||
                         st.state == ModelState::kSwappingIn ||
                         st.state == ModelState::kSwappingOut || demand_loading;
    if (!serving) {
      done(Status::Unavailable("model '" + model + "' is not ready (state " +
                               ModelStateName(st.state) +
                               (st.reason.empty() ? "" : ": " + st.reason) + ")"));
      return;
    }
    // A model never loaded yet (standby) does not know its tasks: its worker
    // answers an unknown task.
    if (!st.tasks.empty() &&
        std::find(st.tasks.begin(), st.tasks.end(), call.task) == st.tasks.end()) {
      std::string list;
      for (const auto& t : st.tasks) list += (list.empty() ? "" : ", ") + t;
      done(Status::NotFound("model '" + model + "' has no task '" + call.task + "' (tasks: " +
                            list + ")"));
      return;
    }
    uint64_t best = UINT64_MAX;
    for (const auto& i : it->second.instances) {
      if (!i->scheduler) continue;
      uint64_t q = i->scheduler->Stats().queued;
      if (q < best) {
        best = q;
        inst = i;
      }
    }
  }
  if (!inst) {
    done(Status::Unavailable("model '" + model + "' has no running instance"));
    return;
  }
  if (Status shared = ResolveSharedInputs(impl_->shared_memory, model, &call.inputs);
      !shared.ok()) {
    done(shared);
    return;
  }
  SchedulerRequest req;
  req.id = std::move(call.id);
  req.task = std::move(call.task);
  req.inputs = std::move(call.inputs);
  req.params = std::move(call.params);
  req.priority = call.priority;
  if (call.timeout) req.deadline = SchedulerTime(std::chrono::steady_clock::now() + *call.timeout);
  auto shared_done = std::make_shared<InferCallback>(std::move(done));
  Status s = inst->scheduler->Submit(
      std::move(req), [shared_done](Result<std::vector<InferTensor>> r) { (*shared_done)(std::move(r)); });
  if (!s.ok()) (*shared_done)(s);
}

Status Grid::RegisterSharedMemory(const std::string& name, const std::string& key, uint64_t offset,
                                  uint64_t byte_size) {
  return impl_->shared_memory.Register(name, key, offset, byte_size);
}

Status Grid::UnregisterSharedMemory(const std::string& name) {
  std::vector<uint64_t> ids;
  if (name.empty()) {
    ids = impl_->shared_memory.UnregisterAll();
  } else {
    MG_ASSIGN_OR_RETURN(const uint64_t id, impl_->shared_memory.Unregister(name));
    ids.push_back(id);
  }
  impl_->DetachFromWorkers(ids);
  return Status::Ok();
}

std::vector<ipc::SharedMemoryRegion> Grid::SharedMemoryRegions() const {
  return impl_->shared_memory.Regions();
}

Result<ipc::SharedMemoryRegion> Grid::SharedMemoryRegion(const std::string& name) const {
  return impl_->shared_memory.Region(name);
}

Result<std::vector<InferTensor>> Grid::Infer(const std::string& model, InferCall call) {
  auto promise = std::make_shared<std::promise<Result<std::vector<InferTensor>>>>();
  auto future = promise->get_future();
  InferAsync(model, std::move(call),
             [promise](Result<std::vector<InferTensor>> r) { promise->set_value(std::move(r)); });
  return future.get();
}

std::map<std::string, Result<std::vector<InferTensor>>> Grid::Run(
    const std::string& task, const std::map<std::string, std::vector<InferTensor>>& inputs,
    std::chrono::milliseconds timeout, const nlohmann::json& params) {
  std::map<std::string, std::future<Result<std::vector<InferTensor>>>> futures;
  for (const auto& [model, tensors] : inputs) {
    auto promise = std::make_shared<std::promise<Result<std::vector<InferTensor>>>>();
    futures.emplace(model, promise->get_future());
    InferCall call;
    call.task = task;
    call.inputs = tensors;
    call.params = params;
    call.timeout = timeout;
    InferAsync(model, std::move(call),
               [promise](Result<std::vector<InferTensor>> r) { promise->set_value(std::move(r)); });
  }
  std::map<std::string, Result<std::vector<InferTensor>>> out;
  for (auto& [model, f] : futures) out.emplace(model, f.get());
  return out;
}

std::vector<ModelStatus> Grid::Models() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<ModelStatus> out;
  const auto collisions = impl_->arbiter->Collisions();
  for (const auto& n : impl_->order) out.push_back(impl_->StatusOf(impl_->models.at(n), collisions));
  return out;
}

Result<ModelStatus> Grid::Model(const std::string& model) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->models.find(model);
  if (it == impl_->models.end()) return Status::NotFound("unknown model '" + model + "'");
  return impl_->StatusOf(it->second, impl_->arbiter->Collisions());
}

// Every figure from the ledger (the one account per device): requests and
// contexts reserved, bytes lent past requests, bytes swapped to the host.
std::vector<DeviceStatus> Grid::Devices() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<DeviceStatus> out;
  for (const auto& d : impl_->devices) {
    DeviceStatus ds;
    ds.device = d;
    ds.buffer_bytes = d.is_accelerator() ? impl_->options.buffer_bytes : 0;
    uint64_t measured = 0;
    for (const auto& n : impl_->order) {
      const ModelRecord& rec = impl_->models.at(n);
      if (!IsPlaced(rec.status.state)) continue;
      for (const auto& inst : rec.instances) {
        if (inst->device != d.id) continue;
        measured += inst->current_bytes;
        ds.models.push_back(rec.instances.size() > 1 ? inst->key() : inst->model);
      }
    }
    ds.workers = impl_->pool->LiveCount(d.id);
    auto snap = impl_->arbiter->WithLedger(
        [&](memory::MemoryLedger& l) { return l.Snapshot(d.id); });
    if (snap.ok()) {
      ds.capacity_bytes = snap->capacity_bytes;
      ds.reserved_bytes = snap->request_bytes + snap->context_bytes;
      ds.borrowed_bytes = snap->borrowed_bytes;
      ds.swapped_bytes = snap->swapped_bytes;
      ds.free_bytes = snap->free_bytes;
    }
    ds.context_measured = impl_->measured_context.count(d.id) > 0;
    ds.used_bytes = d.used_bytes + measured;
    out.push_back(std::move(ds));
  }
  return out;
}

Result<ModelCounters> Grid::Counters(const std::string& model) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->models.find(model);
  if (it == impl_->models.end()) return Status::NotFound("unknown model '" + model + "'");
  ModelCounters c = it->second.retired;
  for (const auto& inst : it->second.instances) {
    if (inst->scheduler) AddCounters(inst->scheduler->Stats(), /*live=*/true, &c);
  }
  return c;
}

void Grid::RefreshMemory(std::chrono::milliseconds timeout) {
  for (const auto& slot : impl_->pool->Slots()) {
    auto client = slot->Client();
    if (!client || !client->alive()) continue;
    auto stats = client->Stats(timeout);
    if (!stats.ok()) continue;
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const auto& key : slot->hosted) {
      std::string model = key.substr(0, key.rfind('#'));
      auto it = impl_->models.find(model);
      if (it == impl_->models.end()) continue;
      for (auto& inst : it->second.instances) {
        if (inst->key() != key) continue;
        if (slot->hosted.size() == 1) {
          inst->current_bytes = stats->current_bytes;
          inst->peak_bytes = stats->peak_bytes;
        } else {
          for (const auto& m : stats->models) {
            if (m.model == model) {
              inst->current_bytes = m.current_bytes;
              inst->peak_bytes = m.peak_bytes;
            }
          }
        }
      }
      impl_->Summarize(it->second);
    }
  }
  // In-process instances: the process-wide allocator's figures are shared;
  // the bytes measured at load stay as current.
}

bool Grid::Ready() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->shutting_down) return false;
  for (const auto& [n, rec] : impl_->models) {
    // A model loading on demand was ready to serve before its request came.
    if (rec.status.state == ModelState::kLoading &&
        rec.life.last_event() == LifecycleEvent::kDemand) {
      continue;
    }
    if (!CountsTowardsReadiness(rec.status.state)) return false;
  }
  return true;
}

void Grid::Shutdown() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->shutting_down) return;
    impl_->shutting_down = true;
  }
  // No more restarts; every slot retired (the watchdog joined first, so
  // no restart runs below).
  std::vector<std::shared_ptr<WorkerSlot>> slots = impl_->pool->Stop();
  std::lock_guard<std::mutex> guard(impl_->load_mu);
  std::vector<std::shared_ptr<Instance>> all;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (auto& [n, rec] : impl_->models) {
      for (auto& inst : rec.instances) all.push_back(inst);
      if (IsPlaced(rec.status.state)) {
        impl_->Apply(rec, LifecycleEvent::kShutdown);
        rec.status.reason = "server shut down";
      }
    }
  }
  for (auto& inst : all) {
    if (inst->scheduler) inst->scheduler->Shutdown();
  }
  // Stop the workers in parallel: each gets its grace period at once.
  std::vector<std::thread> stoppers;
  for (auto& slot : slots) {
    std::shared_ptr<grid_internal::WorkerProcess> p;
    {
      std::lock_guard<std::mutex> lock(slot->mu);
      p = slot->process;
    }
    if (p) stoppers.emplace_back([p] { p->Shutdown(); });
  }
  for (auto& t : stoppers) t.join();
}

Status Grid::Reconfigure(const std::string& model, const ModelUpdate& update) {
  if (update.request_bytes && *update.request_bytes == 0) {
    return Status::InvalidArgument("model '" + model + "': request must be at least 1 byte");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->models.find(model);
  if (it == impl_->models.end()) return Status::NotFound("unknown model '" + model + "'");
  ModelRecord& rec = it->second;
  ModelStatus& st = rec.status;
  const uint64_t request = update.request_bytes.value_or(st.request_bytes);
  const uint64_t limit = update.limit_bytes.value_or(
      update.request_bytes && !update.limit_bytes ? std::max(st.limit_bytes, request)
                                                  : st.limit_bytes);
  if (limit < request) {
    return Status::InvalidArgument("model '" + model + "': limit " + std::to_string(limit) +
                                   " bytes is below its request " + std::to_string(request) +
                                   " bytes");
  }
  memory::InstanceUpdate u;
  if (update.request_bytes) u.request_bytes = request;
  if (update.request_bytes || update.limit_bytes) u.limit_bytes = limit;
  u.priority = update.priority;
  u.resolver = update.resolver;
  u.pinned = update.pinned;
  // All instances or none: the ledger checks each; undo on a refusal.
  std::vector<std::pair<std::string, memory::InstanceUpdate>> undo;
  for (const auto& inst : rec.instances) {
    const std::string key = inst->key();
    Status applied = impl_->arbiter->WithLedger([&](memory::MemoryLedger& l) -> Status {
      auto before = l.Find(key);
      if (!before) return Status::Ok();  // on standby: nothing held
      MG_RETURN_IF_ERROR(l.Update(key, u));
      memory::InstanceUpdate back;
      back.request_bytes = before->account.request_bytes;
      back.limit_bytes = before->account.limit_bytes;
      back.priority = before->account.priority;
      back.resolver = before->account.resolver;
      back.pinned = before->account.pinned;
      undo.emplace_back(key, back);
      return Status::Ok();
    });
    if (!applied.ok()) {
      impl_->arbiter->WithLedger([&](memory::MemoryLedger& l) {
        for (const auto& [k, b] : undo) (void)l.Update(k, b);
        return 0;
      });
      return applied.WithPrefix("model '" + model + "'");
    }
  }
  std::string what;
  auto note = [&](const std::string& field, const std::string& from, const std::string& to) {
    if (from != to) what += (what.empty() ? "" : ", ") + field + " " + from + " -> " + to;
  };
  note("request", std::to_string(st.request_bytes), std::to_string(request));
  note("limit", std::to_string(st.limit_bytes), std::to_string(limit));
  // Only the figures the update names: a model not estimated yet (state
  // added) has request_bytes 0 in its status, which must not become its
  // config's memory request.
  if (update.request_bytes) {
    st.request_bytes = request;
    rec.entry.config.memory_request = request;
  }
  if (update.request_bytes || update.limit_bytes) {
    st.limit_bytes = limit;
    rec.entry.config.memory_limit = limit;
  }
  for (const auto& inst : rec.instances) {
    if (update.request_bytes) inst->request_bytes = request;
    if (update.request_bytes || update.limit_bytes) inst->limit_bytes = limit;
  }
  if (update.priority) {
    note("priority", std::to_string(st.priority), std::to_string(*update.priority));
    st.priority = rec.entry.config.priority = *update.priority;
  }
  if (update.resolver) {
    note("resolver", ResolverName(st.resolver), ResolverName(*update.resolver));
    st.resolver = rec.entry.config.resolver = *update.resolver;
  }
  if (update.pinned) {
    note("pinned", st.pinned ? "true" : "false", *update.pinned ? "true" : "false");
    st.pinned = rec.entry.config.pinned = *update.pinned;
  }
  if (update.load) {
    rec.entry.config.load = *update.load;
    const LoadPolicy now = impl_->OnDemand(rec.entry) ? LoadPolicy::kOnDemand : LoadPolicy::kEager;
    note("load", LoadPolicyName(st.load), LoadPolicyName(now));
    st.load = now;
  }
  if (!what.empty()) {
    std::string line = UtcNow() + " model " + model + ": " + what;
    spdlog::info("reconfigured: {}", line);
    impl_->change_log.push_back(std::move(line));
  }
  return Status::Ok();
}

void Grid::SetStrategy(Strategy strategy) {
  std::lock_guard<std::mutex> guard(impl_->load_mu);  // no placement in progress
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->options.strategy == strategy) return;
  std::string line = UtcNow() + " strategy: " + StrategyName(impl_->options.strategy) + " -> " +
                     StrategyName(strategy);
  spdlog::info("reconfigured: {}", line);
  impl_->change_log.push_back(std::move(line));
  impl_->options.strategy = strategy;
}

Strategy Grid::strategy() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->options.strategy;
}

std::vector<std::string> Grid::ChangeLog() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->change_log;
}

std::vector<SwapEvent> Grid::SwapEvents() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return {impl_->swap_events.begin(), impl_->swap_events.end()};
}

}  // namespace modelgrid

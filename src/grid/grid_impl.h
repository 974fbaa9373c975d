// Internals of modelgrid::Grid (grid.h): the Impl behind the façade and
// what its files share. Not part of the public API. The grid's concerns
// and their owners (docs/design.md, "Architecture"):
//   grid.cc            the façade: Grid's public methods, Create, Shutdown
//   grid_impl.cc       shared helpers: device lookups, lifecycle Apply,
//                      status summaries, a worker's context measurement
//   grid_residency.cc  the executor path and residency: grants per batch,
//                      swap-in/out, eviction (the arbiter's ArbiterActions)
//   grid_loading.cc    placement on what is loaded, worker starts, model
//                      loads, standby and on-demand loads
//   grid_watchdog.cc   restarts (the worker pool's WorkerPoolListener)
// Owned elsewhere: the lifecycle table (lifecycle.h), the ledger and its
// arbiter (arbiter.h), worker processes and restart delays (worker_pool.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "grid/arbiter.h"
#include "grid/grid_internal.h"
#include "grid/lifecycle.h"
#include "grid/worker_pool.h"
#include "modelgrid/grid.h"
#include "modelgrid/repository_plan.h"

namespace modelgrid {

using grid_internal::ArbiterActions;
using grid_internal::Clock;
using grid_internal::Instance;
using grid_internal::InstanceRuntime;
using grid_internal::MemoryArbiter;
using grid_internal::WorkerSlot;

namespace grid_internal {

// Simulated devices exist for planning; their models run on the CPU.
inline std::string ExecDevice(const Device& d) {
  return d.kind == DeviceKind::kCuda ? d.id : "cpu";
}

// States in which a model has instances with schedulers: requests queue
// for it (a swapped or standby one is brought back by its executor).
inline bool IsPlaced(ModelState s) {
  switch (s) {
    case ModelState::kLoading:
    case ModelState::kReady:
    case ModelState::kRestarting:
    case ModelState::kStandby:
    case ModelState::kSwappingOut:
    case ModelState::kSwapped:
    case ModelState::kSwappingIn:
      return true;
    default:
      return false;
  }
}

// The model of an instance key "model#replica".
inline std::string ModelOfKey(const std::string& key) { return key.substr(0, key.rfind('#')); }

// Bytes the ledger may hand out on `d`: total - used by others - buffer.
inline uint64_t LedgerCapacity(const Device& d, uint64_t buffer_bytes) {
  const uint64_t taken = d.used_bytes + (d.is_accelerator() ? buffer_bytes : 0);
  return d.total_bytes > taken ? d.total_bytes - taken : 0;
}

inline std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

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

}  // namespace grid_internal

namespace grid_internal {
// Seconds a client is told to wait (Retry-After) before retrying a model
// that is restarting or whose worker died under its request: about the
// watchdog's first restart delay plus a small model's load.
constexpr uint64_t kRestartRetryAfterSeconds = 1;

// `s` with `seconds` as its retry-after detail, other details kept.
inline Status WithRetryAfter(const Status& s, uint64_t seconds) {
  if (s.ok()) return s;
  StatusDetail d = s.detail() ? *s.detail() : StatusDetail{};
  d.retry_after_seconds = seconds;
  return s.WithDetail(std::move(d));
}
}  // namespace grid_internal

using grid_internal::ExecDevice;
using grid_internal::ExecuteFn;
using grid_internal::GridExecutor;
using grid_internal::IsPlaced;
using grid_internal::LedgerCapacity;
using grid_internal::ModelOfKey;
using grid_internal::UtcNow;
using grid_internal::WithRetryAfter;
using grid_internal::kRestartRetryAfterSeconds;

struct ModelRecord {
  ModelEntry entry;
  ModelStatus status;
  ModelLifecycle life{""};
  std::vector<std::shared_ptr<Instance>> instances;
  // Counters of instances released by Unload or a reload, so that the
  // model's statistics keep counting across them (queued excluded).
  ModelCounters retired;
  uint64_t last_inference_ms = 0;  // ModelCounters::last_inference_ms; guarded by Impl::mu
};

// Adds `s` to `c`; the queue length only when `live` (a released
// scheduler's queue is empty or failed).
inline void AddCounters(const SchedulerStats& s, bool live, ModelCounters* c) {
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
inline void RetireCounters(const std::vector<std::shared_ptr<Instance>>& instances,
                           ModelCounters* c) {
  for (const auto& inst : instances) {
    if (inst->scheduler) AddCounters(inst->scheduler->Stats(), /*live=*/false, c);
  }
}

// The grid behind the façade. Its members are guarded as each says; the
// sections of its methods say which lock they expect.
struct Grid::Impl final : public ArbiterActions, public grid_internal::WorkerPoolListener {
  GridOptions options;
  ipc::SharedMemoryRegistry shared_memory;  // thread-safe on its own
  std::filesystem::path private_scratch;    // made by NewModelFolder; removed by ~Grid
  uint64_t next_folder = 0;
  std::vector<Device> devices;
  std::unique_ptr<GraphWalker> own_walker;  // when options.walker was null
  std::set<std::string> measured_context;  // guarded by mu: devices whose context_bytes is measured

  std::mutex load_mu;  // serializes LoadAll / Load / Unload (placement decisions)

  mutable std::mutex mu;  // guards everything below
  std::vector<std::string> order;
  std::map<std::string, ModelRecord> models;
  bool shutting_down = false;

  // The ledger's owner at run time (arbiter.h): grants, swap-ins, room for
  // on-demand loads. Created by Grid::Create.
  std::unique_ptr<MemoryArbiter> arbiter;
  std::filesystem::path swap_dir;       // where CPU weights swap to (options or private)
  bool private_swap_dir = false;        // made by the grid: removed with it
  std::deque<SwapEvent> swap_events;    // guarded by mu; the last kMaxSwapEvents
  std::vector<std::string> change_log;  // guarded by mu

  // The worker slots and their watchdog (worker_pool.h); processes come
  // from `env`. Created by Grid::Create; thread-safe on their own.
  std::shared_ptr<grid_internal::WorkerEnv> env;
  std::unique_ptr<grid_internal::WorkerPool> pool;

  // Has every running worker forget the shared-memory regions `ids`.
  // Takes mu itself.
  void DetachFromWorkers(const std::vector<uint64_t>& ids);

  // ---- helpers (mu held unless said otherwise) ----

  int ThreadsPerWorker(size_t workers) const;

  const Device* FindDevice(const std::string& id) const;

  // Devices with what the ledger holds there (requests of resident
  // instances, grants, worker contexts) counted as used: what the planner
  // may still pack. mu held.
  std::vector<Device> DevicesAfterLoaded() const;

  // Every change of a model's state goes through its lifecycle table
  // (lifecycle.h); the status mirrors it. An event the state does not
  // accept is a bug: logged, state unchanged. mu held.
  Status Apply(ModelRecord& rec, LifecycleEvent event, std::string reason = "");
  Status Apply(const std::string& model, LifecycleEvent event, std::string reason = "");

  // Instance `key` and its model record, or nulls. mu held.
  std::pair<ModelRecord*, std::shared_ptr<Instance>> FindInstance(const std::string& key);

  // Keeps `e` among the last swap events. mu held.
  void RecordSwap(SwapEvent e);

  // The status of `rec` with the ledger's figures (borrowed, swapped) and
  // the arbiter's collision counts. mu held.
  ModelStatus StatusOf(const ModelRecord& rec, const grid_internal::CollisionCounts& all) const;

  // Recomputes a model's status fields that derive from its instances.
  void Summarize(ModelRecord& rec);

  // On a CUDA device, measures the worker's context once, when its first
  // model has loaded:
  // NVML's bytes for its pid minus its caching allocator's reserve. The
  // device's per-worker charge becomes the measured figure, so later plans
  // charge it instead of the configured default. Failures are logged: the
  // default charge stays. mu not held.
  void MeasureContext(const std::shared_ptr<WorkerSlot>& slot, WorkerClient& client);

  // The worker slot `inst` runs in on its device: the live slot of its key
  // (the instance in isolation `model`, the device in `device`), or a new
  // one, not yet in `slots` (*is_new). Null in isolation `none`. mu held.
  std::shared_ptr<WorkerSlot> SlotFor(const Instance& inst, bool* is_new) const;

  // ---- execution and residency (an instance's exec_mu held) ----

  // The bytes a batch of `rows` rows needs past the instance's request.
  uint64_t BurstBytes(const Instance& inst, int64_t rows) const;

  // The scheduler's budget (BatchSchedulerOptions::budget_bytes): bytes past
  // the weights the instance holds or could be granted now.
  uint64_t BatchBudget(const Instance& inst);

  // Runs one batch on `inst` (GridExecutor).
  Result<std::vector<InferTensor>> Execute(Instance& inst, const ExecuteContext& ctx,
                                           const std::string& task, std::vector<InferTensor> inputs,
                                           const nlohmann::json& params);

  Result<std::vector<InferTensor>> RunOnce(Instance& inst, const ExecuteContext& ctx,
                                           const std::string& task,
                                           const std::vector<InferTensor>& inputs,
                                           const nlohmann::json& params);

  // Brings `inst` back onto a device when it is swapped out or on standby,
  // within `deadline`. Errors: kUnavailable when its worker is restarting or
  // it failed; the arbiter's collision (507) when no room came in time; the
  // load error.
  Status EnsureResident(Instance& inst, std::optional<SchedulerTime> deadline);

  Status SwapIn(Instance& inst, std::optional<SchedulerTime> deadline);

  // ArbiterActions: moves an idle instance's weights to the host tier.
  Status SwapOutInstance(const std::string& key, const std::string& reason) override;

  // ArbiterActions: unloads an idle instance; its model goes back to standby
  // and loads again on its next request.
  Status EvictInstance(const std::string& key, const std::string& reason) override;

  // Lowers the cap of `key`'s batch in flight to its request through its
  // worker (WorkerClient::SetLimit with the preemption's reason), so that
  // the batch fails at its next allocation past the request and its grant
  // comes back (ArbiterActions::PreemptInstance). Does not wait for the
  // batch. Errors: kNotFound, kUnavailable (not ready, pinned),
  // kUnsupported (in-process), the worker's.
  Status PreemptInstance(const std::string& key,
                         const grid_internal::Preemption& preemption) override;

  // Frees what a resident instance holds (worker side, ledger) and leaves
  // it on standby: its scheduler stays. mu not held; exec_mu held or the
  // scheduler stopped.
  void ReleaseResidency(Instance& inst);

  // Removes instance `key` from `slot`: unloads it from the worker, or stops
  // the worker when it hosted nothing else (its context goes back to the
  // ledger). mu not held.
  void ReleaseFromSlot(const std::shared_ptr<WorkerSlot>& slot, const std::string& model,
                       const std::string& key);

  // ---- loading (load_mu held, mu not held) ----

  // How a worker for `slot` starts, with `threads` LibTorch threads.
  WorkerOptions WorkerOptionsFor(const WorkerSlot& slot, int threads) const;

  // Starts the first worker of `slot` (the pool restarts it when it dies).
  // Errors: WorkerEnv::Launch's.
  Status StartWorker(const std::shared_ptr<WorkerSlot>& slot, int threads);

  // Loads one instance onto its executor (worker or in-process). Fills the
  // model status fields a load reveals. mu not held.
  Status LoadInstance(const ModelEntry& entry, Instance& inst, int threads);

  // Gives `inst` its executor and scheduler (once: a standby instance keeps
  // its queue while it is loaded, evicted and loaded again).
  void AttachScheduler(const ModelEntry& entry, Instance& inst);

  // A new instance of `rec` with its memory figures (no device yet).
  std::shared_ptr<Instance> NewInstance(const ModelRecord& rec, int replica,
                                        uint64_t request_bytes) const;

  memory::InstanceAccount AccountOf(const ModelRecord& rec, const Instance& inst) const;

  // The devices `entry` may use (its pins, else all), accelerators first.
  std::vector<const Device*> AllowedDevices(const ModelEntry& entry) const;

  // Could `inst` fit on some device it may use with every other model gone?
  bool CouldEverFit(const ModelEntry& entry, const Instance& inst) const;

  // Puts `rec` on standby with one instance and its scheduler: requests
  // queue and the first one loads it (DemandLoad). mu held.
  void Park(ModelRecord& rec, const std::string& reason);

  // Loads a standby instance on its first request: the device with the most
  // free bytes that it may use, else the first one it fits on once idle
  // instances are evicted there (MemoryArbiter::AdmitWithRoom), waiting for
  // room until `deadline`. Concurrent first requests queue behind this one
  // in the instance's scheduler: one load.
  Status DemandLoad(Instance& inst, std::optional<SchedulerTime> deadline);

  // True when `entry` is registered without loading (load: on_demand, or
  // the server's default), unless it is pinned resident.
  bool OnDemand(const ModelEntry& entry) const;

  // Estimates and places `names` on top of the loaded models, then starts
  // and loads them. A model that does not fit now but could on its own goes
  // to standby (loads on its first request); one that could never fit is
  // unplaced. load_mu held.
  Result<Plan> PlaceAndLoad(const std::vector<std::string>& names,
                            const std::function<void(const ModelStatus&)>& on_model,
                            const std::function<void(const Plan&)>& on_plan = {});

  // Stops the schedulers of `instances` (their queued requests fail with
  // `why`), unloads them from their workers, stops workers left empty and
  // gives their bytes back to the ledger. mu not held.
  void ReleaseInstances(const std::vector<std::shared_ptr<Instance>>& instances,
                        const std::string& why);

  // ---- watchdog (WorkerPoolListener: the pool restarts, the grid reloads) ----

  // A worker died: its models are restarting until the pool starts a new one.
  void OnWorkerDied(const std::shared_ptr<WorkerSlot>& slot, const std::string& why) override;

  // The instances `slot` hosts, with their model's entry. mu held.
  std::vector<std::pair<ModelEntry, std::shared_ptr<Instance>>> HostedBy(const WorkerSlot& slot);

  // A restart of `slot` is due. Instances that were swapped out when the
  // worker died lost their host copy with it: they go back to standby
  // (their ledger bytes return) and load again from their files on their
  // next request. Nothing left: the worker's context goes back too.
  std::optional<WorkerOptions> OnRestartDue(const std::shared_ptr<WorkerSlot>& slot) override;

  // Starting the new worker failed: its models say so until the next try.
  void OnRestartFailed(const std::shared_ptr<WorkerSlot>& slot, const Status& error,
                       std::chrono::milliseconds delay) override;

  // The new worker runs: loads the slot's instances again. Models that
  // cannot be reloaded hold nothing: their bytes go back to the ledger and
  // the worker stops when it hosts nothing else.
  void OnRestarted(const std::shared_ptr<WorkerSlot>& slot) override;
};

}  // namespace modelgrid

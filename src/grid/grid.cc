// modelgrid::Grid: registry, placement on top of what is loaded, worker
// slots, schedulers and the watchdog (grid.h).
#include "modelgrid/grid.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "grid/grid_internal.h"
#include "modelgrid/bytes.h"
#include "modelgrid/device/nvml.h"
#include "modelgrid/repository_plan.h"
#include "modelgrid/torch/graph_walk.h"

namespace modelgrid {

using grid_internal::Clock;
using grid_internal::InProcessExecutor;
using grid_internal::Instance;
using grid_internal::WorkerExecutor;
using grid_internal::WorkerSlot;

const char* ModelStateName(ModelState state) {
  switch (state) {
    case ModelState::kAdded: return "added";
    case ModelState::kLoading: return "loading";
    case ModelState::kReady: return "ready";
    case ModelState::kRestarting: return "restarting";
    case ModelState::kUnplaced: return "unplaced";
    case ModelState::kFailed: return "failed";
    case ModelState::kUnloaded: return "unloaded";
  }
  return "unknown";
}

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

bool IsPlaced(ModelState s) {
  return s == ModelState::kLoading || s == ModelState::kReady || s == ModelState::kRestarting;
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

struct ModelRecord {
  ModelEntry entry;
  ModelStatus status;
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

struct Grid::Impl {
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
  std::map<std::string, std::shared_ptr<WorkerSlot>> slots;
  bool shutting_down = false;

  // Watchdog: slots waiting to be restarted, with when.
  std::condition_variable watchdog_cv;
  std::deque<std::pair<Clock::time_point, std::shared_ptr<WorkerSlot>>> restarts;
  std::thread watchdog;

  // Has every running worker forget the shared-memory regions `ids`.
  // Takes mu itself.
  void DetachFromWorkers(const std::vector<uint64_t>& ids) {
    std::vector<std::shared_ptr<WorkerClient>> clients;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& [key, slot] : slots) {
        if (auto client = slot->Client()) clients.push_back(std::move(client));
      }
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

  // Devices with what the loaded instances already reserve counted as used.
  std::vector<Device> DevicesAfterLoaded() const {
    std::vector<Device> out = devices;
    for (auto& d : out) {
      uint64_t requests = 0;
      int workers = 0;
      for (const auto& [key, slot] : slots) {
        if (slot->device == d.id && !slot->retired) ++workers;
      }
      for (const auto& [name, rec] : models) {
        if (!IsPlaced(rec.status.state)) continue;
        for (const auto& inst : rec.instances) {
          if (inst->device != d.id) continue;
          requests += inst->request_bytes;
          if (options.isolation == Isolation::kNone) workers = 1;
        }
      }
      uint64_t contexts = static_cast<uint64_t>(workers) * d.context_bytes;
      // In `device` isolation the planner charges one context to a device
      // that receives a model; an existing device worker already paid it.
      if (options.isolation != Isolation::kModel && workers > 0) contexts -= d.context_bytes;
      d.used_bytes += requests + contexts;
    }
    return out;
  }

  void SetState(const std::string& model, ModelState state, std::string reason) {
    auto it = models.find(model);
    if (it == models.end()) return;
    it->second.status.state = state;
    it->second.status.reason = std::move(reason);
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

  // ---- loading (load_mu held, mu not held) ----

  // Starts a worker for `slot` and records it. Errors: WorkerClient::Start's.
  Status StartWorker(const std::shared_ptr<WorkerSlot>& slot, int threads) {
    WorkerOptions wo;
    wo.executable = options.worker_executable;
    wo.name = slot->key;
    wo.arena_bytes = options.arena_bytes;
    wo.spin = options.spin;
    wo.threads = threads;
    std::weak_ptr<WorkerSlot> weak = slot;
    auto client = WorkerClient::Start(std::move(wo), [this, weak](const WorkerExit& exit) {
      if (auto s = weak.lock()) OnWorkerExit(s, exit);
    });
    if (!client.ok()) return client.status();
    std::lock_guard<std::mutex> lock(slot->mu);
    slot->client = std::move(client).value();
    return Status::Ok();
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
      inst.executor = std::make_unique<InProcessExecutor>(inst.backend.get());
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

  void AttachScheduler(const ModelEntry& entry, Instance& inst) {
    if (!inst.executor) {
      auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::microseconds(entry.config.batching.default_timeout_us));
      inst.executor = std::make_unique<WorkerExecutor>(inst.slot, inst.model, timeout);
    }
    inst.scheduler = std::make_unique<BatchScheduler>(
        BatchSchedulerOptions::FromConfig(inst.model, entry.config), inst.executor.get());
  }

  // Estimates and places `names` on top of the loaded models, then starts
  // and loads them. load_mu held.
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
    MG_ASSIGN_OR_RETURN(RepositoryPlan rp,
                        PlanRepository(entries, devs, po, options.estimate, options.walker));

    // Record estimates, unplaced reasons and the new instances.
    std::vector<std::pair<const ModelEntry*, std::shared_ptr<Instance>>> todo;
    std::map<std::string, std::shared_ptr<WorkerSlot>> new_slots;
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
      }
      for (const auto& u : rp.plan.unplaced) {
        ModelRecord& rec = models.at(u.model);
        bool estimate_failed = u.reason.rfind("estimate failed", 0) == 0;
        rec.status.state = estimate_failed ? ModelState::kFailed : ModelState::kUnplaced;
        rec.status.reason = u.reason;
      }
      for (const auto& a : rp.plan.placed) {
        ModelRecord& rec = models.at(a.model);
        if (rec.status.state == ModelState::kUnplaced || rec.status.state == ModelState::kFailed) {
          continue;  // another replica did not fit: the model is not served
        }
        auto inst = std::make_shared<Instance>();
        inst->model = a.model;
        inst->replica = a.replica;
        inst->device = a.device;
        inst->request_bytes = a.request_bytes;
        inst->limit_bytes = std::max(rec.status.limit_bytes, a.request_bytes);
        if (options.isolation != Isolation::kNone) {
          std::string key = options.isolation == Isolation::kModel ? inst->key() : a.device;
          auto it = slots.find(key);
          if (it == slots.end() || it->second->retired) {
            auto slot = std::make_shared<WorkerSlot>();
            slot->key = key;
            slot->device = a.device;
            const Device* d = FindDevice(a.device);
            slot->exec_device = d ? ExecDevice(*d) : "cpu";
            slot->backoff = options.initial_backoff;
            slots[key] = slot;
            new_slots[key] = slot;
            it = slots.find(key);
          }
          it->second->hosted.push_back(inst->key());
          inst->slot = it->second;
        }
        rec.instances.push_back(inst);
        rec.status.state = ModelState::kLoading;
        rec.status.reason.clear();
        todo.emplace_back(&rec.entry, inst);
      }
    }
    if (on_plan) on_plan(rp.plan);  // before any worker starts
    for (const auto& u : rp.plan.unplaced) {
      if (on_model) {
        std::lock_guard<std::mutex> lock(mu);
        on_model(models.at(u.model).status);
      }
    }

    size_t workers = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (const auto& [k, s] : slots) workers += s->retired ? 0 : 1;
    }
    const int threads = ThreadsPerWorker(workers);

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
          auto err = start_errors.find(key);
          if (err != start_errors.end()) {
            s = err->second;
          } else {
            s = LoadInstance(*entry, *inst, threads);
          }
          if (s.ok()) AttachScheduler(*entry, *inst);
          std::lock_guard<std::mutex> lock(mu);
          ModelRecord& rec = models.at(inst->model);
          if (!s.ok()) {
            rec.status.state = ModelState::kFailed;
            rec.status.reason = "load failed: " + s.message();
          } else if (rec.status.state == ModelState::kLoading) {
            bool all = std::all_of(rec.instances.begin(), rec.instances.end(),
                                   [](const auto& i) { return i->scheduler != nullptr; });
            if (all) rec.status.state = ModelState::kReady;
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

  // Stops the schedulers of `instances`, unloads them from their workers
  // and stops workers left empty. mu not held.
  void ReleaseInstances(const std::vector<std::shared_ptr<Instance>>& instances) {
    std::vector<std::shared_ptr<WorkerSlot>> emptied;
    for (const auto& inst : instances) {
      if (inst->scheduler) inst->scheduler->Shutdown();
      if (!inst->slot) continue;
      bool empty = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        auto& h = inst->slot->hosted;
        h.erase(std::remove(h.begin(), h.end(), inst->key()), h.end());
        empty = h.empty();
        if (empty) {
          inst->slot->retired = true;
          auto it = slots.find(inst->slot->key);
          if (it != slots.end() && it->second == inst->slot) slots.erase(it);
        }
      }
      if (empty) {
        emptied.push_back(inst->slot);
      } else if (auto c = inst->slot->Client()) {
        (void)c->Unload(inst->model, std::chrono::milliseconds{10'000});
      }
    }
    for (const auto& slot : emptied) {
      std::shared_ptr<WorkerClient> c;
      {
        std::lock_guard<std::mutex> lock(slot->mu);
        c = std::move(slot->client);
      }
      if (c) c->Shutdown();
    }
  }

  // ---- watchdog ----

  // From a worker's reader thread: mark its models restarting and queue a restart.
  void OnWorkerExit(const std::shared_ptr<WorkerSlot>& slot, const WorkerExit& exit) {
    if (exit.requested) return;
    std::lock_guard<std::mutex> lock(mu);
    if (shutting_down || slot->retired) return;
    if (Clock::now() - slot->started > kStableUptime) slot->backoff = options.initial_backoff;
    auto delay = slot->backoff;
    slot->backoff = std::min(options.max_backoff, slot->backoff * 2);
    std::string why = "worker '" + slot->key + "' (pid " + std::to_string(exit.pid) + ") " +
                      exit.Describe() + "; restarting in " + std::to_string(delay.count()) + " ms";
    for (const auto& key : slot->hosted) {
      std::string model = key.substr(0, key.rfind('#'));
      auto it = models.find(model);
      if (it != models.end() && IsPlaced(it->second.status.state)) {
        it->second.status.state = ModelState::kRestarting;
        it->second.status.reason = why;
      }
    }
    restarts.emplace_back(Clock::now() + delay, slot);
    watchdog_cv.notify_all();
  }

  void WatchdogLoop() {
    std::unique_lock<std::mutex> lock(mu);
    while (!shutting_down) {
      if (restarts.empty()) {
        watchdog_cv.wait(lock);
        continue;
      }
      auto next = std::min_element(restarts.begin(), restarts.end(),
                                   [](const auto& a, const auto& b) { return a.first < b.first; });
      if (next->first > Clock::now()) {
        watchdog_cv.wait_until(lock, next->first);
        continue;
      }
      std::shared_ptr<WorkerSlot> slot = next->second;
      restarts.erase(next);
      if (slot->retired) continue;
      lock.unlock();
      Restart(slot);
      lock.lock();
    }
  }

  // Starts a new process for `slot` and loads its instances again.
  void Restart(const std::shared_ptr<WorkerSlot>& slot) {
    std::shared_ptr<WorkerClient> old;
    {
      std::lock_guard<std::mutex> lock(slot->mu);
      old = std::move(slot->client);
    }
    old.reset();  // reaps the dead process (its reader thread has finished)
    size_t workers;
    std::vector<std::pair<ModelEntry, std::shared_ptr<Instance>>> hosted;
    {
      std::lock_guard<std::mutex> lock(mu);
      workers = slots.size();
      for (const auto& key : slot->hosted) {
        std::string model = key.substr(0, key.rfind('#'));
        auto it = models.find(model);
        if (it == models.end()) continue;
        for (const auto& inst : it->second.instances) {
          if (inst->key() == key) hosted.emplace_back(it->second.entry, inst);
        }
      }
    }
    const int threads = ThreadsPerWorker(workers);
    Status started = StartWorker(slot, threads);
    std::lock_guard<std::mutex> guard(load_mu);
    if (!started.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (shutting_down || slot->retired) return;
      auto delay = slot->backoff;
      slot->backoff = std::min(options.max_backoff, slot->backoff * 2);
      for (auto& [entry, inst] : hosted) {
        SetState(inst->model, ModelState::kRestarting,
                 "restart failed: " + started.message() + "; retrying in " +
                     std::to_string(delay.count()) + " ms");
      }
      restarts.emplace_back(Clock::now() + delay, slot);
      watchdog_cv.notify_all();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      slot->started = Clock::now();
    }
    for (auto& [entry, inst] : hosted) {
      Status s = LoadInstance(entry, *inst, threads);
      std::lock_guard<std::mutex> lock(mu);
      auto it = models.find(inst->model);
      if (it == models.end()) continue;
      ModelRecord& rec = it->second;
      ++rec.status.restarts;
      if (!s.ok()) {
        rec.status.state = ModelState::kFailed;
        rec.status.reason = "reload after worker restart failed: " + s.message();
      } else if (rec.status.state == ModelState::kRestarting) {
        rec.status.state = ModelState::kReady;
        rec.status.reason.clear();
      }
      Summarize(rec);
    }
  }
};

Grid::Grid(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Grid::~Grid() {
  Shutdown();
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
  impl->options = std::move(options);
  Impl* raw = impl.get();
  impl->watchdog = std::thread([raw] { raw->WatchdogLoop(); });
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
    if (IsPlaced(s)) {
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
    instances = std::move(it->second.instances);
    it->second.instances.clear();
    st.state = ModelState::kUnloaded;
    st.reason.clear();
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
    if (st.state != ModelState::kReady) {
      done(Status::Unavailable("model '" + model + "' is not ready (state " +
                               ModelStateName(st.state) +
                               (st.reason.empty() ? "" : ": " + st.reason) + ")"));
      return;
    }
    if (std::find(st.tasks.begin(), st.tasks.end(), call.task) == st.tasks.end()) {
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
  for (const auto& n : impl_->order) out.push_back(impl_->models.at(n).status);
  return out;
}

Result<ModelStatus> Grid::Model(const std::string& model) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->models.find(model);
  if (it == impl_->models.end()) return Status::NotFound("unknown model '" + model + "'");
  return it->second.status;
}

std::vector<DeviceStatus> Grid::Devices() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<DeviceStatus> out;
  for (const auto& d : impl_->devices) {
    DeviceStatus ds;
    ds.device = d;
    ds.buffer_bytes = d.is_accelerator() ? impl_->options.buffer_bytes : 0;
    uint64_t requests = 0, measured = 0;
    for (const auto& n : impl_->order) {
      const ModelRecord& rec = impl_->models.at(n);
      if (!IsPlaced(rec.status.state)) continue;
      for (const auto& inst : rec.instances) {
        if (inst->device != d.id) continue;
        requests += inst->request_bytes;
        measured += inst->current_bytes;
        ds.models.push_back(rec.instances.size() > 1 ? inst->key() : inst->model);
      }
    }
    for (const auto& [key, slot] : impl_->slots) {
      if (slot->device == d.id && !slot->retired) ++ds.workers;
    }
    ds.reserved_bytes = requests + static_cast<uint64_t>(ds.workers) * d.context_bytes;
    ds.context_measured = impl_->measured_context.count(d.id) > 0;
    ds.used_bytes = d.used_bytes + measured;
    uint64_t committed = d.used_bytes + ds.buffer_bytes + ds.reserved_bytes;
    ds.free_bytes = d.total_bytes > committed ? d.total_bytes - committed : 0;
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
  std::vector<std::shared_ptr<WorkerSlot>> slots;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (const auto& [k, s] : impl_->slots) slots.push_back(s);
  }
  for (const auto& slot : slots) {
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
    if (rec.status.state == ModelState::kLoading || rec.status.state == ModelState::kRestarting ||
        rec.status.state == ModelState::kAdded) {
      return false;
    }
  }
  return true;
}

void Grid::Shutdown() {
  if (!impl_) return;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (impl_->shutting_down && !impl_->watchdog.joinable()) return;
    impl_->shutting_down = true;
    impl_->restarts.clear();
  }
  impl_->watchdog_cv.notify_all();
  if (impl_->watchdog.joinable()) impl_->watchdog.join();
  std::lock_guard<std::mutex> guard(impl_->load_mu);
  std::vector<std::shared_ptr<Instance>> all;
  std::vector<std::shared_ptr<WorkerSlot>> slots;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (auto& [n, rec] : impl_->models) {
      for (auto& inst : rec.instances) all.push_back(inst);
      if (IsPlaced(rec.status.state)) {
        rec.status.state = ModelState::kUnloaded;
        rec.status.reason = "server shut down";
      }
    }
    for (auto& [k, s] : impl_->slots) {
      s->retired = true;
      slots.push_back(s);
    }
  }
  for (auto& inst : all) {
    if (inst->scheduler) inst->scheduler->Shutdown();
  }
  // Stop the workers in parallel: each gets its grace period at once.
  std::vector<std::thread> stoppers;
  for (auto& slot : slots) {
    if (auto c = slot->Client()) stoppers.emplace_back([c] { c->Shutdown(); });
  }
  for (auto& t : stoppers) t.join();
}

}  // namespace modelgrid

// Grid::Impl's placement and loading: worker starts, model loads, standby
// and on-demand loads (grid_impl.h).

#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>

#include "grid/grid_impl.h"
#include "modelgrid/backend/backend_kind.h"
#include "modelgrid/bytes.h"

namespace modelgrid {

WorkerOptions Grid::Impl::WorkerOptionsFor(const WorkerSlot& slot, int threads) const {
  WorkerOptions wo;
  wo.executable = options.worker_executable;
  wo.name = slot.key;
  wo.arena_bytes = options.arena_bytes;
  wo.spin = options.spin;
  wo.threads = threads;
  return wo;
}

Status Grid::Impl::StartWorker(const std::shared_ptr<WorkerSlot>& slot, int threads) {
  return pool->Start(slot, WorkerOptionsFor(*slot, threads));
}

Status Grid::Impl::LoadInstance(const ModelEntry& entry, Instance& inst, int threads) {
  MG_ASSIGN_OR_RETURN(std::string kind, BackendKindFor(entry));
  if (!inst.slot) {
    MG_ASSIGN_OR_RETURN(std::unique_ptr<ModelBackend> backend, CreateBackend(kind));
    uint64_t before = backend->MemoryStats().current_bytes;
    const Device* d = FindDevice(inst.device);
    MG_RETURN_IF_ERROR(backend->Load(entry, d ? ExecDevice(*d) : "cpu", threads));
    BackendMemoryStats after = backend->MemoryStats();
    inst.current_bytes = (after.current_bytes > before ? after.current_bytes - before : 0) +
                         backend->MappedBytes();
    inst.peak_bytes = inst.current_bytes;
    std::lock_guard<std::mutex> lock(mu);
    ModelStatus& s = models.at(inst.model).status;
    s.backend = std::string(backend->kind());
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
  load.backend = kind;
  MG_ASSIGN_OR_RETURN(ipc::LoadedMessage loaded, client->Load(load, options.load_timeout));
  inst.current_bytes = loaded.current_bytes;
  inst.peak_bytes = loaded.peak_bytes;
  if (load.device != "cpu") MeasureContext(inst.slot, *client);
  std::lock_guard<std::mutex> lock(mu);
  ModelStatus& s = models.at(inst.model).status;
  s.backend = loaded.backend.empty() ? kind : loaded.backend;
  s.tasks = loaded.tasks;
  s.inputs = loaded.inputs;
  s.outputs = loaded.outputs;
  return Status::Ok();
}

void Grid::Impl::AttachScheduler(const ModelEntry& entry, Instance& inst) {
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

std::shared_ptr<Instance> Grid::Impl::NewInstance(const ModelRecord& rec, int replica,
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

memory::InstanceAccount Grid::Impl::AccountOf(const ModelRecord& rec, const Instance& inst) const {
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

std::vector<const Device*> Grid::Impl::AllowedDevices(const ModelEntry& entry) const {
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

bool Grid::Impl::CouldEverFit(const ModelEntry& entry, const Instance& inst) const {
  for (const Device* d : AllowedDevices(entry)) {
    const uint64_t context = options.isolation == Isolation::kNone ? 0 : d->context_bytes;
    if (inst.request_bytes + context <= LedgerCapacity(*d, options.buffer_bytes)) return true;
  }
  return false;
}

void Grid::Impl::Park(ModelRecord& rec, const std::string& reason) {
  RetireCounters(rec.instances, &rec.retired);
  rec.instances.clear();
  auto inst = NewInstance(rec, 0, rec.status.request_bytes);
  AttachScheduler(rec.entry, *inst);
  rec.instances.push_back(inst);
  // Already on standby (Load of a model that still does not fit): it
  // stays there, with its new instance.
  if (rec.status.state != ModelState::kStandby) Apply(rec, LifecycleEvent::kPark, reason);
}

Status Grid::Impl::DemandLoad(Instance& inst, std::optional<SchedulerTime> deadline) {
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
      // A context only when the load starts a worker: always in isolation
      // model, in isolation device only while the device has none.
      const bool new_worker =
          options.isolation == Isolation::kModel ||
          (options.isolation == Isolation::kDevice && pool->Find(d->id) == nullptr);
      const uint64_t ctx = new_worker ? d->context_bytes : 0;
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

bool Grid::Impl::OnDemand(const ModelEntry& entry) const {
  if (entry.config.pinned) return false;
  return entry.config.load == LoadPolicy::kOnDemand ||
         (entry.config.load == LoadPolicy::kDefault &&
          options.default_load == LoadPolicy::kOnDemand);
}

Result<Plan> Grid::Impl::PlaceAndLoad(const std::vector<std::string>& names,
                                      const std::function<void(const ModelStatus&)>& on_model,
                                      const std::function<void(const Plan&)>& on_plan) {
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
  MG_ASSIGN_OR_RETURN(RepositoryPlan rp,
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
          Apply(rec, LifecycleEvent::kEstimateFailed, "estimate failed: " + out.error.message());
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
  for (auto& t : todo)
    by_worker[t.second->slot ? t.second->slot->key : t.second->key()].push_back(t);
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
  ReleaseInstances(dropped, "its load failed");
  return rp.plan;
}

void Grid::Impl::ReleaseInstances(const std::vector<std::shared_ptr<Instance>>& instances,
                                  const std::string& why) {
  for (const auto& inst : instances) {
    if (inst->scheduler) inst->scheduler->Shutdown(why);
    arbiter->Forget(inst->key());
    std::lock_guard<std::mutex> exec(inst->exec_mu);
    ReleaseResidency(*inst);
  }
}

}  // namespace modelgrid

// modelgrid::Grid, the façade (grid.h): Create, the public methods and
// Shutdown over Grid::Impl (grid_impl.h, which lists the other files).
#include "modelgrid/grid.h"

#include <spdlog/spdlog.h>
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

#include "grid/grid_impl.h"
#include "modelgrid/bytes.h"
#include "modelgrid/device/nvml.h"
#include "modelgrid/repository_plan.h"
#include "modelgrid/torch/graph_walk.h"

namespace modelgrid {

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

}  // namespace

std::string VersionedModelName(const std::string& model, const std::string& version) {
  return model + "@" + version;
}

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
      return Status::NotFound("modelgrid-worker not found" +
                              (options.worker_executable.empty()
                                   ? std::string(" next to this executable or on PATH")
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
      return Status::InvalidArgument("model '" + entry.name +
                                     "': memory_request must be >= 1 byte");
    }
    entry.config.memory_request = spec.memory_request;
  }
  if (spec.memory_limit) entry.config.memory_limit = spec.memory_limit;
  if (entry.config.memory_request && entry.config.memory_limit &&
      *entry.config.memory_limit < *entry.config.memory_request) {
    return Status::InvalidArgument(
        "model '" + entry.name + "': memory limit " + std::to_string(*entry.config.memory_limit) +
        " bytes is below its request " + std::to_string(*entry.config.memory_request) + " bytes");
  }
  return AddEntryVersions(std::move(entry));
}

Status Grid::AddEntryVersions(ModelEntry entry) {
  // Every version the policy selects serves: the highest under the model's
  // own name, each other one as a model of its own, VersionedModelName.
  std::vector<ModelEntry> entries;
  for (const std::string& v : entry.versions) {
    if (v == entry.version || !entry.torchscript) continue;
    ModelEntry other = entry;
    other.name = VersionedModelName(entry.name, v);
    other.version = v;
    other.torchscript = entry.dir / v / "model.pt";
    entries.push_back(std::move(other));
  }
  entries.insert(entries.begin(), std::move(entry));
  std::lock_guard<std::mutex> lock(impl_->mu);
  for (const ModelEntry& e : entries) {
    if (impl_->models.count(e.name)) {
      return Status::AlreadyExists("model '" + e.name + "' was already added");
    }
  }
  for (ModelEntry& e : entries) {
    ModelRecord rec;
    rec.status.name = e.name;
    rec.status.type = e.format == ModelFormat::kHuggingFace ? "huggingface" : "torchscript";
    rec.status.version = e.version;
    rec.status.max_batch_size = e.config.max_batch_size;
    rec.status.priority = e.config.priority;
    rec.status.resolver = e.config.resolver;
    rec.status.pinned = e.config.pinned;
    rec.status.load = impl_->OnDemand(e) ? LoadPolicy::kOnDemand : LoadPolicy::kEager;
    rec.life = ModelLifecycle(e.name);
    rec.entry = std::move(e);
    impl_->order.push_back(rec.status.name);
    impl_->models.emplace(rec.status.name, std::move(rec));
  }
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
  for (ModelEntry& e : entries) MG_RETURN_IF_ERROR(AddEntryVersions(std::move(e)));
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
    case ModelState::kReady:
      return Status::Ok();
    case ModelState::kUnplaced:
      return Status::ResourceExhausted("model '" + model + "' does not fit: " + st.reason);
    default:
      return Status::Unavailable("model '" + model + "': " + st.reason);
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
  impl_->ReleaseInstances(instances, "model unloaded");
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
    const bool demand_loading =
        st.state == ModelState::kLoading && it->second.life.last_event() == LifecycleEvent::kDemand;
    const bool serving = st.state == ModelState::kReady || st.state == ModelState::kSwapped ||
                         st.state == ModelState::kStandby || st.state == ModelState::kSwappingIn ||
                         st.state == ModelState::kSwappingOut || demand_loading;
    if (!serving) {
      Status not_ready = Status::Unavailable("model '" + model + "' is not ready (state " +
                                             ModelStateName(st.state) +
                                             (st.reason.empty() ? "" : ": " + st.reason) + ")");
      // Restarting or loading ends by itself: say when to come back.
      if (st.state == ModelState::kRestarting || st.state == ModelState::kLoading) {
        not_ready = WithRetryAfter(not_ready, kRestartRetryAfterSeconds);
      }
      done(std::move(not_ready));
      return;
    }
    // A model never loaded yet (standby) does not know its tasks: its worker
    // answers an unknown task.
    if (!st.tasks.empty() &&
        std::find(st.tasks.begin(), st.tasks.end(), call.task) == st.tasks.end()) {
      std::string list;
      for (const auto& t : st.tasks) list += (list.empty() ? "" : ", ") + t;
      done(Status::NotFound("model '" + model + "' has no task '" + call.task +
                            "' (tasks: " + list + ")"));
      return;
    }
    it->second.last_inference_ms = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count());
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
  for (const InferTensor& in : call.inputs) {
    if (in.shared && !in.data.empty()) {
      done(Status::InvalidArgument("model '" + model + "': input '" + in.name +
                                   "' has both data and shared memory bytes"));
      return;
    }
  }
  SchedulerRequest req;
  req.id = std::move(call.id);
  req.task = std::move(call.task);
  req.inputs = std::move(call.inputs);
  req.params = std::move(call.params);
  req.output_names = std::move(call.output_names);
  req.priority = call.priority;
  req.times = std::move(call.times);
  if (call.timeout) req.deadline = SchedulerTime(std::chrono::steady_clock::now() + *call.timeout);
  auto shared_done = std::make_shared<InferCallback>(std::move(done));
  Status s = inst->scheduler->Submit(
      std::move(req),
      [shared_done](Result<std::vector<InferTensor>> r) { (*shared_done)(std::move(r)); });
  if (!s.ok()) (*shared_done)(s);
}

Result<std::shared_ptr<const SharedTensorBytes>> Grid::SharedMemorySlice(const std::string& name,
                                                                         uint64_t offset,
                                                                         uint64_t byte_size) const {
  return impl_->shared_memory.Slice(name, offset, byte_size);
}

Status Grid::WriteSharedMemory(const std::string& name, uint64_t offset,
                               std::string_view data) const {
  return impl_->shared_memory.Write(name, offset, data);
}

Result<ModelEntry> Grid::Entry(const std::string& model) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->models.find(model);
  if (it == impl_->models.end()) return Status::NotFound("unknown model '" + model + "'");
  return it->second.entry;
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
  for (const auto& n : impl_->order)
    out.push_back(impl_->StatusOf(impl_->models.at(n), collisions));
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
    auto snap =
        impl_->arbiter->WithLedger([&](memory::MemoryLedger& l) { return l.Snapshot(d.id); });
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
  c.last_inference_ms = it->second.last_inference_ms;
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
    if (impl_->options.strict_readiness && (rec.status.state == ModelState::kFailed ||
                                            rec.status.state == ModelState::kUnplaced)) {
      return false;
    }
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
  const uint64_t limit = update.limit_bytes.value_or(update.request_bytes && !update.limit_bytes
                                                         ? std::max(st.limit_bytes, request)
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

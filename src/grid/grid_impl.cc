// Grid::Impl's shared helpers (grid_impl.h).

#include "grid/grid_impl.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "modelgrid/device/nvml.h"

namespace modelgrid {

void Grid::Impl::DetachFromWorkers(const std::vector<uint64_t>& ids) {
  std::vector<std::shared_ptr<WorkerClient>> clients;
  for (const auto& slot : pool->Slots()) {
    if (auto client = slot->Client()) clients.push_back(std::move(client));
  }
  for (const auto& client : clients) {
    for (uint64_t id : ids) client->DetachRegion(id);
  }
}

int Grid::Impl::ThreadsPerWorker(size_t workers) const {
  if (options.worker_threads > 0) return options.worker_threads;
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  if (options.isolation == Isolation::kNone || workers == 0) return static_cast<int>(cores);
  return static_cast<int>(std::max<size_t>(1, cores / workers));
}

const Device* Grid::Impl::FindDevice(const std::string& id) const {
  for (const auto& d : devices) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

std::vector<Device> Grid::Impl::DevicesAfterLoaded() const {
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

Status Grid::Impl::Apply(ModelRecord& rec, LifecycleEvent event, std::string reason) {
  Status s = rec.life.Apply(event, std::move(reason));
  if (!s.ok()) spdlog::error("{}", s.message());
  rec.status.state = rec.life.state();
  rec.status.reason = rec.life.reason();
  return s;
}

Status Grid::Impl::Apply(const std::string& model, LifecycleEvent event, std::string reason) {
  auto it = models.find(model);
  if (it == models.end()) return Status::NotFound("unknown model '" + model + "'");
  return Apply(it->second, event, std::move(reason));
}

std::pair<ModelRecord*, std::shared_ptr<Instance>> Grid::Impl::FindInstance(
    const std::string& key) {
  auto it = models.find(ModelOfKey(key));
  if (it == models.end()) return {nullptr, nullptr};
  for (const auto& inst : it->second.instances) {
    if (inst->key() == key) return {&it->second, inst};
  }
  return {&it->second, nullptr};
}

void Grid::Impl::RecordSwap(SwapEvent e) {
  constexpr size_t kMaxSwapEvents = 4096;
  swap_events.push_back(std::move(e));
  if (swap_events.size() > kMaxSwapEvents) swap_events.pop_front();
}

ModelStatus Grid::Impl::StatusOf(const ModelRecord& rec,
                                 const grid_internal::CollisionCounts& all) const {
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

void Grid::Impl::Summarize(ModelRecord& rec) {
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
    s.context_bytes = s.context_measured ? first->slot->context_bytes : (d ? d->context_bytes : 0);
  }
}

void Grid::Impl::MeasureContext(const std::shared_ptr<WorkerSlot>& slot, WorkerClient& client) {
  Device device;
  {
    std::lock_guard<std::mutex> lock(mu);
    const Device* d = FindDevice(slot->device);
    if (d == nullptr || d->kind != DeviceKind::kCuda) return;
    // Once per slot, at its first load: later, NVML's per-process bytes
    // minus the reserve also count what the caching allocator gave back to
    // the driver but the process still maps (seen on an H200: 518 MiB at
    // the first load, over 1 GiB after unloads and swap-outs in the same
    // worker), which is not a context.
    if (slot->context_measured) return;
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
  spdlog::info(
      "{} on {}: measured context {} bytes (NVML per-process minus {} reserved by "
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

std::shared_ptr<WorkerSlot> Grid::Impl::SlotFor(const Instance& inst, bool* is_new) const {
  *is_new = false;
  if (options.isolation == Isolation::kNone) return nullptr;
  const std::string key = options.isolation == Isolation::kModel ? inst.key() : inst.device;
  if (auto live = pool->Find(key)) return live;
  const Device* d = FindDevice(inst.device);
  *is_new = true;
  return pool->NewSlot(key, inst.device, d ? ExecDevice(*d) : "cpu");
}

}  // namespace modelgrid

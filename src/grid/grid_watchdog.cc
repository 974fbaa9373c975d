// Grid::Impl as the worker pool's listener: what a worker's death and
// restart do to its models (grid_impl.h).

#include <spdlog/spdlog.h>

#include <algorithm>

#include "grid/grid_impl.h"

namespace modelgrid {

void Grid::Impl::OnWorkerDied(const std::shared_ptr<WorkerSlot>& slot, const std::string& why) {
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

std::vector<std::pair<ModelEntry, std::shared_ptr<Instance>>> Grid::Impl::HostedBy(
    const WorkerSlot& slot) {
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

std::optional<WorkerOptions> Grid::Impl::OnRestartDue(const std::shared_ptr<WorkerSlot>& slot) {
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

void Grid::Impl::OnRestartFailed(const std::shared_ptr<WorkerSlot>& slot, const Status& error,
                                 std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> guard(load_mu);
  std::lock_guard<std::mutex> lock(mu);
  if (shutting_down) return;
  for (auto& [entry, inst] : HostedBy(*slot)) {
    Apply(inst->model, LifecycleEvent::kWorkerDied,
          "restart failed: " + error.message() + "; retrying in " + std::to_string(delay.count()) +
              " ms");
  }
}

void Grid::Impl::OnRestarted(const std::shared_ptr<WorkerSlot>& slot) {
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
  ReleaseInstances(failed, "its reload after a worker restart failed");
}

}  // namespace modelgrid

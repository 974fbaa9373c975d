// The grid's worker pool: slots, processes and the watchdog (worker_pool.h).

#include "grid/worker_pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace modelgrid::grid_internal {

namespace {

// A process started by WorkerClient::Start.
class ClientProcess final : public WorkerProcess {
 public:
  explicit ClientProcess(std::shared_ptr<WorkerClient> client) : client_(std::move(client)) {}
  int pid() const override { return static_cast<int>(client_->pid()); }
  void Shutdown() override { client_->Shutdown(); }
  std::shared_ptr<WorkerClient> client() const override { return client_; }

 private:
  std::shared_ptr<WorkerClient> client_;
};

class ProcessEnv final : public WorkerEnv {
 public:
  Result<std::shared_ptr<WorkerProcess>> Launch(
      WorkerOptions options, std::function<void(const WorkerExit&)> on_exit) override {
    MG_ASSIGN_OR_RETURN(std::unique_ptr<WorkerClient> client,
                        WorkerClient::Start(std::move(options), std::move(on_exit)));
    return std::shared_ptr<WorkerProcess>(
        std::make_shared<ClientProcess>(std::shared_ptr<WorkerClient>(std::move(client))));
  }
  PoolClock::time_point Now() const override { return PoolClock::now(); }
};

}  // namespace

std::shared_ptr<WorkerEnv> ProcessWorkerEnv() {
  static const std::shared_ptr<WorkerEnv> env = std::make_shared<ProcessEnv>();
  return env;
}

// The pool as seen from a process's on_exit, which may run after the pool
// is gone (a process outliving a failed grid creation): null then.
struct WorkerPoolAnchor {
  std::mutex mu;
  WorkerPool* pool = nullptr;
};

WorkerPool::WorkerPool(WorkerEnv* env, RestartPolicy policy, WorkerPoolListener* listener)
    : env_(env),
      policy_(policy),
      listener_(listener),
      anchor_(std::make_shared<WorkerPoolAnchor>()) {
  anchor_->pool = this;
}

WorkerPool::~WorkerPool() {
  Stop();
  std::lock_guard<std::mutex> lock(anchor_->mu);
  anchor_->pool = nullptr;
}

std::shared_ptr<WorkerSlot> WorkerPool::NewSlot(std::string key, std::string device,
                                                std::string exec_device) const {
  auto slot =
      std::make_shared<WorkerSlot>(RestartBackoff(policy_.initial, policy_.max, policy_.stable));
  slot->key = std::move(key);
  slot->device = std::move(device);
  slot->exec_device = std::move(exec_device);
  return slot;
}

void WorkerPool::Add(std::shared_ptr<WorkerSlot> slot) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = slot->key;
  slots_[key] = std::move(slot);
}

std::shared_ptr<WorkerSlot> WorkerPool::Find(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(key);
  if (it == slots_.end() || it->second->retired) return nullptr;
  return it->second;
}

std::vector<std::shared_ptr<WorkerSlot>> WorkerPool::Slots() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<WorkerSlot>> out;
  for (const auto& [key, slot] : slots_) {
    if (!slot->retired) out.push_back(slot);
  }
  return out;
}

size_t WorkerPool::LiveCount(const std::string& device) const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [key, slot] : slots_) {
    if (!slot->retired && (device.empty() || slot->device == device)) ++n;
  }
  return n;
}

Result<std::shared_ptr<WorkerProcess>> WorkerPool::Launch(const std::shared_ptr<WorkerSlot>& slot,
                                                          WorkerOptions options) {
  std::weak_ptr<WorkerSlot> weak = slot;
  std::shared_ptr<WorkerPoolAnchor> anchor = anchor_;
  return env_->Launch(std::move(options), [anchor, weak](const WorkerExit& exit) {
    auto s = weak.lock();
    if (!s) return;
    std::lock_guard<std::mutex> lock(anchor->mu);
    if (anchor->pool != nullptr) anchor->pool->OnExit(s, exit);
  });
}

Status WorkerPool::Start(const std::shared_ptr<WorkerSlot>& slot, WorkerOptions options) {
  MG_ASSIGN_OR_RETURN(std::shared_ptr<WorkerProcess> process, Launch(slot, std::move(options)));
  {
    std::lock_guard<std::mutex> lock(mu_);
    slot->backoff.Started(env_->Now());
  }
  std::lock_guard<std::mutex> lock(slot->mu);
  slot->process = std::move(process);
  return Status::Ok();
}

std::shared_ptr<WorkerProcess> WorkerPool::Retire(const std::shared_ptr<WorkerSlot>& slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    slot->retired = true;
    if (auto it = slots_.find(slot->key); it != slots_.end() && it->second == slot) {
      slots_.erase(it);
    }
    restarts_.erase(std::remove_if(restarts_.begin(), restarts_.end(),
                                   [&](const auto& r) { return r.second == slot; }),
                    restarts_.end());
  }
  std::lock_guard<std::mutex> lock(slot->mu);
  return std::move(slot->process);
}

void WorkerPool::OnExit(const std::shared_ptr<WorkerSlot>& slot, const WorkerExit& exit) {
  if (exit.requested) return;
  std::string why;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ || slot->retired) return;
    const PoolClock::time_point now = env_->Now();
    const auto delay = slot->backoff.OnExit(now);
    why = "worker '" + slot->key + "' (pid " + std::to_string(exit.pid) + ") " + exit.Describe() +
          "; restarting in " + std::to_string(delay.count()) + " ms";
    restarts_.emplace_back(now + delay, slot);
  }
  spdlog::warn("{}", why);
  listener_->OnWorkerDied(slot, why);
  cv_.notify_all();
}

std::optional<PoolClock::time_point> WorkerPool::NextDue() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::optional<PoolClock::time_point> next;
  for (const auto& [when, slot] : restarts_) {
    if (!next || when < *next) next = when;
  }
  return next;
}

size_t WorkerPool::RunDue() {
  size_t ran = 0;
  for (;;) {
    std::shared_ptr<WorkerSlot> slot;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) break;
      const PoolClock::time_point now = env_->Now();
      auto due = std::min_element(restarts_.begin(), restarts_.end(),
                                  [](const auto& a, const auto& b) { return a.first < b.first; });
      if (due == restarts_.end() || due->first > now) break;
      slot = due->second;
      restarts_.erase(due);
      if (slot->retired) continue;
    }
    Restart(slot);
    ++ran;
  }
  return ran;
}

void WorkerPool::Restart(const std::shared_ptr<WorkerSlot>& slot) {
  std::shared_ptr<WorkerProcess> old;
  {
    std::lock_guard<std::mutex> lock(slot->mu);
    old = std::move(slot->process);
  }
  old.reset();  // reaps the dead process (its reader thread has finished)
  std::optional<WorkerOptions> options = listener_->OnRestartDue(slot);
  if (!options) {  // nothing left to run there
    Retire(slot);
    return;
  }
  auto process = Launch(slot, std::move(*options));
  if (!process.ok()) {
    std::chrono::milliseconds delay{0};
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_ || slot->retired) return;
      delay = slot->backoff.OnStartFailed();
      restarts_.emplace_back(env_->Now() + delay, slot);
    }
    spdlog::warn("worker '{}': restart failed: {}; retrying in {} ms", slot->key,
                 process.status().ToString(), delay.count());
    listener_->OnRestartFailed(slot, process.status(), delay);
    cv_.notify_all();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    slot->backoff.Started(env_->Now());
  }
  {
    std::lock_guard<std::mutex> lock(slot->mu);
    slot->process = std::move(process).value();
  }
  listener_->OnRestarted(slot);
}

void WorkerPool::StartWatchdog() {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_ || watchdog_.joinable()) return;
  watchdog_ = std::thread([this] { WatchdogLoop(); });
}

void WorkerPool::WatchdogLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopped_) {
    if (restarts_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto next = std::min_element(restarts_.begin(), restarts_.end(),
                                 [](const auto& a, const auto& b) { return a.first < b.first; });
    const PoolClock::time_point now = env_->Now();
    if (next->first > now) {
      cv_.wait_for(lock, next->first - now);
      continue;
    }
    lock.unlock();
    RunDue();
    lock.lock();
  }
}

std::vector<std::shared_ptr<WorkerSlot>> WorkerPool::Stop() {
  std::vector<std::shared_ptr<WorkerSlot>> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    restarts_.clear();
    for (auto& [key, slot] : slots_) {
      slot->retired = true;
      out.push_back(slot);
    }
    slots_.clear();
  }
  cv_.notify_all();
  if (watchdog_.joinable() && watchdog_.get_id() != std::this_thread::get_id()) watchdog_.join();
  return out;
}

}  // namespace modelgrid::grid_internal

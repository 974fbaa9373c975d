// The grid's worker pool (docs/design.md, "Processes and paths"): the
// worker slots, the processes behind them, and the watchdog that restarts a
// slot whose process died, after a growing delay (RestartBackoff). Processes
// are started through a WorkerEnv (LevelDB's Env idea: the launcher and the
// clock are injected), so the restart paths (backoff, restart failure,
// retirement) are tested with made-up processes and times
// (worker_pool_test.cc). What a restart does to the models of a slot
// (marking them restarting, loading them again) belongs to the grid: the
// pool tells it through WorkerPoolListener. Internal to the grid component.
//
// Thread-safety: every method may be called from any thread. The pool's
// mutex is never held while the listener or the env runs, so both may call
// back into the pool; the grid may call the pool with its own mutex held
// (lock order: grid, then pool).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "grid/restart_backoff.h"
#include "modelgrid/status.h"
#include "modelgrid/worker/worker_client.h"

namespace modelgrid::grid_internal {

struct WorkerPoolAnchor;

using PoolClock = std::chrono::steady_clock;

// A started worker process as the pool sees it.
class WorkerProcess {
 public:
  virtual ~WorkerProcess() = default;
  // Its process id (for messages).
  virtual int pid() const = 0;
  // Stops it; its exit is then a requested one (no restart).
  virtual void Shutdown() = 0;
  // The handle that talks to it (loads, infers); null for a process a test
  // made up.
  virtual std::shared_ptr<WorkerClient> client() const = 0;
};

// Where processes and time come from.
class WorkerEnv {
 public:
  virtual ~WorkerEnv() = default;
  // Starts a worker with `options`. `on_exit` runs once, on any thread,
  // when the process ends (WorkerExit::requested tells a Shutdown from a
  // crash); never when the start fails. Errors: those of WorkerClient::Start
  // (kNotFound for a missing executable, kUnavailable for a worker that
  // did not answer, kInternal).
  virtual Result<std::shared_ptr<WorkerProcess>> Launch(
      WorkerOptions options, std::function<void(const WorkerExit&)> on_exit) = 0;
  // The time now, on a monotonic clock.
  virtual PoolClock::time_point Now() const = 0;
};

// Real processes (modelgrid-worker through WorkerClient::Start) and the
// steady clock. Shared, stateless.
std::shared_ptr<WorkerEnv> ProcessWorkerEnv();

// One worker process position: per instance in isolation `model`
// ("resnet50#0"), per device in isolation `device` ("cpu"). The process
// behind it changes when the watchdog restarts it; the slot stays. Made by
// WorkerPool::NewSlot.
struct WorkerSlot {
  explicit WorkerSlot(RestartBackoff b) : backoff(b) {}

  std::string key;          // "model#replica" or the device id
  std::string device;       // Device::id it serves
  std::string exec_device;  // what its models run on ("cpu" for cpu and simulated devices)

  std::mutex mu;
  std::shared_ptr<WorkerProcess> process;  // guarded by mu; null while (re)starting
  // Unloaded or shut down: never restarted again. Set only by the pool.
  std::atomic<bool> retired{false};

  // Guarded by the grid's mutex (the pool never reads them).
  std::vector<std::string> hosted;  // instance keys it runs
  uint64_t context_bytes = 0;       // measured (CUDA)
  bool context_measured = false;

  // Guarded by the pool's mutex: the restart delays of this slot.
  RestartBackoff backoff;

  // The handle of the running process; null while (re)starting.
  std::shared_ptr<WorkerClient> Client() {
    std::lock_guard<std::mutex> lock(mu);
    return process ? process->client() : nullptr;
  }
};

// What the pool tells the grid about restarts. Called without the pool's
// mutex, on the watchdog's thread or on a worker's reader thread.
class WorkerPoolListener {
 public:
  virtual ~WorkerPoolListener() = default;
  // The process of `slot` ended unrequested; a restart is queued in
  // `delay`. `why` says which process, how it ended and the delay.
  virtual void OnWorkerDied(const std::shared_ptr<WorkerSlot>& slot, const std::string& why) = 0;
  // A restart of `slot` is due: the options to start its new process
  // with, or nullopt when it hosts nothing any more (the pool retires it).
  virtual std::optional<WorkerOptions> OnRestartDue(const std::shared_ptr<WorkerSlot>& slot) = 0;
  // Starting the new process failed with `error`; the next try is in `delay`.
  virtual void OnRestartFailed(const std::shared_ptr<WorkerSlot>& slot, const Status& error,
                               std::chrono::milliseconds delay) = 0;
  // The new process runs (slot->process is set): load the slot's models.
  virtual void OnRestarted(const std::shared_ptr<WorkerSlot>& slot) = 0;
};

// The restart delays (RestartBackoff): the first restart waits `initial`,
// each further crash or failed start doubles it up to `max`; a worker up
// for `stable` starts again from `initial`.
struct RestartPolicy {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds max{5'000};
  std::chrono::milliseconds stable{60'000};
};

class WorkerPool {
 public:
  // `env` and `listener` are not owned and must outlive the pool.
  WorkerPool(WorkerEnv* env, RestartPolicy policy, WorkerPoolListener* listener);
  // Stops the watchdog (Stop); does not stop processes.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // A new slot, not yet in the pool (Add) and without a process (Start).
  std::shared_ptr<WorkerSlot> NewSlot(std::string key, std::string device,
                                      std::string exec_device) const;
  // Registers `slot` under its key, replacing a retired one of that key.
  void Add(std::shared_ptr<WorkerSlot> slot);
  // The live (not retired) slot of `key`, or null.
  std::shared_ptr<WorkerSlot> Find(const std::string& key) const;
  // Every live slot.
  std::vector<std::shared_ptr<WorkerSlot>> Slots() const;
  // How many live slots there are (on `device`, or on every device when empty).
  size_t LiveCount(const std::string& device = "") const;

  // Starts `slot`'s first process with `options` (name and the rest as
  // given). Errors: the env's Launch errors; the slot is then left without
  // a process (the caller decides: its models failed to load).
  Status Start(const std::shared_ptr<WorkerSlot>& slot, WorkerOptions options);
  // Takes `slot` out: its process is never restarted, a restart queued for
  // it is dropped. Returns the process it had (the caller stops it), or null.
  std::shared_ptr<WorkerProcess> Retire(const std::shared_ptr<WorkerSlot>& slot);

  // Starts the watchdog thread, which runs each queued restart when its
  // delay has passed on the env's clock (it sleeps on the steady clock, so
  // an env with a made-up clock drives restarts with RunDue instead).
  void StartWatchdog();
  // Runs every queued restart due at env->Now(); returns how many ran.
  size_t RunDue();
  // When the earliest queued restart is due, or nullopt when none is queued.
  std::optional<PoolClock::time_point> NextDue() const;

  // No more restarts: drops the queue, joins the watchdog, retires every
  // slot and returns them (the caller stops their processes). Idempotent.
  std::vector<std::shared_ptr<WorkerSlot>> Stop();

 private:
  // From a process's on_exit: queues a restart unless it was requested.
  void OnExit(const std::shared_ptr<WorkerSlot>& slot, const WorkerExit& exit);
  // Launches a process for `slot` whose exits come back to OnExit.
  Result<std::shared_ptr<WorkerProcess>> Launch(const std::shared_ptr<WorkerSlot>& slot,
                                                WorkerOptions options);
  // One due restart of `slot`.
  void Restart(const std::shared_ptr<WorkerSlot>& slot);
  void WatchdogLoop();

  WorkerEnv* const env_;
  const RestartPolicy policy_;
  WorkerPoolListener* const listener_;
  // What on_exit callbacks reach the pool through (null once it is gone).
  const std::shared_ptr<WorkerPoolAnchor> anchor_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<WorkerSlot>> slots_;
  std::deque<std::pair<PoolClock::time_point, std::shared_ptr<WorkerSlot>>> restarts_;
  bool stopped_ = false;
  std::thread watchdog_;
};

}  // namespace modelgrid::grid_internal

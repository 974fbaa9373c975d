// Internals of modelgrid::Grid (grid.h): the worker slots, instances and
// executors the grid is made of. Not part of the public API.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "modelgrid/backend/backend.h"
#include "modelgrid/grid.h"
#include "modelgrid/scheduler/batch_scheduler.h"
#include "modelgrid/worker/worker_client.h"

namespace modelgrid::grid_internal {

using Clock = std::chrono::steady_clock;

// One worker process position: per instance in isolation `model`
// ("resnet50#0"), per device in isolation `device` ("cpu"). The process
// behind it changes when the watchdog restarts it; the slot stays.
struct WorkerSlot {
  std::string key;     // "model#replica" or the device id
  std::string device;  // Device::id it serves
  std::string exec_device;  // what its models run on ("cpu" for cpu and simulated devices)

  std::mutex mu;
  std::shared_ptr<WorkerClient> client;  // guarded by mu; null while restarting
  std::vector<std::string> hosted;       // guarded by the grid's mu: instance keys
  std::chrono::milliseconds backoff{0};  // guarded by the grid's mu: next restart delay
  Clock::time_point started;             // guarded by the grid's mu
  bool retired = false;                  // guarded by the grid's mu: unloaded, never restart
  uint64_t context_bytes = 0;            // guarded by the grid's mu: measured (CUDA)
  bool context_measured = false;         // guarded by the grid's mu

  std::shared_ptr<WorkerClient> Client() {
    std::lock_guard<std::mutex> lock(mu);
    return client;
  }
};

// Runs batches on an in-process backend (isolation `none`).
class InProcessExecutor final : public BatchExecutor {
 public:
  explicit InProcessExecutor(TorchScriptBackend* backend) : backend_(backend) {}
  Result<std::vector<InferTensor>> Execute(const std::string& task, std::vector<InferTensor> inputs,
                                           const nlohmann::json& params) override {
    return backend_->Run(task, inputs, params);
  }

 private:
  TorchScriptBackend* backend_;
};

// Runs batches in the slot's current worker process.
class WorkerExecutor final : public BatchExecutor {
 public:
  WorkerExecutor(std::shared_ptr<WorkerSlot> slot, std::string model,
                 std::chrono::milliseconds timeout)
      : slot_(std::move(slot)), model_(std::move(model)), timeout_(timeout) {}
  Result<std::vector<InferTensor>> Execute(const std::string& task, std::vector<InferTensor> inputs,
                                           const nlohmann::json& params) override {
    std::shared_ptr<WorkerClient> client = slot_->Client();
    if (!client || !client->alive()) {
      return Status::Unavailable("model '" + model_ + "': its worker is restarting");
    }
    return client->Infer(model_, task, inputs, params, timeout_);
  }

 private:
  std::shared_ptr<WorkerSlot> slot_;
  std::string model_;
  std::chrono::milliseconds timeout_;
};

// One placed instance of a model. Member order matters: the scheduler is
// destroyed first (it drains into the executor), then the executor, then
// the backend it runs on.
struct Instance {
  std::string model;
  int replica = 0;
  std::string device;
  uint64_t request_bytes = 0;
  uint64_t limit_bytes = 0;
  uint64_t current_bytes = 0;  // last measured
  uint64_t peak_bytes = 0;

  std::shared_ptr<WorkerSlot> slot;             // null in-process
  std::unique_ptr<TorchScriptBackend> backend;  // in-process only
  std::unique_ptr<BatchExecutor> executor;
  std::unique_ptr<BatchScheduler> scheduler;

  std::string key() const { return model + "#" + std::to_string(replica); }
};

}  // namespace modelgrid::grid_internal

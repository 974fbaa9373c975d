// Internals of modelgrid::Grid (grid.h): the instances and executors the
// grid is made of (worker slots: worker_pool.h). Not part of the public API.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grid/worker_pool.h"
#include "modelgrid/backend/model_backend.h"
#include "modelgrid/grid.h"
#include "modelgrid/scheduler/batch_scheduler.h"
#include "modelgrid/worker/worker_client.h"

namespace modelgrid::grid_internal {

using Clock = std::chrono::steady_clock;

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

  // Bytes a batch needs per row past the weights, and the weight bytes, from
  // the estimate at max batch (activations + workspace + slack, divided by
  // the batch): what a burst asks the ledger for (docs/design.md, "Memory
  // model", borrowing).
  uint64_t per_row_bytes = 0;
  uint64_t weight_bytes = 0;
  uint64_t granted_bytes = 0;  // guarded by exec_mu: the grant of the batch in flight

  // Held while a batch runs on the instance and while it is swapped or
  // evicted: an instance whose exec_mu cannot be taken is busy.
  std::mutex exec_mu;

  std::shared_ptr<WorkerSlot> slot;             // null in-process or while not resident
  std::unique_ptr<ModelBackend> backend;  // in-process only
  std::unique_ptr<BatchExecutor> executor;
  std::unique_ptr<BatchScheduler> scheduler;

  std::string key() const { return model + "#" + std::to_string(replica); }
};

}  // namespace modelgrid::grid_internal

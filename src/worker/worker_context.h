// Internal to modelgrid-worker: what the receive loop and the model threads
// share — the channel to the frontend, the arena mapping, the process-wide
// memory limit and figures, and the requests waiting for `output_region`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/ipc/channel.h"
#include "modelgrid/ipc/region_allocator.h"
#include "modelgrid/ipc/shared_memory.h"
#include "modelgrid/status.h"
#include "worker/worker_service.h"

namespace modelgrid::worker {

// Process-wide allocator figures, integer bytes (aligned blocks: what the
// limit applies to): every model's blocks and the unattributed ones.
struct ProcessMemory {
  uint64_t current_bytes = 0;
  uint64_t peak_bytes = 0;  // most bytes live at once since the worker started
};

// Thread-safety: every method may be called from any thread.
class WorkerContext {
 public:
  // `channel` is borrowed and must outlive the context.
  WorkerContext(ipc::Channel* channel, WorkerServiceOptions options);

  const WorkerServiceOptions& options() const { return options_; }
  // "worker 'NAME'", the prefix of worker-level error messages.
  std::string Who() const { return "worker '" + options_.name + "'"; }

  // Sends `frame` to the frontend; a failure (the frontend is gone) is logged
  // and otherwise ignored: the receive loop sees the end of stream.
  void Send(const ipc::Frame& frame);

  // The arena attached last (nullptr before attach_arena). Holders keep the
  // mapping alive, so a request in flight survives a second attach_arena.
  void SetArena(std::shared_ptr<const ipc::SharedMemory> arena);
  std::shared_ptr<const ipc::SharedMemory> arena() const;

  // ---- registered shared-memory regions (attach_region / detach_region) ----

  // Records the mapping of region `id` (replacing an earlier one).
  void AttachRegion(uint64_t id, std::shared_ptr<const ipc::SharedMemory> memory);
  // Forgets region `id`; requests holding its mapping keep it.
  void DetachRegion(uint64_t id);
  // The mapping of region `id`; nullptr when it is not attached.
  std::shared_ptr<const ipc::SharedMemory> Region(uint64_t id) const;

  // ---- process-wide limit: the sum of the limits of the CPU models held ----
  // Each model has counters and a limit of its own (ModelRunner); this sum
  // caps the process-wide counters, which also hold the allocations no
  // model is charged for (README.md, "Memory limit"): a backstop.

  // Adds a model's limit (0 = unlimited: then the process has no limit while
  // that model is held) and applies the new total to the counting allocator.
  void AddLimit(uint64_t limit_bytes);
  // Takes back what AddLimit added.
  void RemoveLimit(uint64_t limit_bytes);
  // Replaces a model's share `from` by `to` in one step (an execution's own
  // limit, InferMessage::limit_bytes, and back).
  void ReplaceLimit(uint64_t from, uint64_t to);
  // The limit in force; nullopt = none.
  std::optional<uint64_t> limit() const;

  // ---- CUDA: per device, the sums of the limits and requests of the
  // models held there (cuda_memory.h). The limit sum caps the device's
  // caching allocator; cached bytes above the request sum are given back
  // after each request.

  // A CUDA device's budget, integer bytes.
  struct CudaBudget {
    uint64_t limit_sum = 0;    // 0 with unlimited_models > 0 means no cap
    uint64_t request_sum = 0;
    int unlimited_models = 0;
    int models = 0;
  };
  // Adds a model's limit and request on cuda:`index` and applies the new cap
  // (SetCudaLimit). Errors: SetCudaLimit's; the budget is unchanged then.
  Status AddCudaBudget(int index, uint64_t limit_bytes, uint64_t request_bytes);
  // Takes back what AddCudaBudget added and applies the new cap.
  void RemoveCudaBudget(int index, uint64_t limit_bytes, uint64_t request_bytes);
  // Replaces a model's limit `from` by `to` in cuda:`index`'s budget and
  // applies the new cap (an execution's own limit, and back). Errors:
  // SetCudaLimit's; the budget is unchanged then.
  Status ReplaceCudaLimit(int index, uint64_t from, uint64_t to);
  // The budget of cuda:`index` (all zero when no model is held there).
  CudaBudget cuda_budget(int index) const;
  // The CUDA devices with models held, ascending.
  std::vector<int> CudaDevices() const;

  // Serializes loads, so that the figures of one load are not mixed with
  // another's (the CUDA allocator's figures are per device, not per model;
  // loads are rare; requests of other models still run).
  std::mutex& load_mutex() { return load_mu_; }
  // The process-wide allocator's figures now; peak_bytes is the
  // process-lifetime peak.
  ProcessMemory Memory() const;

  // ---- output_needed / output_region ----

  // Registers that request `request_id` will wait for `output_region`. Call
  // before sending `output_needed`, so an early answer is not lost.
  void ExpectOutputRegion(uint64_t request_id);
  // Waits for the region of a request registered with ExpectOutputRegion and
  // unregisters it. Errors: kUnavailable on timeout or after
  // CancelOutputWaits; the error DeliverOutputRegion was given.
  Result<ipc::Region> WaitOutputRegion(uint64_t request_id, std::chrono::milliseconds timeout);
  // Hands a region (or an error) to the waiting request. False when no
  // request waits under that id.
  bool DeliverOutputRegion(uint64_t request_id, Result<ipc::Region> region);
  // Ends every wait (and every later one) with kUnavailable: shutdown.
  void CancelOutputWaits();

 private:
  ipc::Channel* channel_;
  WorkerServiceOptions options_;

  mutable std::mutex arena_mu_;
  std::shared_ptr<const ipc::SharedMemory> arena_;  // guarded by arena_mu_

  std::map<uint64_t, std::shared_ptr<const ipc::SharedMemory>> regions_;  // guarded by arena_mu_

  mutable std::mutex limit_mu_;
  uint64_t limit_sum_ = 0;    // guarded by limit_mu_
  int unlimited_models_ = 0;  // guarded by limit_mu_
  int limited_models_ = 0;    // guarded by limit_mu_

  std::map<int, CudaBudget> cuda_budgets_;  // guarded by limit_mu_

  // Applies limit_sum_ and the counts to the counting allocator (limit_mu_ held).
  void ApplyLimitLocked();

  std::mutex load_mu_;

  std::mutex wait_mu_;
  std::condition_variable wait_cv_;
  bool waits_cancelled_ = false;  // guarded by wait_mu_
  // request id -> the delivered region; nullopt until delivered.
  std::map<uint64_t, std::optional<Result<ipc::Region>>> waits_;  // guarded by wait_mu_
};

}  // namespace modelgrid::worker

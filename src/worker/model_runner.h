// Internal to modelgrid-worker: one model instance of the worker with its own
// thread and job queue (load, infer, swap-out, swap-in, unload), so that the
// models of one worker run concurrently and the receive loop never waits for
// a model.
//
// Memory: each runner has counting-allocator counters of its own
// (CountingAllocator::AcquireModelCounters), charged by everything its
// thread allocates (a ScopedCharge for the thread's life) and capped by the
// model's limit; the process-wide counters above them are capped by the sum
// of the limits (WorkerContext). README.md, "Memory limit", says what is
// exact and what is not. SetLimit changes the model's cap from another
// thread (the receive loop) at once, even in the middle of a request: the
// counters' limit is an atomic that every allocation reads.
//
// Lane (messages.h, "Lanes"): when the load brought one, the runner's thread
// also reads `infer` frames from the lane itself and answers on it, so a
// request on the lane reaches the model without the receive loop. Between
// jobs the thread spins for WorkerServiceOptions::spin on both sources
// before it sleeps in poll(2).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>

#include "modelgrid/backend/model_backend.h"
#include "modelgrid/ipc/channel.h"
#include "modelgrid/ipc/messages.h"
#include "modelgrid/ipc/unique_fd.h"
#include "modelgrid/torch/counting_allocator.h"
#include "worker/worker_context.h"

namespace modelgrid::worker {

// Thread-safety: the Enqueue methods, SetLimit, Stop, finished() and
// memory() may be called from any thread. Jobs run one at a time, in
// arrival order, on the runner's thread.
class ModelRunner {
 public:
  // Called on the runner's thread when the model stops serving on its own
  // (its load failed): the owner must stop routing jobs to it. Not called
  // after an unload (the owner already stopped routing then).
  using RetireFn = std::function<void(ModelRunner*)>;

  // Starts the thread. `context` is borrowed and must outlive the runner.
  ModelRunner(std::string model, WorkerContext* context, RetireFn on_retire);
  // Stops (dropping queued jobs) and joins the thread: waits for the job
  // running now.
  ~ModelRunner();
  ModelRunner(const ModelRunner&) = delete;
  ModelRunner& operator=(const ModelRunner&) = delete;

  const std::string& model() const { return model_; }

  // `load`: OpenModel(load.path), the limit added to the process's, then
  // ModelBackend::Load; replies `loaded` or `load_failed` under the
  // header id `request_id`. `lane` (may be invalid) is the model's lane: the
  // runner serves it once the load succeeded, and closes it otherwise.
  void EnqueueLoad(ipc::LoadMessage load, uint64_t request_id, ipc::UniqueFd lane = {});
  // Runs the request and replies `result` (after an `output_needed` round
  // trip when the outputs do not fit its output region).
  void EnqueueInfer(ipc::InferMessage infer);
  // Frees the model, lowers the limit, replies `unloaded`; the thread then ends.
  void EnqueueUnload(uint64_t request_id);
  // ModelBackend::SwapOut to `swap_dir` after the requests sent before
  // (the lane's too); replies `swapped_out` under the header id `request_id`.
  void EnqueueSwapOut(std::string swap_dir, uint64_t request_id);
  // ModelBackend::SwapIn; replies `swapped_in`.
  void EnqueueSwapIn(uint64_t request_id);
  // Weights of the loaded model mapped from files (ModelBackend::MappedBytes
  // on the CPU; 0 otherwise), included in memory(). Any thread.
  uint64_t mapped_bytes() const { return mapped_bytes_.load(); }

  // Sets the model's memory cap to `limit_bytes` (bytes; 0 = none) now, on
  // the calling thread (the receive loop: `set_limit`, messages.h), not
  // queued behind the model's requests: the request running now, if any,
  // is capped at it from its next allocation on, and it replaces the load's
  // limit for later requests without a `limit_bytes` of their own (one with
  // its own limit still runs under that, and this cap is back after it).
  // `reason` ("" = none) is appended ("; <reason>") to the memory-limit
  // error of a request this cap refuses. CPU: the model's own counters get
  // the cap; its share of the process-wide sum becomes max(cap, bytes it
  // holds now), so a model lowered under what its request in flight holds
  // does not make the process limit refuse the worker's other models.
  // CUDA: the model's share of its device's cap becomes `limit_bytes` (the
  // device's caching allocator is shared by the worker's models there:
  // their cap moves too) and every cached-but-unused block is given back
  // (emptyCache). Returns the reply figures: bytes the model holds after
  // it and bytes given back (CPU: 0). Errors: kUnavailable while the model
  // is not loaded (its load is still running, failed, or it was
  // unloaded); the CUDA cap's error (SetCudaLimit; nothing changed then).
  Result<ipc::LimitSetMessage> SetLimit(uint64_t limit_bytes, const std::string& reason);

  // Drops queued jobs (no replies: the frontend is gone or shutting down)
  // and lets the thread end after the job running now.
  void Stop();
  // True once the thread has ended (after an unload, a failed load or Stop).
  bool finished() const { return finished_.load(); }
  // False until the load succeeded.
  bool loaded() const { return loaded_.load(); }
  // Bytes the model held right after its load (the allocator's live bytes
  // then, minus those before the load).
  uint64_t loaded_bytes() const { return loaded_bytes_.load(); }
  // True while the model's weights are swapped out.
  bool swapped() const { return swapped_.load(); }
  // The model's figures for `stats` (ModelMemory says what they are).
  ipc::ModelMemory memory() const;

 private:
  struct LoadJob {
    ipc::LoadMessage load;
    uint64_t request_id;
    ipc::UniqueFd lane;
  };
  // A request and where it came from: the control socket (through the
  // receive loop) or the lane; its replies go back the same way.
  struct InferJob {
    ipc::InferMessage infer;
    bool on_lane = false;
  };
  struct UnloadJob {
    uint64_t request_id;
  };
  struct SwapOutJob {
    std::string swap_dir;
    uint64_t request_id;
  };
  struct SwapInJob {
    uint64_t request_id;
  };
  using Job = std::variant<LoadJob, InferJob, UnloadJob, SwapOutJob, SwapInJob>;

  void Enqueue(Job job);
  void Loop();
  // The next job: a queued one first, then a frame of the lane; spins, then
  // sleeps until one arrives. nullopt after Stop.
  std::optional<Job> NextJob();
  // The next request that has already arrived on the lane (the backlog
  // first), without waiting; nullopt when none has.
  std::optional<InferJob> NextLaneJob();
  // Turns a frame read from the lane into a request, or answers it at once
  // (malformed, or not an `infer`): nullopt then.
  std::optional<InferJob> FromLane(ipc::Frame frame);
  // Reads one frame of the lane (it is readable); closes the lane at its
  // end or on an error.
  std::optional<ipc::Frame> ReadLane();
  // Each returns false when the runner stops serving after the job.
  bool RunLoad(LoadJob& job);
  void RunInfer(const InferJob& job);
  void RunUnload(const UnloadJob& job);
  void RunSwapOut(const SwapOutJob& job);
  void RunSwapIn(const SwapInJob& job);
  // Starts an execution under its own limit (InferMessage::limit_bytes,
  // applied to the model's counters and the process sum on CPU, the
  // device's cap on CUDA) or, when it has none, under the standing cap.
  // Errors: the CUDA cap's (SetCudaLimit).
  Status BeginExecution(std::optional<uint64_t> own_limit);
  // Ends it: the standing cap (the load's limit, or SetLimit's) is back
  // when the execution had its own.
  void EndExecution(bool had_own_limit);
  // Why the cap in force now was set (SetLimit's reason; "" otherwise).
  std::string ReasonInForce() const;
  // Makes `cap` (bytes, 0 = none) the cap in force: the model's counters'
  // limit and its share of the process sum (CPU) or of its device's cap
  // (CUDA). cap_mu_ held. Errors: the CUDA cap's; nothing changed then.
  Status ApplyCapLocked(uint64_t cap);
  // Answers queued jobs with `error` (after a failed load).
  void FailQueued(const Status& error);
  Result<std::vector<ipc::TensorRef>> Execute(const InferJob& job);
  // The region for outputs of `needed` bytes that did not fit: asks the
  // frontend with `output_needed` on the request's path and waits for
  // `output_region`.
  Result<ipc::Region> AskOutputRegion(const InferJob& job, uint64_t needed);
  // Sends a reply of `job` back the way the job came.
  void Reply(const InferJob& job, const ipc::Frame& frame);
  void ReplyError(const InferJob& job, const Status& error);
  // Replaces backend_ with an empty one of the kind `load` names, or
  // BackendKindFor(entry) when it names none. Errors: an unknown kind.
  Status CreateBackendFor(const ipc::LoadMessage& load, const ModelEntry& entry);
  // `error` of a Run, as kResourceExhausted with a MemoryLimitDetail from
  // the model's counters' record when they refused an allocation during it
  // but the backend reported kInternal.
  Status LimitOrError(const Status& error, const std::string& task, uint64_t refusals_before) const;

  const std::string model_;
  WorkerContext* context_;
  RetireFn on_retire_;
  // The loaded model's backend (null before a load and after an unload);
  // used by the runner's thread only.
  std::unique_ptr<ModelBackend> backend_;
  // backend_->MappedBytes() on the CPU, kept for memory() (read from other
  // threads): weights mapped from files, added to the measured bytes.
  std::atomic<uint64_t> mapped_bytes_{0};
  // N for a model on cuda:N, else -1. Written by the load before it sets
  // cuda_budget_added_ or limit_added_ (under cap_mu_), never after:
  // SetLimit reads it only once it saw one of them set.
  int cuda_index_ = -1;
  uint64_t cuda_request_ = 0;  // the request added to cuda:N's budget

  // The model's caps (README.md, "Memory limit"), bytes, 0 = none. Written
  // by the runner's thread (load, each request's own limit, unload) and by
  // SetLimit on the receive loop; guarded by cap_mu_. Outside a request
  // with its own limit, the cap in force is standing_cap_.
  mutable std::mutex cap_mu_;
  bool limit_added_ = false;        // CPU: the load added share_ to the process sum
  bool cuda_budget_added_ = false;  // CUDA: the load added share_ to cuda:N's budget
  uint64_t standing_cap_ = 0;       // the load's limit, or the last SetLimit's
  std::string standing_reason_;     // SetLimit's reason for standing_cap_ ("" = the load's)
  uint64_t share_ = 0;              // this model's share now of the process sum / device cap
  std::string reason_in_force_;     // why the cap in force now was set ("" = not SetLimit)
  // A CUDA allocator refusal as the 507 error (model, device, the cap of
  // budget `during` the request, use) with a MemoryLimitDetail.
  Status CudaLimitError(const Status& error, const std::string& task,
                        const WorkerContext::CudaBudget& during) const;
  // Gives cached CUDA blocks above the device's request sum back (a burst's).
  void ReleaseCudaBurst();
  // Undoes the limit and CUDA budget this model added.
  void RemoveBudgets();

  std::mutex mu_;
  std::deque<Job> jobs_;  // guarded by mu_
  bool stop_ = false;     // guarded by mu_
  // Set by Enqueue and Stop, cleared by the runner's thread: what its spin
  // watches without the lock.
  std::atomic<bool> poke_{false};
  ipc::UniqueFd wake_;  // eventfd written by Enqueue and Stop: wakes poll(2)

  // The lane, and frames read from it while waiting for an output_region
  // (runner's thread only).
  std::unique_ptr<ipc::Channel> lane_;
  std::deque<ipc::Frame> lane_backlog_;
  // Whether to spin before sleeping: the last request's inputs were at most
  // ipc::kSpinMaxInputBytes (runner's thread).
  bool spin_next_ = true;

  // The model's own counters (never null; given back in the destructor).
  CountingAllocator* const counters_;
  std::atomic<bool> finished_{false};
  std::atomic<bool> loaded_{false};
  std::atomic<bool> swapped_{false};
  std::atomic<bool> on_cuda_{false};  // the load named cuda:N
  std::atomic<uint64_t> loaded_bytes_{0};
  std::atomic<uint64_t> cuda_load_peak_{0};  // CUDA: the device's allocated peak of the load
  std::thread thread_;  // last: started when everything above is ready
};

}  // namespace modelgrid::worker

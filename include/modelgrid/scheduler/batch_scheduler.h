// The per-model request scheduler (design.md, "scheduler": per-model queues,
// dynamic batching, priorities, timeouts), after Triton's dynamic batcher.
//
// A BatchScheduler owns one model's queue and one dispatcher thread. Submit()
// queues a request; the dispatcher merges compatible queued requests into a
// batch (same task, same params JSON, same input names, datatypes and
// dimensions 1..; dimension 0 is the batch dimension) of at most
// max_batch_size rows, waiting at most max_queue_delay_us for partners, and
// hands it to a BatchExecutor. The outputs are split back along dimension 0
// and each request's callback receives its own rows.
//
// Order: higher `priority` first, FIFO within a priority. One batch executes
// at a time per scheduler. A request whose deadline passes while queued
// completes with kUnavailable and is never executed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "modelgrid/kserve/tensor.h"
#include "modelgrid/repository.h"
#include "modelgrid/status.h"

namespace modelgrid {

// A point in time on the steady clock (deadlines, enqueue times).
using SchedulerTime = std::chrono::steady_clock::time_point;

// Where the scheduler reads the time (steady clock). Tests pass a fake to
// control deadlines and queue delays; the dispatcher still sleeps on real
// condition variables, but never longer than kSchedulerMaxSleep at a time
// while requests are queued, so a fake clock's jumps are seen promptly.
// Implementations must be thread-safe.
class SchedulerClock {
 public:
  virtual ~SchedulerClock() = default;
  virtual SchedulerTime Now() const = 0;
};

// std::chrono::steady_clock. Stateless, thread-safe.
class SteadySchedulerClock final : public SchedulerClock {
 public:
  SchedulerTime Now() const override { return std::chrono::steady_clock::now(); }
};

// The longest the dispatcher sleeps in one wait while requests are queued.
inline constexpr std::chrono::milliseconds kSchedulerMaxSleep{20};

// Runs one batch: the model's side of the scheduler (later: a worker
// channel). Called only from the scheduler's dispatcher thread, one batch at
// a time per scheduler; an executor shared by several schedulers must be
// thread-safe.
class BatchExecutor {
 public:
  virtual ~BatchExecutor() = default;
  // Executes `task` (e.g. "forward", "generate") on `inputs` with the
  // request parameters `params` (a JSON object). For a batched model every
  // input has the batch in dimension 0 and every output must too (with the
  // same total). Returns the outputs, or an error that every request of the
  // batch receives. An exception thrown here is caught and reported to the
  // batch's requests as kInternal.
  virtual Result<std::vector<InferTensor>> Execute(const std::string& task,
                                                   std::vector<InferTensor> inputs,
                                                   const nlohmann::json& params) = 0;
};

// One inference request as the scheduler sees it. A plain value type.
struct SchedulerRequest {
  std::string id;                                    // the client's request id (for logs)
  std::string task = "forward";                      // what to run
  std::vector<InferTensor> inputs;                   // batch in dimension 0 when batching
  nlohmann::json params = nlohmann::json::object();  // requests with unequal params never merge
  int priority = 0;                                  // higher runs first
  // When the request gives up waiting in the queue. nullopt: the time of
  // Submit() plus BatchingConfig::default_timeout_us.
  std::optional<SchedulerTime> deadline;
};

// Receives a request's outcome: its own outputs, or the error. Called exactly
// once per accepted request, on the dispatcher thread (or on the thread
// calling Shutdown() for requests still queued then). It must not call
// Shutdown() or destroy the scheduler; it may Submit() again.
using SchedulerCallback = std::function<void(Result<std::vector<InferTensor>>)>;

// Counters of one scheduler, with the meanings of Triton's nv_inference_*
// metrics. Durations are sums in microseconds, counted per request (a batch
// of 4 requests that computes for 10 us adds 40 us to compute_duration_us),
// except batch_compute_duration_us which counts each batch once.
struct SchedulerStats {
  uint64_t queued = 0;               // requests waiting now (a gauge)
  uint64_t accepted = 0;             // Submit() calls that returned OK
  uint64_t rejected = 0;             // Submit() calls refused: queue full or shut down
  uint64_t timed_out = 0;            // requests whose deadline passed in the queue
  uint64_t cancelled = 0;            // requests failed by Shutdown()
  uint64_t executed_batches = 0;     // Execute() calls (nv_inference_exec_count)
  uint64_t executed_requests = 0;    // requests in those batches
  uint64_t executed_inferences = 0;  // rows in those batches (nv_inference_count)
  uint64_t succeeded = 0;  // executed requests that got outputs (nv_inference_request_success)
  uint64_t failed = 0;     // executed requests that got an error (nv_inference_request_failure)
  std::map<int64_t, uint64_t> batch_size_histogram;  // rows per batch -> batches
  uint64_t queue_duration_us = 0;    // Submit() to dispatch (nv_inference_queue_duration_us)
  uint64_t compute_duration_us = 0;  // Execute() time (nv_inference_compute_infer_duration_us)
  uint64_t batch_compute_duration_us = 0;  // Execute() time, once per batch
  uint64_t request_duration_us = 0;  // Submit() to callback (nv_inference_request_duration_us)
};

// How a scheduler batches. Build it from a model's config with FromConfig().
struct BatchSchedulerOptions {
  std::string model_name;      // named in every error message
  int64_t max_batch_size = 1;  // rows per batch; 0 = the model does not batch
  BatchingConfig batching;     // delay, preferred sizes, queue size (0 = unbounded), timeout

  static BatchSchedulerOptions FromConfig(std::string model_name, const ModelConfig& config);
};

// Parses the retry-after hint (whole seconds, >= 1) out of the kUnavailable
// "queue full" status Submit() returns, for the server's Retry-After header.
// nullopt for any other status.
std::optional<uint64_t> RetryAfterSeconds(const Status& status);

// The per-model queue and dispatcher. Thread-safe: Submit(), Stats() and
// Shutdown() may be called from any threads concurrently.
class BatchScheduler {
 public:
  // Starts the dispatcher thread. `executor` and `clock` are not owned and
  // must outlive the scheduler; `clock` nullptr means the steady clock.
  BatchScheduler(BatchSchedulerOptions options, BatchExecutor* executor,
                 const SchedulerClock* clock = nullptr);
  // Calls Shutdown().
  ~BatchScheduler();
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // Queues `request`; `done` later receives its outcome (see
  // SchedulerCallback). Errors (then `done` is never called):
  //  - kUnavailable "queue full (N requests) for model 'm'; retry after S s"
  //    when max_queue_size requests are queued (RetryAfterSeconds() reads S);
  //  - kUnavailable "model 'm' is shutting down" after Shutdown();
  //  - kInvalidArgument when the model batches and the request's batch
  //    (dimension 0) exceeds max_batch_size, or an input's data is malformed.
  // Requests that cannot batch (see RequestBatchSize()) run alone, as given.
  Status Submit(SchedulerRequest request, SchedulerCallback done);

  // A snapshot of the counters.
  SchedulerStats Stats() const;

  // Stops accepting requests, fails every queued request with kUnavailable
  // "server shutting down" (on the calling thread), waits for the batch in
  // flight to finish and joins the dispatcher. Idempotent.
  void Shutdown();

 private:
  struct Pending;
  struct Batch;

  void DispatchLoop();
  // With mu_ held: removes expired requests into `expired`, forms the next
  // batch if one is due; else sets `*wake` to when to look again.
  std::optional<Batch> NextBatch(SchedulerTime now, std::vector<Pending>* expired,
                                 std::optional<SchedulerTime>* wake);
  void Run(Batch batch);
  void Complete(Pending& p, Result<std::vector<InferTensor>> result);
  void Expire(std::vector<Pending>& expired, SchedulerTime now);
  uint64_t RetryAfterHintLocked() const;

  const BatchSchedulerOptions options_;
  const bool batching_;  // max_batch_size > 0 and batching.enabled
  BatchExecutor* const executor_;
  const SchedulerClock* const clock_;
  SteadySchedulerClock steady_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> queue_;  // kept sorted: priority desc, then sequence asc
  uint64_t next_sequence_ = 0;
  bool stopping_ = false;
  SchedulerStats stats_;
  std::mutex shutdown_mu_;  // serializes Shutdown() callers
  std::thread dispatcher_;
};

}  // namespace modelgrid

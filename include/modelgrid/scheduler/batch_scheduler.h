// The per-model request scheduler (docs/design.md, "scheduler": per-model queues,
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
// at a time per scheduler.
//
// Deadlines: every request has at most one deadline, end to end: its own
// (SchedulerRequest::deadline, the client's timeout) or else Submit() time +
// default_timeout_us, where default_timeout_us == 0 means none. A request
// whose deadline passes while queued completes with kUnavailable and is never
// executed; a dispatched one runs until the executor returns. The executor
// receives the batch's deadline in its ExecuteContext (a worker channel turns
// it into its reply timeout with TimeoutUntil()); there is no other,
// fixed execution limit.
//
// Memory: with a cost model (BatchSchedulerOptions::batch_bytes and
// budget_bytes) the dispatcher closes a batch before it would need more bytes
// than the instance has; a merged batch that still fails with
// kResourceExhausted is retried as its requests, each alone (see
// BatchSchedulerOptions and SchedulerStats::memory_splits), unless the error
// says a higher-priority model preempted it (a CollisionDetail with
// preempted_by): then every member gets that error.
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
#include "modelgrid/scheduler/request_times.h"
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

// What the scheduler tells an executor about the batch it hands over.
struct ExecuteContext {
  // The latest deadline among the batch's requests (steady clock): the batch
  // is of no use to any of them after it. nullopt when some request of the
  // batch has no deadline (default_timeout_us 0 and no client timeout). It
  // may already have passed when Execute() starts (a request split out of a
  // batch that ran out of memory, or a slow dispatcher); the scheduler never
  // abandons a call in progress because of it.
  std::optional<SchedulerTime> deadline;
  // Rows in the batch: the sum of dimension 0 over its requests. 1 for a
  // request that runs as given (the model does not batch, or the request
  // has no batch dimension).
  int64_t rows = 1;
  // The outputs the batch's requests want (SchedulerRequest::output_names,
  // the same for every member); empty = every output.
  std::vector<std::string> output_names;
};

// Runs one batch: the model's side of the scheduler (e.g. a worker
// channel). Called only from the scheduler's dispatcher thread, one batch at
// a time per scheduler; an executor shared by several schedulers must be
// thread-safe.
class BatchExecutor {
 public:
  virtual ~BatchExecutor() = default;
  // Executes `task` (e.g. "forward", "generate") on `inputs` with the
  // request parameters `params` (a JSON object), for the batch described by
  // `ctx`. An executor that must bound its wait (a worker's reply) derives
  // the bound from ctx.deadline (TimeoutUntil()), never from a fixed
  // setting. For a batched model every input has the batch in dimension 0
  // and every output must too (with the same total). Returns the outputs,
  // or an error that every request of the batch receives; except that
  // kResourceExhausted for a batch of 2+ requests makes the scheduler retry
  // each request alone (BatchSchedulerOptions). An exception thrown here is
  // caught and reported to the batch's requests as kInternal.
  virtual Result<std::vector<InferTensor>> Execute(const ExecuteContext& ctx,
                                                   const std::string& task,
                                                   std::vector<InferTensor> inputs,
                                                   const nlohmann::json& params) = 0;
};

// The wait bound an executor uses when the batch has no deadline: long, as
// a worker's death is detected separately and a healthy call must not be
// cut short. Also the longest bound TimeoutUntil() returns.
inline constexpr std::chrono::hours kNoDeadlineTimeout{24};

// Converts a batch deadline into the timeout (whole milliseconds) of a call
// made at `now`: the time left, rounded UP to a whole millisecond and at
// least 1 ms (a deadline at or before `now` gives 1 ms, never 0, which
// callers such as WorkerClient::Infer would treat as "already expired");
// kNoDeadlineTimeout for nullopt, and at most kNoDeadlineTimeout for a
// deadline further away. Never fails.
std::chrono::milliseconds TimeoutUntil(std::optional<SchedulerTime> deadline, SchedulerTime now);

// One inference request as the scheduler sees it. A plain value type.
struct SchedulerRequest {
  std::string id;                                    // the client's request id (for logs)
  std::string task = "forward";                      // what to run
  std::vector<InferTensor> inputs;                   // batch in dimension 0 when batching
  nlohmann::json params = nlohmann::json::object();  // requests with unequal params never merge
  // The outputs the client wants, by name (empty = every output); requests
  // that want different outputs never merge. The executor gets them
  // (ExecuteContext::output_names), so a worker sends back only those.
  std::vector<std::string> output_names;
  int priority = 0;                                  // higher runs first
  // The request's one deadline (the client's timeout): it gives up waiting
  // in the queue then, and the executor gets it (ExecuteContext). nullopt:
  // the time of Submit() plus BatchingConfig::default_timeout_us, or no
  // deadline at all when default_timeout_us is 0 (or so large that the sum
  // would not fit the clock).
  std::optional<SchedulerTime> deadline;
  // Filled in, when set, with the request's queue and compute times (on this
  // scheduler's clock) before `done` is called; see request_times.h.
  std::shared_ptr<RequestTimes> times;
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
//
// Batch counters (executed_batches, batch_size_histogram,
// batch_compute_duration_us) count every batch dispatched, including a
// merged batch that failed with kResourceExhausted and the one-request
// batches it was retried as. Request counters (executed_requests,
// executed_inferences, succeeded, failed and the per-request durations)
// count each dispatched request once, by its final outcome: always
// succeeded + failed == executed_requests, and a split request's
// compute_duration_us is the time of both executions it took part in.
struct SchedulerStats {
  uint64_t queued = 0;               // requests waiting now (a gauge)
  uint64_t accepted = 0;             // Submit() calls that returned OK
  uint64_t rejected = 0;             // Submit() calls refused: queue full or shut down
  uint64_t timed_out = 0;            // requests whose deadline passed in the queue
  uint64_t cancelled = 0;            // requests failed by Shutdown()
  uint64_t executed_batches = 0;     // batches dispatched (nv_inference_exec_count)
  uint64_t executed_requests = 0;    // requests dispatched, each once
  uint64_t executed_inferences = 0;  // rows of those requests, each once (nv_inference_count)
  uint64_t succeeded = 0;  // executed requests that got outputs (nv_inference_request_success)
  uint64_t failed = 0;     // executed requests that got an error (nv_inference_request_failure)
  std::map<int64_t, uint64_t> batch_size_histogram;  // rows per dispatched batch -> batches
  uint64_t queue_duration_us = 0;    // Submit() to first dispatch (nv_inference_queue_duration_us)
  uint64_t compute_duration_us = 0;  // Execute() time (nv_inference_compute_infer_duration_us)
  uint64_t batch_compute_duration_us = 0;  // Execute() time, once per batch
  uint64_t request_duration_us = 0;  // Submit() to callback (nv_inference_request_duration_us)
  // Merged batches (2+ requests) whose Execute() returned kResourceExhausted
  // (not a preemption: CollisionDetail::preempted_by empty) and were retried
  // as their requests, each alone.
  uint64_t memory_splits = 0;
  // Batches the cost model closed early: the next compatible request in the
  // queue fit max_batch_size but not the memory budget.
  uint64_t memory_capped_batches = 0;
};

// How a scheduler batches. Build it from a model's config with FromConfig().
//
// Memory-aware batching. When both batch_bytes and budget_bytes are set, the
// dispatcher, growing a batch in queue order, stops before the first
// compatible request with which batch_bytes(rows) would exceed
// budget_bytes(); that request and the ones after it stay queued, in order,
// for the next batch (the batch is then dispatched without waiting longer
// for partners). A batch always takes its first request, so a request that
// alone exceeds the budget runs alone (and fails on its own if it really
// does not fit). Requests that cannot batch run alone and are not costed.
// Independently of the cost model, a merged batch (2+ requests) whose
// Execute() returns kResourceExhausted is retried at once as its requests,
// each alone, in queue order, so a request fails for memory only when it
// alone does not fit; a request whose deadline has passed by its retry is
// not retried and fails with kUnavailable.
struct BatchSchedulerOptions {
  std::string model_name;      // named in every error message
  int64_t max_batch_size = 1;  // rows per batch; 0 = the model does not batch
  BatchingConfig batching;     // delay, preferred sizes, queue size (0 = unbounded), timeout
  // Bytes a batch of `rows` rows needs beyond the model's weights
  // (activations, workspace), e.g. from the memory estimator. Must be
  // non-decreasing in `rows`. Empty: no cost model.
  std::function<uint64_t(int64_t rows)> batch_bytes;
  // Bytes the instance holds or can be granted now for a batch, read once
  // each time the dispatcher tries to grow a batch past its first request.
  // Empty: no cost model.
  std::function<uint64_t()> budget_bytes;
  // Both are called on the dispatcher thread with the scheduler's lock
  // held: they should be cheap and must not call this scheduler. One that
  // throws closes the batch as if it were over budget (logged).

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
  // "<why>: model 'm' did not run request 'r'" (on the calling thread;
  // `why` says what stopped it, e.g. "model unloaded"), waits for the batch
  // in flight to finish and joins the dispatcher. Idempotent.
  void Shutdown(const std::string& why = "server shutting down");

 private:
  struct Pending;
  struct Batch;

  void DispatchLoop();
  // With mu_ held: removes expired requests into `expired`, forms the next
  // batch if one is due; else sets `*wake` to when to look again.
  std::optional<Batch> NextBatch(SchedulerTime now, std::vector<Pending>* expired,
                                 std::optional<SchedulerTime>* wake);
  struct Attempt;
  // Runs a dispatched batch; retries its members alone after a
  // kResourceExhausted of a merged batch. Completes every member.
  void Run(Batch batch);
  // Merges `members`' inputs (moving them out when there is one member),
  // calls the executor and splits its outputs per member. Completes none.
  Attempt Execute(const std::vector<Pending*>& members);
  // With mu_ held: counts one dispatched batch.
  void CountBatchLocked(const Attempt& attempt);
  // With mu_ held: counts the final outcome of one dispatched request.
  void CountRequestLocked(const Pending& p, bool ok, uint64_t compute_us, SchedulerTime dispatched,
                          SchedulerTime end);
  // Whether a batch of `rows` rows fits the memory budget (read into
  // `*budget` on first use). False when the cost model throws.
  bool FitsBudget(int64_t rows, std::optional<uint64_t>* budget) const;
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

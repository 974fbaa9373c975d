#include "modelgrid/scheduler/batch_scheduler.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

#include "modelgrid/scheduler/batch_tensors.h"

namespace modelgrid {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

uint64_t Micros(SchedulerTime from, SchedulerTime to) {
  return to > from ? static_cast<uint64_t>(duration_cast<microseconds>(to - from).count()) : 0;
}

// What must match for two requests to share a batch: the task, the params
// JSON and, per input (by name), the datatype and dimensions 1..
std::string CompatibilityKey(const SchedulerRequest& r) {
  std::vector<const InferTensor*> sorted;
  for (const InferTensor& t : r.inputs) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(),
            [](const InferTensor* a, const InferTensor* b) { return a->name < b->name; });
  std::string key = fmt::format("{}\n{}\n", r.task, r.params.dump());
  for (const std::string& name : r.output_names) key += fmt::format("{}\x1e", name);
  key += '\n';
  for (const InferTensor* t : sorted) {
    key += fmt::format("{}\x1f{}", t->name, DataTypeName(t->datatype));
    for (size_t d = 1; d < t->shape.size(); ++d) key += fmt::format(",{}", t->shape[d]);
    key += '\n';
  }
  return key;
}

// Submit time + `us`; SchedulerTime::max() (no deadline) for 0 or for a sum
// past the clock's range.
SchedulerTime DeadlineAfter(SchedulerTime now, uint64_t us) {
  if (us == 0) return SchedulerTime::max();
  const int64_t room_us = duration_cast<microseconds>(SchedulerTime::max() - now).count();
  if (room_us <= 0 || us >= static_cast<uint64_t>(room_us)) return SchedulerTime::max();
  return now + microseconds(static_cast<int64_t>(us));
}

}  // namespace

std::chrono::milliseconds TimeoutUntil(std::optional<SchedulerTime> deadline, SchedulerTime now) {
  const milliseconds cap = kNoDeadlineTimeout;
  if (!deadline || *deadline == SchedulerTime::max()) return cap;
  if (*deadline <= now) return milliseconds(1);
  const auto left = *deadline - now;
  if (left >= cap) return cap;
  return std::max(milliseconds(1), std::chrono::ceil<milliseconds>(left));
}

namespace {

// Fills a traced request's times (SchedulerRequest::times) before its
// callback runs.
void RecordTimes(RequestTimes* times, SchedulerTime enqueued, SchedulerTime compute_start,
                 SchedulerTime compute_end) {
  if (times == nullptr) return;
  times->queue_start = enqueued;
  times->compute_start = compute_start;
  times->compute_end = compute_end;
}

}  // namespace

struct BatchScheduler::Pending {
  SchedulerRequest request;
  SchedulerCallback done;
  uint64_t sequence = 0;
  SchedulerTime enqueued;
  SchedulerTime deadline;       // SchedulerTime::max(): none
  std::optional<int64_t> rows;  // batch size when the request can batch
  std::string key;              // CompatibilityKey when it can batch
};

struct BatchScheduler::Batch {
  std::vector<Pending> members;  // in queue order
};

BatchSchedulerOptions BatchSchedulerOptions::FromConfig(std::string model_name,
                                                        const ModelConfig& config) {
  BatchSchedulerOptions o;
  o.model_name = std::move(model_name);
  o.max_batch_size = config.max_batch_size;
  o.batching = config.batching;
  return o;
}

std::optional<uint64_t> RetryAfterSeconds(const Status& status) {
  if (status.code() != StatusCode::kUnavailable) return std::nullopt;
  return status.retry_after_seconds();
}

BatchScheduler::BatchScheduler(BatchSchedulerOptions options, BatchExecutor* executor,
                               const SchedulerClock* clock)
    : options_(std::move(options)),
      batching_(options_.max_batch_size > 0 && options_.batching.enabled),
      executor_(executor),
      clock_(clock != nullptr ? clock : &steady_) {
  dispatcher_ = std::thread([this] { DispatchLoop(); });
}

BatchScheduler::~BatchScheduler() { Shutdown(); }

Status BatchScheduler::Submit(SchedulerRequest request, SchedulerCallback done) {
  const std::string& model = options_.model_name;
  if (request.params.is_null()) request.params = nlohmann::json::object();
  Pending p;
  if (batching_) {
    p.rows = RequestBatchSize(request.inputs);
    if (p.rows && *p.rows > options_.max_batch_size) {
      return Status::InvalidArgument(
          fmt::format("request '{}' has batch size {} but model '{}' takes at most {}", request.id,
                      *p.rows, model, options_.max_batch_size));
    }
    if (p.rows) {
      for (const InferTensor& t : request.inputs) {
        Status valid = ValidateTensorData(t, "input");
        if (!valid.ok()) return valid.WithPrefix(fmt::format("model '{}'", model));
      }
      p.key = CompatibilityKey(request);
    }
  }
  const SchedulerTime now = clock_->Now();
  p.enqueued = now;
  // One deadline per request: the client's, else the model's default (0:
  // none). It bounds the queue wait here and reaches the executor.
  p.deadline = request.deadline ? *request.deadline
                                : DeadlineAfter(now, options_.batching.default_timeout_us);
  p.request = std::move(request);
  p.done = std::move(done);

  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) {
    ++stats_.rejected;
    return Status::Unavailable(fmt::format("model '{}' is shutting down", model));
  }
  const uint64_t limit = options_.batching.max_queue_size;
  if (limit > 0 && queue_.size() >= limit) {
    ++stats_.rejected;
    const uint64_t retry_after = RetryAfterHintLocked();
    StatusDetail detail;
    detail.retry_after_seconds = retry_after;
    return Status::Unavailable(
               fmt::format("queue full ({} requests) for model '{}'; retry after {} s",
                           queue_.size(), model, retry_after))
        .WithDetail(std::move(detail));
  }
  p.sequence = next_sequence_++;
  // Sorted by priority (higher first), then arrival.
  auto pos =
      std::upper_bound(queue_.begin(), queue_.end(), p, [](const Pending& a, const Pending& b) {
        if (a.request.priority != b.request.priority) {
          return a.request.priority > b.request.priority;
        }
        return a.sequence < b.sequence;
      });
  queue_.insert(pos, std::move(p));
  ++stats_.accepted;
  stats_.queued = queue_.size();
  cv_.notify_all();
  return Status::Ok();
}

uint64_t BatchScheduler::RetryAfterHintLocked() const {
  // Time to drain the queue at the measured compute time per request.
  if (stats_.executed_requests == 0) return 1;
  const double per_request_us = static_cast<double>(stats_.batch_compute_duration_us) /
                                static_cast<double>(stats_.executed_requests);
  const double seconds = per_request_us * static_cast<double>(queue_.size()) / 1e6;
  return std::clamp<uint64_t>(static_cast<uint64_t>(seconds) + 1, 1, 60);
}

SchedulerStats BatchScheduler::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void BatchScheduler::Shutdown(const std::string& why) {
  std::lock_guard<std::mutex> serial(shutdown_mu_);
  std::vector<Pending> drained;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    drained.swap(queue_);
    stats_.cancelled += drained.size();
    stats_.queued = 0;
    cv_.notify_all();
  }
  for (Pending& p : drained) {
    Complete(p, Status::Unavailable(
                    fmt::format("{}: model '{}' did not run request '{}'", why,
                                options_.model_name, p.request.id)));
  }
  if (dispatcher_.joinable()) dispatcher_.join();
}

void BatchScheduler::DispatchLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    const SchedulerTime now = clock_->Now();
    std::vector<Pending> expired;
    std::optional<SchedulerTime> wake;
    std::optional<Batch> batch = NextBatch(now, &expired, &wake);
    if (!expired.empty() || batch) {
      lock.unlock();
      Expire(expired, now);
      if (batch) Run(std::move(*batch));
      lock.lock();
      continue;
    }
    if (queue_.empty()) {
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    } else {
      auto sleep = std::chrono::duration_cast<std::chrono::nanoseconds>(kSchedulerMaxSleep);
      if (wake && *wake - now < sleep) sleep = *wake - now;
      if (sleep.count() > 0) cv_.wait_for(lock, sleep);
    }
  }
}

std::optional<BatchScheduler::Batch> BatchScheduler::NextBatch(SchedulerTime now,
                                                               std::vector<Pending>* expired,
                                                               std::optional<SchedulerTime>* wake) {
  // Deadlines first: an expired request never reaches a batch.
  auto alive_end = std::stable_partition(queue_.begin(), queue_.end(),
                                         [now](const Pending& p) { return p.deadline > now; });
  for (auto it = alive_end; it != queue_.end(); ++it) expired->push_back(std::move(*it));
  queue_.erase(alive_end, queue_.end());
  stats_.queued = queue_.size();
  if (queue_.empty()) return std::nullopt;

  std::vector<size_t> picked = {0};
  const Pending& head = queue_[0];
  bool due = true;
  if (batching_ && head.rows) {
    const int64_t max = options_.max_batch_size;
    int64_t total = *head.rows;
    bool overflow = false;
    bool capped = false;
    const bool costed = options_.batch_bytes && options_.budget_bytes;
    std::optional<uint64_t> budget;  // read once, when the first partner is considered
    SchedulerTime oldest = head.enqueued;
    for (size_t j = 1; j < queue_.size() && total < max; ++j) {
      const Pending& p = queue_[j];
      if (!p.rows || p.key != head.key) continue;
      if (total + *p.rows > max) {
        overflow = true;  // the next partner does not fit: the batch is as big as it gets
        break;
      }
      if (costed && !FitsBudget(total + *p.rows, &budget)) {
        overflow = capped = true;  // nor does it fit the memory: it waits, in order
        break;
      }
      total += *p.rows;
      oldest = std::min(oldest, p.enqueued);
      picked.push_back(j);
    }
    const auto& preferred = options_.batching.preferred_batch_sizes;
    // Saturated like a deadline: a delay past the clock's range (config
    // allows any uint64) never wraps into the past.
    const uint64_t delay_us = options_.batching.max_queue_delay_us;
    const SchedulerTime ready = delay_us == 0 ? oldest : DeadlineAfter(oldest, delay_us);
    due = total >= max || overflow || now >= ready ||
          std::find(preferred.begin(), preferred.end(), total) != preferred.end();
    if (!due) *wake = ready;
    if (due && capped) ++stats_.memory_capped_batches;
  }
  if (!due) {
    for (const Pending& p : queue_) {
      if (!*wake || p.deadline < **wake) *wake = p.deadline;
    }
    return std::nullopt;
  }
  Batch batch;
  batch.members.reserve(picked.size());
  for (size_t i : picked) batch.members.push_back(std::move(queue_[i]));
  for (auto it = picked.rbegin(); it != picked.rend(); ++it) {
    queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(*it));
  }
  stats_.queued = queue_.size();
  return batch;
}

void BatchScheduler::Expire(std::vector<Pending>& expired, SchedulerTime now) {
  if (expired.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.timed_out += expired.size();
  }
  for (Pending& p : expired) {
    const auto waited = duration_cast<milliseconds>(now - p.enqueued).count();
    Complete(p, Status::Unavailable(
                    fmt::format("request '{}' timed out after {} ms in the queue of model '{}'",
                                p.request.id, waited, options_.model_name)));
  }
}

void BatchScheduler::Complete(Pending& p, Result<std::vector<InferTensor>> result) {
  if (!p.done) return;
  try {
    p.done(std::move(result));
  } catch (const std::exception& e) {
    spdlog::warn("model '{}': completion callback of request '{}' threw: {}", options_.model_name,
                 p.request.id, e.what());
  } catch (...) {
    spdlog::warn("model '{}': completion callback of request '{}' threw", options_.model_name,
                 p.request.id);
  }
}

namespace {

// Concatenates the members' inputs in the order of the first member's inputs.
Result<std::vector<InferTensor>> MergeInputs(const std::vector<const SchedulerRequest*>& requests) {
  std::vector<InferTensor> merged;
  const std::vector<InferTensor>& head = requests.front()->inputs;
  merged.reserve(head.size());
  for (const InferTensor& first : head) {
    std::vector<const InferTensor*> parts;
    parts.reserve(requests.size());
    for (const SchedulerRequest* r : requests) {
      auto it = std::find_if(r->inputs.begin(), r->inputs.end(),
                             [&](const InferTensor& t) { return t.name == first.name; });
      if (it == r->inputs.end()) {
        return Status::Internal(fmt::format("request '{}' lacks input '{}'", r->id, first.name));
      }
      parts.push_back(&*it);
    }
    MG_ASSIGN_OR_RETURN(InferTensor t, ConcatBatch(parts));
    merged.push_back(std::move(t));
  }
  return merged;
}

}  // namespace

struct BatchScheduler::Attempt {
  std::vector<Result<std::vector<InferTensor>>> results;  // one per member, in order
  Status failure;                                         // not OK: every member's result
  bool executor_failed = false;                           // `failure` is what Execute() returned
  int64_t rows = 1;                                       // ExecuteContext::rows
  SchedulerTime start;
  SchedulerTime end;
};

BatchScheduler::Attempt BatchScheduler::Execute(const std::vector<Pending*>& members) {
  Attempt a;
  const bool split = batching_ && members.front()->rows.has_value();
  ExecuteContext ctx;
  SchedulerTime latest = members.front()->deadline;
  for (const Pending* p : members) latest = std::max(latest, p->deadline);
  if (latest != SchedulerTime::max()) ctx.deadline = latest;
  ctx.output_names = members.front()->request.output_names;

  std::vector<int64_t> rows;
  std::vector<InferTensor> inputs;
  if (split) {
    std::vector<const SchedulerRequest*> requests;
    int64_t total = 0;
    for (const Pending* p : members) {
      rows.push_back(*p->rows);
      total += *p->rows;
      requests.push_back(&p->request);
    }
    ctx.rows = total;
    // A batch of one is passed on as it is: merging would only copy it.
    // A merged batch copies, so its members keep their inputs for a retry.
    Result<std::vector<InferTensor>> merged =
        members.size() == 1
            ? Result<std::vector<InferTensor>>(std::move(members[0]->request.inputs))
            : MergeInputs(requests);
    if (merged.ok()) {
      inputs = std::move(merged).value();
    } else {
      a.failure = merged.status().WithPrefix(fmt::format("model '{}'", options_.model_name));
    }
  } else {
    inputs = std::move(members.front()->request.inputs);
  }
  a.rows = ctx.rows;

  a.start = clock_->Now();
  a.end = a.start;
  if (a.failure.ok()) {
    const SchedulerRequest& head = members.front()->request;
    Result<std::vector<InferTensor>> out = Status::Internal("not run");
    try {
      out = executor_->Execute(ctx, head.task, std::move(inputs), head.params);
    } catch (const std::exception& e) {
      out = Status::Internal(
          fmt::format("model '{}': executor threw: {}", options_.model_name, e.what()));
    } catch (...) {
      out = Status::Internal(fmt::format("model '{}': executor threw", options_.model_name));
    }
    a.end = clock_->Now();
    if (!out.ok()) {
      a.failure = out.status();
      a.executor_failed = true;
    } else if (!split) {
      a.results.push_back(std::move(out).value());
    } else if (members.size() == 1) {
      for (const InferTensor& output : *out) {
        Status checked = CheckBatchOutput(output, rows);
        if (!checked.ok()) {
          a.failure = Status::Internal(
              fmt::format("model '{}' returned output '{}' that does not match the batch: {}",
                          options_.model_name, output.name, checked.message()));
          break;
        }
      }
      if (a.failure.ok()) a.results.push_back(std::move(out).value());
    } else {
      a.results.assign(members.size(), std::vector<InferTensor>{});
      for (const InferTensor& output : *out) {
        Result<std::vector<InferTensor>> pieces = SplitBatch(output, rows);
        if (!pieces.ok()) {
          a.failure = Status::Internal(fmt::format(
              "model '{}' returned output '{}' that cannot be split across the batch: {}",
              options_.model_name, output.name, pieces.status().message()));
          break;
        }
        for (size_t i = 0; i < members.size(); ++i) {
          a.results[i].value().push_back(std::move((*pieces)[i]));
        }
      }
    }
  }
  if (!a.failure.ok()) a.results.assign(members.size(), a.failure);
  return a;
}

void BatchScheduler::CountBatchLocked(const Attempt& attempt) {
  stats_.executed_batches += 1;
  stats_.batch_size_histogram[attempt.rows] += 1;
  stats_.batch_compute_duration_us += Micros(attempt.start, attempt.end);
}

void BatchScheduler::CountRequestLocked(const Pending& p, bool ok, uint64_t compute_us,
                                        SchedulerTime dispatched, SchedulerTime end) {
  stats_.executed_requests += 1;
  stats_.executed_inferences += static_cast<uint64_t>(batching_ ? p.rows.value_or(1) : 1);
  (ok ? stats_.succeeded : stats_.failed) += 1;
  stats_.compute_duration_us += compute_us;
  stats_.queue_duration_us += Micros(p.enqueued, dispatched);
  stats_.request_duration_us += Micros(p.enqueued, end);
}

void BatchScheduler::Run(Batch batch) {
  std::vector<Pending>& members = batch.members;
  const SchedulerTime dispatched = clock_->Now();
  std::vector<Pending*> all;
  all.reserve(members.size());
  for (Pending& p : members) all.push_back(&p);
  Attempt first = Execute(all);
  const uint64_t first_us = Micros(first.start, first.end);
  // A merged batch that ran out of memory: its requests may fit alone. Not
  // one a higher-priority model preempted (CollisionDetail::preempted_by):
  // its bytes were taken on purpose, so that failure is every member's.
  const CollisionDetail* collision = first.failure.collision();
  const bool preempted = collision != nullptr && !collision->preempted_by.empty();
  const bool retry = members.size() > 1 && first.executor_failed &&
                     first.failure.code() == StatusCode::kResourceExhausted && !preempted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CountBatchLocked(first);
    if (retry) {
      stats_.memory_splits += 1;
    } else {
      for (size_t i = 0; i < members.size(); ++i) {
        CountRequestLocked(members[i], first.results[i].ok(), first_us, dispatched, first.end);
        RecordTimes(members[i].request.times.get(), members[i].enqueued, first.start, first.end);
      }
    }
  }
  if (!retry) {
    for (size_t i = 0; i < members.size(); ++i) Complete(members[i], std::move(first.results[i]));
    return;
  }

  spdlog::debug(
      "model '{}': a batch of {} requests ({} rows) ran out of memory ({}); retrying "
      "each request alone",
      options_.model_name, members.size(), first.rows, first.failure.message());
  for (Pending& p : members) {
    const SchedulerTime now = clock_->Now();
    if (p.deadline <= now) {
      Result<std::vector<InferTensor>> late = Status::Unavailable(fmt::format(
          "request '{}' reached its deadline after {} ms, before it could run alone on model "
          "'{}' (its batch of {} requests failed: {})",
          p.request.id, duration_cast<milliseconds>(now - p.enqueued).count(), options_.model_name,
          members.size(), first.failure.message()));
      {
        std::lock_guard<std::mutex> lock(mu_);
        CountRequestLocked(p, false, first_us, dispatched, now);
      }
      RecordTimes(p.request.times.get(), p.enqueued, first.start, first.end);
      Complete(p, std::move(late));
      continue;
    }
    Attempt alone = Execute({&p});
    {
      std::lock_guard<std::mutex> lock(mu_);
      CountBatchLocked(alone);
      CountRequestLocked(p, alone.results[0].ok(), first_us + Micros(alone.start, alone.end),
                         dispatched, alone.end);
    }
    RecordTimes(p.request.times.get(), p.enqueued, first.start, alone.end);
    Complete(p, std::move(alone.results[0]));
  }
}

bool BatchScheduler::FitsBudget(int64_t rows, std::optional<uint64_t>* budget) const {
  try {
    if (!*budget) *budget = options_.budget_bytes();
    return options_.batch_bytes(rows) <= **budget;
  } catch (const std::exception& e) {
    spdlog::warn("model '{}': the batch cost model threw: {}", options_.model_name, e.what());
  } catch (...) {
    spdlog::warn("model '{}': the batch cost model threw", options_.model_name);
  }
  return false;
}

}  // namespace modelgrid

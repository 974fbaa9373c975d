// modelgrid::RequestTimes — when one inference request entered a model's
// queue and when the batch that ran it started and ended, on the steady
// clock. A caller that wants them (request tracing, src/service/trace_*.h)
// hands a RequestTimes through InferCall::times (modelgrid/grid.h) down to
// SchedulerRequest::times (modelgrid/scheduler/batch_scheduler.h); the
// scheduler fills it in before it calls the request's callback, so the
// callback may read it without a lock.
#pragma once

#include <chrono>
#include <optional>

namespace modelgrid {

struct RequestTimes {
  using Time = std::chrono::steady_clock::time_point;
  // Submit() took the request (BatchScheduler's enqueue time, the start of
  // its queue duration). nullopt: the request never reached a queue.
  std::optional<Time> queue_start;
  // The first batch that ran the request began / its last execution ended
  // (a request retried alone after its merged batch ran out of memory: the
  // merged batch's start, the retry's end). nullopt: never executed (it
  // timed out in the queue, the queue was full, the model shut down).
  std::optional<Time> compute_start, compute_end;
};

}  // namespace modelgrid

#include "modelgrid/scheduler/batch_scheduler.h"

#include <gtest/gtest.h>

#include <thread>

#include "scheduler/scheduler_test_util.h"

namespace modelgrid {
namespace {

using namespace std::chrono_literals;
using testing::BytesTensor;
using testing::BytesValues;
using testing::FakeExecutor;
using testing::Int32Tensor;
using testing::Int32Values;
using testing::ManualClock;
using testing::Options;
using testing::Outcome;
using testing::XRequest;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Starts a batch that blocks the dispatcher until executor.Release(), so the
// requests submitted next are all queued when it forms the following batch.
void StartBlocker(BatchScheduler& s, FakeExecutor& executor, Outcome& outcome) {
  executor.Hold();
  // A scalar input cannot batch, so it runs at once (whatever the clock
  // says) and never merges with the test's requests.
  SchedulerRequest r;
  r.id = "blocker";
  r.task = "block";
  r.inputs.push_back(Int32Tensor("x", {}, {100}));
  ASSERT_TRUE(s.Submit(std::move(r), outcome.Callback()).ok());
  ASSERT_TRUE(executor.WaitCalls(1));
}

std::vector<int64_t> BatchRows(const std::vector<FakeExecutor::Call>& calls) {
  std::vector<int64_t> rows;
  for (const auto& c : calls) {
    if (c.task != "block") rows.push_back(c.inputs.at(0).shape.at(0));
  }
  return rows;
}

TEST(BatchSchedulerTest, SingleRequestGetsItsOutput) {
  FakeExecutor executor;
  BatchScheduler s(Options(4), &executor);
  Outcome out;
  ASSERT_TRUE(s.Submit(XRequest("a", {1, 2, 3}, 3), out.Callback()).ok());
  auto r = out.Get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].name, "y");
  EXPECT_EQ((*r)[0].shape, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(Int32Values((*r)[0]), (std::vector<int32_t>{2, 4, 6}));
}

TEST(BatchSchedulerTest, MergesUpToMaxBatchSize) {
  FakeExecutor executor;
  BatchScheduler s(Options(4), &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  // Rows 1, 2, 1, 2, 1: the first three fill 4 rows, the next fits no more.
  std::vector<std::vector<int32_t>> values = {{1}, {2, 3}, {4}, {5, 6}, {7}};
  std::vector<Outcome> outs(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    ASSERT_TRUE(s.Submit(XRequest("r" + std::to_string(i), values[i]), outs[i].Callback()).ok());
  }
  executor.Release();
  for (size_t i = 0; i < values.size(); ++i) {
    auto r = outs[i].Get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::vector<int32_t> want = values[i];
    for (int32_t& v : want) v *= 2;
    EXPECT_EQ(Int32Values(r->at(0)), want) << "request " << i;
    EXPECT_EQ(r->at(0).shape[0], static_cast<int64_t>(values[i].size()));
  }
  EXPECT_TRUE(blocker.Get().ok());
  std::vector<int64_t> rows = BatchRows(executor.Calls());
  EXPECT_EQ(rows, (std::vector<int64_t>{4, 3}));
  for (int64_t r : rows) EXPECT_LE(r, 4);

  SchedulerStats stats = s.Stats();
  EXPECT_EQ(stats.executed_batches, 3u);
  EXPECT_EQ(stats.executed_requests, 6u);
  EXPECT_EQ(stats.executed_inferences, 8u);
  EXPECT_EQ(stats.succeeded, 6u);
  EXPECT_EQ(stats.batch_size_histogram, (std::map<int64_t, uint64_t>{{1, 1}, {3, 1}, {4, 1}}));
  EXPECT_EQ(stats.queued, 0u);
}

TEST(BatchSchedulerTest, IncompatibleRequestsAreNotMerged) {
  FakeExecutor executor;
  BatchScheduler s(Options(8), &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<SchedulerRequest> requests;
  requests.push_back(XRequest("base", {1, 2}, 2));
  requests.push_back(XRequest("other-dims", {1, 2, 3}, 3));
  SchedulerRequest other_task = XRequest("other-task", {1, 2}, 2);
  other_task.task = "embed";
  requests.push_back(other_task);
  SchedulerRequest other_params = XRequest("other-params", {1, 2}, 2);
  other_params.params = {{"max_new_tokens", 5}};
  requests.push_back(other_params);
  SchedulerRequest other_name = XRequest("other-name", {1, 2}, 2);
  other_name.inputs[0].name = "z";
  requests.push_back(other_name);
  SchedulerRequest other_type = XRequest("other-type", {1, 2}, 2);
  other_type.inputs[0].datatype = DataType::kFP32;
  requests.push_back(other_type);
  std::vector<Outcome> outs(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(s.Submit(requests[i], outs[i].Callback()).ok());
  }
  executor.Release();
  for (Outcome& o : outs) EXPECT_TRUE(o.Get().ok());
  auto calls = executor.Calls();
  ASSERT_EQ(calls.size(), requests.size() + 1);
  for (size_t i = 1; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].inputs.at(0).shape.at(0), 1) << "batch " << i;
  }
  EXPECT_EQ(calls[3].task, "embed");
  EXPECT_EQ(calls[4].params, (nlohmann::json{{"max_new_tokens", 5}}));
}

TEST(BatchSchedulerTest, EqualParamsMerge) {
  FakeExecutor executor;
  BatchScheduler s(Options(8), &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<Outcome> outs(3);
  for (int i = 0; i < 3; ++i) {
    SchedulerRequest r = XRequest("g" + std::to_string(i), {i});
    r.task = "generate";
    r.params = {{"max_new_tokens", 7}};
    ASSERT_TRUE(s.Submit(std::move(r), outs[i].Callback()).ok());
  }
  executor.Release();
  for (int i = 0; i < 3; ++i) {
    auto r = outs[i].Get();
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(Int32Values(r->at(0)), (std::vector<int32_t>{2 * i}));
  }
  auto calls = executor.Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[1].task, "generate");
  EXPECT_EQ(calls[1].params, (nlohmann::json{{"max_new_tokens", 7}}));
  EXPECT_EQ(Int32Values(calls[1].inputs[0]), (std::vector<int32_t>{0, 1, 2}));
}

TEST(BatchSchedulerTest, PreferredBatchSizeDispatchesBeforeTheDelay) {
  FakeExecutor executor;
  BatchSchedulerOptions o = Options(8, /*delay_us=*/3'600'000'000ULL);  // an hour
  o.batching.preferred_batch_sizes = {2};
  BatchScheduler s(o, &executor);
  Outcome a, b;
  ASSERT_TRUE(s.Submit(XRequest("a", {1}), a.Callback()).ok());
  ASSERT_TRUE(s.Submit(XRequest("b", {2}), b.Callback()).ok());
  ASSERT_TRUE(a.Get().ok());  // would wait an hour without the preferred size
  ASSERT_TRUE(b.Get().ok());
  EXPECT_EQ(BatchRows(executor.Calls()), (std::vector<int64_t>{2}));
}

TEST(BatchSchedulerTest, FullBatchDispatchesBeforeTheDelay) {
  FakeExecutor executor;
  BatchScheduler s(Options(3, /*delay_us=*/3'600'000'000ULL), &executor);
  Outcome a, b;
  ASSERT_TRUE(s.Submit(XRequest("a", {1}), a.Callback()).ok());
  ASSERT_TRUE(s.Submit(XRequest("b", {2, 3}), b.Callback()).ok());
  auto rb = b.Get();
  ASSERT_TRUE(rb.ok());
  EXPECT_EQ(Int32Values(rb->at(0)), (std::vector<int32_t>{4, 6}));
  ASSERT_TRUE(a.Get().ok());
  EXPECT_EQ(BatchRows(executor.Calls()), (std::vector<int64_t>{3}));
}

TEST(BatchSchedulerTest, LoneRequestRunsWhenTheDelayExpires) {
  FakeExecutor executor;
  ManualClock clock;
  BatchScheduler s(Options(8, /*delay_us=*/1'000'000), &executor, &clock);
  Outcome a;
  ASSERT_TRUE(s.Submit(XRequest("a", {1}), a.Callback()).ok());
  EXPECT_FALSE(a.Ready(100ms));  // the fake clock has not moved: still waiting
  clock.Advance(1s);
  ASSERT_TRUE(a.Get().ok());
  EXPECT_EQ(executor.Calls().size(), 1u);
}

// A delay past the clock's range (config.pbtxt allows any uint64) waits
// like a very long one; it must not wrap into the past and dispatch at once.
TEST(BatchSchedulerTest, AHugeDelayNeverWrapsIntoThePast) {
  FakeExecutor executor;
  ManualClock clock;
  BatchScheduler s(Options(8, /*delay_us=*/UINT64_MAX), &executor, &clock);
  Outcome a;
  ASSERT_TRUE(s.Submit(XRequest("a", {1}), a.Callback()).ok());
  EXPECT_FALSE(a.Ready(200ms));
  EXPECT_EQ(executor.Calls().size(), 0u);
  // A day later its own timeout (the model's default) has ended it, unrun.
  clock.Advance(24h);
  auto r = a.Get();
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_EQ(executor.Calls().size(), 0u);
}

TEST(BatchSchedulerTest, QueueFullIsUnavailableWithRetryHint) {
  FakeExecutor executor;
  BatchSchedulerOptions o = Options(4);
  o.batching.max_queue_size = 2;
  BatchScheduler s(o, &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  Outcome a, b, c;
  ASSERT_TRUE(s.Submit(XRequest("a", {1}), a.Callback()).ok());
  ASSERT_TRUE(s.Submit(XRequest("b", {2}), b.Callback()).ok());
  Status full = s.Submit(XRequest("c", {3}), c.Callback());
  EXPECT_EQ(full.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(full.message(), "queue full (2 requests) for model 'm'")) << full.message();
  auto hint = RetryAfterSeconds(full);
  ASSERT_TRUE(hint.has_value()) << full.message();
  EXPECT_GE(*hint, 1u);
  EXPECT_EQ(RetryAfterSeconds(Status::Unavailable("model 'm' is shutting down")), std::nullopt);
  EXPECT_EQ(s.Stats().queued, 2u);
  EXPECT_EQ(s.Stats().rejected, 1u);
  executor.Release();
  EXPECT_TRUE(a.Get().ok());
  EXPECT_TRUE(b.Get().ok());
  EXPECT_FALSE(c.Ready());  // a refused request never completes
}

TEST(BatchSchedulerTest, ExpiredRequestsTimeOutAndNeverRun) {
  FakeExecutor executor;
  ManualClock clock;
  BatchScheduler s(Options(4), &executor, &clock);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  Outcome late, fine;
  SchedulerRequest r = XRequest("late", {1});
  r.deadline = clock.Now() + 250ms;
  ASSERT_TRUE(s.Submit(std::move(r), late.Callback()).ok());
  ASSERT_TRUE(s.Submit(XRequest("fine", {2}), fine.Callback()).ok());  // default: 30 s
  clock.Advance(1500ms);
  executor.Release();
  auto lr = late.Get();
  ASSERT_FALSE(lr.ok());
  EXPECT_EQ(lr.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(lr.status().message(), "timed out after 1500 ms in the queue of model 'm'"))
      << lr.status().message();
  ASSERT_TRUE(fine.Get().ok());
  auto calls = executor.Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(Int32Values(calls[1].inputs[0]), (std::vector<int32_t>{2}));  // "late" never ran
  EXPECT_EQ(s.Stats().timed_out, 1u);
}

TEST(BatchSchedulerTest, DispatcherWakesForDeadlinesOnItsOwn) {
  // Nothing is submitted after the request and the batch delay is an hour:
  // only the dispatcher's own deadline wake-up can complete it.
  FakeExecutor executor;
  BatchScheduler s(Options(8, /*delay_us=*/3'600'000'000ULL), &executor);
  Outcome a;
  SchedulerRequest r = XRequest("a", {1});
  r.deadline = std::chrono::steady_clock::now() + 30ms;
  ASSERT_TRUE(s.Submit(std::move(r), a.Callback()).ok());
  auto result = a.Get();
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(Contains(result.status().message(), "timed out after")) << result.status().message();
  EXPECT_TRUE(executor.Calls().empty());
}

TEST(BatchSchedulerTest, DefaultTimeoutApplies) {
  FakeExecutor executor;
  ManualClock clock;
  BatchSchedulerOptions o = Options(4);
  o.batching.default_timeout_us = 2'000'000;
  BatchScheduler s(o, &executor, &clock);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  Outcome a;
  ASSERT_TRUE(s.Submit(XRequest("a", {1}), a.Callback()).ok());
  clock.Advance(3s);
  executor.Release();
  auto r = a.Get();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(Contains(r.status().message(), "timed out after 3000 ms")) << r.status().message();
}

TEST(BatchSchedulerTest, HigherPriorityFirstFifoWithin) {
  FakeExecutor executor;
  BatchScheduler s(Options(0), &executor);  // one request at a time
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<int> priorities = {0, 5, 1, 5, 3, 0};
  std::vector<Outcome> outs(priorities.size());
  for (size_t i = 0; i < priorities.size(); ++i) {
    SchedulerRequest r = XRequest("p" + std::to_string(i), {static_cast<int32_t>(i)});
    r.priority = priorities[i];
    ASSERT_TRUE(s.Submit(std::move(r), outs[i].Callback()).ok());
  }
  executor.Release();
  for (Outcome& o : outs) EXPECT_TRUE(o.Get().ok());
  std::vector<int32_t> order;
  auto calls = executor.Calls();
  for (size_t i = 1; i < calls.size(); ++i) order.push_back(Int32Values(calls[i].inputs[0]).at(0));
  EXPECT_EQ(order, (std::vector<int32_t>{1, 3, 4, 2, 0, 5}));
}

TEST(BatchSchedulerTest, PriorityDecidesWhichRequestsFillTheBatch) {
  FakeExecutor executor;
  BatchScheduler s(Options(2), &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<int> priorities = {0, 0, 9, 9};
  std::vector<Outcome> outs(priorities.size());
  for (size_t i = 0; i < priorities.size(); ++i) {
    SchedulerRequest r = XRequest("p" + std::to_string(i), {static_cast<int32_t>(i)});
    r.priority = priorities[i];
    ASSERT_TRUE(s.Submit(std::move(r), outs[i].Callback()).ok());
  }
  executor.Release();
  for (Outcome& o : outs) EXPECT_TRUE(o.Get().ok());
  auto calls = executor.Calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_EQ(Int32Values(calls[1].inputs[0]), (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(Int32Values(calls[2].inputs[0]), (std::vector<int32_t>{0, 1}));
}

// Any error but kResourceExhausted (which splits the batch, see
// batch_scheduler_memory_test.cc) reaches every request of the batch as is.
TEST(BatchSchedulerTest, ExecutorErrorReachesEveryRequestOfTheBatch) {
  FakeExecutor executor([](const std::string& task, const std::vector<InferTensor>& in,
                           const nlohmann::json& p) -> Result<std::vector<InferTensor>> {
    if (task == "block") return testing::DoubleModel(task, in, p);
    return Status::InvalidArgument("model 'm' rejects input 'x'");
  });
  BatchScheduler s(Options(4), &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<Outcome> outs(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.Submit(XRequest("e" + std::to_string(i), {i}), outs[i].Callback()).ok());
  }
  executor.Release();
  for (Outcome& o : outs) {
    auto r = o.Get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), "model 'm' rejects input 'x'");
  }
  EXPECT_TRUE(blocker.Get().ok());
  EXPECT_EQ(executor.Calls().size(), 2u);  // one batch, never retried
  EXPECT_EQ(s.Stats().failed, 3u);
  EXPECT_EQ(s.Stats().memory_splits, 0u);
}

TEST(BatchSchedulerTest, OutputWithoutTheBatchDimensionFailsTheBatch) {
  FakeExecutor executor([](const std::string& task, const std::vector<InferTensor>& in,
                           const nlohmann::json& p) -> Result<std::vector<InferTensor>> {
    if (task == "block") return testing::DoubleModel(task, in, p);
    return std::vector<InferTensor>{Int32Tensor("y", {2}, {1, 2}),
                                    Int32Tensor("pooled", {1, 2}, {1, 2})};
  });
  BatchScheduler s(Options(4), &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<Outcome> outs(2);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(s.Submit(XRequest("o" + std::to_string(i), {i}), outs[i].Callback()).ok());
  }
  executor.Release();
  for (Outcome& o : outs) {
    auto r = o.Get();
    ASSERT_FALSE(r.ok());
    EXPECT_TRUE(Contains(r.status().message(), "output 'pooled'")) << r.status().message();
  }
}

// A batch of one request is passed through without merging or splitting,
// but its outputs are still checked against its rows.
TEST(BatchSchedulerTest, LoneRequestOutputsAreCheckedAgainstItsRows) {
  FakeExecutor executor([](const std::string&, const std::vector<InferTensor>& in,
                           const nlohmann::json&) -> Result<std::vector<InferTensor>> {
    if (in.at(0).shape.at(0) == 2) return std::vector<InferTensor>{Int32Tensor("y", {2}, {7, 8})};
    return std::vector<InferTensor>{Int32Tensor("y", {2}, {7, 8})};  // 2 rows for a 1-row request
  });
  BatchScheduler s(Options(4), &executor);
  Outcome good;
  ASSERT_TRUE(s.Submit(XRequest("two", {1, 2}), good.Callback()).ok());
  auto r = good.Get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at(0).shape, std::vector<int64_t>{2});
  Outcome bad;
  ASSERT_TRUE(s.Submit(XRequest("one", {1}), bad.Callback()).ok());
  auto e = bad.Get();
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInternal);
  EXPECT_TRUE(Contains(e.status().message(), "output 'y' has dimension 0 of 2"))
      << e.status().message();
}

TEST(BatchSchedulerTest, ExecutorExceptionBecomesInternal) {
  FakeExecutor executor([](const std::string&, const std::vector<InferTensor>&,
                           const nlohmann::json&) -> Result<std::vector<InferTensor>> {
    throw std::runtime_error("boom");
  });
  BatchScheduler s(Options(4), &executor);
  Outcome a;
  ASSERT_TRUE(s.Submit(XRequest("a", {1}), a.Callback()).ok());
  auto r = a.Get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_TRUE(Contains(r.status().message(), "boom"));
}

TEST(BatchSchedulerTest, ShutdownFailsQueuedRequestsAndWaitsForTheBatchInFlight) {
  FakeExecutor executor;
  BatchScheduler s(Options(4), &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<Outcome> outs(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.Submit(XRequest("q" + std::to_string(i), {i}), outs[i].Callback()).ok());
  }
  std::thread stopper([&] { s.Shutdown(); });
  for (Outcome& o : outs) {
    auto r = o.Get();  // completes while the batch in flight still runs
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
    EXPECT_TRUE(Contains(r.status().message(), "server shutting down")) << r.status().message();
  }
  EXPECT_FALSE(blocker.Ready());
  Status after = s.Submit(XRequest("late", {1}), [](Result<std::vector<InferTensor>>) {});
  EXPECT_EQ(after.code(), StatusCode::kUnavailable);
  executor.Release();
  stopper.join();
  EXPECT_TRUE(blocker.Ready());
  EXPECT_TRUE(blocker.Get().ok());
  EXPECT_EQ(executor.Calls().size(), 1u);
  EXPECT_EQ(s.Stats().cancelled, 3u);
  s.Shutdown();  // idempotent
}

TEST(BatchSchedulerTest, DestructorShutsDown) {
  FakeExecutor executor;
  Outcome a;
  {
    BatchScheduler s(Options(4, /*delay_us=*/3'600'000'000ULL), &executor);
    ASSERT_TRUE(s.Submit(XRequest("a", {1}), a.Callback()).ok());
  }
  auto r = a.Get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

TEST(BatchSchedulerTest, BytesTensorsAreMergedAndSplitPerRequest) {
  FakeExecutor executor;
  BatchScheduler s(Options(16), &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<std::vector<std::string>> texts = {
      {"hello", "", "world!"}, {"a", "bc", ""}, {"", "", "xyzzy"}};
  std::vector<Outcome> outs(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    SchedulerRequest r;
    r.id = "b" + std::to_string(i);
    r.inputs.push_back(BytesTensor("s", {static_cast<int64_t>(texts[i].size())}, texts[i]));
    ASSERT_TRUE(s.Submit(std::move(r), outs[i].Callback()).ok());
  }
  executor.Release();
  for (size_t i = 0; i < texts.size(); ++i) {
    auto r = outs[i].Get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> want = texts[i];
    for (std::string& t : want) t.assign(t.rbegin(), t.rend());
    EXPECT_EQ(BytesValues(r->at(0)), want);
    EXPECT_EQ(r->at(0).shape, (std::vector<int64_t>{3}));
  }
  EXPECT_EQ(BatchRows(executor.Calls()), (std::vector<int64_t>{9}));
}

TEST(BatchSchedulerTest, NonBatchingModelRunsRequestsAsGiven) {
  FakeExecutor executor([](const std::string&, const std::vector<InferTensor>& in,
                           const nlohmann::json&) -> Result<std::vector<InferTensor>> {
    return std::vector<InferTensor>{Int32Tensor("sum", {}, {static_cast<int32_t>(in.size())})};
  });
  BatchSchedulerOptions o = Options(8);
  o.batching.enabled = false;
  BatchScheduler s(o, &executor);
  std::vector<Outcome> outs(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.Submit(XRequest("n" + std::to_string(i), {1, 2}), outs[i].Callback()).ok());
  }
  for (Outcome& o : outs) {
    auto r = o.Get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->at(0).shape, std::vector<int64_t>{});  // passed through unsplit
  }
  for (const auto& c : executor.Calls()) EXPECT_EQ(c.inputs.at(0).shape.at(0), 2);
}

TEST(BatchSchedulerTest, RejectsRequestsLargerThanMaxBatch) {
  FakeExecutor executor;
  BatchScheduler s(Options(2), &executor);
  Status st = s.Submit(XRequest("big", {1, 2, 3}), [](Result<std::vector<InferTensor>>) {});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(st.message(), "batch size 3")) << st.message();
}

}  // namespace
}  // namespace modelgrid

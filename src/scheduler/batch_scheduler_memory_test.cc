// Memory-aware batching: the cost model (batch_bytes, budget_bytes) keeps
// merged batches within the budget, and a merged batch that still fails with
// kResourceExhausted is retried as its requests, each alone, so one large
// client cannot fail the small ones it was batched with.
#include <gtest/gtest.h>

#include <atomic>
#include <set>

#include "modelgrid/scheduler/batch_scheduler.h"
#include "scheduler/scheduler_test_util.h"

namespace modelgrid {
namespace {

using namespace std::chrono_literals;
using testing::DoubleModel;
using testing::FakeExecutor;
using testing::Int32Tensor;
using testing::Int32Values;
using testing::ManualClock;
using testing::Options;
using testing::Outcome;
using testing::XRequest;

constexpr uint64_t kBytesPerRow = 100;

// A request of `rows` rows of width 1 whose values are id * 100 + row, so a
// batch's inputs tell which requests it holds.
SchedulerRequest Rows(int id, int64_t rows) {
  std::vector<int32_t> values;
  for (int64_t i = 0; i < rows; ++i) values.push_back(id * 100 + static_cast<int32_t>(i));
  return XRequest("r" + std::to_string(id), values);
}

// The ids of the requests whose rows make up a batch's input "x".
std::set<int32_t> RequestIds(const FakeExecutor::Call& call) {
  std::set<int32_t> ids;
  for (int32_t v : Int32Values(call.inputs.at(0))) ids.insert(v / 100);
  return ids;
}

// Fails any batch of more than `limit` rows with kResourceExhausted, as an
// instance with room for `limit` rows would; else doubles. The blocker
// (task "block") always runs.
FakeExecutor::CtxFn FailsPast(int64_t limit) {
  return [limit](const ExecuteContext& ctx, const std::string& task,
                 const std::vector<InferTensor>& in,
                 const nlohmann::json& p) -> Result<std::vector<InferTensor>> {
    if (task != "block" && ctx.rows > limit) {
      return Status::ResourceExhausted("model 'm' needs more than its memory limit for " +
                                       std::to_string(ctx.rows) + " rows");
    }
    return DoubleModel(task, in, p);
  };
}

void StartBlocker(BatchScheduler& s, FakeExecutor& executor, Outcome& outcome) {
  executor.Hold();
  SchedulerRequest r;  // a scalar cannot batch: it runs at once, never merges, is not costed
  r.id = "blocker";
  r.task = "block";
  r.inputs.push_back(Int32Tensor("x", {}, {0}));
  ASSERT_TRUE(s.Submit(std::move(r), outcome.Callback()).ok());
  ASSERT_TRUE(executor.WaitCalls(1));
}

std::vector<FakeExecutor::Call> Batches(FakeExecutor& executor) {
  std::vector<FakeExecutor::Call> out;
  for (auto& c : executor.Calls()) {
    if (c.task != "block") out.push_back(c);
  }
  return out;
}

std::vector<int64_t> RowsOf(const std::vector<FakeExecutor::Call>& calls) {
  std::vector<int64_t> rows;
  for (const auto& c : calls) rows.push_back(c.ctx.rows);
  return rows;
}

void ExpectDoubled(Outcome& out, const SchedulerRequest& request) {
  auto r = out.Get();
  ASSERT_TRUE(r.ok()) << request.id << ": " << r.status().ToString();
  std::vector<int32_t> want = Int32Values(request.inputs.at(0));
  for (int32_t& v : want) v *= 2;
  EXPECT_EQ(Int32Values(r->at(0)), want) << request.id;
}

BatchSchedulerOptions Costed(int64_t max_batch, uint64_t budget_rows) {
  BatchSchedulerOptions o = Options(max_batch);
  o.batch_bytes = [](int64_t rows) { return static_cast<uint64_t>(rows) * kBytesPerRow; };
  o.budget_bytes = [budget_rows] { return budget_rows * kBytesPerRow + kBytesPerRow / 2; };
  return o;
}

// Budget: 3.5 rows. Batches grow in queue order and stop before the first
// request that would pass the budget; that one leads the next batch. The
// 4-row request exceeds the budget alone, so it runs alone.
TEST(MemoryAwareBatchingTest, CostModelNeverExceedsTheBudgetExceptAlone) {
  FakeExecutor executor;
  BatchSchedulerOptions o = Costed(8, 3);
  BatchScheduler s(o, &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  const std::vector<int64_t> sizes = {1, 2, 1, 4, 1, 1, 1, 2};
  std::vector<SchedulerRequest> requests;
  std::vector<Outcome> outs(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    requests.push_back(Rows(static_cast<int>(i) + 1, sizes[i]));
    ASSERT_TRUE(s.Submit(requests.back(), outs[i].Callback()).ok());
  }
  executor.Release();
  for (size_t i = 0; i < sizes.size(); ++i) ExpectDoubled(outs[i], requests[i]);
  ASSERT_TRUE(blocker.Get().ok());

  auto batches = Batches(executor);
  EXPECT_EQ(RowsOf(batches), (std::vector<int64_t>{3, 1, 4, 3, 2}));
  const uint64_t budget = o.budget_bytes();
  for (const auto& b : batches) {
    EXPECT_EQ(b.ctx.rows, b.inputs.at(0).shape.at(0));
    if (o.batch_bytes(b.ctx.rows) > budget) {
      EXPECT_EQ(RequestIds(b).size(), 1u) << "a merged batch of " << b.ctx.rows << " rows";
    }
  }
  // Order is kept: the requests ran in submission order.
  std::vector<int32_t> order;
  for (const auto& b : batches) {
    for (int32_t id : RequestIds(b)) order.push_back(id);
  }
  EXPECT_EQ(order, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  SchedulerStats stats = s.Stats();
  EXPECT_EQ(stats.memory_capped_batches, 4u);  // all but the last closed on the budget
  EXPECT_EQ(stats.memory_splits, 0u);
  EXPECT_EQ(stats.succeeded, sizes.size() + 1);
}

// The scenario of the bug: a [4, ...] request among [1, ...] ones on an
// instance with room for 3 rows. The small ones all succeed; the large one
// fails alone, with the executor's kResourceExhausted.
TEST(MemoryAwareBatchingTest, LargeRequestFailsAloneAndSmallOnesSucceed) {
  FakeExecutor executor(FailsPast(3));
  BatchScheduler s(Costed(8, 3), &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<SchedulerRequest> requests;
  for (int i = 1; i <= 12; ++i) requests.push_back(Rows(i, i == 4 ? 4 : 1));
  std::vector<Outcome> outs(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(s.Submit(requests[i], outs[i].Callback()).ok());
  }
  executor.Release();
  for (size_t i = 0; i < requests.size(); ++i) {
    if (i == 3) {
      auto r = outs[i].Get();
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
      EXPECT_EQ(r.status().message(), "model 'm' needs more than its memory limit for 4 rows");
    } else {
      ExpectDoubled(outs[i], requests[i]);
    }
  }
  ASSERT_TRUE(blocker.Get().ok());
  for (const auto& b : Batches(executor)) {
    if (b.ctx.rows > 3) {
      EXPECT_EQ(RequestIds(b), (std::set<int32_t>{4}));
    }
  }
  SchedulerStats stats = s.Stats();
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.succeeded, 12u);     // 11 small ones and the blocker
  EXPECT_EQ(stats.memory_splits, 0u);  // the cost model never merged past the budget
}

// With room for the large request alone, everyone succeeds.
TEST(MemoryAwareBatchingTest, LargeRequestThatFitsAloneSucceeds) {
  FakeExecutor executor(FailsPast(4));
  BatchScheduler s(Costed(8, 4), &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<SchedulerRequest> requests;
  for (int i = 1; i <= 8; ++i) requests.push_back(Rows(i, i == 3 ? 4 : 1));
  std::vector<Outcome> outs(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(s.Submit(requests[i], outs[i].Callback()).ok());
  }
  executor.Release();
  for (size_t i = 0; i < requests.size(); ++i) ExpectDoubled(outs[i], requests[i]);
  EXPECT_EQ(RowsOf(Batches(executor)), (std::vector<int64_t>{2, 4, 4, 1}));
  EXPECT_EQ(s.Stats().failed, 0u);
}

// Without a cost model the batcher merges [1, 1, 4, 1, 1] into 8 rows; the
// executor's kResourceExhausted makes the scheduler retry each request
// alone, in queue order. The statistics count the merged batch and the
// five retries as batches, and each request once.
TEST(MemoryAwareBatchingTest, MergedBatchIsSplitAfterResourceExhausted) {
  ManualClock clock;
  FakeExecutor::CtxFn fails = FailsPast(4);
  FakeExecutor executor([&clock, fails](const ExecuteContext& ctx, const std::string& task,
                                        const std::vector<InferTensor>& in,
                                        const nlohmann::json& p) {
    clock.Advance(std::chrono::milliseconds(ctx.rows));  // 1 ms per row
    return fails(ctx, task, in, p);
  });
  BatchScheduler s(Options(8), &executor, &clock);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  const std::vector<int64_t> sizes = {1, 1, 4, 1, 1};
  std::vector<SchedulerRequest> requests;
  std::vector<Outcome> outs(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    requests.push_back(Rows(static_cast<int>(i) + 1, sizes[i]));
    ASSERT_TRUE(s.Submit(requests.back(), outs[i].Callback()).ok());
  }
  executor.Release();
  for (size_t i = 0; i < sizes.size(); ++i) ExpectDoubled(outs[i], requests[i]);
  ASSERT_TRUE(blocker.Get().ok());

  auto batches = Batches(executor);
  ASSERT_EQ(batches.size(), 6u);
  EXPECT_EQ(RowsOf(batches), (std::vector<int64_t>{8, 1, 1, 4, 1, 1}));
  EXPECT_EQ(RequestIds(batches[0]), (std::set<int32_t>{1, 2, 3, 4, 5}));
  for (size_t i = 1; i < batches.size(); ++i) {
    EXPECT_EQ(RequestIds(batches[i]), (std::set<int32_t>{static_cast<int32_t>(i)}));
    EXPECT_EQ(Int32Values(batches[i].inputs.at(0)), Int32Values(requests[i - 1].inputs.at(0)));
  }

  SchedulerStats stats = s.Stats();
  EXPECT_EQ(stats.memory_splits, 1u);
  EXPECT_EQ(stats.executed_batches, 7u);   // blocker, merged, 5 alone
  EXPECT_EQ(stats.executed_requests, 6u);  // each request once
  EXPECT_EQ(stats.executed_inferences, 9u);
  EXPECT_EQ(stats.succeeded, 6u);
  EXPECT_EQ(stats.failed, 0u);
  EXPECT_EQ(stats.batch_size_histogram, (std::map<int64_t, uint64_t>{{1, 5}, {4, 1}, {8, 1}}));
  // Blocker 1 ms, merged 8 ms, alone 1 + 1 + 4 + 1 + 1 ms.
  EXPECT_EQ(stats.batch_compute_duration_us, 17'000u);
  // Per request: the blocker 1 ms; each member 8 ms (merged) + its own run.
  EXPECT_EQ(stats.compute_duration_us, 1'000u + 5 * 8'000u + 8'000u);
}

// After a split, a request that alone exceeds the instance fails alone; its
// former partners succeed.
TEST(MemoryAwareBatchingTest, SplitRequestThatStillDoesNotFitFailsAlone) {
  FakeExecutor executor(FailsPast(3));
  BatchScheduler s(Options(8), &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  const std::vector<int64_t> sizes = {1, 4, 1, 1};
  std::vector<SchedulerRequest> requests;
  std::vector<Outcome> outs(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    requests.push_back(Rows(static_cast<int>(i) + 1, sizes[i]));
    ASSERT_TRUE(s.Submit(requests.back(), outs[i].Callback()).ok());
  }
  executor.Release();
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i == 1) {
      auto r = outs[i].Get();
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
    } else {
      ExpectDoubled(outs[i], requests[i]);
    }
  }
  EXPECT_EQ(RowsOf(Batches(executor)), (std::vector<int64_t>{7, 1, 4, 1, 1}));
  SchedulerStats stats = s.Stats();
  EXPECT_EQ(stats.memory_splits, 1u);
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.succeeded, 4u);
  EXPECT_EQ(stats.executed_requests, stats.succeeded + stats.failed);
}

// A merged batch preempted by a higher-priority model (the grid's 507 with
// CollisionDetail::preempted_by) is not split: each member gets that error,
// and the executor ran once.
TEST(MemoryAwareBatchingTest, APreemptedMergedBatchIsNotSplit) {
  FakeExecutor executor([](const ExecuteContext& ctx, const std::string& task,
                           const std::vector<InferTensor>& in,
                           const nlohmann::json& p) -> Result<std::vector<InferTensor>> {
    if (task == "block") return DoubleModel(task, in, p);
    StatusDetail detail;
    detail.collision = CollisionDetail{};
    detail.collision->model = "m";
    detail.collision->resolver = "priority";
    detail.collision->preempted_by = "hi";
    return Status::ResourceExhausted(
               "model 'm': its batch was preempted by model 'hi' "
               "(priority 5)")
        .WithDetail(std::move(detail));
  });
  BatchScheduler s(Options(8), &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<Outcome> outs(3);
  for (size_t i = 0; i < outs.size(); ++i) {
    ASSERT_TRUE(s.Submit(Rows(static_cast<int>(i) + 1, 1), outs[i].Callback()).ok());
  }
  executor.Release();
  for (Outcome& o : outs) {
    auto r = o.Get();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
    ASSERT_NE(r.status().collision(), nullptr);
    EXPECT_EQ(r.status().collision()->preempted_by, "hi");
  }
  ASSERT_TRUE(blocker.Get().ok());
  EXPECT_EQ(RowsOf(Batches(executor)), (std::vector<int64_t>{3}));
  SchedulerStats stats = s.Stats();
  EXPECT_EQ(stats.memory_splits, 0u);
  EXPECT_EQ(stats.failed, 3u);
}

// A lone request's kResourceExhausted is final: there is nothing to split.
TEST(MemoryAwareBatchingTest, LoneRequestIsNotRetried) {
  FakeExecutor executor(FailsPast(1));
  BatchScheduler s(Options(8, /*delay_us=*/0), &executor);
  Outcome a;
  ASSERT_TRUE(s.Submit(Rows(1, 2), a.Callback()).ok());
  auto r = a.Get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(executor.Calls().size(), 1u);
  EXPECT_EQ(s.Stats().memory_splits, 0u);
}

// A request whose deadline passed while its merged batch ran is not retried
// alone: it fails with kUnavailable, the others are retried.
TEST(MemoryAwareBatchingTest, SplitSkipsRequestsPastTheirDeadline) {
  ManualClock clock;
  FakeExecutor::CtxFn fails = FailsPast(1);
  FakeExecutor executor([&clock, fails](const ExecuteContext& ctx, const std::string& task,
                                        const std::vector<InferTensor>& in,
                                        const nlohmann::json& p) {
    if (ctx.rows > 1) clock.Advance(2s);
    return fails(ctx, task, in, p);
  });
  BatchScheduler s(Options(8), &executor, &clock);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<SchedulerRequest> requests = {Rows(1, 1), Rows(2, 1), Rows(3, 1)};
  requests[1].deadline = clock.Now() + 1s;
  std::vector<Outcome> outs(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(s.Submit(requests[i], outs[i].Callback()).ok());
  }
  executor.Release();
  // Not due before the 1 ms delay: move the fake clock past it.
  clock.Advance(1ms);
  ExpectDoubled(outs[0], requests[0]);
  ExpectDoubled(outs[2], requests[2]);
  auto late = outs[1].Get();
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(late.status().message().find("reached its deadline"), std::string::npos)
      << late.status().message();
  auto batches = Batches(executor);
  ASSERT_EQ(batches.size(), 3u);  // merged, then requests 1 and 3 alone
  EXPECT_EQ(RequestIds(batches[1]), (std::set<int32_t>{1}));
  EXPECT_EQ(RequestIds(batches[2]), (std::set<int32_t>{3}));
  SchedulerStats stats = s.Stats();
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.timed_out, 0u);  // it was dispatched: not a queue timeout
  EXPECT_EQ(stats.executed_requests, 4u);
}

// The budget is read when a batch forms, so a budget that grows (bytes
// granted) lets later batches grow.
TEST(MemoryAwareBatchingTest, BudgetIsReadWhenEachBatchForms) {
  std::atomic<uint64_t> budget_rows{2};
  FakeExecutor executor([&budget_rows](const ExecuteContext&, const std::string& task,
                                       const std::vector<InferTensor>& in,
                                       const nlohmann::json& p) {
    if (task != "block") budget_rows = 8;
    return DoubleModel(task, in, p);
  });
  BatchSchedulerOptions o = Options(8);
  o.batch_bytes = [](int64_t rows) { return static_cast<uint64_t>(rows) * kBytesPerRow; };
  o.budget_bytes = [&budget_rows] { return budget_rows.load() * kBytesPerRow; };
  BatchScheduler s(o, &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<SchedulerRequest> requests;
  std::vector<Outcome> outs(6);
  for (int i = 0; i < 6; ++i) {
    requests.push_back(Rows(i + 1, 1));
    ASSERT_TRUE(s.Submit(requests.back(), outs[i].Callback()).ok());
  }
  executor.Release();
  for (int i = 0; i < 6; ++i) ExpectDoubled(outs[i], requests[i]);
  EXPECT_EQ(RowsOf(Batches(executor)), (std::vector<int64_t>{2, 4}));
}

// A cost model that throws closes the batch (the request runs alone) instead
// of taking the dispatcher down.
TEST(MemoryAwareBatchingTest, ThrowingCostModelRunsRequestsAlone) {
  FakeExecutor executor;
  BatchSchedulerOptions o = Options(8);
  o.batch_bytes = [](int64_t) -> uint64_t { throw std::runtime_error("estimator failed"); };
  o.budget_bytes = [] { return uint64_t{1} << 40; };
  BatchScheduler s(o, &executor);
  Outcome blocker;
  StartBlocker(s, executor, blocker);
  std::vector<SchedulerRequest> requests = {Rows(1, 1), Rows(2, 1), Rows(3, 1)};
  std::vector<Outcome> outs(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    ASSERT_TRUE(s.Submit(requests[i], outs[i].Callback()).ok());
  }
  executor.Release();
  for (size_t i = 0; i < requests.size(); ++i) ExpectDoubled(outs[i], requests[i]);
  EXPECT_EQ(RowsOf(Batches(executor)), (std::vector<int64_t>{1, 1, 1}));
}

}  // namespace
}  // namespace modelgrid

// One deadline per request, end to end: the client's timeout or else Submit()
// + default_timeout_us (0 = none) bounds the queue wait and reaches the
// executor in its ExecuteContext; TimeoutUntil() turns it into a worker's
// reply timeout. Timing is driven by a ManualClock that the fake executor
// moves, never by the wall clock.
#include <gtest/gtest.h>

#include "modelgrid/scheduler/batch_scheduler.h"
#include "scheduler/scheduler_test_util.h"

namespace modelgrid {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using testing::DoubleModel;
using testing::FakeExecutor;
using testing::Int32Tensor;
using testing::Int32Values;
using testing::ManualClock;
using testing::Options;
using testing::Outcome;
using testing::XRequest;

TEST(TimeoutUntilTest, NoDeadlineIsTheLongBound) {
  const SchedulerTime now = SchedulerTime() + 1h;
  EXPECT_EQ(TimeoutUntil(std::nullopt, now), milliseconds(24 * 3600 * 1000));
  EXPECT_EQ(TimeoutUntil(SchedulerTime::max(), now), milliseconds(kNoDeadlineTimeout));
}

TEST(TimeoutUntilTest, RoundsUpToWholeMillisecondsAndNeverGivesZero) {
  const SchedulerTime now = SchedulerTime() + 1h;
  EXPECT_EQ(TimeoutUntil(now + std::chrono::nanoseconds(1), now), 1ms);
  EXPECT_EQ(TimeoutUntil(now + 1us, now), 1ms);
  EXPECT_EQ(TimeoutUntil(now + 500us, now), 1ms);
  EXPECT_EQ(TimeoutUntil(now + 999us, now), 1ms);
  EXPECT_EQ(TimeoutUntil(now + 1000us, now), 1ms);
  EXPECT_EQ(TimeoutUntil(now + 1001us, now), 2ms);
  EXPECT_EQ(TimeoutUntil(now + 20'000us, now), 20ms);
  EXPECT_EQ(TimeoutUntil(now + 10s, now), 10'000ms);
  EXPECT_EQ(TimeoutUntil(now + 10s + 1us, now), 10'001ms);
  // Past or present deadlines: the shortest real wait, not 0.
  EXPECT_EQ(TimeoutUntil(now, now), 1ms);
  EXPECT_EQ(TimeoutUntil(now - 5s, now), 1ms);
}

TEST(TimeoutUntilTest, FarDeadlinesAreCappedAtTheLongBound) {
  const SchedulerTime now = SchedulerTime() + 1h;
  EXPECT_EQ(TimeoutUntil(now + 23h, now), milliseconds(23h));
  EXPECT_EQ(TimeoutUntil(now + 48h, now), milliseconds(kNoDeadlineTimeout));
  EXPECT_EQ(TimeoutUntil(now + std::chrono::hours(24 * 365 * 100), now),
            milliseconds(kNoDeadlineTimeout));
}

TEST(TimeoutUntilTest, EveryRemainingTimeIsCoveredByLessThanOneExtraMillisecond) {
  const SchedulerTime now = SchedulerTime() + 1h;
  for (int64_t us = 1; us < 5'000'000; us = us * 3 + 7) {
    const auto left = std::chrono::microseconds(us);
    const milliseconds got = TimeoutUntil(now + left, now);
    EXPECT_GE(got, left) << us << " us";
    EXPECT_LT(got - left, 1ms) << us << " us";
  }
}

// A model whose default_timeout_us is 0 has no deadline: the executor is told
// so, and a batch that takes longer than any fixed bound still succeeds; a
// request queued meanwhile does not expire either.
TEST(SchedulerDeadlineTest, ZeroDefaultTimeoutMeansNoDeadlineEndToEnd) {
  ManualClock clock;
  FakeExecutor executor([&clock](const ExecuteContext&, const std::string& task,
                                 const std::vector<InferTensor>& in, const nlohmann::json& p) {
    clock.Advance(48h);  // longer than kNoDeadlineTimeout, and than any default
    return DoubleModel(task, in, p);
  });
  BatchSchedulerOptions o = Options(1);
  o.batching.default_timeout_us = 0;
  BatchScheduler s(o, &executor, &clock);
  executor.Hold();
  Outcome a, b;
  ASSERT_TRUE(s.Submit(XRequest("a", {1}), a.Callback()).ok());
  ASSERT_TRUE(executor.WaitCalls(1));
  ASSERT_TRUE(s.Submit(XRequest("b", {2}), b.Callback()).ok());  // queued behind "a"
  executor.Release();
  auto ra = a.Get();
  auto rb = b.Get();
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(Int32Values(rb->at(0)), (std::vector<int32_t>{4}));

  auto calls = executor.Calls();
  ASSERT_EQ(calls.size(), 2u);
  for (const auto& c : calls) {
    EXPECT_FALSE(c.ctx.deadline.has_value());
    EXPECT_EQ(c.ctx.rows, 1);
    EXPECT_EQ(TimeoutUntil(c.ctx.deadline, clock.Now()), milliseconds(kNoDeadlineTimeout));
  }
  SchedulerStats stats = s.Stats();
  EXPECT_EQ(stats.timed_out, 0u);
  EXPECT_EQ(stats.succeeded, 2u);
  EXPECT_EQ(stats.batch_compute_duration_us, uint64_t{2} * 48 * 3600 * 1'000'000);
}

// The client's timeout is the deadline, whatever the model's default; the
// default applies only to requests without one. Neither is an execution
// limit: a dispatched batch runs until the executor returns.
TEST(SchedulerDeadlineTest, ClientTimeoutOverridesTheDefault) {
  ManualClock clock;
  std::vector<SchedulerTime> started;
  FakeExecutor executor([&](const ExecuteContext&, const std::string& task,
                            const std::vector<InferTensor>& in, const nlohmann::json& p) {
    started.push_back(clock.Now());
    clock.Advance(1s);  // far past the 20 ms default
    return DoubleModel(task, in, p);
  });
  BatchSchedulerOptions o = Options(1);
  o.batching.default_timeout_us = 20'000;
  BatchScheduler s(o, &executor, &clock);

  Outcome a;
  SchedulerRequest r = XRequest("a", {1});
  const SchedulerTime submit_a = clock.Now();
  r.deadline = submit_a + 10s;
  ASSERT_TRUE(s.Submit(std::move(r), a.Callback()).ok());
  auto ra = a.Get();
  ASSERT_TRUE(ra.ok()) << ra.status().ToString();

  Outcome b;
  const SchedulerTime submit_b = clock.Now();
  ASSERT_TRUE(s.Submit(XRequest("b", {2}), b.Callback()).ok());
  auto rb = b.Get();
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();  // ran 1 s past its 20 ms deadline

  auto calls = executor.Calls();
  ASSERT_EQ(calls.size(), 2u);
  ASSERT_EQ(started.size(), 2u);
  ASSERT_TRUE(calls[0].ctx.deadline.has_value());
  EXPECT_EQ(*calls[0].ctx.deadline, submit_a + 10s);
  EXPECT_EQ(TimeoutUntil(calls[0].ctx.deadline, started[0]), 10'000ms);
  ASSERT_TRUE(calls[1].ctx.deadline.has_value());
  EXPECT_EQ(*calls[1].ctx.deadline, submit_b + 20ms);
  EXPECT_EQ(TimeoutUntil(calls[1].ctx.deadline, started[1]), 20ms);
  EXPECT_EQ(s.Stats().timed_out, 0u);
}

// A sub-millisecond default is a real (short) deadline, and its wait bound
// is rounded up to 1 ms instead of down to 0.
TEST(SchedulerDeadlineTest, SubMillisecondDefaultNeverBecomesAZeroTimeout) {
  ManualClock clock;
  std::vector<SchedulerTime> started;
  FakeExecutor executor([&](const ExecuteContext&, const std::string& task,
                            const std::vector<InferTensor>& in, const nlohmann::json& p) {
    started.push_back(clock.Now());
    return DoubleModel(task, in, p);
  });
  BatchSchedulerOptions o = Options(1);
  o.batching.default_timeout_us = 500;
  BatchScheduler s(o, &executor, &clock);
  Outcome a;
  const SchedulerTime submit = clock.Now();
  ASSERT_TRUE(s.Submit(XRequest("a", {1}), a.Callback()).ok());
  ASSERT_TRUE(a.Get().ok());
  auto calls = executor.Calls();
  ASSERT_EQ(calls.size(), 1u);
  ASSERT_TRUE(calls[0].ctx.deadline.has_value());
  EXPECT_EQ(*calls[0].ctx.deadline, submit + 500us);
  EXPECT_EQ(TimeoutUntil(calls[0].ctx.deadline, started.at(0)), 1ms);
}

// A default too large for the clock's range is no deadline, not an overflow
// into the past.
TEST(SchedulerDeadlineTest, HugeDefaultTimeoutIsNoDeadline) {
  ManualClock clock;
  FakeExecutor executor;
  BatchSchedulerOptions o = Options(1);
  o.batching.default_timeout_us = uint64_t{1} << 62;
  BatchScheduler s(o, &executor, &clock);
  Outcome a;
  ASSERT_TRUE(s.Submit(XRequest("a", {1}), a.Callback()).ok());
  auto r = a.Get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto calls = executor.Calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_FALSE(calls[0].ctx.deadline.has_value());
}

// A merged batch carries the latest deadline of its requests, or none when
// one of them has none.
TEST(SchedulerDeadlineTest, BatchDeadlineIsTheLatestOfItsRequests) {
  ManualClock clock;
  FakeExecutor executor;
  BatchSchedulerOptions o = Options(3);
  o.batching.preferred_batch_sizes = {2};
  o.batching.default_timeout_us = 0;
  BatchScheduler s(o, &executor, &clock);
  executor.Hold();
  Outcome blocker;
  SchedulerRequest scalar;  // cannot batch: runs at once and holds the dispatcher
  scalar.id = "blocker";
  scalar.task = "block";
  scalar.inputs.push_back(Int32Tensor("x", {}, {100}));
  ASSERT_TRUE(s.Submit(std::move(scalar), blocker.Callback()).ok());
  ASSERT_TRUE(executor.WaitCalls(1));

  const SchedulerTime t0 = clock.Now();
  const std::vector<std::optional<SchedulerTime>> deadlines = {t0 + 5s, t0 + 9s, t0 + 7s, t0 + 30s,
                                                               std::nullopt};
  std::vector<Outcome> outs(deadlines.size());
  for (size_t i = 0; i < deadlines.size(); ++i) {
    SchedulerRequest r = XRequest("d" + std::to_string(i), {static_cast<int32_t>(i)});
    r.deadline = deadlines[i];
    ASSERT_TRUE(s.Submit(std::move(r), outs[i].Callback()).ok());
  }
  executor.Release();
  for (Outcome& out : outs) EXPECT_TRUE(out.Get().ok());
  ASSERT_TRUE(blocker.Get().ok());
  auto calls = executor.Calls();
  ASSERT_EQ(calls.size(), 3u);
  EXPECT_FALSE(calls[0].ctx.deadline.has_value());  // the blocker: default 0
  EXPECT_EQ(calls[1].ctx.rows, 3);
  ASSERT_TRUE(calls[1].ctx.deadline.has_value());
  EXPECT_EQ(*calls[1].ctx.deadline, t0 + 9s);
  EXPECT_EQ(calls[2].ctx.rows, 2);
  EXPECT_FALSE(calls[2].ctx.deadline.has_value());
}

}  // namespace
}  // namespace modelgrid

// The worker pool's watchdog (worker_pool.h) with made-up processes and a
// made-up clock: restart delays, restart failures, retirement and stop,
// without starting a single process.

#include "grid/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace modelgrid::grid_internal {
namespace {

using std::chrono::milliseconds;

class FakeProcess final : public WorkerProcess {
 public:
  explicit FakeProcess(int pid) : pid_(pid) {}
  int pid() const override { return pid_; }
  void Shutdown() override { stopped = true; }
  std::shared_ptr<WorkerClient> client() const override { return nullptr; }
  std::atomic<bool> stopped{false};

 private:
  int pid_;
};

// Launches made-up processes, or fails the next `fail_next` launches; the
// clock moves only when a test says so.
class FakeEnv final : public WorkerEnv {
 public:
  Result<std::shared_ptr<WorkerProcess>> Launch(
      WorkerOptions options, std::function<void(const WorkerExit&)> on_exit) override {
    std::lock_guard<std::mutex> lock(mu);
    launches.push_back({options.name, options.threads, now});
    if (fail_next > 0) {
      --fail_next;
      return Status::NotFound("modelgrid-worker not found: '/gone'");
    }
    auto p = std::make_shared<FakeProcess>(next_pid++);
    processes.push_back(p);
    exits.push_back(std::move(on_exit));
    return std::shared_ptr<WorkerProcess>(p);
  }
  PoolClock::time_point Now() const override {
    std::lock_guard<std::mutex> lock(mu);
    return now;
  }
  void Advance(milliseconds d) {
    std::lock_guard<std::mutex> lock(mu);
    now += d;
  }
  // The latest process dies (unrequested unless said).
  void Crash(bool requested = false) {
    std::function<void(const WorkerExit&)> f;
    int pid = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      f = exits.back();
      pid = processes.back()->pid();
    }
    WorkerExit e;
    e.pid = pid;
    e.signal = 9;
    e.requested = requested;
    f(e);
  }
  size_t LaunchCount() const {
    std::lock_guard<std::mutex> lock(mu);
    return launches.size();
  }

  struct LaunchRecord {
    std::string name;
    int threads;
    PoolClock::time_point at;
  };
  mutable std::mutex mu;
  PoolClock::time_point now = PoolClock::time_point{} + std::chrono::hours(1);
  int fail_next = 0;
  int next_pid = 100;
  std::vector<LaunchRecord> launches;
  std::vector<std::shared_ptr<FakeProcess>> processes;
  std::vector<std::function<void(const WorkerExit&)>> exits;
};

// Records what the pool told the grid; answers restarts with options
// (threads = how many restarts were due so far) or with nothing.
class FakeListener final : public WorkerPoolListener {
 public:
  void OnWorkerDied(const std::shared_ptr<WorkerSlot>& slot, const std::string& why) override {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back("died " + slot->key + ": " + why);
  }
  std::optional<WorkerOptions> OnRestartDue(const std::shared_ptr<WorkerSlot>& slot) override {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back("due " + slot->key);
    if (!hosts_something) return std::nullopt;
    WorkerOptions o;
    o.name = slot->key;
    o.threads = ++due;
    return o;
  }
  void OnRestartFailed(const std::shared_ptr<WorkerSlot>& slot, const Status& error,
                       milliseconds delay) override {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back("failed " + slot->key + " retry " + std::to_string(delay.count()) + ": " +
                     error.message());
  }
  void OnRestarted(const std::shared_ptr<WorkerSlot>& slot) override {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back("restarted " + slot->key + " pid " +
                     std::to_string(slot->process ? slot->process->pid() : -1));
  }
  std::vector<std::string> Events() {
    std::lock_guard<std::mutex> lock(mu);
    return events;
  }

  std::mutex mu;
  bool hosts_something = true;
  int due = 0;
  std::vector<std::string> events;
};

constexpr RestartPolicy kPolicy{milliseconds{100}, milliseconds{1'000}, milliseconds{60'000}};

struct PoolFixture : ::testing::Test {
  FakeEnv env;
  FakeListener listener;
  WorkerPool pool{&env, kPolicy, &listener};

  std::shared_ptr<WorkerSlot> Started(const std::string& key) {
    auto slot = pool.NewSlot(key, "cpu", "cpu");
    pool.Add(slot);
    WorkerOptions o;
    o.name = key;
    EXPECT_TRUE(pool.Start(slot, o).ok());
    return slot;
  }
};

TEST_F(PoolFixture, CrashRestartsAfterTheInitialDelayNotBefore) {
  auto slot = Started("resnet18#0");
  ASSERT_EQ(env.LaunchCount(), 1u);
  env.Advance(milliseconds{5});
  env.Crash();
  ASSERT_EQ(listener.Events().size(), 1u);
  EXPECT_EQ(listener.Events()[0],
            "died resnet18#0: worker 'resnet18#0' (pid 100) killed by signal 9 (Killed); "
            "restarting in 100 ms");
  ASSERT_TRUE(pool.NextDue().has_value());
  EXPECT_EQ(*pool.NextDue() - env.Now(), milliseconds{100});
  env.Advance(milliseconds{99});
  EXPECT_EQ(pool.RunDue(), 0u);
  EXPECT_EQ(env.LaunchCount(), 1u);
  env.Advance(milliseconds{1});
  EXPECT_EQ(pool.RunDue(), 1u);
  ASSERT_EQ(env.LaunchCount(), 2u);
  EXPECT_EQ(env.launches[1].threads, 1);  // the options OnRestartDue gave
  auto events = listener.Events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1], "due resnet18#0");
  EXPECT_EQ(events[2], "restarted resnet18#0 pid 101");
  EXPECT_FALSE(pool.NextDue().has_value());
  EXPECT_EQ(pool.Find("resnet18#0"), slot);
}

TEST_F(PoolFixture, RequestedExitIsNotRestarted) {
  Started("cpu");
  env.Crash(/*requested=*/true);
  EXPECT_TRUE(listener.Events().empty());
  EXPECT_FALSE(pool.NextDue().has_value());
}

TEST_F(PoolFixture, CrashLoopDoublesTheDelayUpToTheMaxAndAStableRunResetsIt) {
  Started("m#0");
  std::vector<int64_t> delays;
  for (int i = 0; i < 6; ++i) {
    env.Advance(milliseconds{10});  // dies soon after each start
    env.Crash();
    auto next = pool.NextDue();
    ASSERT_TRUE(next.has_value());
    delays.push_back(std::chrono::duration_cast<milliseconds>(*next - env.Now()).count());
    env.Advance(delays.back() * milliseconds{1});
    ASSERT_EQ(pool.RunDue(), 1u);
  }
  EXPECT_EQ(delays, (std::vector<int64_t>{100, 200, 400, 800, 1000, 1000}));
  env.Advance(milliseconds{60'000});  // up a minute: stable
  env.Crash();
  EXPECT_EQ(*pool.NextDue() - env.Now(), milliseconds{100});
}

TEST_F(PoolFixture, FailedRestartIsRetriedWithGrowingDelaysThenRecovers) {
  Started("m#0");
  env.Crash();  // restart queued in 100 ms
  env.fail_next = 2;
  env.Advance(milliseconds{100});
  EXPECT_EQ(pool.RunDue(), 1u);  // fails: retry in 200 ms
  env.Advance(milliseconds{199});
  EXPECT_EQ(pool.RunDue(), 0u);
  env.Advance(milliseconds{1});
  EXPECT_EQ(pool.RunDue(), 1u);  // fails again: retry in 400 ms
  env.Advance(milliseconds{400});
  EXPECT_EQ(pool.RunDue(), 1u);  // starts
  auto events = listener.Events();
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[2], "failed m#0 retry 200: modelgrid-worker not found: '/gone'");
  EXPECT_EQ(events[4], "failed m#0 retry 400: modelgrid-worker not found: '/gone'");
  EXPECT_EQ(events[6], "restarted m#0 pid 101");
  ASSERT_EQ(env.launches.size(), 4u);
  // Launch times: start, +100 (failed), +300 (failed), +700 (ok).
  EXPECT_EQ(env.launches[1].at - env.launches[0].at, milliseconds{100});
  EXPECT_EQ(env.launches[2].at - env.launches[0].at, milliseconds{300});
  EXPECT_EQ(env.launches[3].at - env.launches[0].at, milliseconds{700});
  // A slot without a process while restarting has one again.
  ASSERT_NE(pool.Find("m#0"), nullptr);
  EXPECT_NE(pool.Find("m#0")->process, nullptr);
}

TEST_F(PoolFixture, NothingLeftToRunRetiresTheSlotWithoutALaunch) {
  Started("m#0");
  env.Crash();
  listener.hosts_something = false;
  env.Advance(milliseconds{100});
  EXPECT_EQ(pool.RunDue(), 1u);
  EXPECT_EQ(env.LaunchCount(), 1u);
  EXPECT_EQ(pool.Find("m#0"), nullptr);
  EXPECT_EQ(pool.LiveCount(), 0u);
}

TEST_F(PoolFixture, RetiredSlotDropsItsQueuedRestartAndIgnoresLaterExits) {
  auto slot = Started("m#0");
  auto other = Started("n#0");
  env.Crash();  // n#0 (the latest) dies
  ASSERT_TRUE(pool.NextDue().has_value());
  auto process = pool.Retire(other);
  ASSERT_NE(process, nullptr);
  EXPECT_FALSE(pool.NextDue().has_value());
  EXPECT_EQ(pool.LiveCount(), 1u);
  EXPECT_EQ(pool.Find("n#0"), nullptr);
  EXPECT_EQ(pool.Find("m#0"), slot);
  env.Advance(milliseconds{1'000});
  EXPECT_EQ(pool.RunDue(), 0u);
  EXPECT_EQ(env.LaunchCount(), 2u);
}

TEST_F(PoolFixture, StopDropsRestartsAndRetiresEverySlot) {
  Started("a#0");
  Started("b#0");
  EXPECT_EQ(pool.LiveCount("cpu"), 2u);
  EXPECT_EQ(pool.LiveCount("cuda:0"), 0u);
  env.Crash();
  auto slots = pool.Stop();
  EXPECT_EQ(slots.size(), 2u);
  for (const auto& s : slots) EXPECT_TRUE(s->retired);
  EXPECT_FALSE(pool.NextDue().has_value());
  EXPECT_EQ(pool.LiveCount(), 0u);
  env.Crash();  // after Stop: ignored
  EXPECT_EQ(listener.Events().size(), 1u);
  env.Advance(milliseconds{5'000});
  EXPECT_EQ(pool.RunDue(), 0u);
}

TEST_F(PoolFixture, StartFailureLeavesTheSlotWithoutAProcess) {
  auto slot = pool.NewSlot("m#0", "cpu", "cpu");
  pool.Add(slot);
  env.fail_next = 1;
  Status s = pool.Start(slot, WorkerOptions{});
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(slot->process, nullptr);
  EXPECT_FALSE(pool.NextDue().has_value());  // a first start is not retried
}

// The watchdog thread runs a restart on its own once the delay passed on a
// clock that moves by itself.
class RealClockEnv final : public WorkerEnv {
 public:
  Result<std::shared_ptr<WorkerProcess>> Launch(
      WorkerOptions, std::function<void(const WorkerExit&)> on_exit) override {
    std::lock_guard<std::mutex> lock(mu);
    exits.push_back(std::move(on_exit));
    return std::shared_ptr<WorkerProcess>(std::make_shared<FakeProcess>(200 + launches++));
  }
  PoolClock::time_point Now() const override { return PoolClock::now(); }
  std::mutex mu;
  int launches = 0;
  std::vector<std::function<void(const WorkerExit&)>> exits;
};

TEST(WorkerPoolWatchdog, RestartsOnItsOwnThread) {
  RealClockEnv env;
  FakeListener listener;
  WorkerPool pool(&env, RestartPolicy{milliseconds{20}, milliseconds{40}, milliseconds{60'000}},
                  &listener);
  pool.StartWatchdog();
  auto slot = pool.NewSlot("m#0", "cpu", "cpu");
  pool.Add(slot);
  ASSERT_TRUE(pool.Start(slot, WorkerOptions{}).ok());
  std::function<void(const WorkerExit&)> exit;
  {
    std::lock_guard<std::mutex> lock(env.mu);
    exit = env.exits.back();
  }
  const auto crashed = PoolClock::now();
  WorkerExit e;
  e.pid = 200;
  e.exit_code = 3;
  exit(e);
  bool restarted = false;
  for (int i = 0; i < 500 && !restarted; ++i) {  // at most 5 s
    std::this_thread::sleep_for(milliseconds{10});
    for (const auto& ev : listener.Events()) restarted |= ev == "restarted m#0 pid 201";
  }
  EXPECT_TRUE(restarted);
  EXPECT_GE(PoolClock::now() - crashed, milliseconds{20});
  pool.Stop();
}

}  // namespace
}  // namespace modelgrid::grid_internal

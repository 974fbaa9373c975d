// A worker that dies never hangs the frontend: kill -9 with requests in
// flight fails every one of them at once, naming the signal; a frontend that
// dies takes its workers with it (PR_SET_PDEATHSIG).
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "modelgrid/worker/worker_client.h"
#include "worker/worker_test_util.h"

extern char** environ;

namespace modelgrid {
namespace {

using namespace modelgrid::testing;  // NOLINT(google-build-using-namespace)
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Waits until `pred` holds, at most `limit`.
template <typename Pred>
bool WaitFor(Pred pred, milliseconds limit) {
  const auto until = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(milliseconds{2});
  }
  return true;
}

TEST(WorkerDeathTest, KillNineFailsEveryCallInFlightWithinASecond) {
  REQUIRE_ZOO();
  ExitRecord exits;
  START_WORKER(worker, Options("doomed"), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "gpt2"), kGenerous).ok());
  const nlohmann::json params = {{"max_new_tokens", 110}};  // 8 + 110 <= 128 positions
  const std::vector<InferTensor> prompt = {TokenIds(8, 8, 3)};

  // Enough requests to keep the model busy for about 3 s after the kill.
  const auto t0 = Clock::now();
  ASSERT_TRUE(worker->Infer("gpt2", "generate", prompt, params, kGenerous).ok());
  const double one_ms =
      std::max(1.0, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  const int n = std::clamp(static_cast<int>(3000.0 / one_ms) + 4, 6, 48);

  struct Outcome {
    Status status;
    Clock::time_point at;
  };
  std::vector<Outcome> outcomes(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  std::atomic<int> started{0};
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      ++started;
      auto r = worker->Infer("gpt2", "generate", prompt, params, kGenerous);
      outcomes[static_cast<size_t>(i)] = {r.status(), Clock::now()};
    });
  }
  ASSERT_TRUE(WaitFor([&] { return started.load() == n; }, kGenerous));
  std::this_thread::sleep_for(milliseconds{200});  // all sent, the first ones computing
  const pid_t pid = worker->pid();
  const auto killed_at = Clock::now();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  for (auto& t : threads) t.join();

  int failed = 0;
  for (const Outcome& o : outcomes) {
    if (o.status.ok()) continue;  // answered before the kill
    ++failed;
    EXPECT_EQ(o.status.code(), StatusCode::kUnavailable) << o.status.ToString();
    EXPECT_TRUE(Contains(o.status, "worker 'doomed' (pid " + std::to_string(pid) +
                                       ") exited: killed by signal 9 (Killed)"))
        << o.status.ToString();
    EXPECT_LT(o.at - killed_at, milliseconds{1000}) << o.status.ToString();
  }
  EXPECT_GE(failed, n / 2) << "most requests should still have been queued at the kill";

  ASSERT_TRUE(WaitFor([&] { return exits.Calls() >= 1; }, milliseconds{1000}));
  const WorkerExit e = exits.Last();
  EXPECT_EQ(e.pid, pid);
  EXPECT_EQ(e.signal, SIGKILL);
  EXPECT_EQ(e.exit_code, -1);
  EXPECT_FALSE(e.requested);
  EXPECT_EQ(e.Describe(), "killed by signal 9 (Killed)");
  EXPECT_FALSE(worker->alive());

  // Later calls fail at once with the same story; the child was reaped.
  const auto before = Clock::now();
  auto late = worker->Infer("gpt2", "generate", prompt, params, kGenerous);
  EXPECT_EQ(late.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(late.status(), "killed by signal 9")) << late.status().ToString();
  EXPECT_LT(Clock::now() - before, milliseconds{200});
  EXPECT_EQ(worker->Stats(kGenerous).status().code(), StatusCode::kUnavailable);
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), -1);
  worker.reset();
  EXPECT_EQ(exits.Calls(), 1);
}

TEST(WorkerDeathTest, IdleWorkerKilledRunsOnExitOnceAndShutdownAfterIsHarmless) {
  ExitRecord exits;
  START_WORKER(worker, Options("idle"), exits);
  const pid_t pid = worker->pid();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return exits.Calls() == 1; }, milliseconds{1000}));
  EXPECT_FALSE(worker->alive());
  worker->Shutdown();
  worker.reset();
  EXPECT_EQ(exits.Calls(), 1);
  EXPECT_EQ(exits.Last().signal, SIGKILL);
  EXPECT_FALSE(exits.Last().requested);
}

TEST(WorkerDeathTest, SigintIsIgnoredSigtermEndsTheWorker) {
  ExitRecord exits;
  START_WORKER(worker, Options("signals"), exits);
  ASSERT_EQ(::kill(worker->pid(), SIGINT), 0);
  auto stats = worker->Stats(kGenerous);  // still answering
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  ASSERT_EQ(::kill(worker->pid(), SIGTERM), 0);
  ASSERT_TRUE(WaitFor([&] { return exits.Calls() == 1; }, milliseconds{2000}));
  EXPECT_EQ(exits.Last().signal, SIGTERM);
}

// Run only as the child of the next test (environment variable set): a
// frontend that starts a worker, writes its pid, and waits to be killed.
TEST(WorkerDeathTest, DISABLED_FrontendThatStartsAWorker) {
  REQUIRE_ZOO();
  const char* pid_file = std::getenv("MODELGRID_TEST_WORKER_PID_FILE");
  ASSERT_NE(pid_file, nullptr);
  ExitRecord exits;
  // Started from a short-lived thread: the worker must survive the thread's
  // end (the parent-death signal follows the forking thread).
  std::unique_ptr<WorkerClient> worker;
  std::thread([&] {
    auto started = WorkerClient::Start(Options("orphan"), exits.Callback());
    if (started.ok()) worker = std::move(started).value();
  }).join();
  ASSERT_TRUE(worker);
  std::this_thread::sleep_for(milliseconds{300});
  ASSERT_TRUE(worker->alive());
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "gpt2"), kGenerous).ok());
  // Keep the model computing, so that a worker merely noticing the closed
  // socket would take its drain time (1 s) to exit: the kernel's SIGKILL
  // comes first.
  std::thread([&] {
    for (;;) {
      (void)worker->Infer("gpt2", "generate", {TokenIds(8, 8, 1)}, {{"max_new_tokens", 110}},
                          kGenerous);
    }
  }).detach();
  std::this_thread::sleep_for(milliseconds{100});
  {
    std::ofstream out(std::string(pid_file) + ".tmp");
    out << worker->pid() << "\n";
  }
  std::filesystem::rename(std::string(pid_file) + ".tmp", pid_file);
  std::this_thread::sleep_for(std::chrono::seconds{60});
}

TEST(WorkerDeathTest, AWorkerDiesWithItsFrontend) {
  REQUIRE_ZOO();
  // Orphans are re-parented to this process, so their end can be observed.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  const std::string pid_file = ::testing::TempDir() + "/worker_pid_" + std::to_string(::getpid());
  std::filesystem::remove(pid_file);
  std::vector<std::string> env_strings = {"MODELGRID_TEST_WORKER_PID_FILE=" + pid_file};
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string filter = "--gtest_filter=WorkerDeathTest.DISABLED_FrontendThatStartsAWorker";
  std::string disabled = "--gtest_also_run_disabled_tests";
  char* argv[] = {self.data(), filter.data(), disabled.data(), nullptr};
  pid_t frontend = 0;
  ASSERT_EQ(::posix_spawn(&frontend, self.c_str(), nullptr, nullptr, argv, envp.data()), 0);

  pid_t worker = 0;
  const bool wrote = WaitFor(
      [&] {
        std::ifstream in(pid_file);
        return static_cast<bool>(in >> worker) && worker > 0;
      },
      kGenerous);
  if (!wrote) {
    ::kill(frontend, SIGKILL);
    ::waitpid(frontend, nullptr, 0);
    FAIL() << "the frontend child never reported its worker";
  }
  ASSERT_EQ(::kill(frontend, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(frontend, &status, 0), frontend);
  // The worker got SIGKILL from the kernel (not a clean exit after noticing
  // the closed socket).
  pid_t reaped = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        reaped = ::waitpid(worker, &status, WNOHANG);
        return reaped != 0;
      },
      milliseconds{5000}));
  ASSERT_EQ(reaped, worker);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
  std::filesystem::remove(pid_file);
}

}  // namespace
}  // namespace modelgrid

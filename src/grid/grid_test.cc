// modelgrid::Grid on the small zoo (MODELGRID_TEST_ZOO): in-process and
// worker isolation, dynamic batching end to end, explicit load/unload, the
// memory limit in a worker, and the watchdog after kill -9.
#include "testing/zoo.h"
#include "modelgrid/grid.h"
#include "grid/worker_pool.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

namespace modelgrid {
namespace {

using namespace std::chrono_literals;

GridOptions Options(Isolation isolation, std::vector<std::string> devices = {"cpu=8GiB"}) {
  GridOptions o;
  o.isolation = isolation;
  o.devices = std::move(devices);
  o.worker_executable = MODELGRID_BINARY_DIR "/bin/modelgrid-worker";
  o.worker_threads = 1;
  o.initial_backoff = 50ms;
  return o;
}

std::unique_ptr<Grid> MakeGrid(const GridOptions& o) {
  auto grid = Grid::Create(o);
  EXPECT_TRUE(grid.ok()) << grid.status().ToString();
  return grid.ok() ? std::move(grid).value() : nullptr;
}

InferTensor FloatRows(const std::string& name, const std::vector<std::vector<float>>& rows) {
  InferTensor t;
  t.name = name;
  t.datatype = DataType::kFP32;
  t.shape = {static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())};
  for (const auto& r : rows) {
    t.data.append(reinterpret_cast<const char*>(r.data()), r.size() * sizeof(float));
  }
  return t;
}

int64_t Argmax(const InferTensor& logits, int64_t row) {
  const int64_t classes = logits.shape[1];
  const float* p = reinterpret_cast<const float*>(logits.data.data()) + row * classes;
  return std::max_element(p, p + classes) - p;
}

struct DigitsSet {
  std::vector<std::vector<float>> rows;
  std::vector<int64_t> labels;
  int64_t correct = 0;
};

DigitsSet LoadDigits(const std::filesystem::path& zoo) {
  std::ifstream in(zoo / "digits" / "test_set.json");
  nlohmann::json j = nlohmann::json::parse(in);
  DigitsSet s;
  for (const auto& r : j["inputs"]) s.rows.push_back(r.get<std::vector<float>>());
  s.labels = j["labels"].get<std::vector<int64_t>>();
  s.correct = j["correct"].get<int64_t>();
  return s;
}

std::string DigitsInputName(const Grid& grid) {
  auto st = grid.Model("digits");
  return st.ok() && !st->inputs.empty() ? st->inputs[0].name : "input";
}

// Sends every test row as its own request, 120 at once (below the queue's
// 256, so the scheduler batches them without refusing any), and counts the
// right answers.
int64_t ClassifyOneRowPerRequest(Grid& grid, const DigitsSet& set) {
  const std::string input = DigitsInputName(grid);
  std::vector<std::future<Result<std::vector<InferTensor>>>> futures;
  for (size_t i = 0; i < set.rows.size(); ++i) {
    const auto& row = set.rows[i];
    if (i % 120 == 0 && i > 0) futures[i - 1].wait();
    auto p = std::make_shared<std::promise<Result<std::vector<InferTensor>>>>();
    futures.push_back(p->get_future());
    InferCall call;
    call.inputs = {FloatRows(input, {row})};
    grid.InferAsync("digits", std::move(call),
                    [p](Result<std::vector<InferTensor>> r) { p->set_value(std::move(r)); });
  }
  int64_t correct = 0;
  for (size_t i = 0; i < futures.size(); ++i) {
    auto r = futures[i].get();
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) continue;
    EXPECT_EQ((*r)[0].shape, (std::vector<int64_t>{1, 10}));
    if (Argmax((*r)[0], 0) == set.labels[i]) ++correct;
  }
  return correct;
}

ModelStatus WaitForState(const Grid& grid, const std::string& model, ModelState state,
                         std::chrono::milliseconds within) {
  auto until = std::chrono::steady_clock::now() + within;
  ModelStatus st;
  do {
    auto r = grid.Model(model);
    if (r.ok()) st = *r;
    if (st.state == state) return st;
    std::this_thread::sleep_for(10ms);
  } while (std::chrono::steady_clock::now() < until);
  return st;
}

TEST(GridTest, InProcessClassifiesDigitsWithTheRecordedAccuracyThroughDynamicBatching) {
  REQUIRE_ZOO();
  auto grid = MakeGrid(Options(Isolation::kNone));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"", zoo / "digits", {}, {}}).ok());
  auto plan = grid->LoadAll();
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto st = grid->Model("digits");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->state, ModelState::kReady) << st->reason;
  EXPECT_EQ(st->device, "cpu");
  EXPECT_GT(st->current_bytes, 0u);
  EXPECT_EQ(st->worker_pid, 0);

  DigitsSet set = LoadDigits(zoo);
  EXPECT_EQ(ClassifyOneRowPerRequest(*grid, set), set.correct);
  auto counters = grid->Counters("digits");
  ASSERT_TRUE(counters.ok());
  EXPECT_EQ(counters->success, set.rows.size());
  // 360 single-row requests sent at once merge into fewer executions.
  EXPECT_LT(counters->executions, set.rows.size());
  EXPECT_EQ(counters->inferences, set.rows.size());
}

TEST(GridTest, WorkersServeSeveralModelsAndReportMeasuredMemory) {
  REQUIRE_ZOO();
  auto grid = MakeGrid(Options(Isolation::kModel));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"", zoo / "digits", {}, {}}).ok());
  ASSERT_TRUE(grid->AddModel({"", zoo / "gpt2", {}, {}}).ok());
  std::vector<std::string> reported;
  std::optional<Plan> shown;  // what on_plan saw, before any model reported
  uint64_t reserved_when_shown = 0;
  size_t reported_when_shown = 99;
  auto plan = grid->LoadAll([&](const ModelStatus& s) { reported.push_back(s.name); },
                            [&](const Plan& p) {
                              shown = p;
                              reported_when_shown = reported.size();
                              reserved_when_shown = grid->Devices().at(0).reserved_bytes;
                              for (const auto& st : grid->Models()) {
                                EXPECT_EQ(st.state, ModelState::kLoading) << st.name;
                                EXPECT_EQ(st.worker_pid, 0) << "no worker before the plan is shown";
                              }
                            });
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(reported.size(), 2u);
  ASSERT_TRUE(shown.has_value());
  EXPECT_EQ(reported_when_shown, 0u);
  EXPECT_EQ(shown->placed.size(), plan->placed.size());
  EXPECT_EQ(reserved_when_shown, grid->Devices().at(0).reserved_bytes);
  EXPECT_TRUE(grid->Ready());

  std::set<int64_t> pids;
  for (const auto& st : grid->Models()) {
    EXPECT_EQ(st.state, ModelState::kReady) << st.name << ": " << st.reason;
    EXPECT_GT(st.worker_pid, 0);
    EXPECT_NE(st.worker_pid, ::getpid());
    EXPECT_GT(st.current_bytes, 0u) << st.name;
    EXPECT_GE(st.limit_bytes, st.request_bytes);
    EXPECT_FALSE(st.tasks.empty());
    pids.insert(st.worker_pid);
  }
  EXPECT_EQ(pids.size(), 2u) << "isolation model: one worker per instance";

  DigitsSet set = LoadDigits(zoo);
  EXPECT_EQ(ClassifyOneRowPerRequest(*grid, set), set.correct);

  // Run on all: each model gets its own inputs and answers with its own outputs.
  InferTensor ids;
  ids.name = "input_ids";
  ids.datatype = DataType::kInt64;
  ids.shape = {1, 4};
  std::vector<int64_t> tokens = {1, 2, 3, 4};
  ids.data.assign(reinterpret_cast<const char*>(tokens.data()), tokens.size() * 8);
  auto results = grid->Run("infer",
                           {{"digits", {FloatRows(DigitsInputName(*grid), {set.rows[0]})}},
                            {"gpt2", {ids}}},
                           10s);
  ASSERT_EQ(results.size(), 2u);
  ASSERT_TRUE(results.at("digits").ok()) << results.at("digits").status().ToString();
  ASSERT_TRUE(results.at("gpt2").ok()) << results.at("gpt2").status().ToString();
  EXPECT_EQ(Argmax(results.at("digits")->at(0), 0), set.labels[0]);
  const auto& logits = results.at("gpt2")->at(0);
  ASSERT_EQ(logits.shape.size(), 3u);
  EXPECT_EQ(logits.shape[0], 1);
  EXPECT_EQ(logits.shape[1], 4);

  grid->RefreshMemory();
  auto after = grid->Model("digits");
  ASSERT_TRUE(after.ok());
  EXPECT_GE(after->peak_bytes, after->current_bytes);

  auto devices = grid->Devices();
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].workers, 2);
  EXPECT_EQ(devices[0].models.size(), 2u);
  EXPECT_GT(devices[0].reserved_bytes, 2 * devices[0].device.context_bytes);
}

TEST(GridTest, UnknownModelTaskAndBadInputsAreErrorsNotCrashes) {
  REQUIRE_ZOO();
  auto grid = MakeGrid(Options(Isolation::kModel));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"", zoo / "digits", {}, {}}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  InferCall call;
  call.inputs = {FloatRows(DigitsInputName(*grid), {std::vector<float>(64, 0.f)})};
  auto unknown = grid->Infer("nope", call);
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  InferCall bad_task = call;
  bad_task.task = "summarize";
  auto task = grid->Infer("digits", bad_task);
  EXPECT_EQ(task.status().code(), StatusCode::kNotFound);
  EXPECT_NE(task.status().message().find("summarize"), std::string::npos);
  InferCall wrong = call;
  wrong.inputs = {FloatRows(DigitsInputName(*grid), {std::vector<float>(63, 0.f)})};
  auto shape = grid->Infer("digits", wrong);
  EXPECT_EQ(shape.status().code(), StatusCode::kInvalidArgument) << shape.status().ToString();
  // Still serving.
  EXPECT_TRUE(grid->Infer("digits", call).ok());
}

TEST(GridTest, UnloadFreesTheReservationAndLoadBringsTheModelBack) {
  REQUIRE_ZOO();
  auto grid = MakeGrid(Options(Isolation::kModel));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"", zoo / "digits", {}, {}}).ok());
  ASSERT_TRUE(grid->AddModel({"", zoo / "mobilenet_v3_small", {}, {}}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  const uint64_t reserved_before = grid->Devices()[0].reserved_bytes;
  const int64_t old_pid = grid->Model("digits")->worker_pid;
  InferCall first;
  first.inputs = {FloatRows(DigitsInputName(*grid), {std::vector<float>(64, 0.f)})};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(grid->Infer("digits", first).ok());
  EXPECT_EQ(grid->Counters("digits")->success, 3u);

  ASSERT_TRUE(grid->Unload("digits").ok());
  EXPECT_EQ(grid->Counters("digits")->success, 3u) << "statistics outlive an unload";
  EXPECT_EQ(grid->Model("digits")->state, ModelState::kUnloaded);
  EXPECT_LT(grid->Devices()[0].reserved_bytes, reserved_before);
  EXPECT_EQ(grid->Devices()[0].workers, 1);
  // The stopped worker is gone (reaped, no zombie).
  EXPECT_NE(::kill(static_cast<pid_t>(old_pid), 0), 0);
  InferCall call;
  call.inputs = {FloatRows(DigitsInputName(*grid), {std::vector<float>(64, 0.f)})};
  EXPECT_EQ(grid->Infer("digits", call).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(grid->Unload("digits").code(), StatusCode::kInvalidArgument);

  ASSERT_TRUE(grid->Load("digits").ok());
  EXPECT_EQ(grid->Model("digits")->state, ModelState::kReady);
  EXPECT_EQ(grid->Devices()[0].reserved_bytes, reserved_before);
  EXPECT_TRUE(grid->Infer("digits", call).ok());
  EXPECT_EQ(grid->Counters("digits")->success, 4u) << "and a reload";
  EXPECT_EQ(grid->Counters("digits")->inferences, 4u);
}

TEST(GridTest, AModelThatDoesNotFitIsReportedAndLoadSaysWhy) {
  REQUIRE_ZOO();
  auto grid = MakeGrid(Options(Isolation::kModel, {"cpu=1GiB"}));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"digits", zoo / "digits", uint64_t{4} << 30, {}}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  auto st = grid->Model("digits");
  EXPECT_EQ(st->state, ModelState::kUnplaced);
  EXPECT_FALSE(grid->Ready()) << "strict readiness (default): an unplaced model holds it back";
  {
    GridOptions relaxed = Options(Isolation::kModel, {"cpu=1GiB"});
    relaxed.strict_readiness = false;
    auto other = MakeGrid(relaxed);
    ASSERT_TRUE(other);
    ASSERT_TRUE(other->AddModel({"digits", zoo / "digits", uint64_t{4} << 30, {}}).ok());
    ASSERT_TRUE(other->LoadAll().ok());
    EXPECT_EQ(other->Model("digits")->state, ModelState::kUnplaced);
    EXPECT_TRUE(other->Ready()) << "relaxed: only loading or restarting models hold it back";
  }
  EXPECT_FALSE(st->reason.empty());
  Status load = grid->Load("digits");
  EXPECT_EQ(load.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(load.message().find("does not fit"), std::string::npos) << load.ToString();
}

TEST(GridTest, TheWorkerEnforcesTheLimitAndServesTheNextRequest) {
  REQUIRE_ZOO();
  uint64_t loaded_bytes = 0;
  {
    auto probe = MakeGrid(Options(Isolation::kModel));
    ASSERT_TRUE(probe);
    ASSERT_TRUE(probe->AddModel({"", zoo / "digits", {}, {}}).ok());
    ASSERT_TRUE(probe->LoadAll().ok());
    loaded_bytes = probe->Model("digits")->current_bytes;
  }
  ASSERT_GT(loaded_bytes, 0u);
  const uint64_t limit = loaded_bytes + 4096;
  auto grid = MakeGrid(Options(Isolation::kModel));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"", zoo / "digits", limit, limit}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  ASSERT_EQ(grid->Model("digits")->state, ModelState::kReady) << grid->Model("digits")->reason;
  const int64_t pid = grid->Model("digits")->worker_pid;

  InferCall big;
  big.inputs = {FloatRows(DigitsInputName(*grid),
                          std::vector<std::vector<float>>(64, std::vector<float>(64, 1.f)))};
  auto refused = grid->Infer("digits", big);
  ASSERT_EQ(refused.status().code(), StatusCode::kResourceExhausted) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("digits"), std::string::npos);
  EXPECT_NE(refused.status().message().find(std::to_string(limit)), std::string::npos)
      << refused.status().message();

  InferCall small;
  small.inputs = {FloatRows(DigitsInputName(*grid), {std::vector<float>(64, 1.f)})};
  auto ok = grid->Infer("digits", small);
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(grid->Model("digits")->worker_pid, pid) << "the worker survived the refusal";
}

// gpt2's input_ids [1, 4].
InferTensor GptIds() {
  InferTensor ids;
  ids.name = "input_ids";
  ids.datatype = DataType::kInt64;
  ids.shape = {1, 4};
  const std::vector<int64_t> tokens = {5, 6, 7, 8};
  ids.data.assign(reinterpret_cast<const char*>(tokens.data()), tokens.size() * 8);
  return ids;
}

// Sends `n` sampled generates of `tokens` new tokens on `ids` to gpt2, each
// with its own seed (so they are not merged: one runs, the others queue).
std::vector<std::future<Result<std::vector<InferTensor>>>> LongGenerates(Grid& grid,
                                                                        const InferTensor& ids,
                                                                        int n, int tokens) {
  std::vector<std::future<Result<std::vector<InferTensor>>>> pending;
  for (int i = 0; i < n; ++i) {
    InferCall call;
    call.task = "generate";
    call.inputs = {ids};
    call.params = {{"max_new_tokens", tokens}, {"do_sample", true}, {"seed", i}};
    auto p = std::make_shared<std::promise<Result<std::vector<InferTensor>>>>();
    pending.push_back(p->get_future());
    grid.InferAsync("gpt2", std::move(call),
                    [p](Result<std::vector<InferTensor>> r) { p->set_value(std::move(r)); });
  }
  return pending;
}

TEST(GridTest, KillDashNineFailsInFlightRequestsAndTheWatchdogRestartsTheWorker) {
  REQUIRE_ZOO();
  auto grid = MakeGrid(Options(Isolation::kModel));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"", zoo / "gpt2", {}, {}}).ok());
  ASSERT_TRUE(grid->AddModel({"", zoo / "digits", {}, {}}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  const int64_t pid = grid->Model("gpt2")->worker_pid;
  ASSERT_GT(pid, 0);

  // Long generates keep the worker busy while it is killed: the first is in
  // flight in the worker, the others wait in the model's queue.
  const InferTensor ids = GptIds();
  auto pending = LongGenerates(*grid, ids, 4, 124);
  std::this_thread::sleep_for(100ms);
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(pending[0].wait_until(killed_at + 1s), std::future_status::ready)
      << "the in-flight request was not failed within 1 s of kill -9";
  auto in_flight = pending[0].get();
  EXPECT_EQ(in_flight.status().code(), StatusCode::kUnavailable) << in_flight.status().ToString();
  EXPECT_NE(in_flight.status().message().find("signal 9"), std::string::npos)
      << in_flight.status().message();
  // The queued ones either failed fast (worker gone) or ran on the restarted
  // worker; none hangs.
  for (size_t i = 1; i < pending.size(); ++i) {
    ASSERT_EQ(pending[i].wait_for(30s), std::future_status::ready);
    auto r = pending[i].get();
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
    }
  }
  // The other model answers throughout.
  InferCall digits;
  digits.inputs = {FloatRows(DigitsInputName(*grid), {std::vector<float>(64, 0.f)})};
  EXPECT_TRUE(grid->Infer("digits", digits).ok());

  ModelStatus st = WaitForState(*grid, "gpt2", ModelState::kReady, 30s);
  ASSERT_EQ(st.state, ModelState::kReady) << st.reason;
  EXPECT_EQ(st.restarts, 1);
  EXPECT_GT(st.worker_pid, 0);
  EXPECT_NE(st.worker_pid, pid);
  InferCall again;
  again.inputs = {ids};
  EXPECT_TRUE(grid->Infer("gpt2", again).ok());
}

// Requests queued behind a batch when their model is unloaded are told so
// (they used to read "server shutting down"); the batch in flight ends.
TEST(GridTest, RequestsQueuedAtAnUnloadAreToldTheModelWasUnloaded) {
  REQUIRE_ZOO();
  auto grid = MakeGrid(Options(Isolation::kModel));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"", zoo / "gpt2", {}, uint64_t{256} << 20}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  auto pending = LongGenerates(*grid, GptIds(), 4, 100);
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(grid->Unload("gpt2").ok());
  int unloaded = 0;
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(30s), std::future_status::ready);
    auto r = f.get();
    if (r.ok()) continue;  // the batch in flight ran to its end
    EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
    EXPECT_NE(r.status().message().find("model unloaded: model 'gpt2' did not run request"),
              std::string::npos)
        << r.status().message();
    EXPECT_EQ(r.status().message().find("shutting down"), std::string::npos)
        << r.status().message();
    ++unloaded;
  }
  EXPECT_GE(unloaded, 1) << "no request was still queued at the unload";
}

// Real worker processes, but the next `fail` restarts fail as a missing
// executable would: the watchdog's restart-failure path through the grid.
class FlakyEnv final : public grid_internal::WorkerEnv {
 public:
  Result<std::shared_ptr<grid_internal::WorkerProcess>> Launch(
      WorkerOptions options, std::function<void(const WorkerExit&)> on_exit) override {
    if (fail > 0) {
      --fail;
      ++failed;
      return Status::NotFound("modelgrid-worker not found: '/nowhere/modelgrid-worker'");
    }
    return real->Launch(std::move(options), std::move(on_exit));
  }
  grid_internal::PoolClock::time_point Now() const override { return real->Now(); }
  std::shared_ptr<grid_internal::WorkerEnv> real = grid_internal::ProcessWorkerEnv();
  std::atomic<int> fail{0};
  std::atomic<int> failed{0};
};

TEST(GridTest, FailedRestartsAreRetriedWithBackoffAndTheModelComesBack) {
  REQUIRE_ZOO();
  auto env = std::make_shared<FlakyEnv>();
  GridOptions o = Options(Isolation::kModel);
  o.initial_backoff = 100ms;
  o.max_backoff = 400ms;
  o.worker_env = env;
  auto grid = MakeGrid(o);
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"", zoo / "digits", {}, {}}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  const int64_t pid = grid->Model("digits")->worker_pid;
  ASSERT_GT(pid, 0);
  env->fail = 2;
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
  // While the restarts fail, the model says so, with the next delay.
  std::set<std::string> reasons;
  for (int i = 0; i < 300 && env->failed < 2; ++i) {  // at most 3 s
    auto st = grid->Model("digits");
    if (st->state == ModelState::kRestarting) reasons.insert(st->reason);
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(env->failed.load(), 2);
  ModelStatus st = WaitForState(*grid, "digits", ModelState::kReady, 30s);
  ASSERT_EQ(st.state, ModelState::kReady) << st.reason;
  // Delays 100 ms, then 200 and 400 after the failed starts: at least 700 ms.
  EXPECT_GE(std::chrono::steady_clock::now() - killed_at, 700ms);
  EXPECT_NE(st.worker_pid, pid);
  EXPECT_EQ(st.restarts, 1);
  bool saw_failure = false;
  for (const auto& r : reasons) {
    saw_failure |= r.find("restart failed: modelgrid-worker not found") != std::string::npos &&
                   r.find("retrying in") != std::string::npos;
  }
  EXPECT_TRUE(saw_failure) << "reasons seen: " << reasons.size();
  InferCall call;
  call.inputs = {FloatRows(DigitsInputName(*grid), {std::vector<float>(64, 0.f)})};
  EXPECT_TRUE(grid->Infer("digits", call).ok());
}

TEST(GridTest, ShutdownStopsEveryWorker) {
  REQUIRE_ZOO();
  auto grid = MakeGrid(Options(Isolation::kDevice));
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"", zoo / "digits", {}, {}}).ok());
  ASSERT_TRUE(grid->AddModel({"", zoo / "mobilenet_v3_small", {}, {}}).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  auto models = grid->Models();
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].worker_pid, models[1].worker_pid) << "isolation device: one worker";
  EXPECT_EQ(grid->Devices()[0].workers, 1);
  const pid_t pid = static_cast<pid_t>(models[0].worker_pid);
  grid->Shutdown();
  EXPECT_NE(::kill(pid, 0), 0) << "worker " << pid << " outlived Shutdown";
  EXPECT_FALSE(grid->Ready());
}

}  // namespace
}  // namespace modelgrid

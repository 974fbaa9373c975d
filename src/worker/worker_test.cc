// WorkerClient against real modelgrid-worker processes on the small zoo:
// outputs equal an in-process TorchScriptBackend byte for byte (also under
// concurrency and through output_needed), errors of the backend and of the
// worker travel with their codes, load/unload/stats, shutdown.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "modelgrid/ipc/shm_registry.h"
#include "modelgrid/worker/worker_client.h"
#include "testing/posix_shm.h"
#include "worker/worker_test_util.h"

namespace modelgrid {
namespace {

using namespace modelgrid::testing;  // NOLINT(google-build-using-namespace)
using std::chrono::milliseconds;

TEST(WorkerTest, DigitsThroughAWorkerEqualsTheBackendInProcess) {
  REQUIRE_ZOO();
  ExitRecord exits;
  START_WORKER(worker, Options("digits"), exits);
  EXPECT_GT(worker->pid(), 0);
  EXPECT_TRUE(worker->alive());
  EXPECT_EQ(worker->name(), "digits");

  auto loaded = worker->Load(LoadOf(zoo, "digits"), kGenerous);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->model, "digits");
  EXPECT_GT(loaded->current_bytes, 4810u * 4);  // at least the 4,810 FP32 parameters
  EXPECT_GE(loaded->peak_bytes, loaded->current_bytes);
  EXPECT_EQ(loaded->tasks, std::vector<std::string>{"infer"});
  ASSERT_EQ(loaded->inputs.size(), 1u);
  EXPECT_EQ(loaded->inputs[0].name, "input");
  EXPECT_EQ(loaded->inputs[0].dims, std::vector<int64_t>{64});
  ASSERT_EQ(loaded->outputs.size(), 1u);
  EXPECT_EQ(loaded->outputs[0].name, "logits");

  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "digits")).ok());
  for (size_t batch : {1, 7, 64}) {
    const std::vector<InferTensor> inputs = {DigitsRows(zoo, 3 * batch, batch)};
    auto remote = worker->Infer("digits", "infer", inputs, nlohmann::json::object(), kGenerous);
    ASSERT_TRUE(remote.ok()) << remote.status().ToString();
    auto expected = local.Run("infer", inputs);
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();
    ASSERT_EQ((*remote)[0].shape, (std::vector<int64_t>{static_cast<int64_t>(batch), 10}));
    EXPECT_TRUE(SameTensors(*remote, *expected)) << "batch " << batch;
  }
  worker->Shutdown();
  EXPECT_EQ(exits.Calls(), 1);
}

TEST(WorkerTest, ConcurrentInfersFromManyThreadsGetTheirOwnAnswers) {
  REQUIRE_ZOO();
  ExitRecord exits;
  START_WORKER(worker, Options("digits-concurrent"), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "digits"), kGenerous).ok());
  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "digits")).ok());

  constexpr int kThreads = 6;
  constexpr int kPerThread = 25;
  std::atomic<int> wrong{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Each request its own rows and batch size, so a mixed-up reply shows.
        const size_t batch = 1 + static_cast<size_t>((t * 7 + i) % 9);
        const std::vector<InferTensor> inputs = {
            DigitsRows(zoo, static_cast<size_t>(t * 100 + i * 3), batch)};
        auto remote = worker->Infer("digits", "infer", inputs, {}, kGenerous);
        auto expected = local.Run("infer", inputs);
        if (!remote.ok() || !expected.ok()) {
          ++failed;
          ADD_FAILURE() << (remote.ok() ? expected.status() : remote.status()).ToString();
        } else if (!SameTensors(*remote, *expected)) {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
}

TEST(WorkerTest, OutputsLargerThanTheGuessComeBackThroughOutputNeeded) {
  REQUIRE_ZOO();
  ExitRecord exits;
  START_WORKER(worker, Options("gpt2-big-outputs"), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "gpt2"), kGenerous).ok());
  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "gpt2")).ok());
  // logits are FP32 [B, S, 1000]. First call: 8 x 64 x 4000 = 2,048,000
  // bytes, past the first guess (1 MiB + inputs). Second: a short sequence
  // sets the per-row guess to 4 x 4000 bytes. Third: 100 tokens need 25
  // times that. Each answer must equal the backend's.
  for (auto [batch, seq] : {std::pair<int64_t, int64_t>{8, 64}, {2, 4}, {8, 100}, {1, 4}}) {
    const std::vector<InferTensor> inputs = {TokenIds(batch, seq, batch * seq)};
    auto remote = worker->Infer("gpt2", "infer", inputs, {}, kGenerous);
    ASSERT_TRUE(remote.ok()) << remote.status().ToString();
    auto expected = local.Run("infer", inputs);
    ASSERT_TRUE(expected.ok()) << expected.status().ToString();
    ASSERT_EQ((*remote)[0].shape, (std::vector<int64_t>{batch, seq, 1000}));
    EXPECT_TRUE(SameTensors(*remote, *expected)) << batch << " x " << seq;
  }
}

TEST(WorkerTest, OutputsTheArenaCannotHoldFailAndTheWorkerServesOn) {
  REQUIRE_ZOO();
  ExitRecord exits;
  // 3.5 MiB = 3,670,016 bytes. First request: inputs (6,400) + the first
  // output guess (1 MiB + 6,400) + 8 x 100 x 1000 FP32 logits (3,200,000)
  // do not fit. Second: inputs (4,096) + guess (1 MiB + 4,096) + 8 x 64 x
  // 1000 logits (2,048,000) = 3,104,768 fit, but only if the first request
  // freed all it held (another 1,061,376 bytes).
  START_WORKER(worker, Options("gpt2-small-arena", uint64_t{3584} << 10), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "gpt2"), kGenerous).ok());
  auto big = worker->Infer("gpt2", "infer", {TokenIds(8, 100, 1)}, {}, kGenerous);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted) << big.status().ToString();
  EXPECT_TRUE(Contains(big.status(), "arena 'gpt2-small-arena': cannot allocate 3200000 bytes"))
      << big.status().ToString();
  EXPECT_TRUE(Contains(big.status(), "raise it with --arena")) << big.status().ToString();
  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "gpt2")).ok());
  const std::vector<InferTensor> inputs = {TokenIds(8, 64, 2)};
  auto ok = worker->Infer("gpt2", "infer", inputs, {}, kGenerous);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(SameTensors(*ok, *local.Run("infer", inputs)));
}

// An input in a registered shared-memory region is read in place: it needs
// no room in the arena. 64 digits rows (16,384 bytes) do not fit an 8 KiB
// arena when copied, and run when they lie in the region; after
// DetachRegion the worker maps the region again on the next use.
TEST(WorkerTest, SharedMemoryInputsNeedNoRoomInTheArena) {
  REQUIRE_ZOO();
  ExitRecord exits;
  START_WORKER(worker, Options("digits-shm", uint64_t{8} << 10), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "digits"), kGenerous).ok());
  const InferTensor rows = DigitsRows(zoo, 0, 64);
  auto copied = worker->Infer("digits", "infer", {rows}, {}, kGenerous);
  EXPECT_EQ(copied.status().code(), StatusCode::kResourceExhausted) << copied.status().ToString();

  const std::string key = "/mg_worker_shm_test_" + std::to_string(::getpid());
  auto shm = PosixSharedMemory::Create(key, rows.data.size() + 128);
  ASSERT_TRUE(shm.ok()) << shm.status().ToString();
  std::memcpy((*shm)->data() + 128, rows.data.data(), rows.data.size());
  ipc::SharedMemoryRegistry registry;
  ASSERT_TRUE(registry.Register("rows", key, 128, rows.data.size()).ok());
  InferTensor shared = rows;
  shared.data.clear();
  auto slice = registry.Slice("rows", 0, rows.data.size());
  ASSERT_TRUE(slice.ok()) << slice.status().ToString();
  shared.shared = *slice;

  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "digits")).ok());
  const auto want = local.Run("infer", {rows});
  ASSERT_TRUE(want.ok());
  // The outputs (64 x 10 FP32 = 2,560 bytes) still go through the arena.
  auto got = worker->Infer("digits", "infer", {shared}, {}, kGenerous);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(SameTensors(*got, *want));
  worker->DetachRegion((*slice)->region_id);
  got = worker->Infer("digits", "infer", {shared}, {}, kGenerous);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(SameTensors(*got, *want));
}

TEST(WorkerTest, ATimedOutRequestFreesItsRegionsOnlyWhenItsAnswerComes) {
  REQUIRE_ZOO();
  ExitRecord exits;
  // Each slow request holds 512 + (1 MiB + 512) bytes: three of them fill
  // all but 1,024 bytes of this arena. The big request needs 4,096 +
  // (1 MiB + 4,096) + 2,048,000 = 3,104,768 bytes: it fits only when no
  // slow request holds its regions.
  constexpr uint64_t kArena = 3 * (512 + (uint64_t{1} << 20) + 512) + 1024;
  START_WORKER(worker, Options("gpt2-timeout", kArena), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "gpt2"), kGenerous).ok());
  // Three slow requests queued at once, abandoned after 20 ms: the model
  // computes them one after the other for a good while longer.
  std::vector<Status> slow(3);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < slow.size(); ++i) {
    threads.emplace_back([&, i] {
      slow[i] = worker
                    ->Infer("gpt2", "generate", {TokenIds(8, 8, static_cast<int64_t>(i))},
                            {{"max_new_tokens", 40}}, milliseconds{20})
                    .status();
    });
  }
  for (auto& t : threads) t.join();
  for (const Status& s : slow) {
    EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
    EXPECT_TRUE(Contains(s, "no reply to 'infer'")) << s.ToString();
  }
  EXPECT_TRUE(worker->alive());
  // Right after the timeouts the worker still owns those regions: no room
  // even for the inputs.
  const std::vector<InferTensor> inputs = {TokenIds(8, 64, 9)};
  auto early = worker->Infer("gpt2", "infer", inputs, {}, kGenerous);
  EXPECT_EQ(early.status().code(), StatusCode::kResourceExhausted) << early.status().ToString();
  // Once the abandoned requests are answered their regions are free again.
  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "gpt2")).ok());
  Result<std::vector<InferTensor>> big = Status::Internal("not run");
  const auto until = std::chrono::steady_clock::now() + kGenerous;
  do {
    std::this_thread::sleep_for(milliseconds{20});
    big = worker->Infer("gpt2", "infer", inputs, {}, kGenerous);
    if (big.ok()) break;
    ASSERT_EQ(big.status().code(), StatusCode::kResourceExhausted) << big.status().ToString();
  } while (std::chrono::steady_clock::now() < until);
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_TRUE(SameTensors(*big, *local.Run("infer", inputs)));
}

TEST(WorkerTest, GenerateParamsReachTheBackend) {
  REQUIRE_ZOO();
  ExitRecord exits;
  START_WORKER(worker, Options("gpt2-generate"), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "gpt2"), kGenerous).ok());
  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "gpt2")).ok());
  const std::vector<InferTensor> inputs = {TokenIds(2, 6, 5)};
  for (const nlohmann::json& params :
       {nlohmann::json{{"max_new_tokens", 23}},
        nlohmann::json{{"max_new_tokens", 9}, {"do_sample", true}, {"seed", 7}, {"top_k", 5}}}) {
    auto remote = worker->Infer("gpt2", "generate", inputs, params, kGenerous);
    ASSERT_TRUE(remote.ok()) << remote.status().ToString();
    auto expected = local.Run("generate", inputs, params);
    ASSERT_TRUE(expected.ok());
    EXPECT_TRUE(SameTensors(*remote, *expected)) << params.dump();
    EXPECT_EQ((*remote)[1].shape,
              (std::vector<int64_t>{2, params["max_new_tokens"].get<int64_t>()}));
  }
  auto bad = worker->Infer("gpt2", "generate", inputs, {{"max_new_tokens", 5000}}, kGenerous);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(bad.status(), "model 'gpt2'")) << bad.status().ToString();
}

TEST(WorkerTest, BackendAndWorkerErrorsTravelWithTheirCodes) {
  REQUIRE_ZOO();
  ExitRecord exits;
  START_WORKER(worker, Options("errors"), exits);

  auto missing = worker->Load(LoadOf(zoo, "no-such-model"), kGenerous);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(missing.status(), (zoo / "no-such-model").string()))
      << missing.status().ToString();

  ASSERT_TRUE(worker->Load(LoadOf(zoo, "digits"), kGenerous).ok());
  auto twice = worker->Load(LoadOf(zoo, "digits"), kGenerous);
  EXPECT_EQ(twice.status().code(), StatusCode::kAlreadyExists) << twice.status().ToString();

  const std::vector<InferTensor> good = {DigitsRows(zoo, 0, 2)};
  auto task = worker->Infer("digits", "nope", good, {}, kGenerous);
  EXPECT_EQ(task.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(task.status(), "model 'digits': no task 'nope'"))
      << task.status().ToString();

  const std::vector<InferTensor> wrong_shape = {
      MakeTensor("input", DataType::kFP32, {2, 63}, std::vector<float>(126, 0.5f))};
  auto shape = worker->Infer("digits", "infer", wrong_shape, {}, kGenerous);
  EXPECT_EQ(shape.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(shape.status(), "input 'input': expected shape [-1,64]"))
      << shape.status().ToString();

  const std::vector<InferTensor> wrong_type = {
      MakeTensor("input", DataType::kInt32, {1, 64}, std::vector<int32_t>(64, 1))};
  auto type = worker->Infer("digits", "infer", wrong_type, {}, kGenerous);
  EXPECT_EQ(type.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(type.status(), "expected datatype FP32, got INT32"))
      << type.status().ToString();

  auto unknown = worker->Infer("resnet18", "infer", good, {}, kGenerous);
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(unknown.status(), "worker 'errors': model 'resnet18' is not loaded"))
      << unknown.status().ToString();

  // The client checks tensors before they travel.
  InferTensor short_data = good[0];
  short_data.data.resize(10);
  auto malformed = worker->Infer("digits", "infer", {short_data}, {}, kGenerous);
  EXPECT_EQ(malformed.status().code(), StatusCode::kInvalidArgument);

  Status unload = worker->Unload("resnet18", kGenerous);
  EXPECT_EQ(unload.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(unload, "model 'resnet18' is not loaded")) << unload.ToString();

  // After all that the worker still answers, on the same process.
  const pid_t pid = worker->pid();
  auto fine = worker->Infer("digits", "infer", good, {}, kGenerous);
  EXPECT_TRUE(fine.ok()) << fine.status().ToString();
  EXPECT_EQ(worker->pid(), pid);
  EXPECT_TRUE(worker->alive());
  EXPECT_EQ(exits.Calls(), 0);
}

TEST(WorkerTest, UnloadThenLoadAgainAndStats) {
  REQUIRE_ZOO();
  ExitRecord exits;
  START_WORKER(worker, Options("reload"), exits);
  auto first = worker->Load(LoadOf(zoo, "resnet18"), kGenerous);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // 11,689,512 FP32 parameters: at least their bytes are held.
  EXPECT_GE(first->current_bytes, uint64_t{11'689'512} * 4);

  auto stats = worker->Stats(kGenerous);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  ASSERT_EQ(stats->models.size(), 1u);
  EXPECT_EQ(stats->models[0].model, "resnet18");
  EXPECT_EQ(stats->models[0].current_bytes, first->current_bytes);
  EXPECT_EQ(stats->models[0].peak_bytes, stats->peak_bytes);
  EXPECT_GE(stats->current_bytes, first->current_bytes);
  EXPECT_GE(stats->peak_bytes, first->peak_bytes);

  ASSERT_TRUE(worker->Unload("resnet18", kGenerous).ok());
  auto after = worker->Stats(kGenerous);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->models.empty());
  // The weights are gone.
  EXPECT_LT(after->current_bytes + uint64_t{11'689'512} * 4, stats->current_bytes + 1);
  EXPECT_EQ(after->peak_bytes, stats->peak_bytes);  // a peak is never forgotten
  auto gone = worker->Infer("resnet18", "infer", {}, {}, kGenerous);
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);

  auto second = worker->Load(LoadOf(zoo, "resnet18"), kGenerous);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  std::vector<float> pixels(2 * 3 * 64 * 64);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>(i % 251) / 251.0f;
  const std::vector<InferTensor> inputs = {
      MakeTensor("input", DataType::kFP32, {2, 3, 64, 64}, pixels)};
  auto remote = worker->Infer("resnet18", "infer", inputs, {}, kGenerous);
  ASSERT_TRUE(remote.ok()) << remote.status().ToString();
  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "resnet18")).ok());
  EXPECT_TRUE(SameTensors(*remote, *local.Run("infer", inputs)));
}

TEST(WorkerTest, SeveralModelsShareOneWorker) {
  REQUIRE_ZOO();
  ExitRecord exits;
  START_WORKER(worker, Options("device-cpu"), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "digits"), kGenerous).ok());
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "gpt2"), kGenerous).ok());
  auto stats = worker->Stats(kGenerous);
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->models.size(), 2u);
  EXPECT_EQ(stats->models[0].model, "digits");
  EXPECT_EQ(stats->models[1].model, "gpt2");

  TorchScriptBackend digits;
  ASSERT_TRUE(digits.Load(OpenEntry(zoo, "digits")).ok());
  TorchScriptBackend gpt2;
  ASSERT_TRUE(gpt2.Load(OpenEntry(zoo, "gpt2")).ok());
  // Both models at once, from two threads.
  std::atomic<int> mismatches{0};
  std::thread a([&] {
    for (int i = 0; i < 10; ++i) {
      const std::vector<InferTensor> in = {TokenIds(2, 8, i)};
      auto r = worker->Infer("gpt2", "generate", in, {{"max_new_tokens", 10}}, kGenerous);
      if (!r.ok() || !SameTensors(*r, *gpt2.Run("generate", in, {{"max_new_tokens", 10}}))) {
        ++mismatches;
      }
    }
  });
  for (int i = 0; i < 30; ++i) {
    const std::vector<InferTensor> in = {DigitsRows(zoo, static_cast<size_t>(i), 5)};
    auto r = worker->Infer("digits", "infer", in, {}, kGenerous);
    if (!r.ok() || !SameTensors(*r, *digits.Run("infer", in))) ++mismatches;
  }
  a.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(WorkerTest, ShutdownLeavesNoChildAndRunsOnExitOnce) {
  REQUIRE_ZOO();
  ExitRecord exits;
  START_WORKER(worker, Options("short-lived"), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "digits"), kGenerous).ok());
  const pid_t pid = worker->pid();
  ASSERT_TRUE(std::filesystem::exists("/proc/" + std::to_string(pid)));
  worker->Shutdown();
  EXPECT_FALSE(worker->alive());
  EXPECT_EQ(exits.Calls(), 1);
  const WorkerExit e = exits.Last();
  EXPECT_EQ(e.pid, pid);
  EXPECT_TRUE(e.requested);
  EXPECT_EQ(e.exit_code, 0) << e.Describe();
  EXPECT_EQ(e.signal, 0);
  // Reaped: no zombie, no process.
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid)));

  auto late = worker->Infer("digits", "infer", {DigitsRows(zoo, 0, 1)}, {}, kGenerous);
  EXPECT_EQ(late.status().code(), StatusCode::kUnavailable);
  worker->Shutdown();  // idempotent
  worker.reset();
  EXPECT_EQ(exits.Calls(), 1);
}

TEST(WorkerTest, MissingExecutableIsNotFound) {
  WorkerOptions o = Options("ghost");
  o.executable = "/nonexistent/modelgrid-worker";
  auto client = WorkerClient::Start(o, nullptr);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(client.status(), "/nonexistent/modelgrid-worker"));
}

TEST(WorkerTest, AProcessThatExitsWhileStartingSaysHow) {
  WorkerOptions o = Options("false");
  o.executable = "/bin/false";
  int calls = 0;
  auto client = WorkerClient::Start(o, [&](const WorkerExit&) { ++calls; });
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(client.status(), "exited with code 1")) << client.status().ToString();
  EXPECT_EQ(calls, 0);  // on_exit belongs to a started worker
}

}  // namespace
}  // namespace modelgrid

// The memory limit inside a worker: a request past it fails alone with
// RESOURCE_EXHAUSTED naming the model and the limit, the next one succeeds
// in the same process; a load past it fails the same way; set_limit
// changes one model's cap at once, even under a request in flight.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "modelgrid/torch/cuda_memory.h"
#include "modelgrid/worker/worker_client.h"
#include "worker/worker_test_util.h"

namespace modelgrid {
namespace {

using namespace modelgrid::testing;  // NOLINT(google-build-using-namespace)

std::vector<InferTensor> Images(int64_t batch) {
  std::vector<float> pixels(static_cast<size_t>(batch) * 3 * 64 * 64);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>(i % 97) / 97.0f;
  return {MakeTensor("input", DataType::kFP32, {batch, 3, 64, 64}, pixels)};
}

TEST(WorkerMemoryTest, ABatchPastTheLimitFailsAloneAndTheNextRequestSucceeds) {
  REQUIRE_ZOO();
  // Measure, in a worker without a limit, the process peak after the load,
  // after a batch of 1 and after a batch of 32.
  uint64_t load_peak = 0;
  uint64_t small_peak = 0;
  uint64_t big_peak = 0;
  {
    ExitRecord exits;
    START_WORKER(probe, Options("resnet18-probe"), exits);
    ASSERT_TRUE(probe->Load(LoadOf(zoo, "resnet18"), kGenerous).ok());
    auto s0 = probe->Stats(kGenerous);
    ASSERT_TRUE(s0.ok());
    load_peak = s0->peak_bytes;
    ASSERT_TRUE(probe->Infer("resnet18", "infer", Images(1), {}, kGenerous).ok());
    auto s1 = probe->Stats(kGenerous);
    ASSERT_TRUE(s1.ok());
    small_peak = s1->peak_bytes;
    ASSERT_TRUE(probe->Infer("resnet18", "infer", Images(32), {}, kGenerous).ok());
    auto s2 = probe->Stats(kGenerous);
    ASSERT_TRUE(s2.ok());
    big_peak = s2->peak_bytes;
  }
  ASSERT_GT(big_peak, small_peak + (uint64_t{4} << 20)) << "batch 32 should need MBs more";
  // Above what the load and a batch of 1 need, below a batch of 32.
  const uint64_t limit = std::max(load_peak, small_peak) + (big_peak - small_peak) / 4;

  ExitRecord exits;
  START_WORKER(worker, Options("resnet18-capped"), exits);
  auto loaded = worker->Load(LoadOf(zoo, "resnet18", limit), kGenerous);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const pid_t pid = worker->pid();

  auto big = worker->Infer("resnet18", "infer", Images(32), {}, kGenerous);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted) << big.status().ToString();
  EXPECT_TRUE(Contains(big.status(), "model 'resnet18': memory limit exceeded: limit " +
                                         std::to_string(limit) + " bytes"))
      << big.status().ToString();
  ASSERT_NE(big.status().memory_limit(), nullptr) << big.status().ToString();
  EXPECT_EQ(big.status().memory_limit()->limit_bytes, limit);

  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "resnet18")).ok());
  for (int i = 0; i < 3; ++i) {
    auto small = worker->Infer("resnet18", "infer", Images(1), {}, kGenerous);
    ASSERT_TRUE(small.ok()) << small.status().ToString();
    EXPECT_TRUE(SameTensors(*small, *local.Run("infer", Images(1))));
  }
  EXPECT_EQ(worker->pid(), pid);
  EXPECT_TRUE(worker->alive());
  EXPECT_EQ(exits.Calls(), 0);
  auto stats = worker->Stats(kGenerous);
  ASSERT_TRUE(stats.ok());
  EXPECT_LE(stats->peak_bytes, limit);  // the refused allocation never happened
}

TEST(WorkerMemoryTest, ALoadPastTheLimitFailsAndTheLimitIsTakenBack) {
  REQUIRE_ZOO();
  ExitRecord exits;
  START_WORKER(worker, Options("tight"), exits);
  // resnet18's weights alone are 46,758,048 bytes.
  const uint64_t limit = uint64_t{10} << 20;
  auto loaded = worker->Load(LoadOf(zoo, "resnet18", limit), kGenerous);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kResourceExhausted) << loaded.status().ToString();
  EXPECT_TRUE(Contains(loaded.status(), "memory limit exceeded: limit " + std::to_string(limit)))
      << loaded.status().ToString();
  EXPECT_TRUE(Contains(loaded.status(), "resnet18")) << loaded.status().ToString();
  ASSERT_NE(loaded.status().memory_limit(), nullptr) << "load_failed carries the detail too";
  EXPECT_EQ(loaded.status().memory_limit()->limit_bytes, limit);
  // The failed load's limit no longer counts: an unlimited load succeeds.
  auto again = worker->Load(LoadOf(zoo, "resnet18"), kGenerous);
  EXPECT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(worker->Infer("resnet18", "infer", Images(8), {}, kGenerous).ok());
}

// The per-model figures of a worker's `stats` for `model`.
ipc::ModelMemory ModelFigures(WorkerClient& worker, const std::string& model) {
  auto stats = worker.Stats(kGenerous);
  EXPECT_TRUE(stats.ok()) << stats.status().ToString();
  if (stats.ok()) {
    for (const ipc::ModelMemory& m : stats->models) {
      if (m.model == model) return m;
    }
  }
  ADD_FAILURE() << "no figures for '" << model << "'";
  return {};
}

// resnet18's own peak (its counters, bytes) at `batch`, in a worker without a limit.
uint64_t Resnet18Peak(const std::filesystem::path& zoo, int64_t batch) {
  ExitRecord exits;
  auto probe = WorkerClient::Start(Options("peak-probe"), exits.Callback());
  EXPECT_TRUE(probe.ok());
  if (!probe.ok()) return 0;
  EXPECT_TRUE((*probe)->Load(LoadOf(zoo, "resnet18"), kGenerous).ok());
  EXPECT_TRUE((*probe)->Infer("resnet18", "infer", Images(batch), {}, kGenerous).ok());
  return ModelFigures(**probe, "resnet18").peak_bytes;
}

// Each model of a worker has its own counters and limit: a burst past one
// model's limit fails for it alone, while another model's request of the
// same size, within its own limit, succeeds in the same process.
TEST(WorkerMemoryTest, EachModelOfAWorkerHasItsOwnLimit) {
  REQUIRE_ZOO();
  const uint64_t need = Resnet18Peak(zoo, 8);
  ASSERT_GT(need, uint64_t{46'758'048});
  ExitRecord exits;
  START_WORKER(worker, Options("own-limits"), exits);
  const uint64_t tight = need - (uint64_t{2} << 20);
  const uint64_t roomy = need + (uint64_t{16} << 20);
  ipc::LoadMessage load_tight = LoadOf(zoo, "resnet18", tight);
  load_tight.model = "tight";
  ipc::LoadMessage load_roomy = LoadOf(zoo, "resnet18", roomy);
  load_roomy.model = "roomy";
  ASSERT_TRUE(worker->Load(load_tight, kGenerous).ok());
  ASSERT_TRUE(worker->Load(load_roomy, kGenerous).ok());
  // The sum of the limits (what the old shared counter enforced) would let
  // either through; each model's own limit decides.
  auto refused = worker->Infer("tight", "infer", Images(8), {}, kGenerous);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted) << refused.status().ToString();
  EXPECT_TRUE(Contains(refused.status(),
                       "model 'tight': memory limit exceeded: limit " + std::to_string(tight)))
      << refused.status().ToString();
  const MemoryLimitDetail* detail = refused.status().memory_limit();
  ASSERT_NE(detail, nullptr) << "the typed detail crossed the process boundary";
  EXPECT_EQ(detail->model, "tight");
  EXPECT_EQ(detail->device, "cpu");
  EXPECT_EQ(detail->limit_bytes, tight);
  EXPECT_LE(detail->in_use_bytes, tight);
  EXPECT_GT(detail->requested_bytes, 0u);

  auto fits = worker->Infer("roomy", "infer", Images(8), {}, kGenerous);
  ASSERT_TRUE(fits.ok()) << fits.status().ToString();
  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "resnet18")).ok());
  EXPECT_TRUE(SameTensors(*fits, *local.Run("infer", Images(8))));

  // Exact per-model figures: each holds its own weights; each peak stayed
  // within its own limit; the process holds both.
  const ipc::ModelMemory t = ModelFigures(*worker, "tight");
  const ipc::ModelMemory r = ModelFigures(*worker, "roomy");
  EXPECT_GE(t.current_bytes, uint64_t{46'758'048});
  EXPECT_EQ(t.current_bytes, r.current_bytes) << "the same model holds the same bytes";
  EXPECT_LE(t.peak_bytes, tight);
  EXPECT_GT(r.peak_bytes, tight) << "roomy's batch needed more than tight's limit";
  EXPECT_LE(r.peak_bytes, roomy);
  auto stats = worker->Stats(kGenerous);
  ASSERT_TRUE(stats.ok());
  EXPECT_GE(stats->current_bytes, t.current_bytes + r.current_bytes);
  // Unloading one does not change the other's figures or limit.
  ASSERT_TRUE(worker->Unload("roomy", kGenerous).ok());
  EXPECT_EQ(ModelFigures(*worker, "tight").current_bytes, t.current_bytes);
  EXPECT_EQ(worker->Infer("tight", "infer", Images(8), {}, kGenerous).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_TRUE(worker->Infer("tight", "infer", Images(1), {}, kGenerous).ok());
  EXPECT_EQ(exits.Calls(), 0);
}

// An infer's own limit_bytes (the grid's per-batch grant) replaces the
// load's limit for that execution only: below what the batch needs it
// fails with the typed detail, above it succeeds even past the load's
// limit, and the load's limit is back for the next request.
TEST(WorkerMemoryTest, AnInfersLimitBytesCapsThatExecutionOnly) {
  REQUIRE_ZOO();
  const uint64_t small = Resnet18Peak(zoo, 1);
  const uint64_t big = Resnet18Peak(zoo, 32);
  ASSERT_GT(big, small + (uint64_t{4} << 20));
  const uint64_t between = small + (big - small) / 4;  // fits batch 1, not batch 32
  const uint64_t ample = big + (uint64_t{8} << 20);

  ExitRecord exits;
  START_WORKER(worker, Options("per-infer-limit"), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "resnet18", between), kGenerous).ok());
  const pid_t pid = worker->pid();
  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "resnet18")).ok());
  const auto want = local.Run("infer", Images(32));
  ASSERT_TRUE(want.ok());

  // The load's limit refuses batch 32.
  auto at_load_limit = worker->Infer("resnet18", "infer", Images(32), {}, kGenerous);
  EXPECT_EQ(at_load_limit.status().code(), StatusCode::kResourceExhausted)
      << at_load_limit.status().ToString();
  // A grant past it lets the batch through (the process-wide sum grows too).
  auto granted = worker->Infer("resnet18", "infer", Images(32), {}, kGenerous, ample);
  ASSERT_TRUE(granted.ok()) << granted.status().ToString();
  EXPECT_TRUE(SameTensors(*granted, *want));
  // A limit below what the batch needs: 507 with the typed detail.
  const uint64_t short_limit = small + (big - small) / 2;
  auto refused = worker->Infer("resnet18", "infer", Images(32), {}, kGenerous, short_limit);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted) << refused.status().ToString();
  const MemoryLimitDetail* detail = refused.status().memory_limit();
  ASSERT_NE(detail, nullptr) << refused.status().ToString();
  EXPECT_EQ(detail->model, "resnet18");
  EXPECT_EQ(detail->device, "cpu");
  EXPECT_EQ(detail->limit_bytes, short_limit);
  EXPECT_LE(detail->in_use_bytes, short_limit);
  EXPECT_GT(detail->in_use_bytes + (detail->requested_bytes + 63) / 64 * 64, short_limit);
  EXPECT_TRUE(Contains(refused.status(), "limit " + std::to_string(short_limit) + " bytes"))
      << refused.status().ToString();
  // The next, with a larger limit, succeeds in the same process.
  auto next = worker->Infer("resnet18", "infer", Images(32), {}, kGenerous, ample);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_TRUE(SameTensors(*next, *want));
  // Without one, the load's limit is in force again.
  auto restored = worker->Infer("resnet18", "infer", Images(32), {}, kGenerous);
  EXPECT_EQ(restored.status().code(), StatusCode::kResourceExhausted)
      << restored.status().ToString();
  ASSERT_NE(restored.status().memory_limit(), nullptr);
  EXPECT_EQ(restored.status().memory_limit()->limit_bytes, between);
  EXPECT_TRUE(worker->Infer("resnet18", "infer", Images(1), {}, kGenerous).ok());
  // 0: no cap for this execution.
  EXPECT_TRUE(worker->Infer("resnet18", "infer", Images(32), {}, kGenerous, uint64_t{0}).ok());
  EXPECT_EQ(worker->pid(), pid);
  EXPECT_EQ(exits.Calls(), 0);
}

// set_limit (WorkerClient::SetLimit) lowers one model's cap at once: its
// next batch that needs more fails with the memory-limit error ending with
// the reason, while another model of the same worker serves the same batch;
// an infer's own limit_bytes still runs under its own cap; raising the cap
// back lets the batch through with the right answer.
TEST(WorkerMemoryTest, SetLimitCapsOneModelAtOnceNamingWhyAndLeavesTheOthersAlone) {
  REQUIRE_ZOO();
  const uint64_t need = Resnet18Peak(zoo, 8);
  ASSERT_GT(need, uint64_t{46'758'048});
  const uint64_t roomy = need + (uint64_t{16} << 20);
  ExitRecord exits;
  START_WORKER(worker, Options("set-limit"), exits);
  ipc::LoadMessage load_lo = LoadOf(zoo, "resnet18", roomy);
  load_lo.model = "lo";
  ipc::LoadMessage load_other = LoadOf(zoo, "resnet18", roomy);
  load_other.model = "other";
  ASSERT_TRUE(worker->Load(load_lo, kGenerous).ok());
  ASSERT_TRUE(worker->Load(load_other, kGenerous).ok());
  const pid_t pid = worker->pid();
  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "resnet18")).ok());
  const auto want = local.Run("infer", Images(8));
  ASSERT_TRUE(want.ok());
  auto before = worker->Infer("lo", "infer", Images(8), {}, kGenerous);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_TRUE(SameTensors(*before, *want));

  // Lowered to a little above its weights: the reply says what it holds.
  const uint64_t weights = ModelFigures(*worker, "lo").current_bytes;
  ASSERT_GE(weights, uint64_t{46'758'048});
  const uint64_t low = weights + (uint64_t{1} << 20);
  const std::string why = "preempted by model 'hi' (priority 5)";
  auto set = worker->SetLimit("lo", low, why, kGenerous);
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_EQ(set->model, "lo");
  EXPECT_EQ(set->held_bytes, weights);
  EXPECT_EQ(set->released_bytes, 0u) << "a CPU model caches nothing";

  auto refused = worker->Infer("lo", "infer", Images(8), {}, kGenerous);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted) << refused.status().ToString();
  EXPECT_TRUE(
      Contains(refused.status(), "model 'lo': memory limit exceeded: limit " + std::to_string(low)))
      << refused.status().ToString();
  const std::string text = refused.status().message();
  ASSERT_GE(text.size(), why.size());
  EXPECT_EQ(text.substr(text.size() - why.size() - 2), "; " + why) << text;
  ASSERT_NE(refused.status().memory_limit(), nullptr) << refused.status().ToString();
  EXPECT_EQ(refused.status().memory_limit()->model, "lo");
  EXPECT_EQ(refused.status().memory_limit()->limit_bytes, low);

  // The other model of the worker: its own cap, untouched.
  auto other = worker->Infer("other", "infer", Images(8), {}, kGenerous);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_TRUE(SameTensors(*other, *want));
  EXPECT_EQ(ModelFigures(*worker, "other").current_bytes, weights);

  // A request with its own limit (the grid's next grant) runs under it and
  // says no reason; the lowered cap is back after it.
  auto granted = worker->Infer("lo", "infer", Images(8), {}, kGenerous, roomy);
  ASSERT_TRUE(granted.ok()) << granted.status().ToString();
  EXPECT_TRUE(SameTensors(*granted, *want));
  auto short_grant = worker->Infer("lo", "infer", Images(8), {}, kGenerous, low);
  ASSERT_EQ(short_grant.status().code(), StatusCode::kResourceExhausted);
  EXPECT_FALSE(Contains(short_grant.status(), why)) << short_grant.status().ToString();
  auto again = worker->Infer("lo", "infer", Images(8), {}, kGenerous);
  ASSERT_EQ(again.status().code(), StatusCode::kResourceExhausted) << again.status().ToString();
  EXPECT_TRUE(Contains(again.status(), why)) << again.status().ToString();

  // Raised back: the batch fits again, with the same answer.
  auto raised = worker->SetLimit("lo", roomy, "", kGenerous);
  ASSERT_TRUE(raised.ok()) << raised.status().ToString();
  EXPECT_EQ(raised->held_bytes, weights);
  auto after = worker->Infer("lo", "infer", Images(8), {}, kGenerous);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_TRUE(SameTensors(*after, *want));

  // 0: no cap at all.
  ASSERT_TRUE(worker->SetLimit("lo", 0, "", kGenerous).ok());
  EXPECT_TRUE(worker->Infer("lo", "infer", Images(16), {}, kGenerous).ok());

  auto unknown = worker->SetLimit("nobody", low, why, kGenerous);
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound) << unknown.status().ToString();
  EXPECT_TRUE(Contains(unknown.status(), "model 'nobody' is not loaded"))
      << unknown.status().ToString();
  EXPECT_EQ(worker->pid(), pid);
  EXPECT_EQ(exits.Calls(), 0);
}

// A cap lowered from another thread while the model's request runs (the
// worker's receive loop applies it; the model's thread is computing) fails
// that very request, naming why; the model then serves on.
TEST(WorkerMemoryTest, ACapLoweredWhileARequestRunsFailsThatRequest) {
  REQUIRE_ZOO();
  ExitRecord exits;
  START_WORKER(worker, Options("set-limit-in-flight"), exits);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "gpt2", uint64_t{512} << 20), kGenerous).ok());
  // A long generate: 120 steps, each a forward that allocates.
  const std::vector<InferTensor> inputs = {TokenIds(8, 8, 3)};  // gpt2's max batch
  const nlohmann::json params = {{"max_new_tokens", 120}};
  TorchScriptBackend local;
  ASSERT_TRUE(local.Load(OpenEntry(zoo, "gpt2")).ok());
  const auto want = local.Run("generate", inputs, params);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  const uint64_t idle = ModelFigures(*worker, "gpt2").current_bytes;
  ASSERT_GT(idle, 0u);

  const std::string why = "preempted by model 'hi' (priority 9)";
  std::atomic<bool> returned{false};
  Result<std::vector<InferTensor>> running = Status::Internal("not run");
  const auto start = std::chrono::steady_clock::now();
  std::thread request([&] {
    running = worker->Infer("gpt2", "generate", inputs, params, kGenerous);
    returned = true;
  });
  // It runs once the model holds more than between requests.
  bool started = false;
  while (!returned && std::chrono::steady_clock::now() - start < kGenerous) {
    if (ModelFigures(*worker, "gpt2").current_bytes > idle) {
      started = true;
      break;
    }
  }
  Result<ipc::LimitSetMessage> set = Status::Internal("not sent");
  if (started) set = worker->SetLimit("gpt2", idle, why, kGenerous);
  const bool finished_first = returned.load();
  request.join();
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(started) << "the request ended before it was seen running (" << ms << " ms)";
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  EXPECT_FALSE(finished_first) << "the request ended before the cap came (" << ms << " ms)";
  EXPECT_GE(set->held_bytes, idle);
  ASSERT_FALSE(running.ok()) << "the request ran to its end under the lowered cap (" << ms
                             << " ms)";
  EXPECT_EQ(running.status().code(), StatusCode::kResourceExhausted) << running.status().ToString();
  ASSERT_NE(running.status().memory_limit(), nullptr) << running.status().ToString();
  EXPECT_EQ(running.status().memory_limit()->limit_bytes, idle);
  EXPECT_TRUE(Contains(running.status(), "model 'gpt2': memory limit exceeded"))
      << running.status().ToString();
  EXPECT_TRUE(Contains(running.status(), "; " + why)) << running.status().ToString();

  // Its bytes came back; raised again, the same request gives the answer.
  EXPECT_EQ(ModelFigures(*worker, "gpt2").current_bytes, idle);
  ASSERT_TRUE(worker->SetLimit("gpt2", uint64_t{512} << 20, "", kGenerous).ok());
  auto again = worker->Infer("gpt2", "generate", inputs, params, kGenerous);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(SameTensors(*again, *want));
  EXPECT_TRUE(worker->alive());
  EXPECT_EQ(exits.Calls(), 0);
}

// A model placed on cuda:N: in a build whose LibTorch has CUDA the worker
// caps the device's caching allocator at the model's limit; in a CPU-only
// build the load fails naming the device and why, no cap is left behind,
// and the same worker loads the next model. (The CUDA path runs on a lent
// GPU machine: scripts/gpu-check.sh.)
TEST(WorkerMemoryTest, ACudaModelInACpuBuildFailsItsLoadAndTheWorkerServesOn) {
  REQUIRE_ZOO();
  if (CudaBuild()) GTEST_SKIP() << "this build has CUDA: the GPU tests cover cuda:N";
  ExitRecord exits;
  START_WORKER(worker, Options("cuda-in-cpu-build"), exits);
  ipc::LoadMessage load = LoadOf(zoo, "digits", uint64_t{64} << 20);
  load.device = "cuda:0";
  auto failed = worker->Load(load, kGenerous);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnsupported) << failed.status().ToString();
  EXPECT_TRUE(Contains(failed.status(), "model 'digits' on cuda:0")) << failed.status().ToString();
  EXPECT_TRUE(Contains(failed.status(), "no CUDA")) << failed.status().ToString();
  auto stats = worker->Stats(kGenerous);
  ASSERT_TRUE(stats.ok());
  EXPECT_TRUE(stats->cuda.empty()) << "no CUDA budget is left behind";
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "digits"), kGenerous).ok());
  EXPECT_TRUE(worker->alive());
  EXPECT_EQ(exits.Calls(), 0);
}

}  // namespace
}  // namespace modelgrid

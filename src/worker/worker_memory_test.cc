// The memory limit inside a worker: a request past it fails alone with
// RESOURCE_EXHAUSTED naming the model and the limit, the next one succeeds
// in the same process; a load past it fails the same way.
#include <gtest/gtest.h>

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

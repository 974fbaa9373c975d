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
  // The failed load's limit no longer counts: an unlimited load succeeds.
  auto again = worker->Load(LoadOf(zoo, "resnet18"), kGenerous);
  EXPECT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(worker->Infer("resnet18", "infer", Images(8), {}, kGenerous).ok());
}

TEST(WorkerMemoryTest, ModelsOfOneWorkerShareTheSumOfTheirLimits) {
  REQUIRE_ZOO();
  // Measure resnet18's process peak at batch 8 without a limit.
  uint64_t need = 0;
  {
    ExitRecord exits;
    START_WORKER(probe, Options("sum-probe"), exits);
    ASSERT_TRUE(probe->Load(LoadOf(zoo, "resnet18"), kGenerous).ok());
    ASSERT_TRUE(probe->Infer("resnet18", "infer", Images(8), {}, kGenerous).ok());
    auto s = probe->Stats(kGenerous);
    ASSERT_TRUE(s.ok());
    need = s->peak_bytes;
  }
  ExitRecord exits;
  START_WORKER(worker, Options("sum"), exits);
  // resnet18's own limit is short of what batch 8 needs; digits (tiny)
  // brings 32 MiB more to the process's total.
  const uint64_t resnet_limit = need - (uint64_t{2} << 20);
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "resnet18", resnet_limit), kGenerous).ok());
  auto short_of = worker->Infer("resnet18", "infer", Images(8), {}, kGenerous);
  EXPECT_EQ(short_of.status().code(), StatusCode::kResourceExhausted)
      << short_of.status().ToString();
  EXPECT_TRUE(Contains(short_of.status(), "limit " + std::to_string(resnet_limit) + " bytes"))
      << short_of.status().ToString();
  ASSERT_TRUE(worker->Load(LoadOf(zoo, "digits", uint64_t{32} << 20), kGenerous).ok());
  auto fits = worker->Infer("resnet18", "infer", Images(8), {}, kGenerous);
  EXPECT_TRUE(fits.ok()) << fits.status().ToString();
  // Unloading digits takes its share back.
  ASSERT_TRUE(worker->Unload("digits", kGenerous).ok());
  auto short_again = worker->Infer("resnet18", "infer", Images(8), {}, kGenerous);
  EXPECT_EQ(short_again.status().code(), StatusCode::kResourceExhausted)
      << short_again.status().ToString();
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

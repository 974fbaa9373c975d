// The NVML wrapper against the fake NVML (fake_nvml/): exact figures, the
// fallbacks to older calls, the size protocol, errors; and CUDA_VISIBLE_DEVICES.

#include "modelgrid/device/nvml.h"

#include <gtest/gtest.h>

#include "device/fake_nvml/fake_nvml_env.h"
#include "modelgrid/bytes.h"

namespace modelgrid {
namespace {

using testing::FakeNvmlEnv;
using testing::kGpu0Uuid;
using testing::kGpu1Uuid;
using testing::TwoGpus;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(NvmlTest, ReadsTwoGpusExactly) {
  FakeNvmlEnv env(FAKE_NVML_PATH, TwoGpus());
  const long shutdowns = env.Calls("nvmlShutdown");
  const long old_memory_calls = env.Calls("nvmlDeviceGetMemoryInfo");
  {
    auto nvml = Nvml::Open();
    ASSERT_TRUE(nvml.ok()) << nvml.status().ToString();
    EXPECT_EQ((*nvml)->library(), FAKE_NVML_PATH);
    EXPECT_EQ(env.Calls("init_depth"), 1);
    EXPECT_EQ(*(*nvml)->DriverVersion(), "580.65.06");
    ASSERT_EQ(*(*nvml)->DeviceCount(), 2u);

    auto g0 = (*nvml)->Gpu(0);
    ASSERT_TRUE(g0.ok()) << g0.status().ToString();
    EXPECT_EQ(g0->nvml_index, 0u);
    EXPECT_EQ(g0->name, "NVIDIA H100 80GB HBM3");
    EXPECT_EQ(g0->uuid, kGpu0Uuid);
    EXPECT_EQ(g0->total_bytes, 80 * kGiB);
    EXPECT_EQ(g0->used_bytes, 10 * kGiB);
    ASSERT_TRUE(g0->reserved_bytes.has_value());
    EXPECT_EQ(*g0->reserved_bytes, 512 * kMiB);
    EXPECT_EQ(g0->free_bytes, 80 * kGiB - 10 * kGiB - 512 * kMiB);
    EXPECT_EQ(g0->unavailable_bytes(), 10 * kGiB + 512 * kMiB);
    ASSERT_TRUE(g0->utilization.has_value());
    EXPECT_EQ(g0->utilization->gpu_percent, 35u);
    EXPECT_EQ(g0->utilization->memory_percent, 20u);

    auto g1 = (*nvml)->Gpu(1);
    ASSERT_TRUE(g1.ok()) << g1.status().ToString();
    EXPECT_EQ(g1->name, "NVIDIA A100-SXM4-40GB");
    EXPECT_EQ(g1->uuid, kGpu1Uuid);
    EXPECT_EQ(g1->total_bytes, 40 * kGiB);
    EXPECT_EQ(g1->unavailable_bytes(), 2 * kGiB + 256 * kMiB);
    EXPECT_FALSE(g1->utilization.has_value());  // "n/a": not supported, not an error
    EXPECT_EQ(env.Calls("nvmlDeviceGetMemoryInfo"), old_memory_calls);  // the _v2 call answered

    auto missing = (*nvml)->Gpu(2);
    ASSERT_FALSE(missing.ok());
    EXPECT_TRUE(Contains(missing.status().message(), "nvmlDeviceGetHandleByIndex_v2(GPU 2)"))
        << missing.status().message();
  }
  EXPECT_EQ(env.Calls("init_depth"), 0);  // the destructor shut NVML down
  EXPECT_EQ(env.Calls("nvmlShutdown") - shutdowns, 1);
}

TEST(NvmlTest, OldLibraryFallsBackToTheOlderMemoryAndProcessCalls) {
  FakeNvmlEnv env(FAKE_NVML_OLD_PATH, TwoGpus());
  const long before = env.Calls("nvmlDeviceGetComputeRunningProcesses_v2");
  auto nvml = Nvml::Open();
  ASSERT_TRUE(nvml.ok()) << nvml.status().ToString();
  auto g0 = (*nvml)->Gpu(0);
  ASSERT_TRUE(g0.ok()) << g0.status().ToString();
  EXPECT_FALSE(g0->reserved_bytes.has_value());
  EXPECT_EQ(g0->used_bytes, 10 * kGiB + 512 * kMiB);  // the old call counts reserved as used
  EXPECT_EQ(g0->unavailable_bytes(), 10 * kGiB + 512 * kMiB);
  auto p = (*nvml)->Processes(1);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->size(), 1u);
  EXPECT_EQ((*p)[0].pid, 99u);
  EXPECT_EQ((*p)[0].used_bytes, 2 * kGiB);
  EXPECT_EQ(env.Calls("nvmlDeviceGetComputeRunningProcesses_v2") - before, 2);  // size, then fetch
}

TEST(NvmlTest, MemoryV2VersionMismatchFallsBackToTheOldCall) {
  auto config = TwoGpus();
  config["devices"][1]["memory_v2_error"] = 25;  // NVML_ERROR_ARGUMENT_VERSION_MISMATCH
  FakeNvmlEnv env(FAKE_NVML_PATH, config);
  const long before = env.Calls("nvmlDeviceGetMemoryInfo");
  auto nvml = Nvml::Open();
  ASSERT_TRUE(nvml.ok());
  auto g1 = (*nvml)->Gpu(1);
  ASSERT_TRUE(g1.ok()) << g1.status().ToString();
  EXPECT_FALSE(g1->reserved_bytes.has_value());
  EXPECT_EQ(g1->used_bytes, 2 * kGiB + 256 * kMiB);
  EXPECT_EQ(env.Calls("nvmlDeviceGetMemoryInfo") - before, 1);
}

TEST(NvmlTest, ProcessesWithNotAvailableValuesAndDuplicatePids) {
  auto config = TwoGpus();
  config["devices"][0]["processes"].push_back({{"pid", 4242}, {"used_bytes", 1024}});
  config["devices"][0]["processes"].push_back({{"pid", 3}, {"used_bytes", 0}});
  FakeNvmlEnv env(FAKE_NVML_PATH, config);
  const long v2_before = env.Calls("nvmlDeviceGetComputeRunningProcesses_v2");
  auto nvml = Nvml::Open();
  ASSERT_TRUE(nvml.ok());
  auto p = (*nvml)->Processes(0);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->size(), 3u);  // sorted by pid, 4242 merged
  EXPECT_EQ((*p)[0].pid, 3u);
  EXPECT_EQ((*p)[0].used_bytes, 0u);
  EXPECT_EQ((*p)[1].pid, 17u);
  EXPECT_FALSE((*p)[1].used_bytes.has_value()) << *(*p)[1].used_bytes;  // not 0xFFFF...
  EXPECT_EQ((*p)[2].pid, 4242u);
  EXPECT_EQ((*p)[2].used_bytes, 1 * kGiB + 1024);
  EXPECT_EQ(env.Calls("nvmlDeviceGetComputeRunningProcesses_v2"), v2_before);  // v3 answered
}

TEST(NvmlTest, ProcessQueryRetriesWhileTheBufferIsTooSmall) {
  auto config = TwoGpus();
  config["insufficient_size_calls"] = 3;
  FakeNvmlEnv env(FAKE_NVML_PATH, config);
  auto nvml = Nvml::Open();
  ASSERT_TRUE(nvml.ok());
  const long before = env.Calls("nvmlDeviceGetComputeRunningProcesses_v3");
  auto p = (*nvml)->Processes(1);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->size(), 1u);
  EXPECT_EQ((*p)[0].used_bytes, 2 * kGiB);
  // The sizing call, three answered INSUFFICIENT_SIZE, the one that worked.
  EXPECT_EQ(env.Calls("nvmlDeviceGetComputeRunningProcesses_v3") - before, 5);
}

TEST(NvmlTest, ProcessQueryGivesUpAfterItsAttempts) {
  auto config = TwoGpus();
  config["insufficient_size_calls"] = 1000;
  FakeNvmlEnv env(FAKE_NVML_PATH, config);
  auto nvml = Nvml::Open();
  ASSERT_TRUE(nvml.ok());
  auto p = (*nvml)->Processes(0);
  ASSERT_FALSE(p.ok());
  const std::string m = p.status().message();
  EXPECT_TRUE(Contains(
      m, "nvmlDeviceGetComputeRunningProcesses_v3(GPU 0): Insufficient Size (NVML error 7)"))
      << m;
  EXPECT_TRUE(Contains(m, "after " + std::to_string(Nvml::kProcessQueryAttempts) + " attempts"))
      << m;
}

TEST(NvmlTest, InitFailureNamesTheCallAndNvmlsText) {
  FakeNvmlEnv env(FAKE_NVML_PATH, {{"init_error", 9}});
  auto nvml = Nvml::Open();
  ASSERT_FALSE(nvml.ok());
  EXPECT_EQ(nvml.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(nvml.status().message(), "nvmlInit_v2")) << nvml.status().message();
  EXPECT_TRUE(Contains(nvml.status().message(), "Driver Not Loaded (NVML error 9)"))
      << nvml.status().message();
  EXPECT_EQ(env.Calls("init_depth"), 0);
}

TEST(NvmlTest, UnreadableFakeFileIsAnInitError) {
  FakeNvmlEnv env(FAKE_NVML_PATH, TwoGpus());
  std::ofstream(env.file()) << "{ not json";
  auto nvml = Nvml::Open();
  ASSERT_FALSE(nvml.ok());
  EXPECT_TRUE(Contains(nvml.status().message(), env.file().string())) << nvml.status().message();
}

TEST(NvmlTest, MissingLibraryAndLibraryWithoutNvml) {
  auto missing = Nvml::Open("/nonexistent/libnvidia-ml.so.1");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(missing.status().message(), "/nonexistent/libnvidia-ml.so.1"))
      << missing.status().message();
  auto not_nvml = Nvml::Open("libm.so.6");
  ASSERT_FALSE(not_nvml.ok());
  EXPECT_TRUE(Contains(not_nvml.status().message(), "lacks nvmlInit_v2"))
      << not_nvml.status().message();
}

TEST(NvmlTest, LostGpuIsAnErrorNamingTheCallAndTheGpu) {
  auto config = TwoGpus();
  config["devices"][1]["lost"] = "memory";
  FakeNvmlEnv env(FAKE_NVML_PATH, config);
  {
    auto nvml = Nvml::Open();
    ASSERT_TRUE(nvml.ok());
    EXPECT_TRUE((*nvml)->Gpu(0).ok());
    auto g1 = (*nvml)->Gpu(1);
    ASSERT_FALSE(g1.ok());
    EXPECT_EQ(g1.status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(g1.status().message(),
              "nvmlDeviceGetMemoryInfo_v2(GPU 1): GPU is lost (NVML error 15)");
    EXPECT_EQ(*(*nvml)->Uuid(1), kGpu1Uuid);
  }
  config["devices"][1]["lost"] = "handle";
  env.Write(config);  // read again at the next nvmlInit_v2
  auto nvml = Nvml::Open();
  ASSERT_TRUE(nvml.ok());
  auto g1 = (*nvml)->Gpu(1);
  ASSERT_FALSE(g1.ok());
  EXPECT_EQ(g1.status().message(),
            "nvmlDeviceGetHandleByIndex_v2(GPU 1): GPU is lost (NVML error 15)");
  EXPECT_FALSE((*nvml)->Processes(1).ok());
}

// CUDA_VISIBLE_DEVICES, applied to three GPUs.
class VisibleGpusTest : public ::testing::Test {
 protected:
  std::vector<std::string> uuids_ = {"GPU-0aaa-1", "GPU-1bbb-2", "GPU-1bbc-3"};
  std::vector<uint32_t> Select(const std::optional<std::string>& value, size_t warnings = 0) {
    VisibleGpus v = SelectVisibleGpus(value, uuids_);
    EXPECT_EQ(v.warnings.size(), warnings) << (v.warnings.empty() ? "" : v.warnings.front());
    return v.nvml_indices;
  }
};

TEST_F(VisibleGpusTest, UnsetEmptyIndicesUuidsAndOrder) {
  using V = std::vector<uint32_t>;
  EXPECT_EQ(Select(std::nullopt), (V{0, 1, 2}));
  EXPECT_EQ(Select(""), V{});
  EXPECT_EQ(Select("2"), V{2});
  EXPECT_EQ(Select("2,0"), (V{2, 0}));
  EXPECT_EQ(Select(" 1 , 0 "), (V{1, 0}));
  EXPECT_EQ(Select("GPU-1bbc-3,GPU-0aaa-1"), (V{2, 0}));
  EXPECT_EQ(Select("GPU-1bbc,0"), (V{2, 0}));  // a unique prefix
}

TEST_F(VisibleGpusTest, TheFirstEntryNamingNoGpuEndsTheList) {
  using V = std::vector<uint32_t>;
  EXPECT_EQ(Select("1,7,0", 1), V{1});
  EXPECT_EQ(Select("GPU-ffff,0", 1), V{});
  EXPECT_EQ(Select("0,GPU-1bb", 1), V{0});  // ambiguous prefix
  EXPECT_EQ(Select("0,0,1", 1), V{0});      // listed twice
  EXPECT_EQ(Select("2,MIG-abc", 1), V{2});
  EXPECT_EQ(Select("-1,0", 1), V{});
  VisibleGpus v = SelectVisibleGpus("1,7,0", uuids_);
  ASSERT_EQ(v.warnings.size(), 1u);
  EXPECT_TRUE(Contains(v.warnings[0], "entry '7'")) << v.warnings[0];
  EXPECT_TRUE(Contains(v.warnings[0], "3 GPU(s) found")) << v.warnings[0];
}

}  // namespace
}  // namespace modelgrid

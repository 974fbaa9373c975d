// The real NVML on a GPU machine, checked against nvidia-smi (an independent
// reader of the same driver). Skips, saying why, where NVML cannot be loaded.
// Run by scripts/gpu-check.sh (`ctest -L gpu`).

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "device/fake_nvml/fake_nvml_env.h"
#include "device/gpu_test_listener.h"
#include "modelgrid/bytes.h"
#include "modelgrid/device.h"
#include "modelgrid/device/nvml.h"

namespace modelgrid {
namespace {

constexpr const char* kRealNvml = "libnvidia-ml.so.1";

struct SmiGpu {
  std::string uuid, name;
  uint64_t total_mib = 0;
};

// nvidia-smi's view, in NVML order; empty when nvidia-smi is missing.
std::vector<SmiGpu> NvidiaSmi() {
  std::vector<SmiGpu> out;
  FILE* p = ::popen(
      "nvidia-smi --query-gpu=uuid,memory.total,name --format=csv,noheader,nounits 2>/dev/null",
      "r");
  if (!p) return out;
  std::array<char, 512> line;
  while (std::fgets(line.data(), line.size(), p)) {
    std::stringstream ss(line.data());
    SmiGpu g;
    std::string total;
    std::getline(ss, g.uuid, ',');
    std::getline(ss, total, ',');
    std::getline(ss, g.name);
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t\r\n") + 1);
      return s;
    };
    g.uuid = trim(g.uuid);
    g.name = trim(g.name);
    g.total_mib = std::stoull(trim(total));
    out.push_back(g);
  }
  ::pclose(p);
  return out;
}

class NvmlGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto nvml = Nvml::Open(kRealNvml);
    if (!nvml.ok()) GTEST_SKIP() << "no real NVML on this machine: " << nvml.status().message();
    nvml_ = std::move(*nvml);
  }
  std::unique_ptr<Nvml> nvml_;
};

TEST_F(NvmlGpuTest, NvmlAgreesWithNvidiaSmi) {
  auto count = nvml_->DeviceCount();
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  if (*count == 0) GTEST_SKIP() << "NVML loads but sees no GPU";
  const std::vector<SmiGpu> smi = NvidiaSmi();
  if (smi.empty()) GTEST_SKIP() << "nvidia-smi missing: nothing independent to compare with";
  ASSERT_EQ(smi.size(), *count);
  for (uint32_t i = 0; i < *count; ++i) {
    auto gpu = nvml_->Gpu(i);
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    EXPECT_EQ(gpu->uuid, smi[i].uuid);
    EXPECT_EQ(gpu->name, smi[i].name);
    EXPECT_EQ(gpu->total_bytes / kMiB, smi[i].total_mib);
    EXPECT_LE(gpu->free_bytes, gpu->total_bytes);
    EXPECT_EQ(gpu->uuid.rfind("GPU-", 0), 0u) << gpu->uuid;
    auto processes = nvml_->Processes(i);
    EXPECT_TRUE(processes.ok()) << processes.status().ToString();
    std::printf("GPU %u: %s %s total %llu free %llu reserved %s, %zu process(es)\n", i,
                gpu->name.c_str(), gpu->uuid.c_str(),
                static_cast<unsigned long long>(gpu->total_bytes),
                static_cast<unsigned long long>(gpu->free_bytes),
                gpu->reserved_bytes ? std::to_string(*gpu->reserved_bytes).c_str() : "n/a",
                processes.ok() ? processes->size() : 0);
  }
}

TEST_F(NvmlGpuTest, DiscoveryNumbersTheVisibleGpus) {
  testing::ScopedEnv library("MODELGRID_NVML_LIBRARY", std::nullopt);
  testing::ScopedEnv visible("CUDA_VISIBLE_DEVICES", std::nullopt);
  auto count = nvml_->DeviceCount();
  ASSERT_TRUE(count.ok());
  auto found = DiscoverDevicesDetailed();
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->gpu_status.ok()) << found->gpu_status.ToString();
  ASSERT_EQ(found->devices.size(), 1 + *count);
  if (*count == 0) return;
  auto last = nvml_->Uuid(*count - 1);
  ASSERT_TRUE(last.ok());
  visible.Set(*last);  // only the last GPU, by UUID: it becomes cuda:0
  auto d = ParseDeviceSpec("cuda:0");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->uuid, *last);
}

}  // namespace
}  // namespace modelgrid

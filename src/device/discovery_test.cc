// DiscoverDevices, ParseDeviceSpec("cuda:N"), the audit call and planning on
// the GPUs the fake NVML describes.

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "device/fake_nvml/fake_nvml_env.h"
#include "modelgrid/bytes.h"
#include "modelgrid/device.h"
#include "modelgrid/device/nvml.h"
#include "modelgrid/placement.h"

namespace modelgrid {
namespace {

using testing::FakeNvmlEnv;
using testing::kGpu0Uuid;
using testing::kGpu1Uuid;
using testing::ScopedEnv;
using testing::TwoGpus;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The UUIDs of the CUDA devices, in order.
std::vector<std::string> CudaUuids(const std::vector<Device>& devices) {
  std::vector<std::string> out;
  for (const Device& d : devices) {
    if (d.kind == DeviceKind::kCuda) out.push_back(d.uuid);
  }
  return out;
}

// Routes spdlog's default logger into a string for the life of the object.
class CapturedLog {
 public:
  CapturedLog() : old_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    sink->set_pattern("%l %v");
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink));
  }
  ~CapturedLog() { spdlog::set_default_logger(old_); }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> old_;
};

TEST(DiscoveryTest, CpuThenTwoGpusWithExactFigures) {
  FakeNvmlEnv env(FAKE_NVML_PATH, TwoGpus());
  auto found = DiscoverDevicesDetailed();
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_TRUE(found->gpu_status.ok()) << found->gpu_status.ToString();
  EXPECT_TRUE(found->warnings.empty());
  const auto& d = found->devices;
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].id, "cpu");
  EXPECT_EQ(d[1].id, "cuda:0");
  EXPECT_EQ(d[1].kind, DeviceKind::kCuda);
  EXPECT_EQ(d[1].name, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(d[1].uuid, kGpu0Uuid);
  EXPECT_EQ(d[1].total_bytes, 80 * kGiB);
  EXPECT_EQ(d[1].used_bytes, 10 * kGiB + 512 * kMiB);  // used + reserved: nobody else can have them
  EXPECT_EQ(d[1].context_bytes, DefaultContextBytes(DeviceKind::kCuda));
  EXPECT_EQ(d[2].id, "cuda:1");
  EXPECT_EQ(d[2].name, "NVIDIA A100-SXM4-40GB");
  EXPECT_EQ(d[2].uuid, kGpu1Uuid);
  EXPECT_EQ(d[2].total_bytes, 40 * kGiB);
  EXPECT_EQ(d[2].used_bytes, 2 * kGiB + 256 * kMiB);
  EXPECT_TRUE(d[2].is_accelerator());
}

TEST(DiscoveryTest, OldLibraryGivesTheSameDevices) {
  FakeNvmlEnv env(FAKE_NVML_OLD_PATH, TwoGpus());
  auto d = DiscoverDevices();
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->size(), 3u);
  EXPECT_EQ((*d)[1].used_bytes, 10 * kGiB + 512 * kMiB);
  EXPECT_EQ((*d)[2].used_bytes, 2 * kGiB + 256 * kMiB);
}

TEST(DiscoveryTest, CudaVisibleDevicesByIndexUuidAndOrder) {
  FakeNvmlEnv env(FAKE_NVML_PATH, TwoGpus());
  ScopedEnv visible("CUDA_VISIBLE_DEVICES", "1");
  auto d = DiscoverDevices();
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ((*d)[1].id, "cuda:0");
  EXPECT_EQ((*d)[1].uuid, kGpu1Uuid);
  EXPECT_EQ((*d)[1].total_bytes, 40 * kGiB);

  visible.Set(kGpu1Uuid);
  EXPECT_EQ(CudaUuids(*DiscoverDevices()), std::vector<std::string>{kGpu1Uuid});
  visible.Set("GPU-aaaa");  // a UUID prefix
  EXPECT_EQ(CudaUuids(*DiscoverDevices()), std::vector<std::string>{kGpu1Uuid});
  visible.Set("1,0");
  d = DiscoverDevices();
  EXPECT_EQ(CudaUuids(*d), (std::vector<std::string>{kGpu1Uuid, kGpu0Uuid}));
  EXPECT_EQ((*d)[1].id, "cuda:0");
  EXPECT_EQ((*d)[2].id, "cuda:1");
  EXPECT_EQ((*d)[2].name, "NVIDIA H100 80GB HBM3");
  visible.Set("");
  EXPECT_TRUE(CudaUuids(*DiscoverDevices()).empty());
}

TEST(DiscoveryTest, CudaVisibleDevicesNamingAMissingGpuEndsTheList) {
  FakeNvmlEnv env(FAKE_NVML_PATH, TwoGpus());
  ScopedEnv visible("CUDA_VISIBLE_DEVICES", "1,5,0");
  CapturedLog log;
  auto found = DiscoverDevicesDetailed();
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(CudaUuids(found->devices), std::vector<std::string>{kGpu1Uuid});
  ASSERT_EQ(found->warnings.size(), 1u);
  EXPECT_TRUE(Contains(found->warnings[0], "entry '5'")) << found->warnings[0];
  EXPECT_EQ(log.text(), "");  // the detailed call does not log
  ASSERT_TRUE(DiscoverDevices().ok());
  EXPECT_TRUE(
      Contains(log.text(), "warning device discovery: CUDA_VISIBLE_DEVICES='1,5,0': entry '5'"))
      << log.text();
  visible.Set("GPU-ffff");
  EXPECT_TRUE(CudaUuids(*DiscoverDevices()).empty());
}

TEST(DiscoveryTest, InitFailureLeavesTheCpuAloneAndSaysWhy) {
  FakeNvmlEnv env(FAKE_NVML_PATH, {{"init_error", 9}});
  auto found = DiscoverDevicesDetailed();
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->devices.size(), 1u);
  EXPECT_EQ(found->devices[0].id, "cpu");
  EXPECT_EQ(found->gpu_status.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(found->gpu_status.message(), "nvmlInit_v2")) << found->gpu_status.message();
  CapturedLog log;
  auto d = DiscoverDevices();
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->size(), 1u);
  const std::string text = log.text();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;  // one line
  EXPECT_TRUE(Contains(text, "warning no GPU discovered, using the CPU only: nvmlInit_v2")) << text;
  EXPECT_TRUE(Contains(text, "Driver Not Loaded (NVML error 9)")) << text;
}

TEST(DiscoveryTest, DeviceCountFailureLeavesTheCpuAlone) {
  FakeNvmlEnv env(FAKE_NVML_PATH, {{"count_error", 4}});
  auto found = DiscoverDevicesDetailed();
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->devices.size(), 1u);
  EXPECT_TRUE(Contains(found->gpu_status.message(), "nvmlDeviceGetCount_v2"))
      << found->gpu_status.message();
}

TEST(DiscoveryTest, LostGpuIsLeftOutAndTheOthersAreNumberedFromZero) {
  auto config = TwoGpus();
  config["devices"][0]["lost"] = "handle";
  FakeNvmlEnv env(FAKE_NVML_PATH, config);
  auto found = DiscoverDevicesDetailed();
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->devices.size(), 2u);
  EXPECT_EQ(found->devices[1].id, "cuda:0");
  EXPECT_EQ(found->devices[1].uuid, kGpu1Uuid);
  ASSERT_EQ(found->warnings.size(), 1u);
  EXPECT_TRUE(Contains(found->warnings[0],
                       "GPU 0 left out: nvmlDeviceGetHandleByIndex_v2(GPU 0): GPU is lost"))
      << found->warnings[0];

  config = TwoGpus();
  config["devices"][1]["lost"] = "memory";  // the UUID is still readable
  env.Write(config);
  found = DiscoverDevicesDetailed();
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(CudaUuids(found->devices), std::vector<std::string>{kGpu0Uuid});
  ASSERT_EQ(found->warnings.size(), 1u);
  EXPECT_TRUE(Contains(found->warnings[0], std::string("GPU 1 (") + kGpu1Uuid + ") left out"))
      << found->warnings[0];
}

TEST(DiscoveryTest, MissingLibraryLeavesTheCpuAlone) {
  ScopedEnv library("MODELGRID_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1");
  auto found = DiscoverDevicesDetailed();
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->devices.size(), 1u);
  EXPECT_EQ(found->devices[0].id, "cpu");
  EXPECT_EQ(found->gpu_status.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(found->gpu_status.message(), "/nonexistent/libnvidia-ml.so.1"))
      << found->gpu_status.message();
}

TEST(DiscoveryTest, ParseDeviceSpecResolvesCudaThroughDiscovery) {
  FakeNvmlEnv env(FAKE_NVML_PATH, TwoGpus());
  auto d = ParseDeviceSpec("cuda:1");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->id, "cuda:1");
  EXPECT_EQ(d->uuid, kGpu1Uuid);
  EXPECT_EQ(d->total_bytes, 40 * kGiB);
  EXPECT_EQ(ParseDeviceSpec("cuda:01")->uuid, kGpu1Uuid);
  auto missing = ParseDeviceSpec("cuda:2");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(missing.status().message(), "no GPU 2: 2 GPU(s) found (cuda:0..cuda:1)"))
      << missing.status().message();
  auto specs = ParseDeviceSpecs({"cuda:1", "cuda:0"});
  ASSERT_TRUE(specs.ok());
  EXPECT_EQ(CudaUuids(*specs), (std::vector<std::string>{kGpu1Uuid, kGpu0Uuid}));

  ScopedEnv library("MODELGRID_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1");
  auto unavailable = ParseDeviceSpec("cuda:0");
  ASSERT_FALSE(unavailable.ok());
  EXPECT_EQ(unavailable.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(unavailable.status().message(), "no GPU 0: NVML is unavailable"))
      << unavailable.status().message();
  EXPECT_TRUE(Contains(unavailable.status().message(), "/nonexistent/libnvidia-ml.so.1"));
}

TEST(DiscoveryTest, AuditFindsTheDeviceAgainByUuid) {
  FakeNvmlEnv env(FAKE_NVML_PATH, TwoGpus());
  ScopedEnv visible("CUDA_VISIBLE_DEVICES", "1");
  auto gpu = ParseDeviceSpec("cuda:0");  // NVML's GPU 1
  ASSERT_TRUE(gpu.ok());
  auto p = AuditDeviceProcesses(*gpu);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->size(), 1u);
  EXPECT_EQ((*p)[0].pid, 99u);
  EXPECT_EQ((*p)[0].used_bytes, 2 * kGiB);
  EXPECT_EQ(AuditDeviceProcesses(*ParseDeviceSpec("cpu")).status().code(),
            StatusCode::kInvalidArgument);

  auto config = TwoGpus();
  config["devices"].erase(1);  // the GPU is gone
  env.Write(config);
  auto gone = AuditDeviceProcesses(*gpu);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(gone.status().message(), kGpu1Uuid)) << gone.status().message();
}

// A worker's context: NVML's bytes for its pid minus its allocator's reserve.
TEST(DiscoveryTest, WorkerContextIsNvmlProcessBytesMinusAllocatorReserve) {
  FakeNvmlEnv env(FAKE_NVML_PATH, TwoGpus());
  auto gpu = ParseDeviceSpec("cuda:0");  // NVML GPU 0: pid 4242 holds 1 GiB, pid 17 n/a
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  auto ctx = MeasureWorkerContext(*gpu, 4242, 600 * kMiB);
  ASSERT_TRUE(ctx.ok()) << ctx.status().ToString();
  EXPECT_EQ(*ctx, 424 * kMiB);
  EXPECT_EQ(*MeasureWorkerContext(*gpu, 4242, 2 * kGiB), 0u);  // never below zero

  auto na = MeasureWorkerContext(*gpu, 17, 0);
  EXPECT_EQ(na.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(na.status().message(), "pid 17")) << na.status().message();
  auto absent = MeasureWorkerContext(*gpu, 5, 0);
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(absent.status().message(), "no process 5")) << absent.status().message();
  EXPECT_EQ(MeasureWorkerContext(*ParseDeviceSpec("cpu"), 1, 0).status().code(),
            StatusCode::kInvalidArgument);
}

// Planning on discovered GPUs subtracts what NVML says others use.
TEST(DiscoveryTest, PlanOnDiscoveredGpusSubtractsNvmlUsedBytes) {
  // cuda:0: 16 GiB with 10 GiB used; cuda:1: 16 GiB with 2 GiB used.
  nlohmann::json config = {{"devices",
                            {{{"name", "GPU A"},
                              {"uuid", "GPU-a"},
                              {"total", 16 * kGiB},
                              {"used", 10 * kGiB},
                              {"free", 6 * kGiB}},
                             {{"name", "GPU B"},
                              {"uuid", "GPU-b"},
                              {"total", 16 * kGiB},
                              {"used", 2 * kGiB},
                              {"free", 14 * kGiB}}}}};
  FakeNvmlEnv env(FAKE_NVML_PATH, config);
  auto devices = DiscoverDevices();
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices->size(), 3u);
  const uint64_t ctx = DefaultContextBytes(DeviceKind::kCuda);  // 512 MiB per worker process
  // Free for models, one worker each: cuda:0 6 GiB − 0.5 = 5.5 GiB; cuda:1 14 GiB − contexts.
  std::vector<PlacementItem> items(3);
  items[0].model = "a";
  items[0].request_bytes = 6 * kGiB;
  items[1].model = "b";
  items[1].request_bytes = 6 * kGiB;
  items[2].model = "c";
  items[2].request_bytes = 5 * kGiB;
  PlanOptions options;
  options.strategy = Strategy::kFillFirst;
  options.isolation = Isolation::kModel;
  options.max_cpu_models = 0;
  auto plan = MakePlan(*devices, items, options);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_TRUE(plan->unplaced.empty());
  std::map<std::string, std::string> where;
  for (const Assignment& a : plan->placed) where[a.model] = a.device;
  // 6 GiB + context does not fit in cuda:0's 6 GiB; 5 GiB + context does.
  EXPECT_EQ(where["a"], "cuda:1");
  EXPECT_EQ(where["b"], "cuda:1");
  EXPECT_EQ(where["c"], "cuda:0");
  ASSERT_EQ(plan->devices.size(), 3u);
  EXPECT_EQ(plan->devices[1].used_by_others, 10 * kGiB);
  EXPECT_EQ(plan->devices[1].committed(), 10 * kGiB + 5 * kGiB + ctx);
  EXPECT_EQ(plan->devices[2].used_by_others, 2 * kGiB);
  EXPECT_EQ(plan->devices[2].committed(), 2 * kGiB + 12 * kGiB + 2 * ctx);

  // Nothing used on cuda:0 any more: fill-first now fills it first (6.5 + 6.5
  // GiB; c's 5.5 GiB would pass 16 GiB) and c goes to cuda:1.
  config["devices"][0]["used"] = 0;
  config["devices"][0]["free"] = 16 * kGiB;
  env.Write(config);
  plan = MakePlan(*DiscoverDevices(), items, options);
  ASSERT_TRUE(plan.ok());
  where.clear();
  for (const Assignment& a : plan->placed) where[a.model] = a.device;
  EXPECT_EQ(where["a"], "cuda:0");
  EXPECT_EQ(where["b"], "cuda:0");
  EXPECT_EQ(where["c"], "cuda:1");
}

}  // namespace
}  // namespace modelgrid

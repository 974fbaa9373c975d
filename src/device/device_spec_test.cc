#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cstdlib>

#include "modelgrid/bytes.h"
#include "modelgrid/device.h"

namespace modelgrid {
namespace {

TEST(DeviceSpecTest, SimulatedDevicesAreNumberedPerName) {
  auto d = ParseDeviceSpecs({"sim:a100=80GiB", "sim:a100=80GiB", "sim:t4=16GiB,context=300MiB,used=1GiB"});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_EQ(d->size(), 3u);
  EXPECT_EQ((*d)[0].id, "sim:a100#0");
  EXPECT_EQ((*d)[1].id, "sim:a100#1");
  EXPECT_EQ((*d)[2].id, "sim:t4#0");
  EXPECT_EQ((*d)[0].total_bytes, 80 * kGiB);
  EXPECT_EQ((*d)[0].context_bytes, 512 * kMiB);
  EXPECT_EQ((*d)[2].context_bytes, 300 * kMiB);
  EXPECT_EQ((*d)[2].used_bytes, 1 * kGiB);
  EXPECT_TRUE((*d)[0].is_accelerator());
}

TEST(DeviceSpecTest, CpuIsDiscoveredFromMeminfo) {
  auto d = ParseDeviceSpec("cpu");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->id, "cpu");
  EXPECT_GT(d->total_bytes, 64 * kMiB);
  EXPECT_LE(d->used_bytes, d->total_bytes);
  auto capped = ParseDeviceSpec("cpu=8GiB");
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->total_bytes, 8 * kGiB);
  EXPECT_FALSE(capped->is_accelerator());
}

TEST(DeviceSpecTest, BadSpecsAreClearErrors) {
  const std::pair<const char*, const char*> cases[] = {
      {"tpu:0", "unknown device type"},
      {"sim:a100", "missing '=CAPACITY'"},
      {"sim:a100=eighty", "eighty"},
      {"sim:=80GiB", "invalid name"},
      {"sim:a100=0", "capacity must be > 0"},
      {"sim:a100=80GiB,colour=3", "unknown option 'colour'"},
      {"sim:a100=1GiB,used=2GiB", "used exceeds capacity"},
      {"cuda:x", "index must be a number"},
  };
  for (const auto& [spec, words] : cases) {
    auto r = ParseDeviceSpec(spec);
    ASSERT_FALSE(r.ok()) << spec;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << spec;
    EXPECT_NE(r.status().message().find(spec), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().message();
  }
  {
    // No NVML: cuda:N names no GPU (device_nvml_test covers the fake NVML).
    const char* old = std::getenv("MODELGRID_NVML_LIBRARY");
    const std::string saved = old ? old : "";
    ::setenv("MODELGRID_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
    auto gpu = ParseDeviceSpec("cuda:0");
    EXPECT_EQ(gpu.status().code(), StatusCode::kNotFound);
    EXPECT_NE(gpu.status().message().find("no GPU 0: NVML is unavailable"), std::string::npos)
        << gpu.status().message();
    if (old) {
      ::setenv("MODELGRID_NVML_LIBRARY", saved.c_str(), 1);
    } else {
      ::unsetenv("MODELGRID_NVML_LIBRARY");
    }
  }
  EXPECT_FALSE(ParseDeviceSpecs({"sim:a=1GiB", "cpu", "cpu"}).ok());
}

RC_GTEST_PROP(DeviceSpecProperty, SimulatedCapacityRoundTrips, (uint16_t gib, uint16_t ctx_mib)) {
  const uint64_t cap = (static_cast<uint64_t>(gib) + 1) * kGiB;
  auto d = ParseDeviceSpec("sim:g=" + std::to_string(gib + 1) + "GiB,context=" +
                           std::to_string(ctx_mib) + "MiB");
  RC_ASSERT(d.ok());
  RC_ASSERT(d->total_bytes == cap);
  RC_ASSERT(d->context_bytes == static_cast<uint64_t>(ctx_mib) * kMiB);
}

}  // namespace
}  // namespace modelgrid

// `modelgrid plan` (the real executable) on the GPUs of the fake NVML: the
// discovered cuda:0 and cuda:1 appear with NVML's figures and receive models.

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "device/fake_nvml/fake_nvml_env.h"
#include "testing/run_command.h"
#include "modelgrid/bytes.h"

namespace modelgrid {
namespace {

namespace fs = std::filesystem;
using testing::FakeNvmlEnv;

using RunResult = modelgrid::testing::CommandResult;

// Runs `modelgrid ARGS` with `redirect` ("2>&1" or "2>/dev/null").
RunResult Exec(const std::string& args, const char* redirect = "2>&1") {
  return modelgrid::testing::RunCommand(std::string(MODELGRID_EXE) + " " + args + " " + redirect);
}

// Two 16 GiB GPUs; cuda:0 has 1 GiB used (+256 MiB reserved), cuda:1 3 GiB.
nlohmann::json TwoSmallGpus() {
  return {{"devices",
           {{{"name", "Fake GPU A"},
             {"uuid", "GPU-a0"},
             {"total", 16 * kGiB},
             {"used", 1 * kGiB},
             {"reserved", 256 * kMiB},
             {"free", 16 * kGiB - 1 * kGiB - 256 * kMiB}},
            {{"name", "Fake GPU B"},
             {"uuid", "GPU-b1"},
             {"total", 16 * kGiB},
             {"used", 3 * kGiB},
             {"free", 13 * kGiB}}}}};
}

class DiscoveryCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* zoo = std::getenv("MODELGRID_TEST_ZOO");
    if (!zoo || !fs::exists(fs::path(zoo) / "zoo.json")) {
      GTEST_SKIP() << "small zoo not generated (make zoo-small); MODELGRID_TEST_ZOO unset or empty";
    }
    zoo_ = zoo;
  }
  std::string zoo_;
};

TEST_F(DiscoveryCliTest, PlanShowsAndFillsBothDiscoveredGpus) {
  FakeNvmlEnv env(FAKE_NVML_PATH, TwoSmallGpus());
  RunResult text = Exec("plan --repository " + zoo_ + " --strategy balance");
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("\ncuda:0 "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\ncuda:1 "), std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("cuda:2"), std::string::npos) << text.out;

  RunResult json = Exec("plan --repository " + zoo_ + " --strategy balance --json", "2>/dev/null");
  ASSERT_EQ(json.exit_code, 0) << json.out;
  auto j = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << json.out;
  ASSERT_EQ(j["devices"].size(), 3u) << j["devices"].dump();
  EXPECT_EQ(j["devices"][0]["device"], "cpu");
  EXPECT_EQ(j["devices"][1]["device"], "cuda:0");
  EXPECT_EQ(j["devices"][2]["device"], "cuda:1");
  EXPECT_EQ(j["devices"][1]["total_bytes"].get<uint64_t>(), 16 * kGiB);
  EXPECT_EQ(j["devices"][1]["used_by_others_bytes"].get<uint64_t>(), 1 * kGiB + 256 * kMiB);
  EXPECT_EQ(j["devices"][2]["used_by_others_bytes"].get<uint64_t>(), 3 * kGiB);
  EXPECT_TRUE(j["unplaced"].empty()) << j["unplaced"].dump();
  ASSERT_FALSE(j["placed"].empty());
  for (const auto& a : j["placed"]) {
    EXPECT_EQ(a["device"].get<std::string>().rfind("cuda:", 0), 0u)
        << a.dump();  // the CPU is only a fallback
  }
  EXPECT_FALSE(j["devices"][1]["models"].empty());
  EXPECT_FALSE(j["devices"][2]["models"].empty());
}

TEST_F(DiscoveryCliTest, CudaDeviceSpecsResolveThroughTheFake) {
  FakeNvmlEnv env(FAKE_NVML_PATH, TwoSmallGpus());
  RunResult one = Exec("plan --repository " + zoo_ + " --device cuda:1 --json", "2>/dev/null");
  ASSERT_EQ(one.exit_code, 0) << one.out;
  auto j = nlohmann::json::parse(one.out, nullptr, false);
  ASSERT_EQ(j["devices"].size(), 1u) << one.out;
  EXPECT_EQ(j["devices"][0]["device"], "cuda:1");
  EXPECT_EQ(j["devices"][0]["used_by_others_bytes"].get<uint64_t>(), 3 * kGiB);

  RunResult missing = Exec("plan --repository " + zoo_ + " --device cuda:2");
  EXPECT_EQ(missing.exit_code, 1) << missing.out;
  EXPECT_NE(missing.out.find("no GPU 2: 2 GPU(s) found"), std::string::npos) << missing.out;
}

TEST_F(DiscoveryCliTest, BrokenNvmlLeavesTheCpuAndSaysWhy) {
  FakeNvmlEnv env(FAKE_NVML_PATH, {{"init_error", 9}});
  RunResult r = Exec("plan --repository " + zoo_);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("no GPU discovered, using the CPU only"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Driver Not Loaded"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("cuda:0"), std::string::npos) << r.out;
}

// Without a server, `modelgrid status` shows the GPUs NVML discovers.
TEST(DiscoveryStatusTest, StatusWithoutAServerShowsTheDiscoveredGpus) {
  FakeNvmlEnv env(FAKE_NVML_PATH, TwoSmallGpus());
  RunResult text = Exec("status --url http://127.0.0.1:1 --timeout-ms 500");
  ASSERT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("No server at http://127.0.0.1:1"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\ncuda:0 "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("Fake GPU B"), std::string::npos) << text.out;

  RunResult json = Exec("status --url http://127.0.0.1:1 --timeout-ms 500 --json", "2>/dev/null");
  ASSERT_EQ(json.exit_code, 0) << json.out;
  auto j = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << json.out;
  EXPECT_TRUE(j["server"].is_null());
  ASSERT_EQ(j["devices"].size(), 3u) << j.dump();
  EXPECT_EQ(j["devices"][1]["id"], "cuda:0");
  EXPECT_EQ(j["devices"][1]["uuid"], "GPU-a0");
  EXPECT_EQ(j["devices"][2]["total_bytes"].get<uint64_t>(), 16 * kGiB);
  EXPECT_EQ(j["devices"][2]["used_bytes"].get<uint64_t>(), 3 * kGiB);

  EXPECT_EQ(Exec("status --url ftp://x").exit_code, 2);
}

}  // namespace
}  // namespace modelgrid

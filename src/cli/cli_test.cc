// Runs the real `modelgrid` executable on the small zoo and on broken copies
// of its models: every bad input must give a clear error, never a crash.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "testing/run_command.h"

namespace {

namespace fs = std::filesystem;

using Run = modelgrid::testing::CommandResult;

// Runs `modelgrid ARGS` through the shell with `redirect` appended
// ("2>&1" to keep stderr, "2>/dev/null" to drop it).
Run ExecWith(const std::string& args, const char* redirect) {
  return modelgrid::testing::RunCommand(std::string(MODELGRID_BINARY_DIR) + "/bin/modelgrid " +
                                        args + " " + redirect);
}

Run Exec(const std::string& args) { return ExecWith(args, "2>&1"); }

// Stdout only, for --json parsing.
nlohmann::json ExecJson(const std::string& args, int* exit_code) {
  Run r = ExecWith(args, "2>/dev/null");
  *exit_code = r.exit_code;
  return nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* zoo = std::getenv("MODELGRID_TEST_ZOO");
    if (!zoo || !fs::exists(fs::path(zoo) / "zoo.json")) {
      GTEST_SKIP() << "small zoo not generated (make zoo-small); MODELGRID_TEST_ZOO unset or empty";
    }
    zoo_ = zoo;
    tmp_ = fs::temp_directory_path() /
           ("mg_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
  }
  void TearDown() override {
    if (!tmp_.empty()) fs::remove_all(tmp_);
  }
  // Copies a zoo model into the temp repository and returns its folder.
  fs::path CopyModel(const std::string& name) {
    fs::copy(zoo_ / name, tmp_ / name, fs::copy_options::recursive);
    return tmp_ / name;
  }
  static void Truncate(const fs::path& file, uint64_t keep) { fs::resize_file(file, keep); }

  fs::path zoo_, tmp_;
};

TEST_F(CliTest, EstimatesEveryZooModelAsJson) {
  int code = 0;
  auto j = ExecJson("estimate " + zoo_.string() + " --batch 4 --json", &code);
  ASSERT_EQ(code, 0);
  ASSERT_TRUE(j.is_array());
  std::ifstream manifest(zoo_ / "zoo.json");
  auto zoo = nlohmann::json::parse(manifest);
  ASSERT_EQ(j.size(), zoo["models"].size());
  for (const auto& e : j) {
    const std::string name = e["model"];
    const uint64_t params = zoo["models"][name]["parameters"];
    // Weights hold at least every parameter in FP32, activations are positive.
    EXPECT_GE(e["weights_bytes"].get<uint64_t>(), params * 4) << name;
    EXPECT_GT(e["activations_bytes"].get<uint64_t>(), 0u) << name;
    EXPECT_EQ(e["batch"], 4) << name;
    EXPECT_EQ(e["request_bytes"].get<uint64_t>(),
              e["instance_peak_bytes"].get<uint64_t>() + e["margin_bytes"].get<uint64_t>());
  }
}

TEST_F(CliTest, PlanPlacesTheZooOnTwoSimulatedGpus) {
  int code = 0;
  auto j = ExecJson("plan --repository " + zoo_.string() +
                        " --device sim:a100=40GiB --device sim:a100=40GiB --strategy balance --json",
                    &code);
  ASSERT_EQ(code, 0);
  EXPECT_TRUE(j["unplaced"].empty()) << j["unplaced"].dump();
  ASSERT_EQ(j["devices"].size(), 2u);
  // Balance spreads: both devices get models; none is over-committed.
  for (const auto& d : j["devices"]) {
    EXPECT_FALSE(d["models"].empty()) << d.dump();
    EXPECT_LE(d["committed_bytes"].get<uint64_t>(), d["total_bytes"].get<uint64_t>());
  }
}

TEST_F(CliTest, ModelBiggerThanEveryDeviceIsUnplacedWithTheReason) {
  int code = 0;
  auto j = ExecJson("plan --repository " + zoo_.string() + " --device sim:tiny=1MiB --json", &code);
  ASSERT_EQ(code, 0);
  EXPECT_TRUE(j["placed"].empty());
  ASSERT_FALSE(j["unplaced"].empty());
  for (const auto& u : j["unplaced"]) {
    EXPECT_NE(u["reason"].get<std::string>().find("needs"), std::string::npos) << u.dump();
  }
}

TEST_F(CliTest, UnknownDeviceSpecIsAClearError) {
  auto r = Exec("plan --repository " + zoo_.string() + " --device tpu:0");
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("device spec 'tpu:0'"), std::string::npos) << r.out;
}

TEST_F(CliTest, TruncatedTorchScriptIsAnErrorNamingTheFile) {
  const fs::path m = CopyModel("resnet18");
  Truncate(m / "1" / "model.pt", fs::file_size(m / "1" / "model.pt") / 2);
  auto r = Exec("estimate " + m.string());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("model.pt"), std::string::npos) << r.out;
}

TEST_F(CliTest, CorruptSafetensorsIsAnErrorNamingTheFile) {
  const fs::path m = CopyModel("bert-base");
  fs::remove(m / "1" / "model.pt");  // force the safetensors path
  {
    std::fstream f(m / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    const char garbage[8] = {'\xff', '\xff', '\xff', '\xff', '\xff', '\xff', '\xff', '\x7f'};
    f.write(garbage, 8);  // header length far past the 100,000,000 limit
  }
  auto r = Exec("estimate " + m.string());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("model.safetensors"), std::string::npos) << r.out;
}

TEST_F(CliTest, ConfigJsonWithMissingFieldIsAnErrorNamingTheField) {
  const fs::path m = CopyModel("gpt2");
  std::ifstream in(m / "config.json");
  auto cfg = nlohmann::json::parse(in);
  in.close();
  cfg.erase("n_embd");
  std::ofstream(m / "config.json") << cfg.dump();
  auto r = Exec("estimate " + m.string());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("n_embd"), std::string::npos) << r.out;

  // The plan lists it as unplaced with the reason instead of failing the whole plan.
  int code = 0;
  auto j = ExecJson("plan --repository " + tmp_.string() + " --device sim:a=8GiB --json", &code);
  ASSERT_EQ(code, 0);
  ASSERT_EQ(j["unplaced"].size(), 1u);
  EXPECT_NE(j["unplaced"][0]["reason"].get<std::string>().find("n_embd"), std::string::npos);
}

TEST_F(CliTest, UnknownConfigYamlFieldRejectsThePlan) {
  const fs::path m = CopyModel("digits");
  std::ofstream(m / "config.yaml", std::ios::app) << "\nmax_batch: 3\n";
  auto r = Exec("plan --repository " + tmp_.string());
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("unknown field 'max_batch'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("config.yaml"), std::string::npos) << r.out;
}

}  // namespace

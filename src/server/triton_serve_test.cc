// A Triton-layout repository (config.pbtxt only; the zoo's copy written by
// tools/zoo/generate.py --triton-out) served by a Grid in process, and a model
// folder without any configuration: failed with the reason, no metadata.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "modelgrid/grid.h"
#include "server/routes.h"
#include "server/status_json.h"
#include "testing/zoo.h"

namespace modelgrid {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::unique_ptr<Grid> InProcessGrid() {
  GridOptions o;
  o.isolation = Isolation::kNone;
  o.devices = {"cpu=8GiB"};
  o.worker_executable = MODELGRID_BINARY_DIR "/bin/modelgrid-worker";
  o.worker_threads = 1;
  auto grid = Grid::Create(o);
  EXPECT_TRUE(grid.ok()) << grid.status().ToString();
  return grid.ok() ? std::move(grid).value() : nullptr;
}

TEST(TritonServeTest, DigitsFromConfigPbtxtClassifyWithTheRecordedAccuracy) {
  REQUIRE_ZOO();
  const auto triton = testing::TritonZoo();
  if (!triton) GTEST_SKIP() << "MODELGRID_TEST_TRITON_ZOO is not set or not a folder";
  auto grid = InProcessGrid();
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddModel({"", *triton / "digits", {}, {}}).ok());
  auto plan = grid->LoadAll();
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto st = grid->Model("digits");
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->state, ModelState::kReady) << st->reason;
  EXPECT_EQ(st->version, "1");  // version_policy specific [1] over folders 1 and 2
  EXPECT_EQ(MetadataUnavailableReason(*st), "");

  std::ifstream in(zoo / "digits" / "test_set.json");
  const nlohmann::json set = nlohmann::json::parse(in);
  const auto& rows = set["inputs"];
  const auto labels = set["labels"].get<std::vector<int64_t>>();
  int64_t correct = 0;
  for (size_t first = 0; first < rows.size(); first += 64) {
    const size_t count = std::min<size_t>(64, rows.size() - first);
    InferTensor t;
    t.name = "input";
    t.datatype = DataType::kFP32;
    t.shape = {static_cast<int64_t>(count), 64};
    for (size_t i = first; i < first + count; ++i) {
      const auto row = rows[i].get<std::vector<float>>();
      t.data.append(reinterpret_cast<const char*>(row.data()), row.size() * sizeof(float));
    }
    InferCall call;
    call.inputs.push_back(std::move(t));
    auto out = grid->Infer("digits", std::move(call));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ(out->at(0).name, "logits");
    ASSERT_EQ(out->at(0).shape, (std::vector<int64_t>{static_cast<int64_t>(count), 10}));
    const float* p = reinterpret_cast<const float*>(out->at(0).data.data());
    for (size_t i = 0; i < count; ++i) {
      correct += std::max_element(p + i * 10, p + i * 10 + 10) - (p + i * 10) == labels[first + i];
    }
  }
  EXPECT_EQ(correct, set["correct"].get<int64_t>());
}

TEST(TritonServeTest, AFolderWithoutConfigurationFailsWithTheReason) {
  REQUIRE_ZOO();
  const fs::path root = fs::temp_directory_path() / ("mg_bare_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "bare" / "1");
  fs::copy_file(zoo / "digits" / "1" / "model.pt", root / "bare" / "1" / "model.pt");
  auto grid = InProcessGrid();
  ASSERT_TRUE(grid);
  ASSERT_TRUE(grid->AddRepository(root).ok());
  ASSERT_TRUE(grid->LoadAll().ok());
  auto st = grid->Model("bare");
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(st->state == ModelState::kFailed || st->state == ModelState::kUnplaced)
      << ModelStateName(st->state);
  EXPECT_THAT(st->reason, HasSubstr("declares no inputs: it has no configuration"));
  EXPECT_THAT(MetadataUnavailableReason(*st),
              HasSubstr("model 'bare' has no metadata: it is "));
  // Strict readiness (the default): the failed model holds readiness back,
  // and the probe says which model and why.
  EXPECT_FALSE(grid->Ready());
  bool probed = false;
  InferenceService service(grid.get(), {});
  auto metadata = service.Metadata("bare", "");
  EXPECT_EQ(metadata.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(metadata.status().message(), HasSubstr("model 'bare' has no metadata"));
  for (server::Route& route : server::HealthRoutes(&service)) {
    if (route.pattern != "/v2/health/ready") continue;
    probed = true;
    const server::HttpReply r = route.handler(server::HttpRequest{});
    EXPECT_EQ(r.status, 503);
    EXPECT_THAT(r.body, HasSubstr("not serving bare ("));
    EXPECT_THAT(r.body, HasSubstr("declares no inputs"));
  }
  EXPECT_TRUE(probed);
  grid.reset();
  fs::remove_all(root);
}

}  // namespace
}  // namespace modelgrid

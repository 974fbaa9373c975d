// AddModule: models added from torch::jit::Modules built in this process
// serve like folder models, through a worker and in-process; bad specs are
// refused without adding anything; the grid's private folders go with it.
#include "modelgrid/grid_module.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <vector>

namespace modelgrid {
namespace {

using namespace std::chrono_literals;

// y = x * weight (weight = `factor` in all 4 places); method twice: x * 2.
torch::jit::Module MakeScaler(float factor) {
  torch::jit::Module m("Scaler");
  m.register_parameter("weight", torch::full({4}, factor), /*is_buffer=*/false);
  m.define(R"JIT(
def forward(self, x):
    return x * self.weight

def twice(self, x):
    return x * 2.0
)JIT");
  return m;
}

ModelConfig ScalerConfig() {
  ModelConfig c;
  c.max_batch_size = 8;
  c.inputs = {TensorSpec{"x", DataType::kFP32, {4}}};
  c.outputs = {TensorSpec{"y", DataType::kFP32, {4}}};
  c.tasks = {{"double", "twice"}};
  return c;
}

// A spec without memory overrides.
ModuleSpec Spec(const std::string& name, torch::jit::Module module, ModelConfig config) {
  ModuleSpec spec;
  spec.name = name;
  spec.module = std::move(module);
  spec.config = std::move(config);
  return spec;
}

GridOptions Options(Isolation isolation) {
  GridOptions o;
  o.isolation = isolation;
  o.devices = {"cpu=4GiB"};
  o.worker_executable = MODELGRID_BINARY_DIR "/bin/modelgrid-worker";
  o.worker_threads = 1;
  return o;
}

InferTensor Row(std::vector<float> values) {
  InferTensor t{"x", DataType::kFP32, {1, static_cast<int64_t>(values.size())}, {}};
  t.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return t;
}

std::vector<float> Floats(const InferTensor& t) {
  std::vector<float> out(t.data.size() / sizeof(float));
  std::memcpy(out.data(), t.data.data(), out.size() * sizeof(float));
  return out;
}

std::vector<float> Call(Grid& grid, const std::string& model, const std::string& task) {
  InferCall call;
  call.task = task;
  call.inputs = {Row({1, 2, 3, 4})};
  call.timeout = 30s;
  auto out = grid.Infer(model, std::move(call));
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  if (!out.ok() || out->empty()) return {};
  EXPECT_EQ(out->at(0).shape, (std::vector<int64_t>{1, 4}));
  return Floats(out->at(0));
}

class AddModuleTest : public ::testing::TestWithParam<Isolation> {};

TEST_P(AddModuleTest, LoadedModulesServeTheirForwardAndCustomTasks) {
  auto grid = Grid::Create(Options(GetParam()));
  ASSERT_TRUE(grid.ok()) << grid.status().ToString();
  ASSERT_TRUE(AddModule(**grid, Spec("triple", MakeScaler(3.0f), ScalerConfig())).ok());
  ASSERT_TRUE(AddModule(**grid, Spec("half", MakeScaler(0.5f), ScalerConfig())).ok());
  auto plan = (*grid)->LoadAll();
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();

  EXPECT_EQ(Call(**grid, "triple", "infer"), (std::vector<float>{3, 6, 9, 12}));
  EXPECT_EQ(Call(**grid, "half", "infer"), (std::vector<float>{0.5f, 1, 1.5f, 2}));
  EXPECT_EQ(Call(**grid, "half", "double"), (std::vector<float>{2, 4, 6, 8}));

  auto status = (*grid)->Model("triple");
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->state, ModelState::kReady) << status->reason;
  EXPECT_EQ(status->type, "torchscript");
  EXPECT_EQ(status->inputs, ScalerConfig().inputs);
  ASSERT_TRUE(status->estimate.has_value());
  EXPECT_EQ(status->estimate->parameters, 4u);  // the saved weight, read from the archive
  if (GetParam() != Isolation::kNone) {
    EXPECT_GT(status->worker_pid, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Isolations, AddModuleTest,
                         ::testing::Values(Isolation::kModel, Isolation::kNone),
                         [](const auto& info) {
                           return std::string(info.param == Isolation::kNone ? "None" : "Model");
                         });

TEST(AddModuleErrorsTest, BadSpecsAddNothing) {
  auto grid = Grid::Create(Options(Isolation::kNone));
  ASSERT_TRUE(grid.ok()) << grid.status().ToString();
  Grid& g = **grid;
  ASSERT_TRUE(AddModule(g, Spec("m", MakeScaler(1.0f), ScalerConfig())).ok());

  Status taken = AddModule(g, Spec("m", MakeScaler(2.0f), ScalerConfig()));
  EXPECT_EQ(taken.code(), StatusCode::kAlreadyExists) << taken.ToString();

  Status slash = AddModule(g, Spec("a/b", MakeScaler(1.0f), ScalerConfig()));
  EXPECT_EQ(slash.code(), StatusCode::kInvalidArgument) << slash.ToString();
  EXPECT_NE(slash.message().find("'a/b'"), std::string::npos) << slash.message();

  ModelConfig bad_task = ScalerConfig();
  bad_task.tasks["embed"] = "no_such_method";
  Status missing = AddModule(g, Spec("t", MakeScaler(1.0f), bad_task));
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument) << missing.ToString();
  EXPECT_NE(missing.message().find("no_such_method"), std::string::npos) << missing.message();

  ModuleSpec low = Spec("low", MakeScaler(1.0f), ScalerConfig());
  low.memory_request = 1 << 20;
  low.memory_limit = 1 << 10;
  EXPECT_EQ(AddModule(g, low).code(), StatusCode::kInvalidArgument);

  std::vector<std::string> names;
  for (const ModelStatus& m : g.Models()) names.push_back(m.name);
  EXPECT_EQ(names, std::vector<std::string>{"m"});
}

TEST(AddModuleErrorsTest, ScratchDirHoldsTheSavedFolder) {
  const std::filesystem::path scratch =
      std::filesystem::path(::testing::TempDir()) / "grid-module-scratch";
  std::filesystem::remove_all(scratch);
  std::filesystem::create_directories(scratch);
  GridOptions o = Options(Isolation::kNone);
  o.scratch_dir = scratch;
  {
    auto grid = Grid::Create(o);
    ASSERT_TRUE(grid.ok());
    ModelConfig config = ScalerConfig();
    config.priority = 7;
    ASSERT_TRUE(AddModule(**grid, Spec("saved", MakeScaler(1.0f), config)).ok());
    const std::filesystem::path folder = scratch / "saved-0";
    ASSERT_TRUE(std::filesystem::exists(folder / "1" / "model.pt"));
    auto entry = OpenModel(folder);
    ASSERT_TRUE(entry.ok()) << entry.status().ToString();
    EXPECT_EQ(entry->config.priority, 7);
    EXPECT_EQ(entry->config.inputs, config.inputs);
    EXPECT_EQ(entry->config.outputs, config.outputs);
    EXPECT_EQ(entry->config.tasks, config.tasks);
    EXPECT_EQ(entry->config.max_batch_size, 8);
    // The saved file is the module: loading it back gives the same forward.
    torch::jit::Module back = torch::jit::load((folder / "1" / "model.pt").string());
    EXPECT_TRUE(back.find_method("twice").has_value());
  }
  // A caller's scratch_dir is the caller's: the grid leaves it.
  EXPECT_TRUE(std::filesystem::exists(scratch / "saved-0" / "1" / "model.pt"));
  if (!std::getenv("KEEP")) std::filesystem::remove_all(scratch);
}

TEST(AddModuleErrorsTest, PrivateFoldersAreRemovedWithTheGrid) {
  std::filesystem::path folder;
  {
    auto grid = Grid::Create(Options(Isolation::kNone));
    ASSERT_TRUE(grid.ok());
    auto made = (*grid)->NewModelFolder("p");
    ASSERT_TRUE(made.ok()) << made.status().ToString();
    folder = *made;
    EXPECT_TRUE(std::filesystem::is_directory(folder));
    auto second = (*grid)->NewModelFolder("p");
    ASSERT_TRUE(second.ok());
    EXPECT_NE(*second, folder);
  }
  EXPECT_FALSE(std::filesystem::exists(folder));
  EXPECT_FALSE(std::filesystem::exists(folder.parent_path()));
}

}  // namespace
}  // namespace modelgrid

// InferenceService over a real Grid (isolation none) on the small zoo's
// digits: outputs written into shared memory, the admin token and the
// allowed key prefix, metadata, Triton's configuration JSON, statistics
// with last_inference, requested-output order.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "modelgrid/service/inference_service.h"
#include "testing/posix_shm.h"
#include "testing/test_grid.h"
#include "testing/digits.h"
#include "testing/zoo.h"

namespace modelgrid {
namespace {

using testing::PosixSharedMemory;



InferRequest OneRow(const std::string& input, std::string bytes) {
  InferRequest r;
  r.id = "req-1";
  InferTensor t;
  t.name = input;
  t.datatype = DataType::kFP32;
  t.shape = {1, 64};
  t.data = std::move(bytes);
  r.inputs.push_back(std::move(t));
  return r;
}

class InferenceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto zoo = testing::Zoo();
    if (!zoo) GTEST_SKIP() << "MODELGRID_TEST_ZOO is not set or not a folder";
    zoo_ = *zoo;
    grid_ = testing::DigitsGrid(Isolation::kNone, zoo_);
    ASSERT_TRUE(grid_);
    auto st = grid_->Model("digits");
    ASSERT_TRUE(st.ok() && st->state == ModelState::kReady);
    ASSERT_FALSE(st->inputs.empty());
    ASSERT_FALSE(st->outputs.empty());
    input_ = st->inputs[0].name;
    output_ = st->outputs[0].name;
  }
  std::filesystem::path zoo_;
  std::unique_ptr<Grid> grid_;
  std::string input_, output_;
};

TEST_F(InferenceServiceTest, AnOutputRequestedIntoSharedMemoryIsWrittenThereAndNotSent) {
  InferenceService service(grid_.get(), {});
  const std::string row = testing::DigitsRows(zoo_, 3, 1);
  auto plain = service.Infer("digits", "", OneRow(input_, row));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  ASSERT_EQ(plain->outputs.size(), 1u);
  const InferTensor& want = plain->outputs[0];
  EXPECT_EQ(plain->id, "req-1");
  EXPECT_EQ(plain->model_name, "digits");

  const std::string key = "/modelgrid_out_test_" + std::to_string(::getpid());
  auto shm = PosixSharedMemory::Create(key, 4096);
  ASSERT_TRUE(shm.ok()) << shm.status().ToString();
  std::memset((*shm)->data(), 0x7f, 4096);
  ASSERT_TRUE(service.RegisterSharedMemory("out", key, 1024, 2048, "").ok());

  InferRequest request = OneRow(input_, row);
  RequestedOutput wanted;
  wanted.name = output_;
  wanted.parameters = {{"shared_memory_region", "out"},
                       {"shared_memory_offset", 100},
                       {"shared_memory_byte_size", 1000}};
  request.outputs = {wanted};
  auto got = service.Infer("digits", "", std::move(request));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->outputs.size(), 1u);
  const InferTensor& out = got->outputs[0];
  EXPECT_TRUE(out.data.empty());
  EXPECT_EQ(out.shape, want.shape);
  EXPECT_EQ(out.datatype, want.datatype);
  EXPECT_EQ(out.parameters.value("shared_memory_region", ""), "out");
  EXPECT_EQ(out.parameters.value("shared_memory_byte_size", uint64_t{0}), want.data.size());
  // The bytes sit at region offset 1024 + 100; the byte after them is untouched.
  EXPECT_EQ(std::string((*shm)->data() + 1124, want.data.size()), want.data);
  EXPECT_EQ(static_cast<unsigned char>((*shm)->data()[1124 + want.data.size()]), 0x7f);

  // A region too small for the output: an error naming it, nothing written.
  request = OneRow(input_, row);
  wanted.parameters["shared_memory_byte_size"] = 4;
  request.outputs = {wanted};
  got = service.Infer("digits", "", std::move(request));
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("do not fit the 4 of shared_memory_byte_size"),
            std::string::npos)
      << got.status().ToString();
  // An output the model does not have.
  request = OneRow(input_, row);
  request.outputs = {RequestedOutput{"no_such_output", false, nlohmann::json::object()}};
  got = service.Infer("digits", "", std::move(request));
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find("'no_such_output' is not an output of model 'digits'"),
            std::string::npos);
}

// Triton's classification extension: the top 3 of the logits as BYTES
// "score:index" strings, best first, the same classes a direct argsort of
// the plain output gives.
TEST_F(InferenceServiceTest, ClassificationReturnsTheTopClassesAsStrings) {
  InferenceService service(grid_.get(), {});
  const std::string row = testing::DigitsRows(zoo_, 7, 1);
  auto plain = service.Infer("digits", "", OneRow(input_, row));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  const InferTensor& logits = plain->outputs.at(0);
  ASSERT_EQ(logits.datatype, DataType::kFP32);
  std::vector<float> values(logits.data.size() / 4);
  std::memcpy(values.data(), logits.data.data(), logits.data.size());
  std::vector<size_t> order(values.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return values[a] > values[b]; });

  InferRequest request = OneRow(input_, row);
  request.outputs = {RequestedOutput{output_, false, {{"classification", 3}}}};
  auto got = service.Infer("digits", "", std::move(request));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  const InferTensor& top = got->outputs.at(0);
  EXPECT_EQ(top.datatype, DataType::kBytes);
  EXPECT_EQ(top.shape, (std::vector<int64_t>{1, 3}));
  auto elements = SplitBytesElements(top.data);
  ASSERT_TRUE(elements.ok());
  ASSERT_EQ(elements->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const std::string e((*elements)[i]);
    const size_t colon = e.find(':');
    ASSERT_NE(colon, std::string::npos) << e;
    EXPECT_EQ(e.substr(colon + 1), std::to_string(order[i])) << e;
    EXPECT_NEAR(std::stod(e.substr(0, colon)), values[order[i]], 1e-5) << e;
  }
  request = OneRow(input_, row);
  request.outputs = {RequestedOutput{output_, false, {{"classification", "three"}}}};
  EXPECT_EQ(service.Infer("digits", "", std::move(request)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(InferenceServiceTest, ManagementCallsNeedTheAdminTokenAndKeysTheAllowedPrefix) {
  ServiceOptions options;
  options.admin_token = "s3cret";
  options.shm_key_prefix = "/modelgrid_ok_";
  InferenceService service(grid_.get(), options);
  const std::string good_key = "/modelgrid_ok_" + std::to_string(::getpid());
  const std::string other_key = "/modelgrid_other_" + std::to_string(::getpid());
  auto good = PosixSharedMemory::Create(good_key, 256);
  auto other = PosixSharedMemory::Create(other_key, 256);
  ASSERT_TRUE(good.ok() && other.ok());

  Status s = service.RegisterSharedMemory("r", good_key, 0, 256, "");
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("none was presented"), std::string::npos) << s.ToString();
  s = service.RegisterSharedMemory("r", good_key, 0, 256, "wrong");
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  s = service.RegisterSharedMemory("r", other_key, 0, 256, "s3cret");
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("does not start with the allowed prefix '/modelgrid_ok_'"),
            std::string::npos)
      << s.ToString();
  EXPECT_TRUE(service.SharedMemoryStatus("")->empty());
  EXPECT_TRUE(service.RegisterSharedMemory("r", good_key, 0, 256, "s3cret").ok());
  EXPECT_EQ(service.UnregisterSharedMemory("r", "").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(service.SharedMemoryStatus("r")->size(), 1u);
  EXPECT_TRUE(service.UnregisterSharedMemory("r", "s3cret").ok());

  EXPECT_EQ(service.UnloadModel("digits", "").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(grid_->Model("digits")->state, ModelState::kReady);
  EXPECT_TRUE(service.UnloadModel("digits", "s3cret").ok());
  EXPECT_EQ(grid_->Model("digits")->state, ModelState::kUnloaded);
  EXPECT_EQ(service.LoadModel("digits", "nope").code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(service.LoadModel("digits", "s3cret").ok());
  EXPECT_EQ(grid_->Model("digits")->state, ModelState::kReady);

  EXPECT_EQ(BearerToken("Bearer s3cret"), "s3cret");
  EXPECT_EQ(BearerToken("bearer  s3cret "), "s3cret");
  EXPECT_EQ(BearerToken("Basic abc"), "");
  EXPECT_EQ(BearerToken("Bearer"), "");
}

TEST_F(InferenceServiceTest, MetadataConfigAndStatisticsDescribeTheModel) {
  InferenceService service(grid_.get(), {});
  auto meta = service.Metadata("digits", "");
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->platform, "pytorch_torchscript");
  ASSERT_EQ(meta->inputs.size(), 1u);
  EXPECT_EQ(meta->inputs[0].shape, (std::vector<int64_t>{-1, 64}));  // batching: -1 first
  EXPECT_EQ(service.Metadata("digits", "999").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(service.Metadata("nope", "").status().code(), StatusCode::kNotFound);

  auto config = service.Config("digits", "");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ((*config)["name"], "digits");
  EXPECT_EQ((*config)["platform"], "pytorch_libtorch");
  EXPECT_EQ((*config)["input"][0]["data_type"], "TYPE_FP32");
  EXPECT_EQ((*config)["input"][0]["dims"], nlohmann::json::array({64}));
  EXPECT_EQ((*config)["max_batch_size"], grid_->Model("digits")->max_batch_size);
  EXPECT_TRUE((*config)["version_policy"].contains("latest"));

  auto before = service.Statistics("digits", "", false);
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->size(), 1u);
  const uint64_t count_before = (*before)[0].inference_count;
  const uint64_t now_ms = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch())
          .count());
  ASSERT_TRUE(service.Infer("digits", "", OneRow(input_, testing::DigitsRows(zoo_, 0, 1))).ok());
  auto after = service.Statistics("", "", false);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].inference_count, count_before + 1);
  EXPECT_GE((*after)[0].last_inference_ms, now_ms);
  EXPECT_LT((*after)[0].last_inference_ms, now_ms + 60'000);
  ASSERT_EQ((*after)[0].memory_usage.size(), 1u);
  EXPECT_EQ((*after)[0].memory_usage[0].type, "CPU");

  Readiness ready = service.ServerReady();
  EXPECT_TRUE(ready.ready) << ready.reason;
  auto model_ready = service.ModelReady("digits", "");
  ASSERT_TRUE(model_ready.ok());
  EXPECT_TRUE(model_ready->ready);
  auto index = service.RepositoryIndex(false);
  ASSERT_EQ(index.size(), 1u);
  EXPECT_EQ(index[0].state, "READY");
}

}  // namespace
}  // namespace modelgrid

namespace modelgrid {
namespace {

// A model on standby (loaded on its first request) has not run yet: its
// metadata and configuration come from its config.yaml, not empty lists;
// its first request loads it and the answer is the model's.
TEST(InferenceServiceStandbyTest, AStandbyModelsMetadataComesFromItsConfiguration) {
  auto zoo = testing::Zoo();
  if (!zoo) GTEST_SKIP() << "MODELGRID_TEST_ZOO is not set or not a folder";
  GridOptions o = testing::TestGridOptions(Isolation::kNone);
  o.default_load = LoadPolicy::kOnDemand;
  auto grid = Grid::Create(o);
  ASSERT_TRUE(grid.ok()) << grid.status().ToString();
  ASSERT_TRUE((*grid)->AddModel({"digits", *zoo / "digits", {}, {}}).ok());
  ASSERT_TRUE((*grid)->LoadAll().ok());
  ASSERT_EQ((*grid)->Model("digits")->state, ModelState::kStandby);
  InferenceService service(grid->get(), {});
  auto meta = service.Metadata("digits", "");
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  ASSERT_EQ(meta->inputs.size(), 1u);
  EXPECT_EQ(meta->inputs[0].name, "input");
  EXPECT_EQ(meta->inputs[0].shape, (std::vector<int64_t>{-1, 64}));
  ASSERT_EQ(meta->outputs.size(), 1u);
  EXPECT_EQ(meta->outputs[0].shape, (std::vector<int64_t>{-1, 10}));
  auto config = service.Config("digits", "");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ((*config)["input"][0]["dims"], nlohmann::json::array({64}));
  EXPECT_EQ((*config)["modelgrid"]["load"], "on_demand");

  InferRequest r;
  InferTensor t;
  t.name = "input";
  t.datatype = DataType::kFP32;
  t.shape = {1, 64};
  t.data = testing::DigitsRows(*zoo, 0, 1);
  r.inputs.push_back(t);
  auto got = service.Infer("digits", "", r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->outputs.at(0).shape, (std::vector<int64_t>{1, 10}));
  EXPECT_EQ((*grid)->Model("digits")->state, ModelState::kReady);
}

}  // namespace
}  // namespace modelgrid

namespace modelgrid {
namespace {

// Triton's version_policy `all` over the zoo's Triton-layout digits
// (version folders 1 and 2): both versions serve, each as its own instance
// with its own statistics; no version means the highest; an unknown one is
// NOT_FOUND naming those served; unload and load act on every version.
TEST(InferenceServiceVersionsTest, EveryVersionThePolicySelectsServes) {
  auto triton = testing::TritonZoo();
  auto zoo = testing::Zoo();
  if (!triton || !zoo) GTEST_SKIP() << "MODELGRID_TEST_TRITON_ZOO / MODELGRID_TEST_ZOO not set";
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("mg-versions-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);
  std::filesystem::copy(*triton / "digits", root / "digits", std::filesystem::copy_options::recursive);
  {
    std::ifstream in(root / "digits" / "config.pbtxt");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    const std::string from = "version_policy: { specific: { versions: [ 1 ] } }";
    ASSERT_NE(text.find(from), std::string::npos);
    text.replace(text.find(from), from.size(), "version_policy: { all: {} }");
    std::ofstream(root / "digits" / "config.pbtxt") << text;
  }
  auto grid = Grid::Create(testing::TestGridOptions(Isolation::kNone));
  ASSERT_TRUE(grid.ok());
  ASSERT_TRUE((*grid)->AddRepository(root).ok());
  ASSERT_TRUE((*grid)->LoadAll().ok());
  InferenceService service(grid->get(), {});

  auto meta = service.Metadata("digits", "");
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->versions, (std::vector<std::string>{"1", "2"}));
  InferRequest r;
  InferTensor t;
  t.name = "input";
  t.datatype = DataType::kFP32;
  t.shape = {1, 64};
  t.data = testing::DigitsRows(*zoo, 0, 1);
  r.inputs.push_back(t);
  std::vector<InferTensor> outs;
  for (const std::string v : {"1", "2", ""}) {
    auto got = service.Infer("digits", v, r);
    ASSERT_TRUE(got.ok()) << v << ": " << got.status().ToString();
    EXPECT_EQ(got->model_name, "digits");
    EXPECT_EQ(got->model_version, v.empty() ? "2" : v);
    outs.push_back(got->outputs.at(0));
  }
  EXPECT_EQ(outs[0], outs[1]);  // the zoo writes the same weights into both folders
  auto missing = service.Infer("digits", "3", r);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("has no version '3'"), std::string::npos)
      << missing.status().ToString();

  auto stats = service.Statistics("digits", "", false);
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(stats->size(), 2u);
  std::map<std::string, uint64_t> counts;
  for (const ModelStatistics& s : *stats) {
    EXPECT_EQ(s.name, "digits");
    counts[s.version] = s.inference_count;
  }
  EXPECT_EQ(counts, (std::map<std::string, uint64_t>{{"1", 1}, {"2", 2}}));
  auto index = service.RepositoryIndex(true);
  ASSERT_EQ(index.size(), 2u);
  EXPECT_EQ(index[0].name, "digits");
  EXPECT_EQ(index[1].name, "digits");
  EXPECT_NE(index[0].version, index[1].version);

  ASSERT_TRUE(service.UnloadModel("digits", "").ok());
  EXPECT_TRUE(service.RepositoryIndex(true).empty());
  ASSERT_TRUE(service.LoadModel("digits", "").ok());
  EXPECT_EQ(service.RepositoryIndex(true).size(), 2u);
  grid->reset();
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace modelgrid

namespace modelgrid {
namespace {

// Through a worker: a request that names one of the task's outputs gets
// only that one back (the worker copies no other), the same bytes as the
// full answer's; a name the task lacks is the worker's error naming it.
TEST(InferenceServiceOutputsTest, TheWorkerReturnsOnlyTheRequestedOutputs) {
  auto zoo = testing::Zoo();
  if (!zoo) GTEST_SKIP() << "MODELGRID_TEST_ZOO is not set or not a folder";
  auto grid = Grid::Create(testing::TestGridOptions(Isolation::kModel));
  ASSERT_TRUE(grid.ok()) << grid.status().ToString();
  ASSERT_TRUE((*grid)->AddModel({"gpt2", *zoo / "gpt2", {}, {}}).ok());
  ASSERT_TRUE((*grid)->LoadAll().ok());
  ASSERT_EQ((*grid)->Model("gpt2")->state, ModelState::kReady) << (*grid)->Model("gpt2")->reason;
  InferenceService service(grid->get(), {});
  InferRequest r;
  InferTensor ids;
  ids.name = "input_ids";
  ids.datatype = DataType::kInt64;
  ids.shape = {1, 3};
  for (int64_t v : {11, 22, 33}) ids.data.append(reinterpret_cast<const char*>(&v), 8);
  r.inputs.push_back(ids);
  r.parameters = {{"task", "generate"}, {"max_new_tokens", 4}};
  auto all = service.Infer("gpt2", "", r);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_GE(all->outputs.size(), 2u);
  const InferTensor& second = all->outputs[1];
  r.outputs = {RequestedOutput{second.name, false, nlohmann::json::object()}};
  auto one = service.Infer("gpt2", "", r);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_EQ(one->outputs.size(), 1u);
  EXPECT_EQ(one->outputs[0], second);
  // The grid's own answer (no service filtering after it): the worker sent
  // back that one output only.
  InferCall call;
  call.task = "generate";
  call.inputs = {ids};
  call.params = {{"max_new_tokens", 4}};
  call.output_names = {second.name};
  auto from_worker = (*grid)->Infer("gpt2", std::move(call));
  ASSERT_TRUE(from_worker.ok()) << from_worker.status().ToString();
  ASSERT_EQ(from_worker->size(), 1u);
  EXPECT_EQ(from_worker->at(0), second);
  r.outputs = {RequestedOutput{"no_such_output", false, nlohmann::json::object()}};
  auto bad = service.Infer("gpt2", "", r);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("no_such_output"), std::string::npos)
      << bad.status().ToString();
}

}  // namespace
}  // namespace modelgrid

// TorchScriptBackend on the small zoo (MODELGRID_TEST_ZOO): accuracy of the
// digits classifier against its recorded test set, input checks, memory
// limits, generate against a decode loop written here, encode and custom
// tasks, and outputs against the module run directly.
#include "modelgrid/backend/backend.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>

#include "modelgrid/backend/backend_kind.h"
#include "modelgrid/repository.h"
#include "modelgrid/torch/counting_allocator.h"
#include "testing/zoo.h"

namespace modelgrid {
namespace {

ModelEntry Open(const std::filesystem::path& zoo, const std::string& name) {
  auto entry = OpenModel(zoo / name);
  EXPECT_TRUE(entry.ok()) << entry.status().ToString();
  return entry.ok() ? *entry : ModelEntry{};
}

InferTensor FromTensor(const std::string& name, DataType type, const torch::Tensor& t) {
  torch::Tensor c = t.contiguous();
  InferTensor r;
  r.name = name;
  r.datatype = type;
  r.shape = c.sizes().vec();
  r.data.assign(static_cast<const char*>(c.data_ptr()), c.nbytes());
  return r;
}

// A tensor viewing `t`'s bytes (the test keeps `t` alive).
torch::Tensor ToTensor(const InferTensor& t, c10::ScalarType type) {
  return torch::from_blob(const_cast<char*>(t.data.data()), t.shape,
                          torch::TensorOptions().dtype(type));
}

// The test's own argmax decode loop on the module, independent of the backend.
torch::Tensor GreedyDecode(torch::jit::Module& module, torch::Tensor ids, int steps) {
  c10::InferenceMode guard;
  for (int i = 0; i < steps; ++i) {
    torch::Tensor logits = module.forward({ids}).toTensor();
    torch::Tensor last = logits.select(1, logits.size(1) - 1);
    ids = torch::cat({ids, last.argmax(1).unsqueeze(1)}, 1);
  }
  return ids;
}

TEST(BackendTest, DigitsClassifiesItsTestSetWithTheRecordedAccuracy) {
  REQUIRE_ZOO();
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(Open(zoo, "digits")).ok());
  std::ifstream in(zoo / "digits" / "test_set.json");
  nlohmann::json set = nlohmann::json::parse(in);
  const auto& rows = set["inputs"];
  const auto& labels = set["labels"];
  ASSERT_EQ(rows.size(), set["count"].get<size_t>());
  int64_t correct = 0;
  const size_t kBatch = 64;  // the digits config's max_batch_size
  for (size_t start = 0; start < rows.size(); start += kBatch) {
    const size_t n = std::min(kBatch, rows.size() - start);
    std::vector<float> values;
    for (size_t i = start; i < start + n; ++i) {
      for (const auto& v : rows[i]) values.push_back(v.get<float>());
    }
    InferTensor input{"input", DataType::kFP32, {static_cast<int64_t>(n), 64}, {}};
    input.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
    auto out = backend.Run("infer", {input});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ(out->size(), 1u);
    const InferTensor& logits = (*out)[0];
    EXPECT_EQ(logits.name, "logits");
    ASSERT_EQ(logits.datatype, DataType::kFP32);
    ASSERT_EQ(logits.shape, (std::vector<int64_t>{static_cast<int64_t>(n), 10}));
    const float* p = reinterpret_cast<const float*>(logits.data.data());
    for (size_t i = 0; i < n; ++i) {
      const int64_t predicted = std::max_element(p + i * 10, p + i * 10 + 10) - (p + i * 10);
      correct += predicted == labels[start + i].get<int64_t>();
    }
  }
  EXPECT_EQ(correct, set["correct"].get<int64_t>());
}

// The registry makes a backend of each known kind and refuses others by
// name; the kind BackendKindFor chooses for digits runs it through the
// interface alone.
TEST(BackendTest, CreateBackendMakesEachKindAndRunsDigitsThroughTheInterface) {
  REQUIRE_ZOO();
  auto unknown = CreateBackend("onnxruntime");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(unknown.status().message().find("'onnxruntime'"), std::string::npos);
  EXPECT_NE(unknown.status().message().find("torchscript"), std::string::npos);

  ModelEntry digits = Open(zoo, "digits");
  auto kind = BackendKindFor(digits);
  ASSERT_TRUE(kind.ok()) << kind.status().ToString();
  auto backend = CreateBackend(*kind);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  ModelBackend& b = **backend;
  EXPECT_EQ(b.kind(), "torchscript");
  EXPECT_FALSE(b.loaded());
  ASSERT_TRUE(b.Load(digits).ok());
  EXPECT_EQ(b.Tasks(), std::vector<std::string>{"infer"});
  InferTensor input{"input", DataType::kFP32, {1, 64}, std::string(64 * sizeof(float), '\0')};
  auto out = b.Run("infer", {input});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].shape, (std::vector<int64_t>{1, 10}));
}

// Run over views reads the bytes where they lie: the same outputs as Run
// over InferTensors, from a buffer the backend never copies out of (it is
// changed between calls and the second result follows it).
TEST(BackendTest, RunOverViewsReadsTheViewedBytes) {
  REQUIRE_ZOO();
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(Open(zoo, "digits")).ok());
  std::vector<float> buffer(2 * 64);
  for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = static_cast<float>(i % 17) / 16.0f;
  const std::vector<int64_t> shape{2, 64};
  const std::string name = "input";
  auto view = [&] {
    return InferTensorView{name, DataType::kFP32, shape,
                           std::string_view(reinterpret_cast<const char*>(buffer.data()),
                                            buffer.size() * sizeof(float))};
  };
  InferTensor owned{name, DataType::kFP32, shape, std::string(view().data)};
  auto expected = backend.Run("infer", {owned});
  ASSERT_TRUE(expected.ok()) << expected.status().ToString();
  const InferTensorView views[] = {view()};
  auto got = backend.Run("infer", std::span<const InferTensorView>(views));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, *expected);

  std::fill(buffer.begin(), buffer.end(), 0.5f);
  auto changed = backend.Run("infer", std::span<const InferTensorView>(views));
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->at(0).data, expected->at(0).data);
  InferTensor owned_half{name, DataType::kFP32, shape, std::string(view().data)};
  EXPECT_EQ(*changed, *backend.Run("infer", {owned_half}));

  const InferTensorView short_view[] = {
      InferTensorView{name, DataType::kFP32, shape, view().data.substr(4)}};
  auto bad = backend.Run("infer", std::span<const InferTensorView>(short_view));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("input 'input'"), std::string::npos)
      << bad.status().message();
}

TEST(BackendTest, BadInputsAndTasksAreRejectedNamingModelAndInput) {
  REQUIRE_ZOO();
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(Open(zoo, "digits")).ok());
  auto expect_error = [&](const std::string& task, const std::vector<InferTensor>& inputs,
                          StatusCode code, std::vector<std::string> parts) {
    auto out = backend.Run(task, inputs);
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), code) << out.status().ToString();
    for (const auto& part : parts)
      EXPECT_NE(out.status().message().find(part), std::string::npos)
          << "'" << part << "' not in " << out.status().message();
  };
  InferTensor good = FromTensor("input", DataType::kFP32, torch::rand({2, 64}));
  ASSERT_TRUE(backend.Run("infer", {good}).ok());

  InferTensor wrong_dtype =
      FromTensor("input", DataType::kFP64, torch::rand({2, 64}, torch::kDouble));
  expect_error("infer", {wrong_dtype}, StatusCode::kInvalidArgument,
               {"model 'digits'", "input 'input'", "expected datatype FP32", "got FP64"});
  InferTensor wrong_shape = FromTensor("input", DataType::kFP32, torch::rand({2, 63}));
  expect_error("infer", {wrong_shape}, StatusCode::kInvalidArgument,
               {"model 'digits'", "input 'input'", "expected shape [-1,64]", "got [2,63]"});
  InferTensor no_batch = FromTensor("input", DataType::kFP32, torch::rand({64}));
  expect_error("infer", {no_batch}, StatusCode::kInvalidArgument, {"model 'digits'", "got [64]"});
  InferTensor too_big = FromTensor("input", DataType::kFP32, torch::rand({65, 64}));
  expect_error("infer", {too_big}, StatusCode::kInvalidArgument,
               {"model 'digits'", "batch size 65", "64"});
  InferTensor unknown = FromTensor("pixels", DataType::kFP32, torch::rand({2, 64}));
  expect_error("infer", {unknown}, StatusCode::kInvalidArgument,
               {"model 'digits'", "input 'pixels'", "input"});
  expect_error("infer", {good, good}, StatusCode::kInvalidArgument, {"model 'digits'", "twice"});
  expect_error("infer", {}, StatusCode::kInvalidArgument,
               {"model 'digits'", "missing input 'input'"});
  InferTensor short_data = good;
  short_data.data.resize(short_data.data.size() - 4);
  expect_error("infer", {short_data}, StatusCode::kInvalidArgument,
               {"model 'digits'", "input 'input'"});
  InferTensor unsigned_type =
      FromTensor("input", DataType::kUInt32, torch::zeros({2, 64}, torch::kInt));
  expect_error("infer", {unsigned_type}, StatusCode::kInvalidArgument,
               {"model 'digits'", "FP32", "UINT32"});
  expect_error("summarize", {good}, StatusCode::kNotFound,
               {"model 'digits'", "task 'summarize'", "infer"});
  expect_error("encode", {good}, StatusCode::kNotFound, {"model 'digits'", "task 'encode'"});
  expect_error("generate", {good}, StatusCode::kNotFound, {"model 'digits'", "task 'generate'"});
  EXPECT_EQ(backend.Tasks(), std::vector<std::string>{"infer"});
  // Still fine after all these errors.
  EXPECT_TRUE(backend.Run("infer", {good}).ok());
}

TEST(BackendTest, LoadErrorsNameTheFile) {
  REQUIRE_ZOO();
  ModelEntry entry = Open(zoo, "digits");
  TorchScriptBackend backend;
  EXPECT_FALSE(backend.loaded());
  auto out = backend.Run("infer", std::vector<InferTensor>{});
  EXPECT_EQ(out.status().code(), StatusCode::kUnavailable);

  ModelEntry missing = entry;
  missing.torchscript = std::filesystem::path(::testing::TempDir()) / "no-such-dir" / "model.pt";
  Status s = backend.Load(missing);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("no-such-dir"), std::string::npos);

  const auto garbage = std::filesystem::path(::testing::TempDir()) / "backend_test_garbage.pt";
  std::ofstream(garbage) << "this is not a zip archive";
  ModelEntry corrupt = entry;
  corrupt.torchscript = garbage;
  s = backend.Load(corrupt);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find(garbage.string()), std::string::npos) << s.message();
  EXPECT_FALSE(backend.loaded());

  s = backend.Load(entry, "tpu:0");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  if (!torch::cuda::is_available()) {
    s = backend.Load(entry, "cuda:0");
    EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
    EXPECT_NE(s.message().find("cuda:0"), std::string::npos);
  }
  ModelEntry bad_task = entry;
  bad_task.config.tasks["explain"] = "no_such_method";
  s = backend.Load(bad_task);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("no_such_method"), std::string::npos);
}

TEST(BackendTest, Resnet18AtBatch2EqualsTheModuleRunDirectly) {
  REQUIRE_ZOO();
  ModelEntry entry = Open(zoo, "resnet18");
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(entry).ok());
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({2, 3, 64, 64});
  auto out = backend.Run("infer", {FromTensor("input", DataType::kFP32, x)});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].name, "logits");
  EXPECT_EQ((*out)[0].shape, (std::vector<int64_t>{2, 1000}));

  torch::jit::Module module = torch::jit::load(entry.torchscript->string());
  module.eval();
  c10::InferenceMode guard;
  torch::Tensor expected = module.forward({x}).toTensor();
  torch::Tensor got = ToTensor((*out)[0], torch::kFloat);
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-6))
      << (got - expected).abs().max().item<float>();
}

TEST(BackendTest, MemoryLimitFailsOneRequestAndTheNextSucceeds) {
  REQUIRE_ZOO();
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(Open(zoo, "resnet18")).ok());
  InferTensor x = FromTensor("input", DataType::kFP32, torch::randn({2, 3, 64, 64}));
  const auto before = backend.MemoryStats();
  EXPECT_GT(before.current_bytes, 0u);  // the weights
  const uint64_t limit = before.current_bytes + 4096;
  ASSERT_TRUE(backend.SetMemoryLimit(limit).ok());
  auto out = backend.Run("infer", {x});
  ASSERT_TRUE(backend.SetMemoryLimit(std::nullopt).ok());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted) << out.status().ToString();
  EXPECT_NE(out.status().message().find("model 'resnet18': memory limit exceeded: limit " +
                                        std::to_string(limit) + " bytes"),
            std::string::npos)
      << out.status().message();
  EXPECT_NE(out.status().message().find("requested"), std::string::npos);
  EXPECT_GE(backend.MemoryStats().refusals, before.refusals + 1);
  // The typed detail, from the allocator's record of the refusal.
  const MemoryLimitDetail* detail = out.status().memory_limit();
  ASSERT_NE(detail, nullptr) << out.status().ToString();
  EXPECT_EQ(detail->model, "resnet18");
  EXPECT_EQ(detail->device, "cpu");
  EXPECT_EQ(detail->limit_bytes, limit);
  EXPECT_GT(detail->requested_bytes, 0u);
  EXPECT_GT(detail->in_use_bytes + ((detail->requested_bytes + 63) / 64) * 64, limit)
      << "the refused block would have passed the limit";
  EXPECT_LE(detail->in_use_bytes, limit);

  backend.ResetPeakMemory();
  out = backend.Run("infer", {x});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  const auto after = backend.MemoryStats();
  EXPECT_GT(after.peak_bytes, limit);  // the forward needed more than the refused limit
  EXPECT_FALSE(after.limit_bytes.has_value());
}

// In the zoo's scripted gpt2 and bert-base the TorchScript interpreter
// rethrows the allocator's c10::OutOfMemoryError as a plain
// std::runtime_error (seen on LibTorch 1.13: the type is lost); the refusal
// is still recognised, from the allocator's record, with its figures.
TEST(BackendTest, ARefusalInsideAScriptedMethodIsStillALimitWithItsDetail) {
  REQUIRE_ZOO();
  for (const char* model : {"gpt2", "bert-base"}) {
    SCOPED_TRACE(model);
    TorchScriptBackend backend;
    ASSERT_TRUE(backend.Load(Open(zoo, model)).ok());
    CountingAllocator& process = CountingAllocator::Install();
    torch::Tensor ids = torch::randint(0, 1000, {2, 8}, torch::kLong);
    InferTensor input = FromTensor("input_ids", DataType::kInt64, ids);
    const uint64_t limit = process.current_aligned_bytes() + 2048;
    ASSERT_TRUE(backend.SetMemoryLimit(limit).ok());
    auto out = backend.Run("infer", {input});
    ASSERT_TRUE(backend.SetMemoryLimit(std::nullopt).ok());
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted) << out.status().ToString();
    const MemoryLimitDetail* detail = out.status().memory_limit();
    ASSERT_NE(detail, nullptr) << out.status().ToString();
    EXPECT_EQ(detail->model, model);
    EXPECT_EQ(detail->limit_bytes, limit);
    EXPECT_GT(detail->requested_bytes, 0u);
    EXPECT_TRUE(backend.Run("infer", {input}).ok());
  }
}

// Allocations charged to a model's own counters (a ScopedCharge, as the
// worker's model threads do) meet that model's limit, not the process's.
TEST(BackendTest, AModelsOwnCountersLimitOnlyThatModel) {
  REQUIRE_ZOO();
  CountingAllocator::Install();
  CountingAllocator* tight = CountingAllocator::AcquireModelCounters();
  CountingAllocator* roomy = CountingAllocator::AcquireModelCounters();
  TorchScriptBackend a, b;
  {
    CountingAllocator::ScopedCharge charge(tight);
    ASSERT_TRUE(a.Load(Open(zoo, "resnet18")).ok());
  }
  {
    CountingAllocator::ScopedCharge charge(roomy);
    ASSERT_TRUE(b.Load(Open(zoo, "resnet18")).ok());
  }
  // Each holds its own weights, exactly.
  EXPECT_EQ(tight->current_bytes(), roomy->current_bytes());
  EXPECT_GE(tight->current_bytes(), uint64_t{46'758'048});  // resnet18's weights
  const uint64_t limit = tight->current_aligned_bytes() + (uint64_t{1} << 20);
  tight->SetLimit(limit);
  roomy->SetLimit(limit + (uint64_t{64} << 20));
  InferTensor x = FromTensor("input", DataType::kFP32, torch::randn({8, 3, 64, 64}));
  {
    CountingAllocator::ScopedCharge charge(tight);
    auto out = a.Run("infer", {x});
    ASSERT_FALSE(out.ok());
    EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted) << out.status().ToString();
    ASSERT_NE(out.status().memory_limit(), nullptr);
    EXPECT_EQ(out.status().memory_limit()->limit_bytes, limit);
  }
  {
    CountingAllocator::ScopedCharge charge(roomy);
    auto out = b.Run("infer", {x});
    EXPECT_TRUE(out.ok()) << out.status().ToString();
  }
  EXPECT_GE(tight->stats().refusals, 1u);
  EXPECT_EQ(roomy->stats().refusals, 0u);
  a = TorchScriptBackend();
  b = TorchScriptBackend();
  EXPECT_EQ(tight->current_bytes(), 0u) << "frees go back to the counters charged";
  EXPECT_EQ(roomy->current_bytes(), 0u);
  CountingAllocator::ReleaseModelCounters(tight);
  CountingAllocator::ReleaseModelCounters(roomy);
}

// ---- swap ----

// A scratch folder, removed with its contents.
struct ScratchDir {
  std::filesystem::path path;
  explicit ScratchDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() /
             ("modelgrid-backend-test-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
  }
  ~ScratchDir() { std::filesystem::remove_all(path); }
  std::vector<std::filesystem::path> Files() const {
    std::vector<std::filesystem::path> out;
    if (!std::filesystem::is_directory(path)) return out;
    for (const auto& e : std::filesystem::directory_iterator(path)) out.push_back(e.path());
    return out;
  }
};

// The weight bytes of a model as the module's parameter and buffer lists
// give them (distinct data), independent of the backend's storage walk.
uint64_t WeightBytes(const ModelEntry& entry) {
  torch::jit::Module module = torch::jit::load(entry.torchscript->string());
  std::set<const void*> seen;
  uint64_t total = 0;
  for (const auto& p : module.named_parameters(true)) {
    if (seen.insert(p.value.data_ptr()).second) total += p.value.nbytes();
  }
  for (const auto& b : module.named_buffers(true)) {
    if (seen.insert(b.value.data_ptr()).second) total += b.value.nbytes();
  }
  return total;
}

// A request per model of the zoo and the task it runs.
struct SwapCase {
  std::string model;
  std::string task;
  std::vector<InferTensor> inputs;
  nlohmann::json params = nlohmann::json::object();
};

std::vector<SwapCase> SwapCases() {
  torch::manual_seed(5);
  std::vector<SwapCase> cases;
  cases.push_back(
      {"resnet18", "infer", {FromTensor("input", DataType::kFP32, torch::randn({2, 3, 64, 64}))}});
  cases.push_back(
      {"gpt2",
       "generate",
       {FromTensor("input_ids", DataType::kInt64, torch::randint(0, 1000, {2, 6}, torch::kLong))},
       {{"max_new_tokens", 4}}});
  cases.push_back(
      {"bert-base",
       "encode",
       {FromTensor("input_ids", DataType::kInt64, torch::randint(0, 1000, {3, 7}, torch::kLong))}});
  cases.push_back(
      {"digits", "infer", {FromTensor("input", DataType::kFP32, torch::rand({5, 64}))}});
  return cases;
}

TEST(BackendSwapTest, SwapOutAndInKeepsOutputsBitIdentical) {
  REQUIRE_ZOO();
  for (const SwapCase& c : SwapCases()) {
    SCOPED_TRACE(c.model);
    ScratchDir dir("roundtrip-" + c.model);
    const ModelEntry entry = Open(zoo, c.model);
    TorchScriptBackend backend;
    ASSERT_TRUE(backend.Load(entry).ok());
    auto before = backend.Run(c.task, c.inputs, c.params);
    ASSERT_TRUE(before.ok()) << before.status().ToString();
    const uint64_t weights = WeightBytes(entry);
    ASSERT_GT(weights, 0u);
    const uint64_t held = backend.MemoryStats().current_bytes;

    auto out = backend.SwapOut(SwapTarget{dir.path.string()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(out->bytes, weights);
    EXPECT_TRUE(backend.swapped());
    EXPECT_LE(backend.MemoryStats().current_bytes + weights, held)
        << "the weights' blocks went back to the allocator";
    // One file, its header and table then exactly the weight bytes.
    const auto files = dir.Files();
    ASSERT_EQ(files.size(), 1u);
    EXPECT_EQ(files[0].string(), out->location);
    EXPECT_EQ(files[0].filename().string(), c.model + "." + std::to_string(::getpid()) + ".mgswap");
    EXPECT_GT(std::filesystem::file_size(files[0]), weights + 48);
    {
      std::ifstream in(files[0], std::ios::binary);
      char magic[8] = {};
      in.read(magic, 8);
      EXPECT_EQ(std::string(magic, 8), "MGSWAP01");
    }
    auto refused = backend.Run(c.task, c.inputs, c.params);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
    EXPECT_NE(refused.status().message().find("model '" + c.model + "' is swapped out"),
              std::string::npos)
        << refused.status().message();
    // A second swap-out changes nothing.
    auto again = backend.SwapOut(SwapTarget{dir.path.string()});
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->bytes, 0u);

    auto in = backend.SwapIn();
    ASSERT_TRUE(in.ok()) << in.status().ToString();
    EXPECT_FALSE(in->reloaded) << in->reason;
    EXPECT_EQ(in->bytes, weights);
    EXPECT_FALSE(backend.swapped());
    EXPECT_TRUE(dir.Files().empty()) << "the swap file is deleted after the swap-in";
    EXPECT_EQ(backend.MemoryStats().current_bytes, held);
    auto after = backend.Run(c.task, c.inputs, c.params);
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_EQ(*after, *before) << "outputs after the swap-in differ";
    auto idle = backend.SwapIn();  // resident: nothing to do
    ASSERT_TRUE(idle.ok());
    EXPECT_EQ(idle->bytes, 0u);
  }
}

// A swap file that is damaged or gone is not fatal: the model is loaded
// again from its repository files, says why, and answers as before.
TEST(BackendSwapTest, ACorruptTruncatedOrMissingSwapFileReloadsTheModel) {
  REQUIRE_ZOO();
  const ModelEntry entry = Open(zoo, "resnet18");
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(entry).ok());
  const std::vector<InferTensor> x = {
      FromTensor("input", DataType::kFP32, torch::randn({1, 3, 64, 64}))};
  auto before = backend.Run("infer", x);
  ASSERT_TRUE(before.ok());
  const uint64_t weights = WeightBytes(entry);

  struct Damage {
    std::string what;
    std::function<void(const std::filesystem::path&)> apply;
    std::string reason;
  };
  const std::vector<Damage> damages = {
      {"one payload byte flipped",
       [](const std::filesystem::path& f) {
         std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
         io.seekg(-1000, std::ios::end);
         char c = 0;
         io.read(&c, 1);
         io.seekp(-1000, std::ios::end);
         c = static_cast<char>(c ^ 0x01);
         io.write(&c, 1);
       },
       "payload hash"},
      {"truncated",
       [](const std::filesystem::path& f) {
         std::filesystem::resize_file(f, std::filesystem::file_size(f) - 4096);
       },
       "bytes, its header says"},
      {"missing", [](const std::filesystem::path& f) { std::filesystem::remove(f); }, "missing"},
      {"not a swap file",
       [](const std::filesystem::path& f) {
         std::fstream io(f, std::ios::in | std::ios::out | std::ios::binary);
         io.write("NOTASWAP", 8);
       },
       "magic"},
  };
  for (const Damage& d : damages) {
    SCOPED_TRACE(d.what);
    ScratchDir dir("damaged");
    auto out = backend.SwapOut(SwapTarget{dir.path.string()});
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    d.apply(out->location);
    auto in = backend.SwapIn();
    ASSERT_TRUE(in.ok()) << in.status().ToString();
    EXPECT_TRUE(in->reloaded);
    EXPECT_NE(in->reason.find(d.reason), std::string::npos) << in->reason;
    EXPECT_EQ(in->bytes, weights);
    EXPECT_FALSE(backend.swapped());
    EXPECT_TRUE(dir.Files().empty());
    auto after = backend.Run("infer", x);
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_EQ(*after, *before);
  }
}

TEST(BackendSwapTest, ACpuModelNeedsASwapDirAndAnUnwritableOneFailsCleanly) {
  REQUIRE_ZOO();
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(Open(zoo, "digits")).ok());
  auto out = backend.SwapOut(SwapTarget{});
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << out.status().ToString();
  out = backend.SwapOut(SwapTarget{"/proc/modelgrid-cannot-write-here"});
  EXPECT_EQ(out.status().code(), StatusCode::kUnavailable) << out.status().ToString();
  EXPECT_NE(out.status().message().find("model 'digits': swap-out"), std::string::npos)
      << out.status().message();
  EXPECT_FALSE(backend.swapped());
  auto run = backend.Run("infer", {FromTensor("input", DataType::kFP32, torch::rand({1, 64}))});
  EXPECT_TRUE(run.ok()) << "a failed swap-out leaves the model serving";
  TorchScriptBackend empty;
  EXPECT_EQ(empty.SwapOut(SwapTarget{"/tmp"}).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(empty.SwapIn().status().code(), StatusCode::kUnavailable);
}

// Destroying a swapped-out backend removes its swap file.
TEST(BackendSwapTest, UnloadingASwappedModelRemovesItsFile) {
  REQUIRE_ZOO();
  ScratchDir dir("unload");
  {
    TorchScriptBackend backend;
    ASSERT_TRUE(backend.Load(Open(zoo, "digits")).ok());
    ASSERT_TRUE(backend.SwapOut(SwapTarget{dir.path.string()}).ok());
    EXPECT_EQ(dir.Files().size(), 1u);
  }
  EXPECT_TRUE(dir.Files().empty());
}

TEST(BackendTest, OtherLibTorchErrorsAreInternalAndNamedAndNotFatal) {
  REQUIRE_ZOO();
  ModelEntry entry = Open(zoo, "resnet18");
  entry.config.inputs.clear();  // names only: the shape reaches the model unchecked
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(entry).ok());
  const auto inputs = backend.Inputs();
  ASSERT_EQ(inputs.size(), 1u);
  const std::string name = inputs[0].name;
  auto out =
      backend.Run("infer", {FromTensor(name, DataType::kFP32, torch::randn({1, 2, 16, 16}))});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInternal) << out.status().ToString();
  EXPECT_NE(out.status().message().find("model 'resnet18': task 'infer'"), std::string::npos);
  out = backend.Run("infer", {FromTensor(name, DataType::kFP32, torch::randn({1, 3, 64, 64}))});
  EXPECT_TRUE(out.ok()) << out.status().ToString();
}

TEST(BackendTest, GreedyGenerateEqualsADecodeLoopOnTheModule) {
  REQUIRE_ZOO();
  ModelEntry entry = Open(zoo, "gpt2");
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(entry).ok());
  EXPECT_EQ(backend.Tasks(), (std::vector<std::string>{"generate", "infer"}));
  torch::manual_seed(11);
  torch::Tensor prompt = torch::randint(0, 1000, {2, 5}, torch::kLong);
  auto out = backend.Run("generate", {FromTensor("input_ids", DataType::kInt64, prompt)},
                         {{"max_new_tokens", 8}});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].name, "output_ids");
  EXPECT_EQ((*out)[0].datatype, DataType::kInt64);
  EXPECT_EQ((*out)[0].shape, (std::vector<int64_t>{2, 13}));
  EXPECT_EQ((*out)[1].name, "generated_ids");
  EXPECT_EQ((*out)[1].shape, (std::vector<int64_t>{2, 8}));

  torch::jit::Module module = torch::jit::load(entry.torchscript->string());
  module.eval();
  torch::Tensor expected = GreedyDecode(module, prompt.clone(), 8);
  EXPECT_TRUE(torch::equal(ToTensor((*out)[0], torch::kLong), expected));
  EXPECT_TRUE(torch::equal(ToTensor((*out)[1], torch::kLong), expected.narrow(1, 5, 8)));

  // Default max_new_tokens is 16.
  out = backend.Run("generate", {FromTensor("input_ids", DataType::kInt64, prompt)});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[1].shape, (std::vector<int64_t>{2, 16}));
}

TEST(BackendTest, SampledGenerateIsDeterministicPerSeed) {
  REQUIRE_ZOO();
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(Open(zoo, "gpt2")).ok());
  torch::Tensor prompt = torch::arange(1, 5, torch::kLong).unsqueeze(0);
  InferTensor ids = FromTensor("input_ids", DataType::kInt64, prompt);
  auto sample = [&](uint64_t seed, nlohmann::json extra = nlohmann::json::object()) {
    nlohmann::json params = {
        {"max_new_tokens", 12}, {"do_sample", true}, {"seed", seed}, {"temperature", 1.5}};
    params.update(extra);
    auto out = backend.Run("generate", {ids}, params);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? (*out)[1].data : std::string();
  };
  const std::string first = sample(7);
  EXPECT_EQ(first, sample(7));
  bool differs = false;
  for (uint64_t seed : {1, 2, 3, 4, 5}) differs = differs || sample(seed) != first;
  EXPECT_TRUE(differs);
  // top_k = 1 is greedy whatever the seed.
  auto greedy = backend.Run("generate", {ids}, {{"max_new_tokens", 12}});
  ASSERT_TRUE(greedy.ok());
  EXPECT_EQ(sample(9, {{"top_k", 1}}), (*greedy)[1].data);
}

TEST(BackendTest, GenerateRejectsBadParamsAndTooLongSequences) {
  REQUIRE_ZOO();
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(Open(zoo, "gpt2")).ok());
  InferTensor ids = FromTensor("input_ids", DataType::kInt64, torch::ones({1, 30}, torch::kLong));
  auto out = backend.Run("generate", {ids}, {{"max_new_tokens", 99}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out.status().message().find(
                "30 + max_new_tokens 99 = 129 exceeds the model's n_positions 128"),
            std::string::npos)
      << out.status().message();
  EXPECT_TRUE(backend.Run("generate", {ids}, {{"max_new_tokens", 98}}).ok());
  for (const nlohmann::json& bad :
       {nlohmann::json{{"max_new_tokens", 0}}, nlohmann::json{{"max_new_tokens", 1025}},
        nlohmann::json{{"temperature", 0}}, nlohmann::json{{"top_k", -1}},
        nlohmann::json{{"do_sample", "yes"}}, nlohmann::json{{"seed", -3}}}) {
    out = backend.Run("generate", {ids}, bad);
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument) << bad.dump();
    EXPECT_NE(out.status().message().find("model 'gpt2'"), std::string::npos);
  }
  InferTensor floats = FromTensor("input_ids", DataType::kFP32, torch::ones({1, 3}));
  EXPECT_EQ(backend.Run("generate", {floats}).status().code(), StatusCode::kInvalidArgument);
}

TEST(BackendTest, BertEncodeAndACustomTaskCallTheMethod) {
  REQUIRE_ZOO();
  ModelEntry entry = Open(zoo, "bert-base");
  entry.config.tasks["embed"] = "encode";
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(entry).ok());
  EXPECT_EQ(backend.Tasks(), (std::vector<std::string>{"embed", "encode", "infer"}));
  torch::Tensor ids = torch::randint(0, 1000, {3, 7}, torch::kLong);
  InferTensor input = FromTensor("input_ids", DataType::kInt64, ids);
  auto encoded = backend.Run("encode", {input});
  ASSERT_TRUE(encoded.ok()) << encoded.status().ToString();
  ASSERT_EQ(encoded->size(), 1u);
  EXPECT_EQ((*encoded)[0].shape, (std::vector<int64_t>{3, 64}));
  auto embedded = backend.Run("embed", {input});
  ASSERT_TRUE(embedded.ok()) << embedded.status().ToString();
  EXPECT_EQ((*embedded)[0].data, (*encoded)[0].data);

  torch::jit::Module module = torch::jit::load(entry.torchscript->string());
  module.eval();
  c10::InferenceMode guard;
  torch::Tensor expected = module.get_method("encode")({ids}).toTensor();
  EXPECT_TRUE(torch::allclose(ToTensor((*encoded)[0], torch::kFloat), expected, 1e-5, 1e-6));

  auto hidden = backend.Run("infer", {input});
  ASSERT_TRUE(hidden.ok()) << hidden.status().ToString();
  EXPECT_EQ((*hidden)[0].name, "last_hidden_state");
  EXPECT_EQ((*hidden)[0].shape, (std::vector<int64_t>{3, 7, 64}));
}

TEST(BackendTest, WithoutDeclaredInputsTheSchemaNamesThem) {
  REQUIRE_ZOO();
  ModelEntry entry = Open(zoo, "digits");
  entry.config.inputs.clear();
  entry.config.outputs.clear();
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(entry).ok());
  const auto inputs = backend.Inputs();
  ASSERT_EQ(inputs.size(), 1u);
  EXPECT_FALSE(inputs[0].name.empty());
  EXPECT_NE(inputs[0].name, "self");
  const auto outputs = backend.Outputs();
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].name, "output0");
  auto out =
      backend.Run("infer", {FromTensor(inputs[0].name, DataType::kFP32, torch::rand({3, 64}))});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].name, "output0");
  EXPECT_EQ((*out)[0].shape, (std::vector<int64_t>{3, 10}));
  EXPECT_EQ(backend.Run("infer", {FromTensor("nope", DataType::kFP32, torch::rand({3, 64}))})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(BackendTest, MetadataComesFromConfigYaml) {
  REQUIRE_ZOO();
  TorchScriptBackend backend;
  ASSERT_TRUE(backend.Load(Open(zoo, "digits"), "cpu", 1).ok());
  EXPECT_EQ(backend.model_name(), "digits");
  const auto inputs = backend.Inputs();
  ASSERT_EQ(inputs.size(), 1u);
  EXPECT_EQ(inputs[0].name, "input");
  EXPECT_EQ(inputs[0].dims, std::vector<int64_t>{64});
  ASSERT_EQ(backend.Outputs().size(), 1u);
  EXPECT_EQ(backend.Outputs()[0].name, "logits");
  EXPECT_TRUE(backend.Inputs("nope").empty());
}

}  // namespace
}  // namespace modelgrid

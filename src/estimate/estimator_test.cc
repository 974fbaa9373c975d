#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "estimate/hf_config.h"
#include "estimate/test_fixtures.h"
#include "estimate/transformer_counts.h"
#include "modelgrid/bytes.h"
#include "modelgrid/estimate.h"
#include "modelgrid/estimate_json.h"

namespace modelgrid {
namespace {

using estimate::testing::BuildSafetensors;
using estimate::testing::PickleWriter;
using estimate::testing::TempDir;
using estimate::testing::TensorSpecForFile;
using estimate::testing::WriteFile;
using estimate::testing::WriteZip;
using ::testing::Contains;
using ::testing::HasSubstr;

// A 2-layer GPT-2 with h=8, 2 heads, 16 positions, vocabulary 32:
// 2,144 parameters (V·h 256 + T·h 128 + 2 × 872 + 2h 16).
constexpr const char* kTinyGpt2Config =
    R"({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
  "n_embd": 8, "n_layer": 2, "n_head": 2, "n_positions": 16, "vocab_size": 32})";

std::vector<TensorSpecForFile> TinyGpt2Tensors(bool with_lm_head = false) {
  std::vector<TensorSpecForFile> t = {{"wte.weight", "F32", {32, 8}},
                                      {"wpe.weight", "F32", {16, 8}}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    for (const auto& [name, shape] :
         std::vector<std::pair<std::string, std::vector<uint64_t>>>{{"ln_1.weight", {8}},
                                                                    {"ln_1.bias", {8}},
                                                                    {"attn.c_attn.weight", {8, 24}},
                                                                    {"attn.c_attn.bias", {24}},
                                                                    {"attn.c_proj.weight", {8, 8}},
                                                                    {"attn.c_proj.bias", {8}},
                                                                    {"ln_2.weight", {8}},
                                                                    {"ln_2.bias", {8}},
                                                                    {"mlp.c_fc.weight", {8, 32}},
                                                                    {"mlp.c_fc.bias", {32}},
                                                                    {"mlp.c_proj.weight", {32, 8}},
                                                                    {"mlp.c_proj.bias", {8}}}) {
      t.push_back({p + name, "F32", shape});
    }
  }
  t.push_back({"ln_f.weight", "F32", {8}});
  t.push_back({"ln_f.bias", "F32", {8}});
  if (with_lm_head) t.push_back({"lm_head.weight", "F32", {32, 8}});
  return t;
}

ModelEntry HfGpt2(const TempDir& dir, bool with_lm_head = false) {
  WriteFile(dir / "gpt2/config.json", kTinyGpt2Config);
  WriteFile(dir / "gpt2/model.safetensors", BuildSafetensors(TinyGpt2Tensors(with_lm_head)));
  ModelEntry m;
  m.name = "gpt2";
  m.dir = dir / "gpt2";
  m.format = ModelFormat::kHuggingFace;
  m.hf_config = dir / "gpt2/config.json";
  m.safetensors = {dir / "gpt2/model.safetensors"};
  m.config.max_batch_size = 4;
  m.config.sequence_length = 8;
  return m;
}

EstimateOptions Cpu() {
  EstimateOptions o;
  o.context_bytes = 1000;
  return o;
}

std::string StoragePickle(const std::vector<std::pair<std::string, uint64_t>>& float_storages) {
  std::map<std::string, int> memo;
  PickleWriter p;
  p.Proto(2).Global("__torch__", "M").Put(100).EmptyTuple().NewObj().EmptyDict().Mark();
  for (const auto& [key, numel] : float_storages) {
    p.Unicode("t" + key).Tensor("FloatStorage", key, numel, {static_cast<int64_t>(numel)}, &memo);
  }
  p.SetItems().Build().Stop();
  return p.bytes();
}

// model.pt with float storages of 3 MiB, 100 bytes and 600 KiB.
void WriteTorchScript(const std::filesystem::path& p) {
  ASSERT_TRUE(
      WriteZip(p, {{"model/data.pkl", StoragePickle({{"0", 786432}, {"1", 25}, {"2", 153600}})},
                   {"model/data/0", std::string(3 * kMiB, '\0')},
                   {"model/data/1", std::string(100, '\0')},
                   {"model/data/2", std::string(600 * kKiB, '\0')},
                   {"model/version", "3"}}));
}

// What the fake walk reports the loaded module holds (differs from every
// archive's records, so tests see which figure the estimator took).
constexpr uint64_t kLoadedWeightBytes = 4 * kMiB + 64;

class FakeWalker : public GraphWalker {
 public:
  Result<Profile> Walk(const std::filesystem::path& model_pt,
                       const std::vector<std::vector<int64_t>>& input_shapes,
                       const std::vector<DataType>& input_types, DeviceKind device) override {
    ++calls;
    path = model_pt;
    shapes = input_shapes;
    types = input_types;
    if (!fail.ok()) return fail;
    Profile p;
    p.weight_bytes = kLoadedWeightBytes;
    p.peak_activation_bytes = 5'000'000;
    p.peak_workspace_bytes = 1'000;
    p.notes = "aten::foo guessed";
    return p;
  }
  int calls = 0;
  std::filesystem::path path;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<DataType> types;
  Status fail;
};

TEST(EstimatorTest, HuggingFaceGpt2Analytic) {
  TempDir dir;
  auto r = EstimateModel(HfGpt2(dir), Cpu(), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const MemoryEstimate& e = r.value();
  EXPECT_EQ(e.model, "gpt2");
  EXPECT_EQ(e.batch, 4);
  EXPECT_EQ(e.sequence_length, 8);
  EXPECT_EQ(e.device_type, "cpu");
  EXPECT_EQ(e.parameters, 2144u);
  // 2,144 fp32 parameters + the causal masks 2 × (16² + 4).
  EXPECT_EQ(e.weights, 2144u * 4 + 2 * (256 + 4));
  // Derivation of activation_bytes.h by hand, B=4 S=8 h=8 n=2 i=32 V=32 d=4:
  // inputs 1,536 + mlp 2·1,024 + 4·4,096 = 19,968; plus KV 2·2·2·4·4 × 4 × 8 = 4,096.
  EXPECT_EQ(e.kv_cache, 4096u);
  EXPECT_EQ(e.activations, 19'968u + 4'096u);
  EXPECT_EQ(e.method, "analytic (config.json)");
  EXPECT_EQ(e.workspace, 0u);
  // 64-byte alignment: per layer 2·32 + 32 + 32 + 2·32 + 32 = 224, ln_f 64,
  // masked_bias 2 × 60; plus the activation bound 256 × 63.
  EXPECT_EQ(e.allocator_slack, 2u * 224 + 64 + 120 + 16'128);
  EXPECT_EQ(e.instance_peak(), 49'920u);
  EXPECT_EQ(e.margin, 4'992u);  // 10 %
  EXPECT_EQ(e.context, 1000u);
  EXPECT_EQ(e.total(), e.instance_peak() + e.margin + 1000);
  EXPECT_THAT(e.notes,
              Contains(HasSubstr("kv_cache 4096 bytes included in the generate task's")));
  EXPECT_THAT(e.notes, Contains(HasSubstr("lm_head is tied")));
  // Per task: generate holds the cache (its prefill keeps one position's
  // logits, 4·32·4 = 512 bytes, below the MLP stage); infer does not.
  ASSERT_EQ(e.tasks.size(), 2u);
  EXPECT_EQ(e.tasks[0].task, "generate");
  EXPECT_EQ(e.tasks[0].activations, 19'968u + 4'096u);
  EXPECT_EQ(e.tasks[1].task, "infer");
  EXPECT_EQ(e.tasks[1].activations, 19'968u);
  EXPECT_EQ(e.task, "");
  for (const std::string& n : e.notes) EXPECT_THAT(n, ::testing::Not(HasSubstr("config.json (")));
}

TEST(EstimatorTest, OneTaskOfACausalLmCanBeAskedFor) {
  TempDir dir;
  EstimateOptions o = Cpu();
  o.task = "infer";
  auto infer = EstimateModel(HfGpt2(dir), o, nullptr);
  ASSERT_TRUE(infer.ok()) << infer.status().ToString();
  EXPECT_EQ(infer->task, "infer");
  EXPECT_EQ(infer->activations, 19'968u);
  EXPECT_EQ(infer->kv_cache, 4'096u);  // reported, not counted
  o.task = "generate";
  auto generate = EstimateModel(HfGpt2(dir), o, nullptr);
  ASSERT_TRUE(generate.ok());
  EXPECT_EQ(generate->activations, 19'968u + 4'096u);
  o.task = "classify";
  auto none = EstimateModel(HfGpt2(dir), o, nullptr);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(none.status().message(), HasSubstr("no task 'classify'"));
  EXPECT_THAT(none.status().message(), HasSubstr("generate, infer"));
}

TEST(EstimatorTest, DefaultContextComesFromTheDeviceKind) {
  TempDir dir;
  auto r = EstimateModel(HfGpt2(dir), EstimateOptions{}, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->context, DefaultContextBytes(DeviceKind::kCpu));
}

TEST(EstimatorTest, TiedHeadInTheFileCountsOnce) {
  TempDir dir;
  auto r = EstimateModel(HfGpt2(dir, /*with_lm_head=*/true), Cpu(), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->parameters, 2144u);
  EXPECT_EQ(r->weights, 2144u * 4 + 520);
  EXPECT_THAT(r->notes, Contains(HasSubstr("lm_head.weight is tied to wte.weight")));
}

TEST(EstimatorTest, ConfigMismatchIsANoteWithBothNumbers) {
  TempDir dir;
  ModelEntry m = HfGpt2(dir);
  WriteFile(*m.hf_config, R"({"model_type": "gpt2", "n_embd": 8, "n_layer": 3, "n_head": 2,
      "n_positions": 16, "vocab_size": 32})");
  auto r = EstimateModel(m, Cpu(), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_THAT(r->notes,
              Contains(HasSubstr(
                  "safetensors headers hold 2144 elements but config.json (gpt2) gives 3016")));
}

TEST(EstimatorTest, ExplicitBatchAndSequence) {
  TempDir dir;
  EstimateOptions o = Cpu();
  o.batch = 1;
  o.sequence_length = 16;
  auto r = EstimateModel(HfGpt2(dir), o, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->batch, 1);
  EXPECT_EQ(r->sequence_length, 16);
  EXPECT_EQ(r->kv_cache, 128u * 16);
}

TEST(EstimatorTest, ShardedCheckpoint) {
  TempDir dir;
  ModelEntry m = HfGpt2(dir);
  std::vector<TensorSpecForFile> all = TinyGpt2Tensors();
  std::vector<TensorSpecForFile> a(all.begin(), all.begin() + 10), b(all.begin() + 10, all.end());
  WriteFile(dir / "gpt2/model-00001-of-00002.safetensors", BuildSafetensors(a));
  WriteFile(dir / "gpt2/model-00002-of-00002.safetensors", BuildSafetensors(b));
  nlohmann::json map;
  for (const auto& t : a) map[t.name] = "model-00001-of-00002.safetensors";
  for (const auto& t : b) map[t.name] = "model-00002-of-00002.safetensors";
  WriteFile(dir / "gpt2/model.safetensors.index.json",
            nlohmann::json{{"metadata", {{"total_size", 8576}}}, {"weight_map", map}}.dump());
  std::filesystem::remove(dir / "gpt2/model.safetensors");
  m.safetensors = {dir / "gpt2/model-00001-of-00002.safetensors",
                   dir / "gpt2/model-00002-of-00002.safetensors"};
  m.safetensors_index = dir / "gpt2/model.safetensors.index.json";
  auto r = EstimateModel(m, Cpu(), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->parameters, 2144u);
  EXPECT_EQ(r->weights, 2144u * 4 + 520);
  for (const std::string& n : r->notes) EXPECT_THAT(n, ::testing::Not(HasSubstr("total_size")));
}

TEST(EstimatorTest, TorchScriptWithoutWalkerIsWeightsOnly) {
  TempDir dir;
  ModelEntry m;
  m.name = "resnet";
  m.dir = dir / "resnet";
  m.torchscript = dir / "resnet/1/model.pt";
  WriteTorchScript(*m.torchscript);
  auto r = EstimateModel(m, Cpu(), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->weights, 3 * kMiB + 100 + 600 * kKiB);
  EXPECT_EQ(r->parameters, 786432u + 25 + 153600);
  EXPECT_EQ(r->activations, 0u);
  EXPECT_EQ(r->sequence_length, 0);
  EXPECT_EQ(r->method, "none");
  EXPECT_EQ(r->allocator_slack, 28u);  // only the 100-byte record is not 64-aligned
  EXPECT_THAT(r->notes, Contains("no graph walker: activations not estimated"));
}

// Loading holds the weights and the archive's code and pickle records at
// once; when the run needs less on top of the weights than those records,
// the request is raised to the load peak (else the limit refuses the load).
TEST(EstimatorTest, LoadPeakFloorsTheRequestOfSmallModels) {
  TempDir dir;
  ModelEntry m;
  m.name = "tiny";
  m.dir = dir / "tiny";
  m.torchscript = dir / "tiny/1/model.pt";
  const std::string pickle = StoragePickle({{"0", 25}});
  ASSERT_TRUE(WriteZip(*m.torchscript, {{"tiny/data.pkl", pickle},
                                        {"tiny/data/0", std::string(100, '\0')},
                                        {"tiny/code/__torch__.py.debug_pkl", std::string(kMiB + 1, 'd')},
                                        {"tiny/version", "3"}}));
  auto r = EstimateModel(m, Cpu(), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto round64 = [](uint64_t n) { return (n + 63) / 64 * 64; };
  const uint64_t records = round64(pickle.size()) + round64(kMiB + 1) + 64;
  EXPECT_EQ(r->weights, 100u);
  EXPECT_EQ(r->instance_peak(), 100u + records);
  EXPECT_EQ(r->workspace, 100u + records - 100u - r->allocator_slack);
  EXPECT_THAT(r->notes, Contains(HasSubstr("workspace raised by")));

  // A run that needs more than the records leaves the workspace alone.
  m.config.inputs = {TensorSpec{"x", DataType::kFP32, {4}}};
  FakeWalker walker;
  auto walked = EstimateModel(m, Cpu(), &walker);
  ASSERT_TRUE(walked.ok()) << walked.status().ToString();
  EXPECT_EQ(walked->workspace, 1'000u);
  for (const std::string& n : walked->notes) EXPECT_THAT(n, ::testing::Not(HasSubstr("raised")));
}

TEST(EstimatorTest, TorchScriptWalkOnCuda) {
  TempDir dir;
  ModelEntry m;
  m.name = "resnet";
  m.dir = dir / "resnet";
  m.torchscript = dir / "resnet/1/model.pt";
  m.config.max_batch_size = 8;
  m.config.inputs = {{"INPUT__0", DataType::kFP32, {3, 4, 4}}};
  WriteTorchScript(*m.torchscript);
  FakeWalker w;
  EstimateOptions o = Cpu();
  o.device = DeviceKind::kCuda;
  o.batch = 2;
  auto r = EstimateModel(m, o, &w);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(w.calls, 1);
  EXPECT_EQ(w.path, *m.torchscript);
  EXPECT_EQ(w.shapes, (std::vector<std::vector<int64_t>>{{2, 3, 4, 4}}));
  EXPECT_EQ(w.types, (std::vector<DataType>{DataType::kFP32}));
  EXPECT_EQ(r->device_type, "cuda");
  EXPECT_EQ(r->method, "graph walk");
  EXPECT_EQ(r->activations, 5'000'000u);
  EXPECT_EQ(r->workspace, 1'000u + 32 * kMiB);
  // Weights: 3 MiB → a 20 MiB segment; 100 B and 600 KiB share a 2 MiB segment.
  const uint64_t weight_slack = 22 * kMiB - (3 * kMiB + 100 + 600 * kKiB);
  // Activations 5,001,000 bytes: 2 MiB + 20 MiB + rounding to 6 MiB.
  const uint64_t act_slack = 22 * kMiB + (6 * kMiB - 5'001'000);
  EXPECT_EQ(r->allocator_slack, weight_slack + act_slack);
  EXPECT_THAT(r->notes, Contains("graph walk: aten::foo guessed"));
}

TEST(EstimatorTest, HuggingFaceWithTorchScriptWalksTokenInputs) {
  TempDir dir;
  ModelEntry m = HfGpt2(dir);
  m.torchscript = dir / "gpt2/1/model.pt";
  m.config.inputs = {{"input_ids", DataType::kInt64, {-1}},
                     {"attention_mask", DataType::kInt64, {-1}}};
  WriteTorchScript(*m.torchscript);
  FakeWalker w;
  auto r = EstimateModel(m, Cpu(), &w);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(w.shapes, (std::vector<std::vector<int64_t>>{{4, 8}, {4, 8}}));
  // On the CPU the walk's loaded bytes are what the instance holds; the
  // archive's records (model.pt, what runs) and safetensors are cross-checks.
  EXPECT_EQ(r->weights, kLoadedWeightBytes);
  EXPECT_EQ(r->allocator_slack, 0u);  // walk figures are whole 64-byte blocks
  EXPECT_THAT(r->notes, Contains(HasSubstr("the archive's tensor records 3760228")));
  EXPECT_EQ(r->parameters, 2144u);  // from the safetensors headers
  EXPECT_EQ(r->kv_cache, 4096u);
  EXPECT_EQ(r->activations, 5'000'000u);  // the cache is not added
  EXPECT_THAT(r->notes, Contains(HasSubstr("kv_cache 4096 bytes reported but not added")));
  EXPECT_THAT(r->notes,
              Contains(HasSubstr("weights: model.pt holds 3760228 bytes; safetensors 8576 + 520")));
}

TEST(EstimatorTest, HuggingFaceWithTorchScriptButNoWalkerIsAnalytic) {
  TempDir dir;
  ModelEntry m = HfGpt2(dir);
  m.torchscript = dir / "gpt2/1/model.pt";
  WriteTorchScript(*m.torchscript);
  auto r = EstimateModel(m, Cpu(), nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->method, "analytic (config.json)");
  EXPECT_EQ(r->activations, 19'968u);  // no cache in a model.pt forward
}

TEST(EstimatorTest, WalkInputErrors) {
  TempDir dir;
  ModelEntry m;
  m.name = "vision";
  m.dir = dir / "vision";
  m.torchscript = dir / "vision/1/model.pt";
  WriteTorchScript(*m.torchscript);
  FakeWalker w;
  auto r = EstimateModel(m, Cpu(), &w);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("model 'vision' declares no inputs"));
  m.config.inputs = {{"pixels", DataType::kFP32, {3, -1, 224}}};
  r = EstimateModel(m, Cpu(), &w);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("model 'vision': input 'pixels' has a variable dimension"));
  EXPECT_EQ(w.calls, 0);
  m.config.inputs = {{"pixels", DataType::kFP32, {3, 8, 8}}};
  w.fail = Status::Unsupported("aten::weird cannot be walked");
  r = EstimateModel(m, Cpu(), &w);
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_THAT(r.status().message(), HasSubstr("model 'vision': aten::weird"));
}

TEST(EstimatorTest, NoConfigurationGivesWeightsWithActivationsUnknownWhenAsked) {
  TempDir dir;
  ModelEntry m;
  m.name = "bare";
  m.dir = dir / "bare";
  m.torchscript = dir / "bare/1/model.pt";
  WriteTorchScript(*m.torchscript);
  FakeWalker w;
  // Placement and serve: an error naming the reason.
  auto r = EstimateModel(m, Cpu(), &w);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("model 'bare' declares no inputs: it has no configuration (neither "
                        "config.pbtxt nor config.yaml in"));
  // `modelgrid estimate`: the archive's weight bytes, activations unknown.
  EstimateOptions o = Cpu();
  o.weights_only_without_inputs = true;
  auto weights_only = EstimateModel(m, o, &w);
  ASSERT_TRUE(weights_only.ok()) << weights_only.status().ToString();
  auto no_walker = EstimateModel(m, Cpu(), nullptr);
  ASSERT_TRUE(no_walker.ok()) << no_walker.status().ToString();
  EXPECT_GT(weights_only->weights, 0u);
  EXPECT_EQ(weights_only->weights, no_walker->weights);  // the archive's tensor records
  EXPECT_EQ(weights_only->activations, 0u);
  EXPECT_EQ(weights_only->method, "none");
  EXPECT_THAT(weights_only->activations_unknown, HasSubstr("declares no inputs"));
  EXPECT_EQ(w.calls, 0);
  EXPECT_EQ(EstimateToJson(*weights_only).value("activations_unknown", ""),
            weights_only->activations_unknown);
}

// A 1-layer Qwen2 in bfloat16, h=8, 2 heads of 4, 1 KV head, i=16, V=32, tied:
// V·h 256 + layer (q 64+8, k 32+4, v 32+4, o 64, MLP 384, norms 16) 608 + h 8
// = 872 parameters.
constexpr const char* kTinyQwen2Config =
    R"({"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 8,
  "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
  "intermediate_size": 16, "vocab_size": 32, "max_position_embeddings": 64,
  "tie_word_embeddings": true, "torch_dtype": "bfloat16"})";

ModelEntry HfQwen2(const TempDir& dir) {
  std::vector<TensorSpecForFile> t = {{"model.embed_tokens.weight", "BF16", {32, 8}}};
  const std::string p = "model.layers.0.";
  for (const auto& [name, shape] : std::vector<std::pair<std::string, std::vector<uint64_t>>>{
           {"self_attn.q_proj.weight", {8, 8}},
           {"self_attn.q_proj.bias", {8}},
           {"self_attn.k_proj.weight", {4, 8}},
           {"self_attn.k_proj.bias", {4}},
           {"self_attn.v_proj.weight", {4, 8}},
           {"self_attn.v_proj.bias", {4}},
           {"self_attn.o_proj.weight", {8, 8}},
           {"mlp.gate_proj.weight", {16, 8}},
           {"mlp.up_proj.weight", {16, 8}},
           {"mlp.down_proj.weight", {8, 16}},
           {"input_layernorm.weight", {8}},
           {"post_attention_layernorm.weight", {8}}}) {
    t.push_back({p + name, "BF16", shape});
  }
  t.push_back({"model.norm.weight", "BF16", {8}});
  WriteFile(dir / "qwen2/config.json", kTinyQwen2Config);
  WriteFile(dir / "qwen2/model.safetensors", BuildSafetensors(t));
  ModelEntry m;
  m.name = "qwen2";
  m.dir = dir / "qwen2";
  m.format = ModelFormat::kHuggingFace;
  m.hf_config = dir / "qwen2/config.json";
  m.safetensors = {dir / "qwen2/model.safetensors"};
  m.config.max_batch_size = 2;
  m.config.sequence_length = 4;
  return m;
}

// Without a TorchScript export the native backend runs the folder: float32
// on the CPU (bf16 weights upcast at load: 4 bytes per element, activations
// and KV cache in float32), the file's dtype on CUDA unless config.yaml
// names one.
TEST(EstimatorTest, NativeBackendWeightsFollowItsComputeDtype) {
  TempDir dir;
  const ModelEntry m = HfQwen2(dir);
  const uint64_t buffers = 2 * 2 * 4;  // inv_freq + original_inv_freq, hd/2 = 2 fp32 each
  auto cpu = EstimateModel(m, Cpu(), nullptr);
  ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
  EXPECT_EQ(cpu->parameters, 872u);
  EXPECT_EQ(cpu->weights, 872u * 4 + buffers);
  // KV cache 2·L·n_kv·hd·4 bytes per token × B 2 × S 4.
  EXPECT_EQ(cpu->kv_cache, 2u * 1 * 1 * 4 * 4 * 2 * 4);
  EXPECT_THAT(cpu->notes, Contains(HasSubstr("14 tensor(s) converted at load to float32")));
  EXPECT_THAT(cpu->notes, Contains(HasSubstr("3488 bytes on the device for 1744 bytes")));
  for (const std::string& n : cpu->notes) {
    EXPECT_THAT(n, ::testing::Not(HasSubstr("config.json (")));  // the count matches
    EXPECT_THAT(n, ::testing::Not(HasSubstr("no known head")));
  }
  // The float32 activations of the same config.
  EstimateOptions cuda = Cpu();
  cuda.device = DeviceKind::kCuda;
  auto gpu = EstimateModel(m, cuda, nullptr);
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  EXPECT_EQ(gpu->weights, 872u * 2 + buffers);
  EXPECT_EQ(gpu->kv_cache, cpu->kv_cache / 2);
  EXPECT_LT(gpu->activations, cpu->activations);
  for (const std::string& n : gpu->notes) EXPECT_THAT(n, ::testing::Not(HasSubstr("converted")));

  ModelEntry f32 = m;
  f32.config.dtype = "float32";
  auto gpu32 = EstimateModel(f32, cuda, nullptr);
  ASSERT_TRUE(gpu32.ok()) << gpu32.status().ToString();
  EXPECT_EQ(gpu32->weights, 872u * 4 + buffers);
  EXPECT_EQ(gpu32->kv_cache, cpu->kv_cache);
  EXPECT_THAT(gpu32->notes,
              Contains(HasSubstr("converted at load to config.yaml's dtype float32")));
  // On the CPU config.yaml's dtype changes nothing: it computes in float32.
  f32.config.dtype = "float16";
  auto cpu16 = EstimateModel(f32, Cpu(), nullptr);
  ASSERT_TRUE(cpu16.ok());
  EXPECT_EQ(cpu16->weights, cpu->weights);
  f32.config.dtype = "int4";
  EXPECT_EQ(EstimateModel(f32, cuda, nullptr).status().code(), StatusCode::kInvalidArgument);
}

// The zoo's Hugging Face folders ($MODELGRID_TEST_HF_ZOO, make zoo-small):
// every one estimates, with the parameter count tools/zoo recorded, the
// config.json count agreeing (no mismatch note), and weights of 4 bytes per
// parameter on the CPU (the native backend's float32) and the file's bytes
// on CUDA, plus the non-persistent buffers.
TEST(EstimatorTest, HuggingFaceZooFolders) {
  const char* env = std::getenv("MODELGRID_TEST_HF_ZOO");
  if (env == nullptr || !std::filesystem::is_directory(env)) {
    GTEST_SKIP() << "MODELGRID_TEST_HF_ZOO is not a folder (make zoo-small)";
  }
  const std::filesystem::path zoo(env);
  std::ifstream in(zoo / "hf_zoo.json");
  ASSERT_TRUE(in);
  const nlohmann::json manifest = nlohmann::json::parse(in);
  ASSERT_GE(manifest.at("models").size(), 9u);
  for (const auto& [name, entry] : manifest.at("models").items()) {
    SCOPED_TRACE(name);
    ModelEntry m;
    m.name = name;
    m.dir = zoo / name;
    m.format = ModelFormat::kHuggingFace;
    m.hf_config = m.dir / "config.json";
    uint64_t file_bytes = 0;
    for (const std::string& f : entry.at("weight_files").get<std::vector<std::string>>()) {
      if (f.ends_with(".index.json")) {
        m.safetensors_index = m.dir / f;
      } else {
        m.safetensors.push_back(m.dir / f);
        file_bytes += std::filesystem::file_size(m.dir / f);
      }
    }
    auto config = estimate::ReadHfConfig(*m.hf_config);
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    const uint64_t params = entry.at("parameters").get<uint64_t>();
    const uint64_t buffers = estimate::NonPersistentBufferBytes(*config);
    auto cpu = EstimateModel(m, Cpu(), nullptr);
    ASSERT_TRUE(cpu.ok()) << cpu.status().ToString();
    EXPECT_EQ(cpu->parameters, params);
    EXPECT_EQ(cpu->weights, params * 4 + buffers);
    EXPECT_GT(cpu->activations, 0u);
    for (const std::string& n : cpu->notes) {
      EXPECT_THAT(n, ::testing::Not(HasSubstr("config.json (")));
      EXPECT_THAT(n, ::testing::Not(HasSubstr("no known head")));
    }
    EstimateOptions cuda = Cpu();
    cuda.device = DeviceKind::kCuda;
    auto gpu = EstimateModel(m, cuda, nullptr);
    ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
    EXPECT_EQ(gpu->weights, params * config->dtype_bytes + buffers);
    EXPECT_LT(gpu->weights, file_bytes + buffers);  // the files add only their headers
  }
}

TEST(EstimatorTest, BadOptions) {
  TempDir dir;
  ModelEntry m = HfGpt2(dir);
  EstimateOptions o = Cpu();
  o.batch = 0;
  auto r = EstimateModel(m, o, nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("batch 0 must be at least 1"));
  o.batch = -3;
  EXPECT_EQ(EstimateModel(m, o, nullptr).status().code(), StatusCode::kInvalidArgument);
  o = Cpu();
  o.margin_fraction = -0.5;
  EXPECT_EQ(EstimateModel(m, o, nullptr).status().code(), StatusCode::kInvalidArgument);
  o = Cpu();
  o.sequence_length = 0;
  EXPECT_EQ(EstimateModel(m, o, nullptr).status().code(), StatusCode::kInvalidArgument);
}

TEST(EstimatorTest, FileErrorsNameModelAndFile) {
  TempDir dir;
  ModelEntry m = HfGpt2(dir);
  WriteFile(dir / "gpt2/model.safetensors", std::string("\x10\0\0\0\0\0\0\0{}", 10));
  auto r = EstimateModel(m, Cpu(), nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(r.status().message(), HasSubstr("model 'gpt2': "));
  EXPECT_THAT(r.status().message(), HasSubstr("model.safetensors: truncated"));

  ModelEntry m2 = HfGpt2(dir);
  WriteFile(*m2.hf_config, R"({"model_type": "gpt2", "n_layer": 2})");
  r = EstimateModel(m2, Cpu(), nullptr);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("config.json: field 'n_embd' is missing"));
}

}  // namespace
}  // namespace modelgrid

// The HF zoo ($MODELGRID_TEST_HF_ZOO, folders as transformers writes them)
// against the reference outputs of an independent Python implementation
// ($MODELGRID_TEST_HF_REFERENCE/<model>.safetensors; schema in
// tools/zoo/README.md, "The reference files"): logits within 1e-4, hidden
// states within 1e-4, embeddings within 1e-5, 32 greedy tokens identical
// (KV cache, no stop at eos), rotary frequencies within 1e-6 (relative).
// Without the zoo these tests fail, naming the command that makes it.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>

#include "hf/generation.h"
#include "hf/modules.h"
#include "hf/native_model.h"
#include "testing/reference_tensors.h"

namespace modelgrid::hf {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMakeZoo =
    "node tools/tokenizers/build_tokenizers.mjs --out build/tokenizers && "
    "/usr/bin/python3 tools/zoo/generate.py --profile small --out build/zoo-small "
    "--triton-out build/zoo-small-triton --hf-out build/zoo-small-hf --tokenizers build/tokenizers "
    "(tools/zoo/README.md; ctest sets MODELGRID_TEST_HF_ZOO and MODELGRID_TEST_HF_REFERENCE)";

// The folder an environment variable names, or a failure saying how to make it.
::testing::AssertionResult EnvFolder(const char* var, fs::path* out) {
  const char* value = std::getenv(var);
  if (value == nullptr || !fs::is_directory(value)) {
    return ::testing::AssertionFailure()
           << var << " is " << (value ? "'" + std::string(value) + "', not a folder" : "not set")
           << ": the HF zoo and its references are made by: " << kMakeZoo;
  }
  *out = value;
  return ::testing::AssertionSuccess();
}

struct Reference {
  std::shared_ptr<NativeModel> model;
  std::map<std::string, torch::Tensor> tensors;
  const torch::Tensor& operator[](const std::string& name) const { return tensors.at(name); }
};

// Loads the zoo folder `name` and its reference file; false (with a
// failure) when either is missing.
bool Open(const std::string& name, Reference* ref) {
  fs::path zoo, refs;
  EXPECT_TRUE(EnvFolder("MODELGRID_TEST_HF_ZOO", &zoo));
  EXPECT_TRUE(EnvFolder("MODELGRID_TEST_HF_REFERENCE", &refs));
  if (zoo.empty() || refs.empty()) return false;
  auto model = NativeModel::Load(zoo / name);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return false;
  ref->model = *model;
  const fs::path file = refs / (name + ".safetensors");
  EXPECT_TRUE(fs::exists(file)) << file << " is missing: made by " << kMakeZoo;
  if (!fs::exists(file)) return false;
  ref->tensors = testing::ReadReferenceTensors(file);
  for (const char* t : {"input_ids", "attention_mask"}) {
    EXPECT_TRUE(ref->tensors.contains(t)) << file << " has no " << t;
    if (!ref->tensors.contains(t)) return false;
  }
  return true;
}

double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return 1e30;
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// Hidden states at the positions whose mask is 1 (padded queries are
// meaningless; the reference computes them as transformers does, and so do
// we, but only real positions are compared).
double MaxDiffOnMask(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  EXPECT_EQ(a.sizes(), b.sizes());
  if (a.sizes() != b.sizes()) return 1e30;
  torch::Tensor m = mask.to(torch::kDouble).unsqueeze(-1);
  return ((a.to(torch::kDouble) - b.to(torch::kDouble)).abs() * m).max().item<double>();
}

void CheckDecoder(const std::string& name) {
  Reference ref;
  if (!Open(name, &ref)) return;
  const torch::Tensor& ids = ref["input_ids"];
  const torch::Tensor& mask = ref["attention_mask"];
  auto logits = ref.model->Logits(ids, mask);
  ASSERT_TRUE(logits.ok()) << logits.status().ToString();
  const double logits_diff = MaxDiff(*logits, ref["logits"]);
  EXPECT_LT(logits_diff, 1e-4) << name << " logits";
  std::printf("%s: logits max |ours - reference| = %.3g\n", name.c_str(), logits_diff);

  if (ref.tensors.contains("rope_inv_freq")) {
    torch::Tensor ours = RopeInverseFrequencies(ref.model->config(), c10::kCPU);
    const torch::Tensor& theirs = ref["rope_inv_freq"];
    EXPECT_LT(((ours.to(torch::kDouble) - theirs.to(torch::kDouble)).abs() /
               theirs.to(torch::kDouble).abs())
                  .max()
                  .item<double>(),
              1e-6)
        << name << " rope_inv_freq: ours " << ours << " reference " << theirs;
  }

  // 32 greedy tokens through the KV cache, both rows in one batch, no stop at eos.
  const torch::Tensor& expected = ref["greedy_ids"];
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t r = 0; r < ids.size(0); ++r) {
    torch::Tensor row = ids[r].contiguous();
    prompts.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
  }
  GenerationParams p;
  p.max_new_tokens = expected.size(1);
  p.ignore_eos = true;
  auto g = Generation::Start(ref.model, prompts, p);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  while (!(*g)->done()) {
    auto step = (*g)->Step();
    ASSERT_TRUE(step.ok()) << step.status().ToString();
  }
  for (int64_t r = 0; r < expected.size(0); ++r) {
    torch::Tensor row = expected[r].contiguous();
    std::vector<int64_t> want(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    EXPECT_EQ((*g)->generated()[static_cast<size_t>(r)], want) << name << " greedy row " << r;
  }
}

TEST(HfReferenceTest, LlamaTinyFp16ShardedGqaLlama3Rope) { CheckDecoder("llama-tiny"); }
TEST(HfReferenceTest, Qwen2TinyBf16QkvBiasTied) { CheckDecoder("qwen2-tiny"); }
TEST(HfReferenceTest, MistralTinyFp32) { CheckDecoder("mistral-tiny"); }
TEST(HfReferenceTest, Gpt2Hf) { CheckDecoder("gpt2-hf"); }

void CheckEncoder(const std::string& name) {
  Reference ref;
  if (!Open(name, &ref)) return;
  auto hidden = ref.model->Hidden(ref["input_ids"], ref["attention_mask"]);
  ASSERT_TRUE(hidden.ok()) << hidden.status().ToString();
  const double diff = MaxDiffOnMask(*hidden, ref["last_hidden_state"], ref["attention_mask"]);
  EXPECT_LT(diff, 1e-4) << name << " last_hidden_state";
  std::printf("%s: last_hidden_state max |ours - reference| = %.3g on real tokens, %.3g on all\n",
              name.c_str(), diff, MaxDiff(*hidden, ref["last_hidden_state"]));
}

TEST(HfReferenceTest, BertHf) { CheckEncoder("bert-hf"); }
TEST(HfReferenceTest, XlmrTinyPrefixedWithOffsetPositions) { CheckEncoder("xlmr-tiny"); }
TEST(HfReferenceTest, DistilbertTinyPrefixed) { CheckEncoder("distilbert-tiny"); }

TEST(HfReferenceTest, BertClassifierLogitsAndLabels) {
  Reference ref;
  if (!Open("bert-classifier", &ref)) return;
  auto logits = ref.model->Logits(ref["input_ids"], ref["attention_mask"]);
  ASSERT_TRUE(logits.ok()) << logits.status().ToString();
  EXPECT_LT(MaxDiff(*logits, ref["logits"]), 1e-4);
  std::printf("bert-classifier: logits max |ours - reference| = %.3g\n",
              MaxDiff(*logits, ref["logits"]));
  EXPECT_EQ(ref.model->labels(), std::vector<std::string>({"negative", "neutral", "positive"}));
  auto hidden = ref.model->Hidden(ref["input_ids"], ref["attention_mask"]);
  ASSERT_TRUE(hidden.ok());
  EXPECT_LT(MaxDiffOnMask(*hidden, ref["last_hidden_state"], ref["attention_mask"]), 1e-4);
}

TEST(HfReferenceTest, MinilmEmbedMeanPoolingAndNormalize) {
  Reference ref;
  if (!Open("minilm-embed", &ref)) return;
  EXPECT_TRUE(ref.model->config().pooling.mean);
  EXPECT_TRUE(ref.model->config().pooling.normalize);
  auto embed = ref.model->Embed(ref["input_ids"], ref["attention_mask"]);
  ASSERT_TRUE(embed.ok()) << embed.status().ToString();
  EXPECT_LT(MaxDiff(*embed, ref["embeddings"]), 1e-5);
  std::printf("minilm-embed: embeddings max |ours - reference| = %.3g\n",
              MaxDiff(*embed, ref["embeddings"]));
  auto hidden = ref.model->Hidden(ref["input_ids"], ref["attention_mask"]);
  ASSERT_TRUE(hidden.ok());
  EXPECT_LT(MaxDiffOnMask(*hidden, ref["last_hidden_state"], ref["attention_mask"]), 1e-4);
}

// Not a test: prints generation speed on llama-tiny, or the zoo decoder
// $MODELGRID_HF_SPEED_MODEL names (run with --gtest_also_run_disabled_tests
// --gtest_filter='*Speed*'). Asserts nothing about time (speed goals belong
// in bench/).
TEST(HfReferenceTest, DISABLED_LlamaTinyGenerationSpeed) {
  const char* env = std::getenv("MODELGRID_HF_SPEED_MODEL");
  const std::string name = env != nullptr ? env : "llama-tiny";
  Reference ref;
  if (!Open(name, &ref)) return;
  const int64_t new_tokens = 64;
  struct Mode {
    const char* name;
    bool cache;
    bool sample;
  };
  for (int64_t batch : {1, 8}) {
    for (Mode mode : {Mode{"KV cache", true, false}, Mode{"recompute", false, false},
                      Mode{"KV cache, sampled (top_k 50, top_p 0.9)", true, true}}) {
      std::vector<std::vector<int64_t>> prompts;
      for (int64_t r = 0; r < batch; ++r) {
        torch::Tensor row = ref["input_ids"][r % 2].contiguous();
        prompts.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
      }
      GenerationParams p;
      p.max_new_tokens = new_tokens;
      p.ignore_eos = true;
      p.use_kv_cache = mode.cache;
      p.do_sample = mode.sample;
      p.top_k = mode.sample ? std::optional<int64_t>(50) : std::nullopt;
      p.top_p = mode.sample ? std::optional<double>(0.9) : std::nullopt;
      auto g = Generation::Start(ref.model, prompts, p);
      ASSERT_TRUE(g.ok());
      const auto start = std::chrono::steady_clock::now();
      ASSERT_TRUE((*g)->Step().ok());  // prefill + first token
      const auto prefilled = std::chrono::steady_clock::now();
      while (!(*g)->done()) ASSERT_TRUE((*g)->Step().ok());
      const auto end = std::chrono::steady_clock::now();
      const double total = std::chrono::duration<double>(end - start).count();
      const double decode = std::chrono::duration<double>(end - prefilled).count();
      std::printf(
          "%s batch %lld, %s, prompt 12 + %lld tokens: %.3f s, %.1f tokens/s "
          "overall, %.1f tokens/s after the first step\n",
          name.c_str(), static_cast<long long>(batch), mode.name,
          static_cast<long long>(new_tokens), total, batch * new_tokens / total,
          batch * (new_tokens - 1) / decode);
    }
  }
}

}  // namespace
}  // namespace modelgrid::hf

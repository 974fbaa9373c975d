// Decoders and generation on tiny folders the test writes itself
// (test_folders.h): shapes, the KV cache against recomputation (step by step
// and over whole generations), left-padded batches against rows alone,
// sampling and seeds, eos and Finish, limits, Qwen2 / Mistral / llama3 rope
// specifics, GPT-2 layouts, KV-cache bytes and allocator refusals.
#include <gtest/gtest.h>

#include "hf/generation.h"
#include "hf/modules.h"
#include "hf/native_model.h"
#include "hf/test_folders.h"
#include "modelgrid/torch/counting_allocator.h"

namespace modelgrid::hf {
namespace {

using nlohmann::json;
using testing::GenerateAll;
using testing::Greedy;
using testing::Ids;
using testing::MaxDiff;
using testing::MustLoad;
using testing::TempDir;
using testing::TinyModel;

// ---------------------------------------------------------------- decoders

TEST(HfLlamaTest, ShapesOfHiddenLogitsAndEmbed) {
  TempDir dir;
  auto model = MustLoad(testing::TinyLlama().Write(dir.path()));
  ASSERT_TRUE(model);
  EXPECT_TRUE(model->is_causal_lm());
  torch::Tensor ids = Ids({{1, 2, 3, 4, 5}, {0, 0, 7, 8, 9}});
  torch::Tensor mask = Ids({{1, 1, 1, 1, 1}, {0, 0, 1, 1, 1}});
  auto hidden = model->Hidden(ids, mask);
  auto logits = model->Logits(ids, mask);
  auto embed = model->Embed(ids, mask);
  ASSERT_TRUE(hidden.ok() && logits.ok() && embed.ok());
  EXPECT_EQ(hidden->sizes().vec(), std::vector<int64_t>({2, 5, 32}));
  EXPECT_EQ(logits->sizes().vec(), std::vector<int64_t>({2, 5, 64}));
  EXPECT_EQ(embed->sizes().vec(), std::vector<int64_t>({2, 32}));
  // Default decoder pooling: the last real token.
  EXPECT_EQ(MaxDiff(*embed, hidden->select(1, 4)), 0.0);
  // A left-padded row equals the row alone.
  auto alone = model->Hidden(Ids({{7, 8, 9}}));
  ASSERT_TRUE(alone.ok());
  EXPECT_LT(MaxDiff(hidden->select(0, 1).narrow(0, 2, 3), alone->select(0, 0)), 1e-5);
}

TEST(HfLlamaTest, CachedForwardEqualsTheFullForwardStepByStep) {
  TempDir dir;
  auto model = MustLoad(testing::TinyLlama().Write(dir.path()));
  ASSERT_TRUE(model);
  c10::InferenceMode guard;
  const auto& dec = static_cast<const Decoder&>(model->module());
  torch::Tensor ids =
      Ids({{0, 0, 3, 4, 5, 6, 7, 8, 9, 10}, {11, 12, 13, 14, 15, 16, 17, 18, 19, 20}});
  torch::Tensor mask = torch::ones_like(ids);
  mask[0][0] = 0;
  mask[0][1] = 0;
  torch::Tensor full = dec.Hidden(ids, mask);
  KvCache cache = dec.NewCache(2, 10);
  torch::Tensor pos = PositionsFromMask(mask);
  torch::Tensor pre =
      dec.Forward(ids.narrow(1, 0, 6), pos.narrow(1, 0, 6), mask.narrow(1, 0, 6), &cache);
  // Row 0's two left-pad positions see no key and hold meaningless values.
  EXPECT_LT(MaxDiff(pre[1], full[1].narrow(0, 0, 6)), 1e-5);
  EXPECT_LT(MaxDiff(pre[0].narrow(0, 2, 4), full[0].narrow(0, 2, 4)), 1e-5);
  for (int64_t t = 6; t < 10; ++t) {
    torch::Tensor h =
        dec.Forward(ids.narrow(1, t, 1), pos.narrow(1, t, 1), mask.narrow(1, 0, t + 1), &cache);
    EXPECT_LT(MaxDiff(h, full.narrow(1, t, 1)), 1e-5) << "step " << t;
  }
  EXPECT_EQ(cache.length, 10);
}

TEST(HfLlamaTest, KvCacheGenerationEqualsRecomputingTheFullSequence) {
  TempDir dir;
  auto model = MustLoad(testing::TinyLlama().Write(dir.path()));
  ASSERT_TRUE(model);
  std::vector<std::vector<int64_t>> prompts = {{1, 2, 3}, {4, 5, 6, 7, 8, 9}};
  GenerationParams cached = Greedy(24);
  GenerationParams recomputed = cached;
  recomputed.use_kv_cache = false;
  auto a = GenerateAll(model, prompts, cached);
  auto b = GenerateAll(model, prompts, recomputed);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a[0].size(), 24u);
  // And each token is the argmax of the full forward over prompt + tokens so far.
  std::vector<int64_t> seq = prompts[1];
  seq.insert(seq.end(), a[1].begin(), a[1].end());
  auto logits = model->Logits(Ids({seq}));
  ASSERT_TRUE(logits.ok());
  torch::Tensor argmax = logits->select(0, 0).argmax(-1);
  for (size_t t = 0; t < a[1].size(); ++t) {
    EXPECT_EQ(argmax[static_cast<int64_t>(prompts[1].size() + t - 1)].item<int64_t>(), a[1][t])
        << "token " << t;
  }
}

TEST(HfLlamaTest, LeftPaddedBatchEqualsEachRowAloneGreedyAndSampled) {
  TempDir dir;
  auto model = MustLoad(testing::TinyLlama().Write(dir.path()));
  ASSERT_TRUE(model);
  std::vector<std::vector<int64_t>> prompts = {
      {1, 2, 3}, {4, 5, 6, 7, 8, 9, 10}, {11, 12, 13, 14, 15}};
  GenerationParams sampled = Greedy(16);
  sampled.do_sample = true;
  sampled.temperature = 0.8;
  sampled.top_k = 20;
  sampled.top_p = 0.9;
  sampled.seed = 42;
  for (const GenerationParams& p : {Greedy(16), sampled}) {
    auto batch = GenerateAll(model, prompts, p);
    ASSERT_EQ(batch.size(), 3u);
    for (size_t r = 0; r < prompts.size(); ++r) {
      auto alone = GenerateAll(model, {prompts[r]}, p);
      ASSERT_EQ(alone.size(), 1u);
      EXPECT_EQ(batch[r], alone[0]) << "row " << r << (p.do_sample ? " sampled" : " greedy");
    }
  }
}

TEST(HfLlamaTest, SamplingIsReproducibleWithASeedAndDiffersWithAnother) {
  TempDir dir;
  auto model = MustLoad(testing::TinyLlama().Write(dir.path()));
  ASSERT_TRUE(model);
  GenerationParams p = Greedy(24);
  p.do_sample = true;
  p.temperature = 1.5;
  p.seed = 7;
  auto a = GenerateAll(model, {{1, 2, 3}}, p);
  auto b = GenerateAll(model, {{1, 2, 3}}, p);
  p.seed = 8;
  auto c = GenerateAll(model, {{1, 2, 3}}, p);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // top_k = 1 is greedy, whatever the seed.
  p.top_k = 1;
  EXPECT_EQ(GenerateAll(model, {{1, 2, 3}}, p), GenerateAll(model, {{1, 2, 3}}, Greedy(24)));
}

TEST(HfLlamaTest, EosStopsARowUnlessIgnoredAndFinishStopsOneRowOnly) {
  TempDir dir;
  auto model = MustLoad(testing::TinyLlama().Write(dir.path()));
  ASSERT_TRUE(model);
  const auto greedy = GenerateAll(model, {{1, 2, 3}}, Greedy(8))[0];
  // The eos: the first token that did not come before it.
  size_t k = 1;
  while (k + 1 < greedy.size() &&
         std::find(greedy.begin(), greedy.begin() + k, greedy[k]) != greedy.begin() + k) {
    ++k;
  }
  GenerationParams p = Greedy(8);
  p.ignore_eos = false;
  p.eos_token_ids = std::vector<int64_t>{greedy[k]};
  auto g = Generation::Start(model, {{1, 2, 3}, {9, 8, 7, 6}}, p);
  ASSERT_TRUE(g.ok());
  Generation& gen = **g;
  // Stop row 1 from outside after its first token.
  auto first = gen.Step();
  ASSERT_TRUE(first.ok());
  gen.Finish(1);
  while (!gen.done()) {
    auto step = gen.Step();
    ASSERT_TRUE(step.ok()) << step.status().ToString();
    EXPECT_EQ((*step)[1], kNoToken);
  }
  EXPECT_EQ(gen.generated()[0], std::vector<int64_t>(greedy.begin(), greedy.begin() + k + 1));
  EXPECT_EQ(gen.finish_reason(0), FinishReason::kEos);
  EXPECT_EQ(gen.generated()[1].size(), 1u);
  EXPECT_EQ(gen.finish_reason(1),
            gen.generated()[1][0] == greedy[k] ? FinishReason::kEos : FinishReason::kStopped);
  // Without eos, max_new_tokens.
  p.ignore_eos = true;
  EXPECT_EQ(GenerateAll(model, {{1, 2, 3}}, p)[0], greedy);
  auto after = gen.Step();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, std::vector<int64_t>({kNoToken, kNoToken}));
}

TEST(HfLlamaTest, LimitsAreCheckedNamingTheParameterOrTheConfigField) {
  TempDir dir;
  auto model = MustLoad(testing::TinyLlama().Write(dir.path()));
  ASSERT_TRUE(model);
  auto start = [&](std::vector<std::vector<int64_t>> prompts, GenerationParams p) {
    auto g = Generation::Start(model, std::move(prompts), p);
    return g.ok() ? Status::Ok() : g.status();
  };
  Status s = start({{1, 2}}, Greedy(0));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("max_new_tokens must be in [1, 1024]"), std::string::npos)
      << s.message();
  s = start({{1, 2}}, Greedy(1025));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  s = start({std::vector<int64_t>(60, 1)}, Greedy(5));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(
      s.message().find("prompt length 60 + max_new_tokens 5 = 65 exceeds the model's limit 64 "
                       "(max_position_embeddings"),
      std::string::npos)
      << s.message();
  EXPECT_TRUE(start({std::vector<int64_t>(60, 1)}, Greedy(4)).ok());
  s = start({{1, 64}}, Greedy(4));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("outside the vocabulary [0, 64)"), std::string::npos) << s.message();
  s = start({{1, 2}, {}}, Greedy(4));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  GenerationParams bad = Greedy(4);
  bad.temperature = 0;
  EXPECT_EQ(start({{1}}, bad).code(), StatusCode::kInvalidArgument);
  bad = Greedy(4);
  bad.top_p = 1.5;
  EXPECT_EQ(start({{1}}, bad).code(), StatusCode::kInvalidArgument);
  bad = Greedy(4);
  bad.top_k = 0;
  EXPECT_EQ(start({{1}}, bad).code(), StatusCode::kInvalidArgument);
  // The token-level calls too.
  auto too_long = model->Hidden(torch::ones({1, 65}, torch::kLong));
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_long.status().message().find("max_position_embeddings"), std::string::npos);
  EXPECT_EQ(model->Hidden(torch::ones({1, 4}, torch::kInt)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(model->Hidden(Ids({{1, 2}}), Ids({{1, 2}})).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(HfLlamaTest, Qwen2StyleQkvBiasTiedEmbeddingsAndLlama3RopeLoadAndGenerate) {
  TempDir dir;
  testing::LlamaOptions o;
  o.model_type = "qwen2";
  o.architecture = "Qwen2ForCausalLM";
  o.qkv_bias = true;
  o.tied = true;
  TinyModel qwen = testing::TinyLlama(o);
  auto model = MustLoad(qwen.Write(dir / "qwen2", c10::kBFloat16));
  ASSERT_TRUE(model);
  auto cached = GenerateAll(model, {{1, 2, 3}}, Greedy(10));
  GenerationParams recompute = Greedy(10);
  recompute.use_kv_cache = false;
  EXPECT_EQ(cached, GenerateAll(model, {{1, 2, 3}}, recompute));
  // Without the biases the folder does not match its config.
  qwen.Remove("model.layers.0.self_attn.q_proj.bias");
  auto missing = NativeModel::Load(qwen.Write(dir / "qwen2-bad"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("'model.layers.0.self_attn.q_proj.bias'"),
            std::string::npos);

  testing::LlamaOptions l3;
  l3.rope_scaling = {{"rope_type", "llama3"},
                     {"factor", 8.0},
                     {"low_freq_factor", 1.0},
                     {"high_freq_factor", 4.0},
                     {"original_max_position_embeddings", 16}};
  auto scaled = MustLoad(testing::TinyLlama(l3).Write(dir / "llama3"));
  auto plain = MustLoad(testing::TinyLlama().Write(dir / "plain"));
  ASSERT_TRUE(scaled && plain);
  torch::Tensor ids = Ids({{1, 2, 3, 4, 5, 6}});
  // Same weights; the scaled low frequencies change the logits after position 0.
  auto a = scaled->Logits(ids);
  auto b = plain->Logits(ids);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(MaxDiff(a->select(1, 0), b->select(1, 0)), 0.0);
  EXPECT_GT(MaxDiff(a->select(1, 5), b->select(1, 5)), 1e-4);
}

TEST(HfLlamaTest, MistralSlidingWindowLimitsTheSequence) {
  TempDir dir;
  testing::LlamaOptions o;
  o.model_type = "mistral";
  o.architecture = "MistralForCausalLM";
  TinyModel m = testing::TinyLlama(o);
  m.config["sliding_window"] = 16;
  auto model = MustLoad(m.Write(dir.path()));
  ASSERT_TRUE(model);
  EXPECT_EQ(model->max_sequence(), 16);
  auto g = Generation::Start(model, {{1, 2, 3, 4}}, Greedy(13));
  ASSERT_FALSE(g.ok());
  EXPECT_NE(g.status().message().find("sliding_window"), std::string::npos) << g.status().message();
  EXPECT_TRUE(Generation::Start(model, {{1, 2, 3, 4}}, Greedy(12)).ok());
}

TEST(HfGpt2Test, PrefixedAndBareLayoutsAgreeAndTheCacheMatchesRecomputation) {
  TempDir dir;
  auto a = MustLoad(testing::TinyGpt2(true).Write(dir / "prefixed"));
  auto b = MustLoad(testing::TinyGpt2(false).Write(dir / "bare"));
  ASSERT_TRUE(a && b);
  torch::Tensor ids = Ids({{5, 6, 7, 8, 9}});
  EXPECT_EQ(MaxDiff(*a->Logits(ids), *b->Logits(ids)), 0.0);
  EXPECT_EQ(a->Logits(ids)->sizes().vec(), std::vector<int64_t>({1, 5, 64}));
  std::vector<std::vector<int64_t>> prompts = {{5, 6, 7}, {1, 2, 3, 4, 5, 6}};
  GenerationParams recompute = Greedy(20);
  recompute.use_kv_cache = false;
  auto cached = GenerateAll(a, prompts, Greedy(20));
  EXPECT_EQ(cached, GenerateAll(a, prompts, recompute));
  EXPECT_EQ(cached[0], GenerateAll(a, {prompts[0]}, Greedy(20))[0]);
}

// ---------------------------------------------------------------- memory

TEST(HfMemoryTest, KvCacheBytesFollowTheFormula) {
  TempDir dir;
  auto model = MustLoad(testing::TinyLlama().Write(dir.path()));
  ASSERT_TRUE(model);
  // 2 × layers 2 × batch 3 × kv heads 2 × tokens 20 × head_dim 8 × 4 bytes.
  EXPECT_EQ(model->KvCacheBytes(3, 20), 2u * 2 * 3 * 2 * 20 * 8 * 4);
  auto g = Generation::Start(model, {{1, 2, 3}, {4, 5}, {6}}, Greedy(17));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ((*g)->kv_cache_bytes(), model->KvCacheBytes(3, 20));
}

TEST(HfMemoryTest, AnAllocatorRefusalIsResourceExhaustedAndTheModelStaysUsable) {
  TempDir dir;
  CountingAllocator::Install();
  auto model = MustLoad(testing::TinyLlama().Write(dir.path()));
  ASSERT_TRUE(model);
  CountingAllocator* counters = CountingAllocator::AcquireModelCounters();
  counters->SetLimit(16 * 1024);
  {
    CountingAllocator::ScopedCharge charge(counters);
    auto r = model->Logits(torch::ones({8, 64}, torch::kLong));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
    ASSERT_NE(r.status().memory_limit(), nullptr);
    EXPECT_EQ(r.status().memory_limit()->limit_bytes, 16u * 1024);
    auto g = Generation::Start(model, {std::vector<int64_t>(40, 1)}, Greedy(20));
    ASSERT_TRUE(g.ok());
    auto step = (*g)->Step();
    ASSERT_FALSE(step.ok());
    EXPECT_EQ(step.status().code(), StatusCode::kResourceExhausted);
    EXPECT_TRUE((*g)->done());
  }
  counters->SetLimit(std::nullopt);
  CountingAllocator::ReleaseModelCounters(counters);
  EXPECT_TRUE(model->Logits(torch::ones({8, 64}, torch::kLong)).ok());
}

}  // namespace
}  // namespace modelgrid::hf

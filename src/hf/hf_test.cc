// Self-contained tests of the native HF modules on tiny folders the test
// writes itself (test_folders.h: random weights under transformers' names):
// config and weight errors, dtypes and shards, encoders (masks and padding,
// prefixed / unprefixed layouts, heads), pooling, load options.
// Decoders and generation: hf_decoder_test.cc. Numerical agreement with an
// independent implementation: hf_reference_test.cc.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "hf/generation.h"
#include "hf/modules.h"
#include "hf/native_model.h"
#include "hf/test_folders.h"

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

// ---------------------------------------------------------------- config

TEST(HfConfigTest, UnknownModelTypeIsUnsupportedNamingFileFieldValueAndTheSupportedOnes) {
  TempDir dir;
  TinyModel m = testing::TinyLlama();
  m.config["model_type"] = "falcon";
  m.Write(dir.path());
  auto r = NativeModel::Load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'model_type'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'falcon'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("qwen2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("xlm-roberta"), std::string::npos) << msg;
}

TEST(HfConfigTest, UnknownArchitectureIsUnsupportedListingTheFamilysArchitectures) {
  TempDir dir;
  TinyModel m = testing::TinyBert("bert", "BertForMaskedLM", "bert.");
  m.Write(dir.path());
  auto r = NativeModel::Load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("'architectures[0]'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'BertForMaskedLM'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("BertForTokenClassification"), std::string::npos) << msg;
}

TEST(HfConfigTest, DynamicRopeScalingIsRefused) {
  TempDir dir;
  testing::LlamaOptions o;
  o.rope_scaling = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  testing::TinyLlama(o).Write(dir.path());
  auto r = NativeModel::Load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("rope_scaling"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("'dynamic'"), std::string::npos) << r.status().message();
}

TEST(HfConfigTest, MissingDistilBertFieldIsNamedByItsOwnName) {
  TempDir dir;
  TinyModel m = testing::TinyDistilBert("DistilBertModel", "");
  m.config.erase("n_heads");
  m.Write(dir.path());
  auto r = NativeModel::Load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'n_heads'"), std::string::npos) << r.status().message();
}

TEST(HfConfigTest, GenerationConfigEosOverridesConfigJson) {
  TempDir dir;
  testing::TinyLlama().Write(dir.path());
  {
    auto model = MustLoad(dir.path());
    ASSERT_TRUE(model);
    EXPECT_EQ(model->eos_token_ids(), std::vector<int64_t>({2}));
  }
  testing::WriteJson(dir / "generation_config.json", {{"eos_token_id", {5, 7}}});
  auto model = MustLoad(dir.path());
  ASSERT_TRUE(model);
  EXPECT_EQ(model->eos_token_ids(), std::vector<int64_t>({5, 7}));
}

// ---------------------------------------------------------------- weights

TEST(HfWeightsTest, MissingTensorNamesTheFileTheTensorAndItsShape) {
  TempDir dir;
  TinyModel m = testing::TinyLlama();
  m.Remove("model.layers.1.mlp.up_proj.weight");
  m.Write(dir.path());
  auto r = NativeModel::Load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing tensor 'model.layers.1.mlp.up_proj.weight'"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("[48, 32]"), std::string::npos) << msg;
}

TEST(HfWeightsTest, WrongShapeNamesTheShardExpectedAndGot) {
  TempDir dir;
  TinyModel m = testing::TinyLlama();
  *m.Find("model.layers.0.self_attn.k_proj.weight") = torch::zeros({32, 32});
  m.Write(dir.path(), c10::kFloat, /*shards=*/2);
  auto r = NativeModel::Load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("model-00001-of-00002.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'model.layers.0.self_attn.k_proj.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected shape [16, 32], got [32, 32]"), std::string::npos) << msg;
}

TEST(HfWeightsTest, UnusedTensorsAreAnErrorButKnownBuffersAreNot) {
  TempDir dir;
  TinyModel m = testing::TinyLlama();
  m.tensors.emplace_back("model.layers.0.self_attn.rotary_emb.inv_freq", torch::ones({4}));
  m.Write(dir.path());
  EXPECT_TRUE(MustLoad(dir.path()));
  m.tensors.emplace_back("model.layers.0.self_attn.extra.weight", torch::ones({4}));
  m.Write(dir.path());
  auto r = NativeModel::Load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'model.layers.0.self_attn.extra.weight'"), std::string::npos)
      << r.status().message();
}

TEST(HfWeightsTest, FolderWithoutSafetensorsIsNotFound) {
  TempDir dir;
  testing::WriteJson(dir / "config.json", testing::TinyLlama().config);
  auto r = NativeModel::Load(dir.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("model.safetensors"), std::string::npos);
}

TEST(HfWeightsTest, Fp32IsMappedInPlaceHalfAndBf16AreUpcastToTheSameModel) {
  TempDir dir;
  TinyModel m = testing::TinyLlama();
  torch::Tensor ids = Ids({{1, 5, 9, 13, 4, 60}});
  for (auto half : {c10::kHalf, c10::kBFloat16}) {
    // The fp32 reference model holds the half-rounded values.
    TinyModel rounded = m;
    for (auto& [n, t] : rounded.tensors) t = t.to(half).to(c10::kFloat);
    auto f32 = MustLoad(rounded.Write(dir / "f32"));
    auto f16 = MustLoad(m.Write(dir / "f16", half));
    ASSERT_TRUE(f32 && f16);
    EXPECT_EQ(f16->compute_dtype(), c10::kFloat);
    EXPECT_GT(f32->weight_memory().mapped_bytes, 0u);
    EXPECT_EQ(f32->weight_memory().allocated_bytes, 0u);
    EXPECT_EQ(f16->weight_memory().mapped_bytes, 0u);
    EXPECT_EQ(f16->weight_memory().allocated_bytes, f32->weight_memory().mapped_bytes);
    auto a = f32->Logits(ids);
    auto b = f16->Logits(ids);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(MaxDiff(*a, *b), 0.0);
  }
}

TEST(HfWeightsTest, ShardedFolderEqualsSingleFile) {
  TempDir dir;
  TinyModel m = testing::TinyLlama();
  auto single = MustLoad(m.Write(dir / "single"));
  auto sharded = MustLoad(m.Write(dir / "sharded", c10::kFloat, 3));
  ASSERT_TRUE(single && sharded);
  torch::Tensor ids = Ids({{1, 2, 3, 4}});
  EXPECT_EQ(MaxDiff(*single->Logits(ids), *sharded->Logits(ids)), 0.0);
}

// ---------------------------------------------------------------- encoders

TEST(HfBertTest, PaddedKeysAreMaskedOut) {
  TempDir dir;
  auto model = MustLoad(testing::TinyBert("bert", "BertModel", "bert.").Write(dir.path()));
  ASSERT_TRUE(model);
  auto alone = model->Hidden(Ids({{2, 10, 11, 12, 3}}));
  auto padded = model->Hidden(Ids({{2, 10, 11, 12, 3, 0, 0}, {2, 10, 11, 12, 3, 40, 41}}),
                              Ids({{1, 1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 1, 1}}));
  ASSERT_TRUE(alone.ok() && padded.ok());
  EXPECT_LT(MaxDiff(padded->select(0, 0).narrow(0, 0, 5), alone->select(0, 0)), 1e-5);
  // Unmasked, the extra tokens do change the outputs.
  EXPECT_GT(MaxDiff(padded->select(0, 1).narrow(0, 0, 5), alone->select(0, 0)), 1e-3);
  // Different pad token values under the mask change nothing.
  auto other = model->Hidden(Ids({{2, 10, 11, 12, 3, 50, 60}}), Ids({{1, 1, 1, 1, 1, 0, 0}}));
  EXPECT_LT(MaxDiff(other->select(0, 0).narrow(0, 0, 5), alone->select(0, 0)), 1e-5);
}

TEST(HfBertTest, BareEncoderAcceptsPrefixedAndUnprefixedWeights) {
  TempDir dir;
  auto a = MustLoad(testing::TinyBert("bert", "BertModel", "bert.").Write(dir / "a"));
  auto b = MustLoad(testing::TinyBert("bert", "BertModel", "").Write(dir / "b"));
  ASSERT_TRUE(a && b);
  torch::Tensor ids = Ids({{2, 7, 8, 3}});
  EXPECT_EQ(MaxDiff(*a->Hidden(ids), *b->Hidden(ids)), 0.0);
  // A bare model has no logits.
  auto logits = a->Logits(ids);
  ASSERT_FALSE(logits.ok());
  EXPECT_EQ(logits.status().code(), StatusCode::kUnsupported);
  // ... and does not generate.
  auto g = Generation::Start(a, {{1}}, Greedy(1));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kUnsupported);
}

TEST(HfBertTest, ClassifierHeadsShapesAndLabels) {
  TempDir dir;
  auto seq = MustLoad(
      testing::TinyBert("bert", "BertForSequenceClassification", "bert.", 3).Write(dir / "seq"));
  auto tok = MustLoad(
      testing::TinyBert("bert", "BertForTokenClassification", "bert.", 5).Write(dir / "tok"));
  ASSERT_TRUE(seq && tok);
  torch::Tensor ids = Ids({{2, 7, 8, 3, 0}, {2, 9, 10, 11, 3}});
  torch::Tensor mask = Ids({{1, 1, 1, 1, 0}, {1, 1, 1, 1, 1}});
  auto a = seq->Logits(ids, mask);
  auto b = tok->Logits(ids, mask);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->sizes().vec(), std::vector<int64_t>({2, 3}));
  EXPECT_EQ(b->sizes().vec(), std::vector<int64_t>({2, 5, 5}));
  EXPECT_EQ(seq->labels(), std::vector<std::string>({"L0", "L1", "L2"}));
  // The pooler is required under a sequence head.
  TinyModel no_pooler = testing::TinyBert("bert", "BertForSequenceClassification", "bert.", 3);
  no_pooler.Remove("bert.pooler.dense.weight");
  auto r = NativeModel::Load(no_pooler.Write(dir / "nopooler"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("bert.pooler.dense.weight"), std::string::npos);
}

TEST(HfRobertaTest, PositionIdsSkipPaddingAndTheHeadIsDenseTanhOutProj) {
  TempDir dir;
  for (const std::string type : {"roberta", "xlm-roberta", "camembert"}) {
    const std::string arch = type == "roberta"       ? "RobertaForSequenceClassification"
                             : type == "xlm-roberta" ? "XLMRobertaForSequenceClassification"
                                                     : "CamembertForSequenceClassification";
    auto model = MustLoad(testing::TinyBert(type, arch, "roberta.", 2).Write(dir / type));
    ASSERT_TRUE(model) << type;
    // Pad id 1: right padding with pad tokens masked equals the row alone.
    auto alone = model->Hidden(Ids({{0, 10, 11, 2}}));
    auto padded = model->Hidden(Ids({{0, 10, 11, 2, 1, 1}}), Ids({{1, 1, 1, 1, 0, 0}}));
    ASSERT_TRUE(alone.ok() && padded.ok());
    EXPECT_LT(MaxDiff(padded->select(0, 0).narrow(0, 0, 4), alone->select(0, 0)), 1e-5);
    auto logits = model->Logits(Ids({{0, 10, 11, 2}}));
    ASSERT_TRUE(logits.ok());
    EXPECT_EQ(logits->sizes().vec(), std::vector<int64_t>({1, 2}));
    // Positions run to max_position_embeddings - pad - 1.
    EXPECT_EQ(model->max_sequence(), 40 - 1 - 1);
  }
}

TEST(HfDistilBertTest, BareAndClassifierModels) {
  TempDir dir;
  auto bare = MustLoad(testing::TinyDistilBert("DistilBertModel", "").Write(dir / "bare"));
  auto prefixed =
      MustLoad(testing::TinyDistilBert("DistilBertModel", "distilbert.").Write(dir / "p"));
  auto seq =
      MustLoad(testing::TinyDistilBert("DistilBertForSequenceClassification", "distilbert.", 4)
                   .Write(dir / "seq"));
  ASSERT_TRUE(bare && prefixed && seq);
  torch::Tensor ids = Ids({{2, 7, 8, 3, 0}});
  torch::Tensor mask = Ids({{1, 1, 1, 1, 0}});
  auto a = bare->Hidden(ids, mask);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(MaxDiff(*a, *prefixed->Hidden(ids, mask)), 0.0);
  EXPECT_LT(
      MaxDiff(a->select(0, 0).narrow(0, 0, 4), bare->Hidden(Ids({{2, 7, 8, 3}}))->select(0, 0)),
      1e-5);
  auto logits = seq->Logits(ids, mask);
  ASSERT_TRUE(logits.ok());
  EXPECT_EQ(logits->sizes().vec(), std::vector<int64_t>({1, 4}));
  EXPECT_EQ(seq->labels().size(), 4u);
  EXPECT_EQ(seq->labels()[3], "LABEL_3");
}

// ---------------------------------------------------------------- embeddings

TEST(HfEmbedTest, SentenceTransformersPoolingAndNormalize) {
  TempDir dir;
  TinyModel m = testing::TinyBert("bert", "BertModel", "");
  const auto folder = m.Write(dir.path());
  torch::Tensor ids = Ids({{2, 7, 8, 3, 0, 0}, {2, 9, 10, 11, 12, 3}});
  torch::Tensor mask = Ids({{1, 1, 1, 1, 0, 0}, {1, 1, 1, 1, 1, 1}});
  torch::Tensor hidden;
  {
    // No sentence-transformers files: mean over the mask, not normalized.
    auto model = MustLoad(folder);
    ASSERT_TRUE(model);
    EXPECT_EQ(model->config().pooling.source, "default");
    hidden = *model->Hidden(ids, mask);
    auto embed = model->Embed(ids, mask);
    ASSERT_TRUE(embed.ok());
    torch::Tensor m0 = hidden[0].narrow(0, 0, 4).mean(0);
    EXPECT_LT(MaxDiff(embed->select(0, 0), m0), 1e-6);
    EXPECT_LT(MaxDiff(embed->select(0, 1), hidden[1].mean(0)), 1e-6);
  }
  testing::WriteJson(folder / "modules.json",
                     json::array({{{"idx", 0},
                                   {"name", "0"},
                                   {"path", ""},
                                   {"type", "sentence_transformers.models.Transformer"}},
                                  {{"idx", 1},
                                   {"name", "1"},
                                   {"path", "1_Pooling"},
                                   {"type", "sentence_transformers.models.Pooling"}},
                                  {{"idx", 2},
                                   {"name", "2"},
                                   {"path", "2_Normalize"},
                                   {"type", "sentence_transformers.models.Normalize"}}}));
  std::filesystem::create_directories(folder / "1_Pooling");
  testing::WriteJson(folder / "1_Pooling" / "config.json", {{"word_embedding_dimension", 32},
                                                            {"pooling_mode_cls_token", true},
                                                            {"pooling_mode_mean_tokens", false},
                                                            {"pooling_mode_max_tokens", true}});
  auto model = MustLoad(folder);
  ASSERT_TRUE(model);
  auto embed = model->Embed(ids, mask);
  ASSERT_TRUE(embed.ok());
  ASSERT_EQ(embed->sizes().vec(), std::vector<int64_t>({2, 64}));
  torch::Tensor expected0 =
      torch::cat({hidden[0][0], std::get<0>(hidden[0].narrow(0, 0, 4).max(0))});
  expected0 = expected0 / expected0.norm();
  EXPECT_LT(MaxDiff(embed->select(0, 0), expected0), 1e-6);
  EXPECT_NEAR(embed->select(0, 1).norm().item<double>(), 1.0, 1e-6);
  // A module type the native code does not run is refused by name.
  testing::WriteJson(folder / "modules.json",
                     json::array({{{"idx", 0},
                                   {"name", "0"},
                                   {"path", "2_Dense"},
                                   {"type", "sentence_transformers.models.Dense"}}}));
  auto refused = NativeModel::Load(folder);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(refused.status().message().find("sentence_transformers.models.Dense"),
            std::string::npos);
}

TEST(HfLoadTest, BadOptionsAreRefused) {
  TempDir dir;
  testing::TinyLlama().Write(dir.path());
  LoadOptions o;
  o.dtype = "int8";
  EXPECT_EQ(NativeModel::Load(dir.path(), o).status().code(), StatusCode::kInvalidArgument);
  o = LoadOptions{};
  o.device = "tpu";
  EXPECT_EQ(NativeModel::Load(dir.path(), o).status().code(), StatusCode::kInvalidArgument);
  o.device = "cuda:0";
  auto r = NativeModel::Load(dir.path(), o);
  if (!torch::cuda::is_available()) {
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  }
  EXPECT_EQ(NativeModel::Load(dir / "nothing").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace modelgrid::hf

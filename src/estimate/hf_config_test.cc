#include "estimate/hf_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "estimate/test_fixtures.h"

namespace modelgrid::estimate {
namespace {

using ::testing::HasSubstr;

constexpr const char* kGpt2 =
    R"({"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
  "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12,
  "n_positions": 1024, "vocab_size": 50257, "n_inner": null})";

Status ParseError(const std::string& text) {
  auto r = ParseHfConfig(text, "config.json");
  return r.ok() ? Status::Ok() : r.status();
}

TEST(HfConfigTest, ParsesGpt2WithDefaults) {
  auto r = ParseHfConfig(kGpt2, "config.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->family, HfFamily::kGpt2);
  EXPECT_EQ(r->hidden_size, 768u);
  EXPECT_EQ(r->num_layers, 12u);
  EXPECT_EQ(r->num_heads, 12u);
  EXPECT_EQ(r->num_kv_heads, 12u);
  EXPECT_EQ(r->head_dim, 64u);
  EXPECT_EQ(r->intermediate_size, 3072u);  // n_inner null → 4h
  EXPECT_EQ(r->max_positions, 1024u);
  EXPECT_TRUE(r->tie_word_embeddings);
  EXPECT_EQ(r->hidden_act, "gelu_new");
  EXPECT_EQ(r->torch_dtype, "float32");
  EXPECT_EQ(r->dtype_bytes, 4u);
  EXPECT_EQ(r->architecture(), "GPT2LMHeadModel");
  EXPECT_TRUE(r->is_causal_lm());
}

TEST(HfConfigTest, ParsesLlamaFields) {
  auto r = ParseHfConfig(R"({"model_type": "mistral", "hidden_size": 4096, "num_hidden_layers": 32,
      "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336,
      "vocab_size": 32000, "torch_dtype": "bfloat16", "head_dim": null, "sliding_window": 4096})",
                         "config.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->family, HfFamily::kLlama);
  EXPECT_EQ(r->num_kv_heads, 8u);
  EXPECT_EQ(r->head_dim, 128u);
  EXPECT_FALSE(r->tie_word_embeddings);
  EXPECT_FALSE(r->attention_bias);
  EXPECT_EQ(r->dtype_bytes, 2u);
  EXPECT_EQ(r->hidden_act, "silu");
}

TEST(HfConfigTest, ExplicitHeadDimNeedNotDivide) {
  auto r = ParseHfConfig(R"({"model_type": "llama", "hidden_size": 5120, "num_hidden_layers": 2,
      "num_attention_heads": 24, "head_dim": 128, "intermediate_size": 100, "vocab_size": 10})",
                         "config.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->head_dim, 128u);
}

TEST(HfConfigTest, ParsesVitLabels) {
  auto r = ParseHfConfig(R"({"model_type": "vit", "hidden_size": 768, "num_hidden_layers": 12,
      "num_attention_heads": 12, "intermediate_size": 3072, "image_size": 224, "patch_size": 16,
      "id2label": {"0": "a", "1": "b", "2": "c"}, "num_labels": 7})",
                         "config.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->num_labels, 3u);  // id2label wins
  EXPECT_EQ(r->num_channels, 3u);
  EXPECT_FALSE(r->is_causal_lm());
}

TEST(HfConfigTest, TorchDtypes) {
  EXPECT_EQ(TorchDtypeBytes("float32").value(), 4u);
  EXPECT_EQ(TorchDtypeBytes("float16").value(), 2u);
  EXPECT_EQ(TorchDtypeBytes("bfloat16").value(), 2u);
  EXPECT_EQ(TorchDtypeBytes("torch.float16").value(), 2u);
  EXPECT_EQ(TorchDtypeBytes("float64").value(), 8u);
  EXPECT_EQ(TorchDtypeBytes("int8").status().code(), StatusCode::kInvalidArgument);
  auto r = ParseHfConfig(R"({"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 2,
      "n_positions": 4, "vocab_size": 5, "dtype": "float16"})",
                         "config.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->dtype_bytes, 2u);  // newer transformers write "dtype"
}

TEST(HfConfigTest, MissingFieldNamesFileFieldAndFamily) {
  Status s = ParseError(R"({"model_type": "gpt2", "n_layer": 12, "n_head": 12, "n_positions": 1024,
      "vocab_size": 50257})");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "config.json: field 'n_embd' is missing (needed for model_type gpt2)");
  s = ParseError(R"({"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12,
      "num_attention_heads": 12, "vocab_size": 30522, "max_position_embeddings": 512})");
  EXPECT_EQ(s.message(),
            "config.json: field 'intermediate_size' is missing (needed for model_type bert)");
  s = ParseError(R"({"model_type": "vit", "hidden_size": 768, "num_hidden_layers": 12,
      "num_attention_heads": 12, "intermediate_size": 3072, "image_size": 224})");
  EXPECT_THAT(s.message(), HasSubstr("field 'patch_size' is missing (needed for model_type vit)"));
}

TEST(HfConfigTest, WrongTypesNameTheFieldAndExpectedType) {
  struct Case {
    std::string json;
    std::string message;
  };
  const std::vector<Case> cases = {
      {R"({"model_type": "gpt2", "n_embd": "768", "n_layer": 1, "n_head": 1, "n_positions": 1, "vocab_size": 1})",
       "config.json: field 'n_embd' must be a positive integer no larger than 16777216, got string "
       "\"768\""},
      {R"({"model_type": "gpt2", "n_embd": 8, "n_layer": -2, "n_head": 1, "n_positions": 1, "vocab_size": 1})",
       "field 'n_layer' must be a positive integer no larger than 16777216, got number -2"},
      {R"({"model_type": "gpt2", "n_embd": 8, "n_layer": 0, "n_head": 1, "n_positions": 1, "vocab_size": 1})",
       "field 'n_layer' must be a positive integer"},
      {R"({"model_type": "gpt2", "n_embd": 8, "n_layer": 1.5, "n_head": 1, "n_positions": 1, "vocab_size": 1})",
       "field 'n_layer' must be a positive integer"},
      {R"({"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 1, "n_positions": 1, "vocab_size": 99999999999})",
       "field 'vocab_size' must be a positive integer"},
      {R"({"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 1, "n_positions": 1, "vocab_size": 1, "tie_word_embeddings": "yes"})",
       "field 'tie_word_embeddings' must be a boolean, got string \"yes\""},
      {R"({"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 3, "n_positions": 1, "vocab_size": 1})",
       "field 'n_embd' (8) is not a multiple of 'n_head' (3)"},
      {R"({"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4,
          "num_key_value_heads": 3, "intermediate_size": 4, "vocab_size": 4})",
       "'num_attention_heads' (4) is not a multiple of 'num_key_value_heads' (3)"},
      {R"({"model_type": "vit", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
          "intermediate_size": 4, "image_size": 8, "patch_size": 16})",
       "field 'patch_size' (16) is larger than 'image_size' (8)"},
      {R"({"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 1, "n_positions": 1, "vocab_size": 1, "architectures": "GPT2"})",
       "field 'architectures' must be an array of strings"},
      {R"({"model_type": "gpt2", "n_embd": 8, "n_layer": 1, "n_head": 1, "n_positions": 1, "vocab_size": 1, "torch_dtype": "int4"})",
       "config.json: field 'torch_dtype': torch_dtype 'int4' is not one of"},
      {R"({"model_type": 7})", "field 'model_type' must be a string, got number 7"},
      {R"({"n_embd": 7})", "config.json: field 'model_type' is missing"},
      {R"({"model_type": "gpt2", )", "config.json: not valid JSON"},
      {R"([1, 2])", "config.json: not a JSON object"},
  };
  for (const Case& c : cases) {
    Status s = ParseError(c.json);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.json;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.json;
  }
}

// xlm-roberta-base's config.json (Hugging Face hub, FacebookAI/xlm-roberta-base).
constexpr const char* kXlmRobertaBase = R"({"architectures": ["XLMRobertaForMaskedLM"],
  "attention_probs_dropout_prob": 0.1, "bos_token_id": 0, "eos_token_id": 2,
  "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
  "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
  "max_position_embeddings": 514, "model_type": "xlm-roberta", "num_attention_heads": 12,
  "num_hidden_layers": 12, "output_past": true, "pad_token_id": 1,
  "position_embedding_type": "absolute", "transformers_version": "4.17.0.dev0",
  "type_vocab_size": 1, "use_cache": true, "vocab_size": 250002})";

TEST(HfConfigTest, ParsesTheRobertaFamilyAsBert) {
  auto r = ParseHfConfig(kXlmRobertaBase, "config.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->family, HfFamily::kBert);
  EXPECT_EQ(HfFamilyName(r->family), "bert");
  EXPECT_EQ(r->model_type, "xlm-roberta");
  EXPECT_TRUE(r->is_roberta());
  EXPECT_EQ(r->hidden_size, 768u);
  EXPECT_EQ(r->num_layers, 12u);
  EXPECT_EQ(r->head_dim, 64u);
  EXPECT_EQ(r->intermediate_size, 3072u);
  EXPECT_EQ(r->vocab_size, 250002u);
  EXPECT_EQ(r->max_positions, 514u);  // the padding offset included, as written
  EXPECT_EQ(r->type_vocab_size, 1u);
  EXPECT_FALSE(r->is_causal_lm());
  for (const char* type : {"roberta", "camembert"}) {
    auto c = ParseHfConfig(std::string(R"({"model_type": ")") + type +
                               R"(", "hidden_size": 8, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 16, "vocab_size": 10,
        "max_position_embeddings": 6})",
                           "config.json");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->family, HfFamily::kBert) << type;
    EXPECT_TRUE(c->is_roberta()) << type;
    EXPECT_EQ(c->type_vocab_size, 2u) << type;  // RobertaConfig's default when absent
  }
  auto bert = ParseHfConfig(R"({"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1,
      "num_attention_heads": 2, "intermediate_size": 16, "vocab_size": 10,
      "max_position_embeddings": 6})",
                            "config.json");
  ASSERT_TRUE(bert.ok());
  EXPECT_FALSE(bert->is_roberta());
}

TEST(HfConfigTest, ParsesDistilBertFieldNames) {
  // distilbert-base-uncased's config.json (Hugging Face hub).
  auto r = ParseHfConfig(R"({"activation": "gelu", "architectures": ["DistilBertForMaskedLM"],
      "attention_dropout": 0.1, "dim": 768, "dropout": 0.1, "hidden_dim": 3072,
      "initializer_range": 0.02, "max_position_embeddings": 512, "model_type": "distilbert",
      "n_heads": 12, "n_layers": 6, "pad_token_id": 0, "qa_dropout": 0.1,
      "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": false, "tie_weights_": true,
      "transformers_version": "4.10.0.dev0", "vocab_size": 30522})",
                         "config.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->family, HfFamily::kDistilBert);
  EXPECT_EQ(HfFamilyName(r->family), "distilbert");
  EXPECT_EQ(r->hidden_size, 768u);
  EXPECT_EQ(r->num_layers, 6u);
  EXPECT_EQ(r->num_heads, 12u);
  EXPECT_EQ(r->num_kv_heads, 12u);
  EXPECT_EQ(r->head_dim, 64u);
  EXPECT_EQ(r->intermediate_size, 3072u);
  EXPECT_EQ(r->vocab_size, 30522u);
  EXPECT_EQ(r->max_positions, 512u);
  EXPECT_EQ(r->type_vocab_size, 0u);
  EXPECT_EQ(r->hidden_act, "gelu");
  EXPECT_TRUE(r->tie_word_embeddings);
  EXPECT_FALSE(r->is_roberta());
  EXPECT_FALSE(r->is_causal_lm());
  // DistilBertConfig's defaults for the optional fields.
  auto d = ParseHfConfig(R"({"model_type": "distilbert", "dim": 8, "n_layers": 1, "n_heads": 2,
      "hidden_dim": 16, "vocab_size": 10})",
                         "config.json");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->max_positions, 512u);
  EXPECT_EQ(d->hidden_act, "gelu");
  // Errors name DistilBERT's own field names.
  EXPECT_EQ(ParseError(R"({"model_type": "distilbert", "n_layers": 1, "n_heads": 2,
      "hidden_dim": 16, "vocab_size": 10})")
                .message(),
            "config.json: field 'dim' is missing (needed for model_type distilbert)");
  EXPECT_THAT(ParseError(R"({"model_type": "distilbert", "dim": 8, "n_layers": 1, "n_heads": 3,
      "hidden_dim": 16, "vocab_size": 10})")
                  .message(),
              HasSubstr("field 'dim' (8) is not a multiple of 'n_heads' (3)"));
}

// Qwen2-0.5B's config.json (Hugging Face hub, Qwen/Qwen2-0.5B).
constexpr const char* kQwen2_05b = R"({"architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0, "bos_token_id": 151643, "eos_token_id": 151643,
  "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
  "intermediate_size": 4864, "max_position_embeddings": 131072, "max_window_layers": 24,
  "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
  "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
  "sliding_window": 131072, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.40.1", "use_cache": true, "use_sliding_window": false,
  "vocab_size": 151936})";

TEST(HfConfigTest, ParsesQwen2AsLlamaWithQkvBiases) {
  auto r = ParseHfConfig(kQwen2_05b, "config.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->family, HfFamily::kLlama);
  EXPECT_EQ(r->model_type, "qwen2");
  EXPECT_EQ(r->num_heads, 14u);
  EXPECT_EQ(r->num_kv_heads, 2u);
  EXPECT_EQ(r->head_dim, 64u);
  EXPECT_EQ(r->max_positions, 131072u);
  EXPECT_TRUE(r->tie_word_embeddings);
  EXPECT_TRUE(r->qkv_bias);
  EXPECT_FALSE(r->attention_bias);
  EXPECT_FALSE(r->mlp_bias);
  EXPECT_EQ(r->dtype_bytes, 2u);
  EXPECT_TRUE(r->is_causal_lm());
  // attention_bias / mlp_bias are not Qwen2Config fields: ignored; absent
  // tie_word_embeddings and max_position_embeddings take Qwen2Config's defaults.
  auto q = ParseHfConfig(R"({"model_type": "qwen2", "hidden_size": 8, "num_hidden_layers": 1,
      "num_attention_heads": 2, "intermediate_size": 16, "vocab_size": 10,
      "attention_bias": true, "mlp_bias": true})",
                         "config.json");
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_TRUE(q->qkv_bias);
  EXPECT_FALSE(q->attention_bias);
  EXPECT_FALSE(q->mlp_bias);
  EXPECT_FALSE(q->tie_word_embeddings);
  EXPECT_EQ(q->max_positions, 32768u);
  // llama keeps reading attention_bias, and never gets qkv_bias.
  auto l = ParseHfConfig(R"({"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1,
      "num_attention_heads": 2, "intermediate_size": 16, "vocab_size": 10,
      "attention_bias": true})",
                         "config.json");
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->attention_bias);
  EXPECT_FALSE(l->qkv_bias);
  EXPECT_EQ(l->max_positions, 2048u);
}

TEST(HfConfigTest, UnknownModelTypeIsUnsupported) {
  Status s = ParseError(R"({"model_type": "t5", "d_model": 512})");
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_THAT(s.message(), HasSubstr("config.json: model_type 't5' is not supported"));
  EXPECT_THAT(s.message(), HasSubstr("distilbert"));
  EXPECT_THAT(s.message(), HasSubstr("qwen2"));
  EXPECT_THAT(s.message(), HasSubstr("xlm-roberta"));
}

TEST(HfConfigTest, ReadsFromDisk) {
  testing::TempDir dir;
  testing::WriteFile(dir / "config.json", kGpt2);
  auto r = ReadHfConfig(dir / "config.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->file, (dir / "config.json").string());
  EXPECT_EQ(ReadHfConfig(dir / "nope.json").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace modelgrid::estimate

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

TEST(HfConfigTest, UnknownModelTypeIsUnsupported) {
  Status s = ParseError(R"({"model_type": "t5", "d_model": 512})");
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_THAT(s.message(), HasSubstr("config.json: model_type 't5' is not supported"));
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

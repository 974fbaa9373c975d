#include "estimate/transformer_counts.h"

#include <gtest/gtest.h>

namespace modelgrid::estimate {
namespace {

HfConfig Parse(const std::string& text) {
  auto r = ParseHfConfig(text, "config.json");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : HfConfig{};
}

// The configs below carry the real field values of the published
// checkpoints; the expected counts are the published ones listed in
// ../shared/reference/formats.md.

const char* kGpt2 = R"({"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
  "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256,
  "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024,
  "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1,
  "summary_activation": null, "summary_first_dropout": 0.1, "summary_proj_to_labels": true,
  "summary_type": "cls_index", "summary_use_proj": true, "vocab_size": 50257})";

const char* kGpt2Large =
    R"({"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
  "model_type": "gpt2", "n_ctx": 1024, "n_embd": 1280, "n_head": 20, "n_layer": 36,
  "n_positions": 1024, "vocab_size": 50257})";

const char* kGpt2Xl = R"({"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
  "model_type": "gpt2", "n_ctx": 1024, "n_embd": 1600, "n_head": 25, "n_layer": 48,
  "n_positions": 1024, "output_past": true, "vocab_size": 50257})";

const char* kBertBaseUncased = R"({"architectures": ["BertForMaskedLM"],
  "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false, "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
  "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
  "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0,
  "position_embedding_type": "absolute", "transformers_version": "4.6.0.dev0",
  "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522})";

const char* kBertBaseCased = R"({"architectures": ["BertForMaskedLM"],
  "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
  "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
  "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
  "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0,
  "type_vocab_size": 2, "vocab_size": 28996})";

const char* kBertLargeUncased = R"({"architectures": ["BertForMaskedLM"],
  "attention_probs_dropout_prob": 0.1, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
  "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 4096,
  "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
  "num_attention_heads": 16, "num_hidden_layers": 24, "pad_token_id": 0,
  "type_vocab_size": 2, "vocab_size": 30522})";

const char* kLlama2_7b = R"({"architectures": ["LlamaForCausalLM"], "bos_token_id": 1,
  "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
  "intermediate_size": 11008, "max_position_embeddings": 4096, "model_type": "llama",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
  "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null, "tie_word_embeddings": false,
  "torch_dtype": "float16", "transformers_version": "4.31.0.dev0", "use_cache": true,
  "vocab_size": 32000})";

const char* kLlama3_8b = R"({"architectures": ["LlamaForCausalLM"], "attention_bias": false,
  "attention_dropout": 0.0, "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu",
  "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
  "max_position_embeddings": 8192, "model_type": "llama", "num_attention_heads": 32,
  "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": null, "rope_theta": 500000.0, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "transformers_version": "4.40.0.dev0", "use_cache": true,
  "vocab_size": 128256})";

const char* kMistral7b = R"({"architectures": ["MistralForCausalLM"], "bos_token_id": 1,
  "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
  "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.34.0.dev0",
  "use_cache": true, "vocab_size": 32000})";

const char* kTinyLlama = R"({"architectures": ["LlamaForCausalLM"], "attention_bias": false,
  "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 2048,
  "initializer_range": 0.02, "intermediate_size": 5632, "max_position_embeddings": 2048,
  "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 22,
  "num_key_value_heads": 4, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null,
  "rope_theta": 10000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.35.0", "use_cache": true, "vocab_size": 32000})";

std::string VitBase() {
  std::string labels;
  for (int k = 0; k < 1000; ++k)
    labels += (k ? ", " : "") + std::string("\"") + std::to_string(k) + "\": \"c" +
              std::to_string(k) + "\"";
  return R"({"architectures": ["ViTForImageClassification"], "attention_probs_dropout_prob": 0.0,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.0, "hidden_size": 768, "image_size": 224,
    "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-12,
    "model_type": "vit", "num_attention_heads": 12, "num_channels": 3, "num_hidden_layers": 12,
    "patch_size": 16, "qkv_bias": true, "id2label": {)" +
         labels + "}}";
}

TEST(ParameterCountTest, PublishedCounts) {
  EXPECT_EQ(ParameterCount(Parse(kGpt2)), 124'439'808u);
  EXPECT_EQ(ParameterCount(Parse(kGpt2Large)), 774'030'080u);
  EXPECT_EQ(ParameterCount(Parse(kGpt2Xl)), 1'557'611'200u);
  EXPECT_EQ(ParameterCount(Parse(kBertBaseUncased)), 109'482'240u);
  EXPECT_EQ(ParameterCount(Parse(kBertBaseCased)), 108'310'272u);
  EXPECT_EQ(ParameterCount(Parse(kBertLargeUncased)), 335'141'888u);
  EXPECT_EQ(ParameterCount(Parse(kLlama2_7b)), 6'738'415'616u);
  EXPECT_EQ(ParameterCount(Parse(kLlama3_8b)), 8'030'261'248u);
  EXPECT_EQ(ParameterCount(Parse(kMistral7b)), 7'241'732'096u);
  EXPECT_EQ(ParameterCount(Parse(kTinyLlama)), 1'100'048'384u);
  EXPECT_EQ(ParameterCount(Parse(VitBase())), 86'567'656u);
}

TEST(ParameterCountTest, TiedLlamaDropsTheHead) {
  HfConfig c = Parse(kTinyLlama);
  c.tie_word_embeddings = true;
  EXPECT_EQ(ParameterCount(c), 1'100'048'384u - 32000u * 2048u);
}

TEST(ParameterCountTest, LlamaBiases) {
  HfConfig c = Parse(kTinyLlama);
  c.attention_bias = true;
  // q (32·64) + k, v (2 · 4·64) + o (2048) per layer
  EXPECT_EQ(ParameterCount(c), 1'100'048'384u + 22u * (2048 + 512 + 2048));
  c.attention_bias = false;
  c.mlp_bias = true;
  EXPECT_EQ(ParameterCount(c), 1'100'048'384u + 22u * (2 * 5632 + 2048));
}

TEST(ArchitectureParameterCountTest, Heads) {
  // BertForMaskedLM: bert-base-uncased's MLM model has 109,514,298 parameters
  // (BertModel without pooler + transform + LayerNorm + decoder bias):
  // 109,482,240 − 590,592 + 590,592 + 1,536 + 30,522.
  HeadAdjustedCount mlm = ArchitectureParameterCount(Parse(kBertBaseUncased));
  EXPECT_TRUE(mlm.known);
  EXPECT_EQ(mlm.parameters, 109'514'298u);
  HfConfig seq = Parse(kBertBaseUncased);
  seq.architectures = {"BertForSequenceClassification"};
  seq.num_labels = 2;
  EXPECT_EQ(ArchitectureParameterCount(seq).parameters, 109'482'240u + 768 * 2 + 2);
  HfConfig vit = Parse(VitBase());
  vit.architectures = {"ViTModel"};  // pooler, no classifier
  EXPECT_EQ(ArchitectureParameterCount(vit).parameters, 86'567'656u - 769'000 + 590'592);
  EXPECT_EQ(ArchitectureParameterCount(Parse(kGpt2)).parameters, 124'439'808u);
  HfConfig odd = Parse(kGpt2);
  odd.architectures = {"GPT2DoubleHeadsModel"};
  EXPECT_FALSE(ArchitectureParameterCount(odd).known);
  EXPECT_EQ(ArchitectureParameterCount(odd).parameters, 124'439'808u);
}

TEST(KvCacheTest, PublishedFigures) {
  EXPECT_EQ(KvCacheBytesPerToken(Parse(kGpt2), 2), 36'864u);
  EXPECT_EQ(KvCacheBytesPerToken(Parse(kLlama2_7b), 2), 524'288u);
  EXPECT_EQ(KvCacheBytesPerToken(Parse(kLlama3_8b), 2), 131'072u);
}

TEST(BufferTest, NonPersistentBuffers) {
  EXPECT_EQ(NonPersistentBufferBytes(Parse(kGpt2)), 12u * (1024 * 1024 + 4));
  EXPECT_EQ(NonPersistentBufferBytes(Parse(kBertBaseUncased)), 2u * 512 * 8);
  EXPECT_EQ(NonPersistentBufferBytes(Parse(kLlama2_7b)), 2u * 64 * 4);
  EXPECT_EQ(NonPersistentBufferBytes(Parse(VitBase())), 0u);
  EXPECT_EQ(NonPersistentBufferAllocations(Parse(kGpt2)).size(), 24u);
}

}  // namespace
}  // namespace modelgrid::estimate

#include "estimate/transformer_counts.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "estimate/safetensors.h"

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

// The families of the native backend. Configs as published on the Hugging
// Face hub (the fields that matter, with their real values). The expected
// counts are the formulas of transformer_counts.h evaluated by hand; they
// agree with the sizes the model cards publish (roberta-base 125M,
// xlm-roberta-base 278M / XLMRobertaForMaskedLM 278,295,186, xlm-roberta-large
// 560M, distilbert-base-uncased 66,362,880 (DistilBertModel) and its SST-2
// classifier 66,955,010, Qwen2-0.5B 0.49B (494,032,768 in its safetensors),
// Qwen2-7B 7.62B) and with the tensor element counts of the zoo folders
// (ZooFoldersMatchTheirFiles below).

const char* kRobertaBase = R"({"architectures": ["RobertaForMaskedLM"],
  "attention_probs_dropout_prob": 0.1, "bos_token_id": 0, "eos_token_id": 2,
  "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
  "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
  "max_position_embeddings": 514, "model_type": "roberta", "num_attention_heads": 12,
  "num_hidden_layers": 12, "pad_token_id": 1, "type_vocab_size": 1, "vocab_size": 50265})";

const char* kXlmRobertaBase = R"({"architectures": ["XLMRobertaForMaskedLM"],
  "attention_probs_dropout_prob": 0.1, "bos_token_id": 0, "eos_token_id": 2,
  "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768,
  "initializer_range": 0.02, "intermediate_size": 3072, "layer_norm_eps": 1e-05,
  "max_position_embeddings": 514, "model_type": "xlm-roberta", "num_attention_heads": 12,
  "num_hidden_layers": 12, "output_past": true, "pad_token_id": 1,
  "position_embedding_type": "absolute", "type_vocab_size": 1, "use_cache": true,
  "vocab_size": 250002})";

const char* kXlmRobertaLarge = R"({"architectures": ["XLMRobertaForMaskedLM"],
  "attention_probs_dropout_prob": 0.1, "bos_token_id": 0, "eos_token_id": 2,
  "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 1024,
  "initializer_range": 0.02, "intermediate_size": 4096, "layer_norm_eps": 1e-05,
  "max_position_embeddings": 514, "model_type": "xlm-roberta", "num_attention_heads": 16,
  "num_hidden_layers": 24, "output_past": true, "pad_token_id": 1, "type_vocab_size": 1,
  "vocab_size": 250002})";

const char* kDistilBertBaseUncased = R"({"activation": "gelu",
  "architectures": ["DistilBertForMaskedLM"], "attention_dropout": 0.1, "dim": 768,
  "dropout": 0.1, "hidden_dim": 3072, "initializer_range": 0.02,
  "max_position_embeddings": 512, "model_type": "distilbert", "n_heads": 12, "n_layers": 6,
  "pad_token_id": 0, "qa_dropout": 0.1, "seq_classif_dropout": 0.2,
  "sinusoidal_pos_embds": false, "tie_weights_": true, "vocab_size": 30522})";

const char* kDistilBertSst2 = R"({"activation": "gelu",
  "architectures": ["DistilBertForSequenceClassification"], "attention_dropout": 0.1,
  "dim": 768, "dropout": 0.1, "finetuning_task": "sst-2", "hidden_dim": 3072,
  "id2label": {"0": "NEGATIVE", "1": "POSITIVE"}, "initializer_range": 0.02,
  "label2id": {"NEGATIVE": 0, "POSITIVE": 1}, "max_position_embeddings": 512,
  "model_type": "distilbert", "n_heads": 12, "n_layers": 6, "output_past": true,
  "pad_token_id": 0, "qa_dropout": 0.1, "seq_classif_dropout": 0.2,
  "sinusoidal_pos_embds": false, "tie_weights_": true, "vocab_size": 30522})";

const char* kQwen2_05b = R"({"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896,
  "initializer_range": 0.02, "intermediate_size": 4864, "max_position_embeddings": 131072,
  "max_window_layers": 24, "model_type": "qwen2", "num_attention_heads": 14,
  "num_hidden_layers": 24, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": true,
  "torch_dtype": "bfloat16", "use_cache": true, "use_sliding_window": false,
  "vocab_size": 151936})";

const char* kQwen2_7b = R"({"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
  "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 3584,
  "initializer_range": 0.02, "intermediate_size": 18944, "max_position_embeddings": 131072,
  "max_window_layers": 28, "model_type": "qwen2", "num_attention_heads": 28,
  "num_hidden_layers": 28, "num_key_value_heads": 4, "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0, "sliding_window": 131072, "tie_word_embeddings": false,
  "torch_dtype": "bfloat16", "use_cache": true, "use_sliding_window": false,
  "vocab_size": 152064})";

TEST(ParameterCountTest, NativeBackendFamilies) {
  // roberta-base: (50265 + 514 + 1)·768 + 2·768 + 12·7,087,872 + 590,592.
  EXPECT_EQ(ParameterCount(Parse(kRobertaBase)), 124'645'632u);
  // xlm-roberta-base: (250002 + 514 + 1)·768 + 1,536 + 85,054,464 + 590,592.
  EXPECT_EQ(ParameterCount(Parse(kXlmRobertaBase)), 278'043'648u);
  EXPECT_EQ(ParameterCount(Parse(kXlmRobertaLarge)), 559'890'432u);
  // distilbert-base-uncased: (30522 + 512)·768 + 1,536 + 6·7,087,872.
  EXPECT_EQ(ParameterCount(Parse(kDistilBertBaseUncased)), 66'362'880u);
  // Qwen2-0.5B: layer 14,912,384 (q/k/v biases 896 + 2·128), tied head:
  // 151936·896 + 24·14,912,384 + 896.
  EXPECT_EQ(ParameterCount(Parse(kQwen2_05b)), 494'032'768u);
  // Qwen2-7B: untied head, layer 233,057,792: 2·152064·3584 + 28·layer + 3584.
  EXPECT_EQ(ParameterCount(Parse(kQwen2_7b)), 7'615'616'512u);
}

TEST(ArchitectureParameterCountTest, NativeBackendHeads) {
  const uint64_t h = 768, pooler = h * h + h;
  // XLMRobertaForMaskedLM: no pooler; lm_head dense + LayerNorm + decoder bias.
  HeadAdjustedCount xlmr = ArchitectureParameterCount(Parse(kXlmRobertaBase));
  EXPECT_TRUE(xlmr.known);
  EXPECT_EQ(xlmr.parameters, 278'043'648u - pooler + pooler + 2 * h + 250'002);  // 278,295,186
  EXPECT_EQ(xlmr.parameters, 278'295'186u);
  EXPECT_EQ(ArchitectureParameterCount(Parse(kRobertaBase)).parameters, 124'697'433u);

  HfConfig c = Parse(kRobertaBase);
  c.num_labels = 3;
  c.architectures = {"RobertaModel"};
  EXPECT_EQ(ArchitectureParameterCount(c).parameters, 124'645'632u);
  // RobertaClassificationHead: dense h×h + bias, out_proj h×3 + bias; no pooler.
  c.architectures = {"RobertaForSequenceClassification"};
  EXPECT_EQ(ArchitectureParameterCount(c).parameters,
            124'645'632u - pooler + (h * h + h) + (h * 3 + 3));
  c.architectures = {"RobertaForTokenClassification"};
  EXPECT_EQ(ArchitectureParameterCount(c).parameters, 124'645'632u - pooler + h * 3 + 3);
  c.architectures = {"RobertaForQuestionAnswering"};
  EXPECT_EQ(ArchitectureParameterCount(c).parameters, 124'645'632u - pooler + 2 * h + 2);
  c.architectures = {"RobertaForCausalLM"};
  EXPECT_EQ(ArchitectureParameterCount(c).parameters, 124'697'433u);
  c.architectures = {"RobertaForMultipleChoice"};
  EXPECT_EQ(ArchitectureParameterCount(c).parameters, 124'645'632u + h + 1);
  c.architectures = {"RobertaForPreTraining"};  // no such class
  EXPECT_FALSE(ArchitectureParameterCount(c).known);

  HfConfig cam = Parse(kRobertaBase);
  cam.model_type = "camembert";
  cam.num_labels = 2;
  cam.architectures = {"CamembertForSequenceClassification"};
  HeadAdjustedCount cs = ArchitectureParameterCount(cam);
  EXPECT_TRUE(cs.known);
  EXPECT_EQ(cs.parameters, 124'645'632u + h * 2 + 2);
  cam.architectures = {"BertForSequenceClassification"};  // another family's head
  EXPECT_FALSE(ArchitectureParameterCount(cam).known);

  // DistilBertForMaskedLM: vocab_transform, vocab_layer_norm, projector bias.
  HeadAdjustedCount mlm = ArchitectureParameterCount(Parse(kDistilBertBaseUncased));
  EXPECT_TRUE(mlm.known);
  EXPECT_EQ(mlm.parameters, 66'362'880u + pooler + 2 * h + 30'522);
  // distilbert-base-uncased-finetuned-sst-2-english: pre_classifier + classifier.
  HeadAdjustedCount sst2 = ArchitectureParameterCount(Parse(kDistilBertSst2));
  EXPECT_TRUE(sst2.known);
  EXPECT_EQ(sst2.parameters, 66'955'010u);
  HfConfig d = Parse(kDistilBertSst2);
  d.architectures = {"DistilBertForTokenClassification"};
  EXPECT_EQ(ArchitectureParameterCount(d).parameters, 66'362'880u + h * 2 + 2);
  d.architectures = {"DistilBertForQuestionAnswering"};
  EXPECT_EQ(ArchitectureParameterCount(d).parameters, 66'362'880u + 2 * h + 2);
  d.architectures = {"DistilBertModel"};
  EXPECT_TRUE(ArchitectureParameterCount(d).known);
  EXPECT_EQ(ArchitectureParameterCount(d).parameters, 66'362'880u);

  // Qwen2: tied head (nothing to drop) and untied.
  HfConfig q = Parse(kQwen2_05b);
  EXPECT_TRUE(ArchitectureParameterCount(q).known);
  q.architectures = {"Qwen2Model"};
  EXPECT_EQ(ArchitectureParameterCount(q).parameters, 494'032'768u);
  HfConfig q7 = Parse(kQwen2_7b);
  q7.architectures = {"Qwen2Model"};
  EXPECT_TRUE(ArchitectureParameterCount(q7).known);
  EXPECT_EQ(ArchitectureParameterCount(q7).parameters, 7'615'616'512u - 152'064u * 3'584u);
}

TEST(KvCacheTest, Qwen2) {
  EXPECT_EQ(KvCacheBytesPerToken(Parse(kQwen2_05b), 2), 2u * 24 * 2 * 64 * 2);  // 12,288
}

TEST(BufferTest, NativeBackendFamilies) {
  EXPECT_EQ(NonPersistentBufferBytes(Parse(kXlmRobertaBase)), 2u * 514 * 8);
  EXPECT_EQ(NonPersistentBufferBytes(Parse(kDistilBertBaseUncased)), 512u * 8);
  EXPECT_EQ(NonPersistentBufferBytes(Parse(kQwen2_05b)), 2u * 32 * 4);
}

// The zoo's Hugging Face folders ($MODELGRID_TEST_HF_ZOO, made by make
// zoo-small): for every model the count of config.json's architecture equals
// the element count of its safetensors headers and the `parameters` that
// tools/zoo recorded in hf_zoo.json (from the PyTorch model), exactly.
TEST(ParameterCountTest, ZooFoldersMatchTheirFiles) {
  const char* env = std::getenv("MODELGRID_TEST_HF_ZOO");
  if (env == nullptr || !std::filesystem::is_directory(env)) {
    GTEST_SKIP() << "MODELGRID_TEST_HF_ZOO is not a folder (make zoo-small)";
  }
  const std::filesystem::path zoo(env);
  std::ifstream in(zoo / "hf_zoo.json");
  ASSERT_TRUE(in) << (zoo / "hf_zoo.json");
  const nlohmann::json manifest = nlohmann::json::parse(in);
  ASSERT_GE(manifest.at("models").size(), 9u);
  for (const auto& [name, m] : manifest.at("models").items()) {
    SCOPED_TRACE(name);
    auto config = ReadHfConfig(zoo / name / "config.json");
    ASSERT_TRUE(config.ok()) << config.status().ToString();
    uint64_t elements = 0;
    if (std::filesystem::exists(zoo / name / "model.safetensors.index.json")) {
      auto sharded = ReadShardedSafetensors(zoo / name / "model.safetensors.index.json");
      ASSERT_TRUE(sharded.ok()) << sharded.status().ToString();
      elements = sharded->parameter_elements;
    } else {
      auto file = ReadSafetensorsHeader(zoo / name / "model.safetensors");
      ASSERT_TRUE(file.ok()) << file.status().ToString();
      elements = file->parameter_elements;
    }
    const HeadAdjustedCount count = ArchitectureParameterCount(*config);
    EXPECT_TRUE(count.known) << count.architecture;
    EXPECT_EQ(count.architecture, m.at("architecture").get<std::string>());
    EXPECT_EQ(count.parameters, elements);
    EXPECT_EQ(count.parameters, m.at("parameters").get<uint64_t>());
  }
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

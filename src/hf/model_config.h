// A Hugging Face model folder's configuration, as the native modules need it:
// config.json (dimensions through estimate::ParseHfConfig, plus the fields
// only execution needs: norm epsilons, activations, rotary settings, token
// ids, labels), generation_config.json (eos_token_id) and the
// sentence-transformers files (modules.json, <pooling>/config.json).
//
// No LibTorch here. Field names and defaults follow transformers'
// BertConfig, RobertaConfig / XLMRobertaConfig / CamembertConfig,
// DistilBertConfig, GPT2Config, LlamaConfig, MistralConfig and Qwen2Config.
//
// Thread-safety: reentrant; the structs are plain values.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::hf {

// Which module code runs the model (config.json model_type).
enum class Family {
  kBert,        // bert
  kRoberta,     // roberta, xlm-roberta, camembert: BERT with offset position ids
  kDistilBert,  // distilbert
  kGpt2,        // gpt2
  kLlama,       // llama, mistral, qwen2: RMSNorm, rotary, GQA, SwiGLU
};

// Which head sits on the base model (the suffix of config.json architectures[0]).
enum class Head {
  kBase,                    // ...Model: hidden states only
  kSequenceClassification,  // ...ForSequenceClassification: [B, num_labels]
  kTokenClassification,     // ...ForTokenClassification: [B, S, num_labels]
  kCausalLm,                // ...ForCausalLM / GPT2LMHeadModel: [B, S, vocab]
};

enum class Activation {
  kGelu,       // "gelu": exact, 0.5·x·(1 + erf(x/√2))
  kGeluTanh,   // "gelu_new", "gelu_pytorch_tanh", "gelu_fast": the tanh approximation
  kQuickGelu,  // "quick_gelu": x·sigmoid(1.702·x)
  kRelu,       // "relu"
  kSilu,       // "silu", "swish"
};

// Rotary position embedding settings (LLaMA family).
struct RopeConfig {
  double theta = 10000.0;  // rope_theta
  enum class Scaling { kNone, kLinear, kLlama3 } scaling = Scaling::kNone;
  double factor = 1.0;                     // rope_scaling.factor (linear, llama3)
  double low_freq_factor = 1.0;            // llama3
  double high_freq_factor = 4.0;           // llama3
  double original_max_positions = 8192.0;  // llama3: original_max_position_embeddings
};

// Sentence-transformers pooling (sentence_transformers.models.Pooling).
// Several modes may be on: their vectors are concatenated in the order of
// the fields below (the order sentence-transformers uses).
struct PoolingConfig {
  bool cls = false;            // pooling_mode_cls_token: the first token
  bool max = false;            // pooling_mode_max_tokens: max over unmasked tokens
  bool mean = false;           // pooling_mode_mean_tokens: mean over unmasked tokens
  bool mean_sqrt_len = false;  // pooling_mode_mean_sqrt_len_tokens: sum / √(unmasked count)
  bool last_token = false;     // pooling_mode_lasttoken: the last unmasked token
  bool normalize = false;      // a sentence_transformers.models.Normalize module: L2
  // Where it came from: "<folder>/1_Pooling/config.json", or "default" when the
  // folder has no sentence-transformers files (encoders: mean, decoders:
  // last token; no normalization).
  std::string source = "default";

  int modes() const { return cls + max + mean + mean_sqrt_len + last_token; }
};

struct ModelConfig {
  std::filesystem::path folder;
  std::string file;          // <folder>/config.json, for messages
  std::string model_type;    // as written
  std::string architecture;  // architectures[0] ("" when absent: the default head)
  Family family = Family::kBert;
  Head head = Head::kBase;

  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_positions = 0;        // position embeddings / rotary limit
  std::string max_positions_field;  // the config.json field that gave it
  int64_t type_vocab_size = 0;      // bert / roberta (0 = no token type embeddings)
  double norm_eps = 1e-12;          // layer_norm_eps / layer_norm_epsilon / rms_norm_eps
  Activation activation = Activation::kGelu;

  std::optional<int64_t> pad_token_id;
  std::vector<int64_t> eos_token_ids;  // generation_config.json's, else config.json's
  std::string eos_source;              // the file that gave them ("" when none)

  bool tie_word_embeddings = true;
  bool qkv_bias = false;  // q/k/v projections have biases (qwen2; llama attention_bias)
  bool o_bias = false;    // o_proj has a bias (llama attention_bias)
  bool mlp_bias = false;  // gate/up/down have biases (llama mlp_bias)
  std::optional<int64_t> sliding_window;  // mistral / qwen2 (when used): not implemented,
                                          // longer sequences are refused
  RopeConfig rope;
  bool scale_attn_weights = true;                // gpt2
  bool scale_attn_by_inverse_layer_idx = false;  // gpt2

  std::vector<std::string> labels;  // id2label in id order; "LABEL_i" when absent
  std::string torch_dtype;          // "float32", "float16", "bfloat16"

  PoolingConfig pooling;

  bool is_decoder() const { return family == Family::kGpt2 || family == Family::kLlama; }
};

// The supported model_type values, comma-separated, for messages.
std::string SupportedModelTypes();

// Reads <folder>/config.json (+ generation_config.json, modules.json and the
// pooling config when present).
// Errors: kNotFound when config.json is missing; kInvalidArgument for bad
// JSON or a missing / ill-typed field, naming the file and the field;
// kUnsupported naming the file, the field and the value for a model_type or
// architecture the native modules do not run (listing the supported ones),
// a rope_scaling type other than linear / llama3, a BERT
// position_embedding_type other than absolute, an unknown activation, or a
// sentence-transformers module other than Transformer / Pooling / Normalize.
Result<ModelConfig> ReadModelConfig(const std::filesystem::path& folder);

}  // namespace modelgrid::hf

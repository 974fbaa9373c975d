// Hugging Face config.json, reduced to the fields the estimator needs.
//
// Supported families (model_type → HfFamily):
//   gpt2                                → kGpt2
//   bert, roberta, xlm-roberta, camembert → kBert (RoBERTa and its
//       descendants keep BERT's tensors: word/position/token-type
//       embeddings, the same encoder layer, a pooler in the bare model; they
//       differ in heads, position ids and defaults, see model_type)
//   distilbert                          → kDistilBert (dim, n_layers,
//       n_heads, hidden_dim, activation; no token types, no pooler)
//   llama, mistral, qwen2               → kLlama (one decoder layout; qwen2
//       always has q/k/v biases and no o bias: qkv_bias)
//   vit                                 → kVit
// Field names and defaults follow transformers' GPT2Config, BertConfig,
// RobertaConfig/XLMRobertaConfig/CamembertConfig, DistilBertConfig,
// LlamaConfig/MistralConfig/Qwen2Config and ViTConfig (4.46). Parameter and
// activation formulas over this struct are in transformer_counts.h and
// activation_bytes.h.
//
// Thread-safety: reentrant; HfConfig is a plain value.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::estimate {

enum class HfFamily { kGpt2, kBert, kDistilBert, kLlama, kVit };

// "gpt2", "bert" (also for the roberta family), "distilbert", "llama" (also
// for mistral and qwen2) or "vit".
std::string_view HfFamilyName(HfFamily family);

// The dimensions of one model. Sizes are counts (elements), never bytes,
// except dtype_bytes.
struct HfConfig {
  std::string file;        // the config.json path, for messages
  std::string model_type;  // as written: "gpt2", "bert", "roberta", "xlm-roberta", "camembert",
                           // "distilbert", "llama", "mistral", "qwen2", "vit"
  HfFamily family = HfFamily::kGpt2;
  std::vector<std::string> architectures;  // e.g. {"GPT2LMHeadModel"}; may be empty

  uint64_t hidden_size = 0;        // h        (gpt2: n_embd; distilbert: dim)
  uint64_t num_layers = 0;         // L        (gpt2: n_layer; distilbert: n_layers)
  uint64_t num_heads = 0;          // n_h      (gpt2: n_head; distilbert: n_heads)
  uint64_t num_kv_heads = 0;       // n_kv     (llama: num_key_value_heads, default n_h; others n_h)
  uint64_t head_dim = 0;           // hd       (llama: head_dim, default h / n_h; others h / n_h)
  uint64_t intermediate_size = 0;  // i        (gpt2: n_inner, default 4h; distilbert: hidden_dim)
  uint64_t vocab_size = 0;         // V        (0 for vit)
  // T or Pm (gpt2: n_positions; others: max_position_embeddings, which for
  // the roberta family already includes the padding_idx + 1 offset, e.g. 514)
  uint64_t max_positions = 0;
  uint64_t type_vocab_size = 0;     // t        (bert family: type_vocab_size, default 2;
                                    //           roberta checkpoints write 1; distilbert 0)
  bool tie_word_embeddings = true;  // default true, false for llama/mistral (as in transformers)
  bool attention_bias = false;      // llama/mistral: q/k/v/o biases (attention_bias)
  bool qkv_bias = false;            // qwen2: q/k/v biases, no o bias (always; not a field)
  bool mlp_bias = false;            // llama: gate/up/down biases
  uint64_t image_size = 0;          // vit: pixels per side
  uint64_t patch_size = 0;          // vit: p
  uint64_t num_channels = 0;        // vit: C (default 3)
  uint64_t num_labels = 0;          // len(id2label), else num_labels, else 0 (unknown)
  std::string hidden_act;           // "gelu_new" (gpt2 activation_function), "gelu", "silu", ...
                                    // (distilbert: activation)
  std::string torch_dtype;          // "float32" when absent
  uint64_t dtype_bytes = 4;         // bytes per element of torch_dtype

  // True for families that generate text with a KV cache (gpt2, llama).
  bool is_causal_lm() const { return family == HfFamily::kGpt2 || family == HfFamily::kLlama; }
  // True for roberta, xlm-roberta and camembert (family kBert): their heads
  // and position ids follow transformers' modeling_roberta.py.
  bool is_roberta() const {
    return model_type == "roberta" || model_type == "xlm-roberta" || model_type == "camembert";
  }
  // The first entry of `architectures`, or "".
  std::string architecture() const { return architectures.empty() ? "" : architectures.front(); }
};

// Bytes per element of a config.json torch_dtype: "float32" 4, "float16" 2,
// "bfloat16" 2, "float64" 8 (also with a "torch." prefix). Errors:
// kInvalidArgument naming the value.
Result<uint64_t> TorchDtypeBytes(std::string_view torch_dtype);

// Parses config.json text. `file` names the file in messages.
// Errors: kInvalidArgument for bad JSON, a missing required field ("config.json:
// field 'n_embd' is missing (needed for model_type gpt2)"), a field of the
// wrong type or out of range ("config.json: field 'n_head' must be a positive
// integer, got \"12\""), or heads that do not divide the hidden size;
// kUnsupported for an unknown model_type, naming it and the supported ones.
Result<HfConfig> ParseHfConfig(std::string_view json_text, const std::string& file);

// Reads and parses config.json at `path`. Errors: kNotFound if it cannot be
// read; otherwise as ParseHfConfig.
Result<HfConfig> ReadHfConfig(const std::filesystem::path& path);

}  // namespace modelgrid::estimate

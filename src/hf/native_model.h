// NativeModel: a Hugging Face model folder (config.json + safetensors) run
// by ModelGrid's own LibTorch modules, at the token-id level. No tokenizer,
// no KServe: callers hand in int64 token ids and get torch tensors back.
//
// Supported (config.json model_type → architectures[0]; the suffix selects
// the head and so the tasks):
//   bert                          BertModel, BertForSequenceClassification,
//                                 BertForTokenClassification
//   roberta, xlm-roberta,         RobertaModel / XLMRobertaModel / CamembertModel
//   camembert                     and their ForSequenceClassification,
//                                 ForTokenClassification
//   distilbert                    DistilBertModel, DistilBertForSequenceClassification,
//                                 DistilBertForTokenClassification
//   gpt2                          GPT2Model, GPT2LMHeadModel
//   llama, mistral, qwen2         LlamaModel / MistralModel / Qwen2Model and
//                                 LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM
// Without `architectures`: the bare model for encoders, the causal LM for
// decoders. Bare encoders accept their weights with or without the base
// prefix ("bert.", "roberta.", "distilbert."; sentence-transformers folders
// have none), GPT-2 with or without "transformer.".
//
// Weights: model.safetensors, or the shards of model.safetensors.index.json.
// The files are mmap'd read-only. A tensor whose file dtype is the compute
// dtype is a view of the mapping (no copy; the mapping lives as long as any
// such tensor): those bytes are file-backed page cache, not allocator
// memory, and the counting allocator does not see them. Other tensors are
// converted into allocator memory. Compute dtype: on the CPU always fp32
// (LibTorch 1.13 lacks many fp16 CPU kernels), so fp16 / bf16 files are
// upcast at load and their resident weights take twice the file's bytes;
// on CUDA the load option, else config.json's torch_dtype (every tensor is
// copied to the device; the mapping is dropped after loading).
//
// Tasks (token level):
//   Hidden  every model: last_hidden_state [B,S,H]
//   Logits  heads only: LM [B,S,V]; sequence classifier [B,num_labels];
//           token classifier [B,S,num_labels]
//   Embed   every model: pooled [B,D] (sentence-transformers pooling and
//           Normalize when the folder has them; else mean over the mask for
//           encoders, the last real token for decoders, no normalization)
//   generation (causal LMs): hf::Generation (generation.h), step-wise with a
//           KV cache.
// Inputs: input_ids int64 [B,S] (B, S ≥ 1, ids in [0, vocab)); attention_mask
// integer or bool [B,S] of 0/1 (1 = real token), or undefined for all ones.
// Token type ids are all 0. Decoders take their position ids from the mask
// (cumsum − 1, as transformers' generate), so a left-padded row gives the
// same results as the row alone.
//
// Errors never escape as exceptions: c10::OutOfMemoryError (the counting
// allocator's refusal, or CUDA's) → kResourceExhausted (with a
// MemoryLimitDetail when the counting allocator refused); an index error →
// kInvalidArgument; any other exception → kInternal.
//
// Thread-safety: after Load, the const methods may be called from several
// threads at once (the weights are only read).
#pragma once

#include <torch/script.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hf/model_config.h"
#include "modelgrid/status.h"

namespace modelgrid::hf {

class Module;

struct LoadOptions {
  // "cpu" or "cuda:N".
  std::string device = "cpu";
  // "auto" (config.json torch_dtype, float32 when absent), "float32",
  // "float16" or "bfloat16": the compute dtype on CUDA. The CPU computes in
  // float32 whatever is asked.
  std::string dtype = "auto";
};

// Bytes the weights take once loaded.
struct WeightMemory {
  uint64_t mapped_bytes = 0;     // views of the mmap'd files (page cache, shared, not counted
                                 // by the counting allocator)
  uint64_t allocated_bytes = 0;  // converted / device copies, through LibTorch's allocator
};

class NativeModel {
 public:
  // Loads the folder: config.json, generation_config.json, modules.json and
  // the pooling config when present, then the weights, checking every
  // expected tensor's name and exact shape.
  // Errors: kNotFound (no config.json, no safetensors, a device that does
  // not exist); kUnsupported naming config.json, the field and the value
  // (model_type, architectures[0], rope_scaling, activation, ...) with the
  // supported ones, or a tensor dtype other than F32/F16/BF16;
  // kInvalidArgument for a bad config field, a missing tensor ("<file>:
  // missing tensor 'NAME' (expected shape [..])"), a shape mismatch
  // ("<file>: tensor 'NAME': expected shape [..], got [..]"), tensors the
  // model does not use (other than known buffers: position_ids, GPT-2's
  // attn.bias / attn.masked_bias, rotary inv_freq, a tied lm_head, unused
  // pooler weights), or a bad dtype / device option; kCorruption for
  // damaged safetensors; kResourceExhausted when the allocator refuses.
  static Result<std::shared_ptr<NativeModel>> Load(const std::filesystem::path& folder,
                                                   const LoadOptions& options = {});
  ~NativeModel();
  NativeModel(const NativeModel&) = delete;
  NativeModel& operator=(const NativeModel&) = delete;

  const ModelConfig& config() const { return config_; }
  c10::Device device() const { return device_; }
  // The dtype the model computes in (fp32 on the CPU).
  c10::ScalarType compute_dtype() const { return dtype_; }
  bool is_causal_lm() const { return config_.head == Head::kCausalLm; }
  // True when Logits is available (any head).
  bool has_logits() const { return config_.head != Head::kBase; }
  // Label names of a classifier (id2label in id order); empty otherwise.
  const std::vector<std::string>& labels() const { return config_.labels; }
  // The most tokens one row may hold (prompt + generated tokens, decoders):
  // the position table's size (RoBERTa: less pad_token_id + 1), and the
  // name of the config.json field it comes from.
  // Mistral / Qwen2 with a sliding window smaller than that: the window
  // ("sliding_window"): sliding-window attention is not implemented, and
  // up to the window it equals full causal attention.
  int64_t max_sequence() const { return max_sequence_; }
  const std::string& max_sequence_field() const { return max_sequence_field_; }
  // Generation stops a row at these (generation_config.json, else config.json).
  const std::vector<int64_t>& eos_token_ids() const { return config_.eos_token_ids; }
  const WeightMemory& weight_memory() const { return weight_memory_; }

  // Bytes of the KV cache a generation of `batch` rows and `tokens`
  // positions (prompt + max_new_tokens) allocates: 2 × layers × batch ×
  // kv_heads × tokens × head_dim × compute-dtype bytes (formats.md, "KV
  // cache bytes per token"). 0 for a model that does not generate.
  uint64_t KvCacheBytes(int64_t batch, int64_t tokens) const;

  // last_hidden_state [B,S,H] float32 on the model's device.
  // Errors: kInvalidArgument for malformed inputs (naming the input, the
  // expected and the given shape / dtype / range, or the sequence limit and
  // its config.json field); kResourceExhausted; kInternal.
  Result<torch::Tensor> Hidden(const torch::Tensor& input_ids,
                               const torch::Tensor& attention_mask = {}) const;
  // The head's logits, float32: [B,S,V] (LM), [B,num_labels] (sequence
  // classifier, from the first token), [B,S,num_labels] (token classifier).
  // Errors: kUnsupported for a bare model ("...Model" has no head); else as Hidden.
  Result<torch::Tensor> Logits(const torch::Tensor& input_ids,
                               const torch::Tensor& attention_mask = {}) const;
  // Pooled embeddings [B,D] float32 (config().pooling says how). Errors: as Hidden.
  Result<torch::Tensor> Embed(const torch::Tensor& input_ids,
                              const torch::Tensor& attention_mask = {}) const;

  // Internals for Generation (generation.cc).
  const Module& module() const { return *module_; }
  // Checks ids / mask and moves them to the device, mask as int64 (all ones
  // when undefined). `what` names the call in messages.
  Result<std::pair<torch::Tensor, torch::Tensor>> PrepareInputs(const torch::Tensor& input_ids,
                                                                const torch::Tensor& mask,
                                                                const std::string& what) const;
  // "model '<folder>': ".
  std::string Prefix() const;

 private:
  NativeModel() = default;

  ModelConfig config_;
  c10::Device device_{c10::kCPU};
  c10::ScalarType dtype_ = c10::kFloat;
  int64_t max_sequence_ = 0;
  std::string max_sequence_field_;
  std::unique_ptr<Module> module_;
  WeightMemory weight_memory_;
};

// Runs `body` (returning Result<T>) under c10::InferenceMode and turns
// exceptions into Status: c10::OutOfMemoryError → kResourceExhausted (figures
// and a MemoryLimitDetail from the counting allocator's record when it
// refused), c10::IndexError → kInvalidArgument, anything else → kInternal.
// `what` prefixes the message.
template <typename T, typename F>
Result<T> Guarded(const std::string& what, F&& body);

// Implementation details of Guarded: what the counting allocator had
// refused before the call (the calling thread's refusals, and those of the
// counters it charges), and the Status of an exception caught after it.
struct RefusalMark {
  uint64_t thread_refusals = 0;
  const void* charged = nullptr;
  uint64_t charged_refusals = 0;
};
RefusalMark MarkRefusals();
Status StatusFromException(const std::string& what, const std::exception* e,
                           const RefusalMark& mark);

template <typename T, typename F>
Result<T> Guarded(const std::string& what, F&& body) {
  const RefusalMark mark = MarkRefusals();
  try {
    c10::InferenceMode guard;
    return body();
  } catch (const std::exception& e) {
    return StatusFromException(what, &e, mark);
  } catch (...) {
    return StatusFromException(what, nullptr, mark);
  }
}

}  // namespace modelgrid::hf

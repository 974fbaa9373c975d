// The native Hugging Face backend (kind "huggingface"): a folder as Hugging
// Face writes it (config.json, model.safetensors or shards with their index,
// tokenizer.json or a SentencePiece tokenizer.model, tokenizer_config.json;
// sentence-transformers' modules.json
// and 1_Pooling/config.json) run by ModelGrid's own LibTorch modules
// (src/hf/native_model.h) with its own tokenizer (modelgrid/tokenizer/
// tokenizer.h). No TorchScript export is needed. Declared without LibTorch
// headers; the implementation is src/backend/hf_backend.cc.
//
// Tasks (by config.json's architectures[0]; Tasks() lists them):
//   infer     every model: the head's logits (`logits` FP32 [B,S,V] for a
//             causal LM, [B,L] for a sequence classifier, [B,S,L] for a token
//             classifier) or, for a bare model, `last_hidden_state` FP32
//             [B,S,H];
//   embed     every model: `embedding` FP32 [B,D] (and `prompt_tokens`
//             INT64 [B], the tokens of each row), pooled as the folder's
//             1_Pooling/config.json says and L2-normalized when modules.json
//             lists Normalize; without those files mean pooling over the
//             real tokens for encoders, the last real token for decoders,
//             not normalized;
//   classify  sequence classifiers: `label` BYTES [B] (id2label of the
//             highest score), `scores` FP32 [B,L] (softmax), `logits` FP32 [B,L];
//   generate  causal LMs: `text_output` BYTES [B] (the text this call
//             generated; special tokens skipped, a stop string and what
//             follows it cut), `generated_ids` INT64 [B,N] (this call's tokens,
//             rows shorter than N padded with -1), `finish_reason` BYTES [B]
//             ("length", "eos", "stop", or "" while a session goes on),
//             `prompt_tokens` INT64 [B].
// Inputs of every task, one of:
//   text            BYTES [B] or [B,1]: UTF-8 text, tokenized with the
//                   folder's tokenizer.json or tokenizer.model (special
//                   tokens added as its post-processor or
//                   tokenizer_config.json says); rows padded to the longest;
//   input_ids       INT64 [B,S], with an optional attention_mask INT64 [B,S]
//                   (1 = real token; all ones when absent).
// Params (a JSON object; every field optional):
//   truncate        bool, default false: cut a text longer than the model's
//                   positions instead of refusing it (not for generate);
//   generate:       max_new_tokens (1..1024, default 16), do_sample (false),
//                   temperature (> 0, 1.0), top_k (>= 1), top_p ((0,1]),
//                   seed (0), ignore_eos (false), stop (a string or an array
//                   of strings: the row ends before the first one its text
//                   contains), and for interleaving at token boundaries
//                   session (a string id) with chunk_tokens (>= 1): the call
//                   generates at most chunk_tokens tokens and keeps the
//                   generation (its KV cache) under `session`; a later call
//                   with the same session and {"continue": true} goes on
//                   from there (its inputs are then not read). A session
//                   ends when every row has finished, when a call with
//                   {"continue": true, "cancel": true} ends it, or after 60 s
//                   unused; at most 64 are open at once.
// Errors: the messages name the model, the task and the input or parameter,
// with expected vs got: kInvalidArgument (a malformed or missing input, text
// that is not UTF-8 naming the row and byte, a prompt longer than the
// model's positions naming the limit and its config.json field, a bad
// parameter, an unknown session), kNotFound (a task the model lacks, a text
// input on a folder without tokenizer.json or tokenizer.model), kResourceExhausted (the memory
// limit; too many open sessions), kUnavailable (swapped out), kInternal.
//
// Swap: SwapOut drops the model (its weights, its open sessions) and SwapIn
// loads it again from the repository files, which are the swap tier here
// (report.location "repository files"); a reload is no error.
//
// Memory: on the CPU the counting allocator (installed by Load) counts every
// allocation but weights that are views of the mmap'd safetensors files
// (fp32 files on the CPU): those are file-backed page cache.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/backend/model_backend.h"

namespace modelgrid {

namespace hf_internal {
struct Impl;  // src/backend/hf_internal.h
}  // namespace hf_internal

class HuggingFaceBackend final : public ModelBackend {
 public:
  HuggingFaceBackend();
  ~HuggingFaceBackend() override;
  HuggingFaceBackend(const HuggingFaceBackend&) = delete;
  HuggingFaceBackend& operator=(const HuggingFaceBackend&) = delete;

  std::string_view kind() const override { return "huggingface"; }
  // Loads config.json and the weights (src/hf/native_model.h: errors name
  // the file, tensor and shape), and tokenizer.json (else tokenizer.model)
  // with tokenizer_config.json when present (errors name the file and the JSON path of a component
  // type that is not implemented). `model.config.dtype` overrides
  // torch_dtype on CUDA; the CPU computes in float32.
  Status Load(const ModelEntry& model, const std::string& device = "cpu",
              int threads = 0) override;
  bool loaded() const override;
  const std::string& model_name() const override;
  std::vector<std::string> Tasks() const override;
  std::vector<TensorSpec> Inputs(const std::string& task = "infer") const override;
  std::vector<TensorSpec> Outputs() const override;
  using ModelBackend::Run;
  Result<std::vector<InferTensor>> Run(const std::string& task,
                                       std::span<const InferTensorView> inputs,
                                       const nlohmann::json& params,
                                       const StreamCallback& stream) override;
  Result<SwapOutReport> SwapOut(const SwapTarget& target) override;
  Result<SwapInReport> SwapIn() override;
  bool swapped() const override;
  Status SetMemoryLimit(std::optional<uint64_t> limit_bytes) override;
  BackendMemoryStats MemoryStats() const override;
  void ResetPeakMemory() override;
  // The weights that are views of the mmap'd safetensors files (fp32 files
  // on the CPU).
  uint64_t MappedBytes() const override;

 private:
  std::unique_ptr<hf_internal::Impl> impl_;
};

}  // namespace modelgrid

// The LibTorch (TorchScript) backend: what a worker process uses to run one
// model instance (docs/design.md, "Processes and paths" → backend). Declared
// without LibTorch headers (pimpl), so that code including this header never
// pulls in torch; the implementation lives in src/backend/.
//
// Tasks a model answers (Run's `task`):
//   infer      the module's `forward`;
//   encode     the module's `encode` method, when it has one;
//   generate   greedy or sampled decoding for causal LMs whose forward maps
//              input_ids INT64 [B,S] to logits [B,S,V] (src/backend/generate.cc);
//   <custom>   every `tasks: {task: method}` entry of config.yaml calls that
//              TorchScript method (an entry may also re-point infer/encode).
//
// Tensors: inputs are InferTensors or InferTensorViews, outputs InferTensors
// (modelgrid/kserve/tensor.h): raw little-endian row-major bytes. Inputs are
// wrapped without a copy (torch::from_blob over the bytes where they lie, an
// InferTensor or a worker's shared-memory arena, on the CPU); outputs are
// copied into fresh contiguous bytes.
//
// Memory: on the CPU the backend relies on the process-wide counting
// allocator (modelgrid/torch/counting_allocator.h), which Load installs.
// Allocations are charged to the calling thread's counters
// (CountingAllocator::ScopedCharge: a worker gives each model counters and a
// limit of its own) or else to the process-wide ones, whose limit
// SetMemoryLimit sets. An allocation refused by a limit fails only the call
// that made it (kResourceExhausted carrying a MemoryLimitDetail); the
// backend stays usable. The refusal is recognised by its type,
// c10::OutOfMemoryError, and where the TorchScript interpreter has rethrown
// it as a std::runtime_error (an error inside a scripted method with a
// serialized-code traceback) by the allocator's own record
// (CountingAllocator::ThreadRefusals, the charged counters' last_refusal),
// never by its text; the figures always come from that record.
//
// Swap (docs/design.md, "Memory model" → swap): SwapOut moves the model's
// weights off its device and frees them there, keeping the loaded module
// and its graph; SwapIn brings them back, bit for bit. CPU models swap to a
// file, CUDA models to pinned host memory.
//
// Thread-safety: after Load returned OK, Run, the metadata accessors and the
// memory accessors may be called from several threads at once. SwapOut and
// SwapIn may be called from any thread too: they wait for the Runs in
// progress and hold later ones back until they are done. Load,
// SetMemoryLimit and moves must not race with anything else on the object.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "modelgrid/backend/model_backend.h"
#include "modelgrid/kserve/tensor.h"
#include "modelgrid/repository.h"
#include "modelgrid/status.h"

namespace modelgrid {

// Greedy / sampled decoding parameters of the `generate` task, read from
// Run's `params` JSON object (every field optional):
//   max_new_tokens  integer in [1, 1024], default 16: tokens appended per row
//   do_sample       bool, default false: false = argmax, true = sample
//   temperature     number > 0, default 1.0: logits are divided by it before softmax
//   top_k           integer >= 1, optional: sample only among the k most likely tokens
//   seed            unsigned integer, default 0: seeds the sampling generator,
//                   so a (prompt, params) pair always yields the same tokens
inline constexpr int64_t kMaxNewTokensLimit = 1024;
inline constexpr int64_t kDefaultMaxNewTokens = 16;

// One loaded TorchScript model (backend kind "torchscript"). Movable, not
// copyable.
class TorchScriptBackend final : public ModelBackend {
 public:
  TorchScriptBackend();
  ~TorchScriptBackend();
  TorchScriptBackend(TorchScriptBackend&&) noexcept;
  TorchScriptBackend& operator=(TorchScriptBackend&&) noexcept;
  TorchScriptBackend(const TorchScriptBackend&) = delete;
  TorchScriptBackend& operator=(const TorchScriptBackend&) = delete;

  std::string_view kind() const override { return "torchscript"; }

  // Loads `model.torchscript` onto `device` ("cpu", or "cuda:N" when the
  // linked LibTorch has CUDA and a GPU is visible at run time) in eval mode,
  // installing the counting allocator first (CPU). `threads` > 0 sets
  // LibTorch's intra-op thread count (process-wide); 0 keeps the current one.
  // Reads `model.hf_config` (config.json), when present, for the sequence
  // limit of `generate` (n_positions / max_position_embeddings / n_ctx).
  // A backend may be loaded once; a second Load replaces the model.
  // Errors: kNotFound when the entry has no model.pt or the file is missing,
  // when config.tasks names a method the module lacks, or when the device
  // does not exist (e.g. CUDA without a CUDA build or GPU); kCorruption
  // naming the file when LibTorch cannot load it; kInvalidArgument for a
  // malformed device string or an unreadable config.json.
  Status Load(const ModelEntry& model, const std::string& device = "cpu",
              int threads = 0) override;

  // True once Load succeeded.
  bool loaded() const override;
  // The model's name ("" before Load).
  const std::string& model_name() const override;

  // The tasks Run accepts, sorted: "infer", "encode" when the module has an
  // encode method, "generate" for causal LMs (config.json architectures
  // naming a causal/LM head, or no config.json and one INT64 input), and
  // the config.yaml tasks.
  std::vector<std::string> Tasks() const override;

  // The inputs `task` expects (default "infer"): config.yaml's inputs when
  // declared (and, for a task other than infer, when their count equals the
  // method's arguments), else the method's TorchScript argument names, whose
  // datatype (reported FP32) and dims (reported empty) are then unknown and
  // not checked. `dims` exclude the batch dimension when max_batch_size > 0.
  // Empty for an unknown task.
  std::vector<TensorSpec> Inputs(const std::string& task = "infer") const override;

  // The outputs of `infer`: config.yaml's outputs when declared, else
  // output0..N-1 from forward's declared return type (a Tensor, or a tuple
  // of tensors), datatype and dims unknown (FP32, empty).
  std::vector<TensorSpec> Outputs() const override;

  // Runs `task` on `inputs` under torch::InferenceMode and returns its
  // outputs. The caller keeps `inputs` alive and unchanged during the call
  // (their bytes are read in place). Inputs are checked against
  // Inputs(task): every name must be declared and every declared one given;
  // datatype, rank and each dim (-1 = any) must match; with max_batch_size
  // > 0 the first dim is the batch and must be in [1, max_batch_size] and
  // equal across inputs. Inputs are passed to the method in declared order
  // (by argument name when taken from the method's schema).
  // Outputs: a returned Tensor, tuple/list of tensors or dict str→Tensor,
  // each copied to contiguous little-endian bytes with the datatype mapped
  // from its dtype (BOOL, UINT8, INT8, INT16, INT32, INT64, FP16, BF16, FP32,
  // FP64). Names: the dict's keys; else, for infer, config.yaml's output
  // names by position; else output0, output1, ...
  // `generate` returns "output_ids" INT64 [B, S+max_new_tokens] (the prompt
  // followed by the new tokens) and "generated_ids" INT64 [B, max_new_tokens].
  // Errors (messages name the model, and the task or input):
  //   kUnavailable       nothing loaded, or the model is swapped out ("model
  //                      'M' is swapped out: ...", SwapIn first);
  //   kNotFound          unknown task (e.g. encode without an encode method);
  //   kInvalidArgument   an input undeclared, missing, duplicated, of the
  //                      wrong datatype or shape ("expected ..., got ..."),
  //                      a batch past max_batch_size, malformed bytes, bad
  //                      generate params, or a prompt + max_new_tokens past
  //                      the model's position limit, or an index the model
  //                      looks up out of range (a token id past the vocabulary);
  //   kUnsupported       a datatype LibTorch lacks (UINT16/32/64, BYTES) in an
  //                      input, or a non-tensor output;
  //   kResourceExhausted the memory limit refused an allocation: "model 'M':
  //                      memory limit exceeded: limit L bytes, in use U bytes,
  //                      requested R bytes", with StatusDetail::memory_limit
  //                      {model, device, L, U, R} (L and U of the limit that
  //                      refused: the charged counters', or the process-wide
  //                      total's, then the message says so); also, without
  //                      the detail, a CUDA or system out-of-memory;
  //   kInternal          any other LibTorch or C++ exception (never a crash).
  // The tensors alias the viewed bytes, which the caller keeps alive and
  // unchanged until Run returns (the worker passes views of its
  // shared-memory arena, so request bytes are never copied in it). `stream`
  // is not used: no task of this backend streams.
  using ModelBackend::Run;
  Result<std::vector<InferTensor>> Run(const std::string& task,
                                       std::span<const InferTensorView> inputs,
                                       const nlohmann::json& params,
                                       const StreamCallback& stream) override;

  // Moves the weights off the device and frees them there; the module, its
  // graph and its tasks stay, and Run answers kUnavailable until SwapIn.
  // CPU: one file in target.swap_dir (weight_swap.h has its layout: a header
  // with per-tensor dtype, shape and bytes and an XXH64 of the payload), then
  // the blocks are freed and the C heap trimmed (malloc_trim), so the
  // process's resident memory drops by about the weight bytes. CUDA: copies
  // into pinned host memory (asynchronous, then one synchronize), frees the
  // device blocks and empties the caching allocator's cache. A model
  // swapped out already is left as it is (bytes 0).
  // Errors (the model stays loaded and serving): kUnavailable when nothing
  // is loaded, or naming the file and the system error when the swap file
  // cannot be written; kInvalidArgument for a CPU model without swap_dir;
  // kResourceExhausted when pinned host memory cannot be had; kInternal for
  // a failed copy.
  Result<SwapOutReport> SwapOut(const SwapTarget& target) override;
  // Brings the weights back into freshly allocated blocks on the device
  // (charged, on the CPU, to the calling thread's counters, under their
  // limit) and deletes the swap file. CPU: the file's size, header, entries
  // and payload hash are checked; a missing or corrupt file (or, on CUDA, a
  // failed copy) is no error: the model is loaded again from its repository
  // files (report.reloaded, report.reason). A model not swapped out is left
  // as it is (bytes 0).
  // Errors (the model stays swapped out): kUnavailable when nothing is
  // loaded; kResourceExhausted with a MemoryLimitDetail when the limit
  // refuses the blocks; the load error when the reload fails.
  Result<SwapInReport> SwapIn() override;
  // True between a successful SwapOut and the next successful SwapIn.
  bool swapped() const override;

  // Sets the limit on allocator bytes in use (rounded blocks; nullopt removes
  // it), installing the counting allocator if needed. Process-wide: it caps
  // every tensor of this process. Errors: kUnsupported for a CUDA device:
  // there the worker caps the device's caching allocator at the sum of its
  // models' limits (modelgrid/torch/cuda_memory.h, SetCudaLimit).
  Status SetMemoryLimit(std::optional<uint64_t> limit_bytes) override;
  // The allocator's figures (all zero before the allocator is installed).
  BackendMemoryStats MemoryStats() const override;
  // Sets the peak to the bytes live now.
  void ResetPeakMemory() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelgrid

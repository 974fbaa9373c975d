// The seam between ModelGrid and whatever runs a model: one interface,
// several backends (docs/design.md, "Processes and paths" → backend). A
// worker (or the grid, with isolation none) asks CreateBackend for the kind
// BackendKindFor chose from the model's files (modelgrid/backend/backend_kind.h),
// then speaks only ModelBackend. Triton's backend API is the model of this
// seam: a backend loads a model instance onto a device, says what it
// answers, runs requests, and reports its memory.
//
// Declared without LibTorch headers; implementations live in src/backend/
// (TorchScriptBackend, modelgrid/backend/backend.h) and src/hf/
// (HuggingFaceBackend, modelgrid/hf/hf_backend.h).
//
// Thread-safety (every implementation): after Load returned OK, Run, the
// metadata accessors and the memory accessors may be called from several
// threads at once; SwapOut and SwapIn wait for the Runs in progress. Load,
// SetMemoryLimit and destruction must not race with anything else.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/kserve/tensor.h"
#include "modelgrid/repository.h"
#include "modelgrid/status.h"

namespace modelgrid {

// Memory figures of the allocator a backend runs on, integer bytes.
struct BackendMemoryStats {
  uint64_t current_bytes = 0;           // bytes live now (each block rounded up to 64 bytes)
  uint64_t peak_bytes = 0;              // most bytes live at once since the last ResetPeakMemory
  std::optional<uint64_t> limit_bytes;  // the limit in force; nullopt = none
  uint64_t refusals = 0;                // allocations refused by the limit so far
};

// Where SwapOut moves a model's weights.
struct SwapTarget {
  // CPU models: the folder (created when missing) for the swap file,
  // "<swap_dir>/<model>.<pid>.mgswap" (characters other than letters,
  // digits, '.', '_' and '-' of the model name become '_'; the pid keeps the
  // instances of one model in several processes apart). Ignored for CUDA
  // models, which swap to pinned host memory.
  std::string swap_dir;
};

// What a swap-out did.
struct SwapOutReport {
  uint64_t bytes = 0;             // weight bytes moved off the device (distinct storages);
                                  // 0 when the model was swapped out already.
                                  // HuggingFaceBackend keeps no copy: its figure is the
                                  // weight bytes it let go (allocated plus mapped from
                                  // the safetensors files), read from the files again
                                  // at swap-in
  uint64_t duration_us = 0;       // wall time of the move, microseconds
  uint64_t rss_before_bytes = 0;  // the process's resident memory (VmRSS of
  uint64_t rss_after_bytes = 0;   // /proc/self/status) before and after, bytes
  std::string location;           // the swap file, or "pinned host memory"
};

// What a swap-in did.
struct SwapInReport {
  uint64_t bytes = 0;        // weight bytes back on the device; 0 when the
                             // model was not swapped out
  uint64_t duration_us = 0;  // wall time, microseconds
  bool reloaded = false;     // the swap tier failed (a missing or corrupt swap
                             // file, a failed copy): the model was loaded
                             // again from its repository files instead
  std::string reason;        // why it was reloaded; "" otherwise
};

// Called by a streaming Run once per piece of output as it is produced (a
// generated token and its text): the tensors of that piece. Returning false
// asks the backend to stop producing (the client went away); Run then ends
// early with what it has. Called on Run's thread.
using StreamCallback = std::function<bool(const std::vector<InferTensor>& piece)>;

// One loaded model instance. Implementations: TorchScriptBackend
// (kind "torchscript"), HuggingFaceBackend (kind "huggingface").
class ModelBackend {
 public:
  virtual ~ModelBackend() = default;

  // The backend kind ("torchscript", "huggingface"): BackendKindFor's names.
  virtual std::string_view kind() const = 0;

  // Loads `model` onto `device` ("cpu", or "cuda:N" where the linked LibTorch
  // has CUDA and a GPU is visible). `threads` > 0 sets LibTorch's intra-op
  // thread count (process-wide); 0 keeps the current one. A second Load
  // replaces the model. Errors: kNotFound for missing files or a device that
  // does not exist, kCorruption naming a file that cannot be read as what it
  // claims to be, kInvalidArgument for a malformed device string or a bad
  // configuration field, kUnsupported for an architecture, component or
  // dtype the backend does not run (each message names the file and field).
  virtual Status Load(const ModelEntry& model, const std::string& device = "cpu",
                      int threads = 0) = 0;

  // True once Load succeeded.
  virtual bool loaded() const = 0;
  // The model's name ("" before Load).
  virtual const std::string& model_name() const = 0;

  // The tasks Run accepts, sorted (e.g. "infer", "encode", "generate",
  // "embed", "classify").
  virtual std::vector<std::string> Tasks() const = 0;
  // The inputs `task` expects; `dims` exclude the batch dimension when the
  // model batches. Empty for an unknown task.
  virtual std::vector<TensorSpec> Inputs(const std::string& task = "infer") const = 0;
  // The outputs of `infer`.
  virtual std::vector<TensorSpec> Outputs() const = 0;

  // Runs `task` on `inputs` (views whose bytes the caller keeps alive and
  // unchanged until Run returns) with the task's `params` (a JSON object)
  // and returns its outputs. `stream`, when set and the task produces its
  // output piece by piece (generation), is called with each piece; the
  // returned outputs are then the whole result as without it.
  // Errors: kUnavailable (nothing loaded, or swapped out), kNotFound (unknown
  // task), kInvalidArgument (an input or parameter that does not fit, named
  // with expected vs got), kUnsupported, kResourceExhausted (the memory limit
  // refused an allocation; with StatusDetail::memory_limit where the
  // backend's allocator knows the figures), kInternal (anything else; never
  // a crash).
  virtual Result<std::vector<InferTensor>> Run(const std::string& task,
                                               std::span<const InferTensorView> inputs,
                                               const nlohmann::json& params,
                                               const StreamCallback& stream) = 0;

  // Run without streaming.
  Result<std::vector<InferTensor>> Run(const std::string& task,
                                       std::span<const InferTensorView> inputs,
                                       const nlohmann::json& params = nlohmann::json::object()) {
    return Run(task, inputs, params, StreamCallback());
  }
  // Run on owned tensors (viewed in place, not copied).
  Result<std::vector<InferTensor>> Run(const std::string& task,
                                       const std::vector<InferTensor>& inputs,
                                       const nlohmann::json& params = nlohmann::json::object()) {
    std::vector<InferTensorView> views;
    views.reserve(inputs.size());
    for (const InferTensor& t : inputs) views.push_back(ViewOf(t));
    return Run(task, std::span<const InferTensorView>(views), params, StreamCallback());
  }

  // Moves the weights off the device and frees them there; Run answers
  // kUnavailable until SwapIn. Errors (the model stays loaded): kUnavailable
  // when nothing is loaded, kUnsupported for a backend that cannot swap,
  // others as the implementation documents.
  virtual Result<SwapOutReport> SwapOut(const SwapTarget& target) = 0;
  // Brings the weights back (or reloads them from the repository files).
  virtual Result<SwapInReport> SwapIn() = 0;
  // True between a successful SwapOut and the next successful SwapIn.
  virtual bool swapped() const = 0;

  // Sets the limit on allocator bytes in use (nullopt removes it).
  // Process-wide on the CPU. Errors: kUnsupported for a CUDA device.
  virtual Status SetMemoryLimit(std::optional<uint64_t> limit_bytes) = 0;
  // The allocator's figures (all zero before the allocator is installed).
  virtual BackendMemoryStats MemoryStats() const = 0;
  // Sets the peak to the bytes live now.
  virtual void ResetPeakMemory() = 0;
  // Bytes of the loaded model that the allocator does not see: weights that
  // are views of memory-mapped files (page cache, resident once read, shared
  // with other mappings of the same file). The worker adds them to the
  // model's measured bytes. 0 when swapped out or nothing is mapped.
  virtual uint64_t MappedBytes() const { return 0; }
};

// Makes an empty backend of one kind.
using BackendFactory = std::function<std::unique_ptr<ModelBackend>()>;

// A new, unloaded backend of `kind` ("torchscript", "huggingface", or one
// added with RegisterBackend). Errors: kUnsupported naming the kind and
// listing the known ones.
Result<std::unique_ptr<ModelBackend>> CreateBackend(std::string_view kind);

// Adds (or replaces) the factory for `kind`. Thread-safe.
void RegisterBackend(std::string kind, BackendFactory factory);

// The kinds CreateBackend knows, sorted.
std::vector<std::string> BackendKinds();

}  // namespace modelgrid

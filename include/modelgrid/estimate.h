// The memory estimator: predicted peak bytes of one instance of a model,
// statically, from file headers, config.json and the graph — no forward pass
// (docs/design.md, "Memory model" → Estimation).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/datatype.h"
#include "modelgrid/device.h"
#include "modelgrid/repository.h"
#include "modelgrid/status.h"

namespace modelgrid {

// The breakdown of one instance's predicted memory, all in bytes.
//   instance_peak = weights + activations + workspace + allocator_slack
//   request       = instance_peak + margin        (what placement packs)
//   total         = request + context             (the instance alone in its own worker)
struct MemoryEstimate {
  std::string model;
  int64_t batch = 1;            // batch the estimate is for
  int64_t sequence_length = 0;  // tokens per sample (HF models); 0 for others
  std::string device_type;      // "cpu" or "cuda"
  uint64_t parameters = 0;      // parameter count (elements), from headers or config.json
  uint64_t weights = 0;         // parameter + buffer bytes held on the device
  uint64_t activations = 0;     // peak live activation bytes (inputs, outputs, KV cache)
  // KV cache bytes for batch × sequence_length (0 for models without one);
  // included in `activations` only when the executed model keeps a cache
  // (the `generate` task of HF models without a TorchScript file); `notes`
  // says which case applied.
  uint64_t kv_cache = 0;
  // Where the peak depends on the task (HF causal LMs served by the native
  // backend: `infer` makes logits for every position and keeps no cache,
  // `generate` keeps a KV cache of batch × sequence_length tokens and makes
  // the last position's logits only), each task's activation bytes, sorted
  // by task; `activations` is then the largest of them, or the task asked
  // for (EstimateOptions::task). Empty where one figure covers every task.
  struct TaskActivations {
    std::string task;
    uint64_t activations = 0;  // as `activations`, for this task alone
  };
  std::vector<TaskActivations> tasks;
  std::string task;  // the task `activations` is for; "" = every task (the worst)
  uint64_t workspace = 0;       // library workspaces alive at the peak (im2col, cuBLAS)
  uint64_t allocator_slack = 0; // allocator rounding and caching
  uint64_t margin = 0;          // safety margin: instance_peak × margin fraction
  uint64_t context = 0;         // per worker process on this device type (not per instance)
  std::string method;           // how activations were found, e.g. "graph walk"
  // Non-empty when activations (and so the walk's workspace) are unknown:
  // why, e.g. the model declares no inputs. `activations` is then 0 and the
  // request covers the weights only (EstimateOptions::weights_only_without_inputs).
  std::string activations_unknown;
  std::vector<std::string> notes;  // cross-checks and warnings, for humans
  std::optional<uint64_t> calibrated_peak;  // measured by --calibrate, when available

  uint64_t instance_peak() const { return weights + activations + workspace + allocator_slack; }
  uint64_t request() const { return instance_peak() + margin; }
  uint64_t total() const { return request() + context; }
};

struct EstimateOptions {
  std::optional<int64_t> batch;            // default: config max_batch_size (at least 1)
  std::optional<int64_t> sequence_length;  // default: config sequence_length
  DeviceKind device = DeviceKind::kCpu;    // which allocator/workspace model applies
  double margin_fraction = 0.10;           // margin = instance_peak × this
  std::optional<uint64_t> context_bytes;   // default: DefaultContextBytes(device)
  // "" = activations for the model's worst task (what a model serving all
  // its tasks needs); a task name = that task's figure where the estimate
  // has per-task figures (MemoryEstimate::tasks), else ignored.
  std::string task;
  // A TorchScript model whose configuration declares no inputs (a folder
  // with neither config.pbtxt nor config.yaml): false (placement, serve) makes
  // that an error, since the walk needs the input shapes; true (`modelgrid
  // estimate`) gives the exact weight bytes from the archive with
  // MemoryEstimate::activations_unknown saying why activations are missing.
  bool weights_only_without_inputs = false;
};

// Shape-and-liveness walk over a TorchScript graph, implemented with LibTorch
// in modelgrid_torch (src/torch/graph_walk.*). The core library sees it only
// through this interface so that it needs no LibTorch headers.
class GraphWalker {
 public:
  struct Profile {
    uint64_t weight_bytes = 0;      // parameters + buffers as loaded
    uint64_t peak_activation_bytes = 0;  // most bytes of live intermediate tensors at once
    uint64_t peak_workspace_bytes = 0;   // scratch buffers alive at that peak (e.g. im2col)
    std::string notes;                    // ops whose shapes were guessed, etc.
  };
  virtual ~GraphWalker() = default;
  // Walks `model_pt`'s forward for inputs of the given shapes (batch
  // included) and types. Errors: kCorruption for an unreadable archive,
  // kUnsupported for a graph the walk cannot follow.
  virtual Result<Profile> Walk(const std::filesystem::path& model_pt,
                               const std::vector<std::vector<int64_t>>& input_shapes,
                               const std::vector<DataType>& input_types, DeviceKind device) = 0;
};

// Estimates one instance of `model` for `options`. `walker` may be null, in
// which case TorchScript-only models get a weights-only estimate with a note.
// Errors: whatever the file parsers report (kCorruption naming the file and
// the problem, kInvalidArgument for a config.json field), kInvalidArgument
// for batch < 1 or a model that declares no inputs when a walk needs them
// (unless options.weights_only_without_inputs).
Result<MemoryEstimate> EstimateModel(const ModelEntry& model, const EstimateOptions& options,
                                     GraphWalker* walker);

}  // namespace modelgrid

// The model repository: what a user points ModelGrid at (docs/design.md,
// "Repository layout on disk").
//
//   models/
//     resnet50/   config.yaml?  1/model.pt                       (TorchScript)
//     bert-base/  config.yaml?  config.json  model.safetensors  1/model.pt
//     gpt2/       config.yaml?  config.json  model-0000k-of-0000n.safetensors
//                               model.safetensors.index.json     1/model.pt
//
// Triton's <model>/<version>/model.pt layout is accepted as is.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/datatype.h"
#include "modelgrid/status.h"

namespace modelgrid {

// One input or output tensor of a model, as declared in config.yaml.
// `dims` excludes the batch dimension when the model batches
// (max_batch_size > 0), as in Triton; -1 marks a variable dimension.
struct TensorSpec {
  std::string name;
  DataType datatype = DataType::kFP32;
  std::vector<int64_t> dims;

  bool operator==(const TensorSpec&) const = default;
};

// Dynamic batching settings of a model (Triton's dynamic_batching block).
struct BatchingConfig {
  bool enabled = true;
  // How long a request may wait for partners. 0 (Triton's default) batches
  // what is already queued and never waits: under load the queue fills while
  // a batch runs; a lone caller pays nothing (bench/dispatch_bench).
  uint64_t max_queue_delay_us = 0;
  std::vector<int64_t> preferred_batch_sizes;  // empty: any size up to max_batch_size
  uint64_t max_queue_size = 256;            // queued requests past which new ones get 503
  uint64_t default_timeout_us = 30'000'000; // per-request timeout when the client sets none

  bool operator==(const BatchingConfig&) const = default;
};

// How a model's memory collisions are settled (docs/design.md, "Memory model").
enum class Resolver { kWait, kPriority, kSwap };

// The config.yaml / HTTP spelling of a resolver: "wait", "priority", "swap";
// "unknown" for a value outside the enum.
const char* ResolverName(Resolver resolver);

// Reads a resolver's spelling (exact, lower case: "wait", "priority",
// "swap"). Errors: kInvalidArgument "unknown resolver 'X' (expected wait,
// priority or swap)"; callers add the file or request and field.
Result<Resolver> ParseResolver(const std::string& text);

// When a model is loaded (config.yaml `load`).
enum class LoadPolicy {
  kDefault,   // `load` absent: follow the server's default
  kEager,     // loaded when the grid loads its models (LoadAll)
  kOnDemand,  // registered on standby; loaded by its first request
};

// The config.yaml spelling of a load policy: "eager", "on_demand"; "default"
// for kDefault (which config.yaml spells by leaving `load` out); "unknown"
// for a value outside the enum.
const char* LoadPolicyName(LoadPolicy policy);

// Reads a load policy's spelling ("eager", "on_demand"; exact, lower case).
// "default" is not accepted: leaving the field out means kDefault.
// Errors: kInvalidArgument "unknown load policy 'X' (expected eager or
// on_demand)"; callers add the file or request and field.
Result<LoadPolicy> ParseLoadPolicy(const std::string& text);

// The per-model `config.yaml`. Every field has a default; an unknown field is
// an error naming the field and the file.
//
// YAML schema (all optional):
//   platform: pytorch_torchscript | huggingface      (default: from the files)
//   max_batch_size: 8            # 0 = the model does not batch
//   sequence_length: 128         # tokens per request for HF models (estimation)
//   inputs:  [{name, datatype, dims}]
//   outputs: [{name, datatype, dims}]
//   memory: {request: 2GiB, limit: 3GiB}   # overrides of the estimate; each
//                                # > 0 bytes (ParseBytes units), limit >= request
//   devices: [cuda:1, cpu]       # pins: the devices this model may use
//   replicas: 1                  # instances, never two on one device
//   priority: 0                  # higher wins collisions
//   resolver: wait | priority | swap  # default wait
//   load: eager | on_demand      # absent = the server's default
//   pinned: false                # true: stays resident, never evicted or swapped
//   latency_sensitive: false     # keep apart from other busy models
//   expected_load: 0.0           # expected requests per second (balance)
//   dynamic_batching: {enabled, max_queue_delay_us, preferred_batch_sizes,
//                      max_queue_size, default_timeout_us}
//   tasks: {name: method}        # extra TorchScript methods exposed as tasks
struct ModelConfig {
  std::string platform;
  int64_t max_batch_size = 1;
  int64_t sequence_length = 128;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  std::optional<uint64_t> memory_request;  // bytes
  std::optional<uint64_t> memory_limit;    // bytes
  std::vector<std::string> devices;        // pins; empty = any device
  int replicas = 1;
  int priority = 0;
  Resolver resolver = Resolver::kWait;
  LoadPolicy load = LoadPolicy::kDefault;  // when the model is loaded
  bool pinned = false;  // once loaded, never evicted (to standby) nor swapped out
  bool latency_sensitive = false;
  double expected_load = 0.0;
  BatchingConfig batching;
  std::map<std::string, std::string> tasks;

  bool operator==(const ModelConfig&) const = default;
};

// How a model's files are laid out.
enum class ModelFormat {
  kTorchScript,   // <dir>/<version>/model.pt only
  kHuggingFace,   // config.json + safetensors (+ optionally <version>/model.pt to execute)
};

// One model of the repository, resolved to its files.
struct ModelEntry {
  std::string name;                     // the folder name
  std::filesystem::path dir;            // the model's folder
  ModelFormat format = ModelFormat::kTorchScript;
  std::string version;                  // highest numeric version folder with model.pt, or ""
  std::optional<std::filesystem::path> torchscript;   // <dir>/<version>/model.pt
  std::optional<std::filesystem::path> hf_config;     // <dir>/config.json
  std::vector<std::filesystem::path> safetensors;     // single file or all shards, sorted
  std::optional<std::filesystem::path> safetensors_index;  // model.safetensors.index.json
  ModelConfig config;
};

// Parses a model's config.yaml text. `file` names the file in errors.
// Errors: kInvalidArgument "<file>: field '<field>': ..." naming the file and
// the field: unknown field, wrong type, bad value such as a negative
// max_batch_size, an unknown datatype, a memory size that is negative, zero
// or not a byte quantity, memory.limit below memory.request, an unknown
// resolver or load policy (both list the allowed values).
Result<ModelConfig> ParseModelConfig(const std::string& yaml_text, const std::string& file);

// Writes `config` as config.yaml text that ParseModelConfig reads back into
// an equal ModelConfig (every field written, except memory sizes not set
// and `load` when kDefault; strings double-quoted; bytes as plain integers;
// expected_load with 17 significant digits). Used to give
// a model added from a loaded module (modelgrid/grid_module.h) its folder.
// `config` must be one ParseModelConfig could have produced (e.g. platform
// empty or a known one); the text is emitted as is otherwise.
std::string ModelConfigToYaml(const ModelConfig& config);

// Resolves one model folder (or a direct path to a model.pt / .safetensors
// file, named after its stem) into a ModelEntry, reading config.yaml if present.
// Errors: kNotFound if the path does not exist or holds no model files;
// config.yaml errors as ParseModelConfig.
Result<ModelEntry> OpenModel(const std::filesystem::path& path);

// Lists every model folder under `root` (sorted by name). Folders that hold
// no model files are skipped; a folder with a broken config.yaml is an error
// (the whole repository is rejected so the user sees the problem at once).
// Errors: kNotFound if `root` is not a directory; any OpenModel error.
Result<std::vector<ModelEntry>> ScanRepository(const std::filesystem::path& root);

}  // namespace modelgrid

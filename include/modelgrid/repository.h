// The model repository: what a user points ModelGrid at (docs/design.md,
// "Repository layout on disk").
//
//   models/
//     resnet50/   config.yaml?  1/model.pt                       (TorchScript)
//     bert-base/  config.yaml?  config.json  model.safetensors  1/model.pt
//     gpt2/       config.yaml?  config.json  model-0000k-of-0000n.safetensors
//                               model.safetensors.index.json     1/model.pt
//
// Triton's <model>/<version>/model.pt layout is accepted as is, and so is
// Triton's config.pbtxt (read alongside or instead of config.yaml; see
// OpenModel for the precedence).
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

// One input or output tensor of a model, as declared in config.yaml or config.pbtxt.
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
//   backend: torchscript | huggingface  # what runs it (default: BackendKindFor,
//                                # modelgrid/backend/backend_kind.h)
//   dtype: float32 | float16 | bfloat16  # huggingface backend: the weights'
//                                # dtype on the device (default: config.json's
//                                # torch_dtype; the CPU computes in float32)
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
// max_batch_size of a Hugging Face folder without TorchScript, config.yaml
// or config.pbtxt (OpenModel): its requests carry up to this many texts.
inline constexpr int64_t kHuggingFaceDefaultMaxBatchSize = 8;

struct ModelConfig {
  std::string platform;
  std::string backend;  // "" = chosen from the files (BackendKindFor)
  std::string dtype;    // "" = config.json's torch_dtype
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

// Which version folders of a model are served (Triton's version_policy in
// config.pbtxt; config.yaml has no such field, so without a config.pbtxt the
// policy is latest 1).
struct VersionPolicy {
  enum class Kind {
    kLatest,    // the `num_versions` highest version numbers
    kAll,       // every version folder
    kSpecific,  // the version numbers listed in `versions`
  };
  Kind kind = Kind::kLatest;
  uint32_t num_versions = 1;      // kLatest; at least 1
  std::vector<int64_t> versions;  // kSpecific; each >= 0

  bool operator==(const VersionPolicy&) const = default;
};

// What ParseTritonModelConfig read from a config.pbtxt.
struct TritonModelConfig {
  // The fields config.pbtxt shares with config.yaml, mapped (platform
  // "pytorch_libtorch" / backend "pytorch" -> "pytorch_torchscript";
  // max_batch_size as is, 0 when absent as in Triton; input/output ->
  // inputs/outputs with TYPE_* -> DataType; dynamic_batching present ->
  // batching enabled with its preferred sizes, delay, default timeout and
  // queue size, absent -> batching disabled; instance_group -> replicas and
  // device pins). Fields config.yaml alone has keep their defaults.
  ModelConfig config;
  std::string name;  // `name`; "" when absent (Triton wants the folder's name)
  VersionPolicy version_policy;
  std::map<std::string, std::string> label_files;  // output name -> label_filename as written
  std::map<std::string, std::string> parameters;   // parameters: key -> string_value
  // One line per field that was skipped (unknown to ModelGrid, e.g.
  // `optimization`) or read but not acted on (e.g. `input.reshape`), each
  // field path once however often it occurs:
  // "<file>:<line>:<column>: field '<path>' ...". Lines and columns from 1.
  std::vector<std::string> warnings;
};

// Parses a Triton model configuration (config.pbtxt, protobuf text format)
// with protobuf's TextFormat parser over src/repository/triton_model_config.proto.
// `file` names the file in messages. Fields Triton defines but ModelGrid does
// not read are skipped and listed in `warnings`, never an error.
// Errors: kInvalidArgument "<file>:<line>:<column>: <what>" for text that is
// not valid protobuf text format or does not fit the schema (a string where a
// number is expected, an unknown TYPE_* or KIND_* value, ...), and, naming the
// field's line and column, for values ModelGrid cannot use: a negative
// max_batch_size, a dims entry 0 or below -1, a tensor without name or
// data_type (TYPE_INVALID), a duplicate tensor name, a negative instance
// count or gpu, a version_policy specific version below 0.
// kUnsupported "<file>: ..." for a platform or backend other than PyTorch's
// (ModelGrid serves TorchScript only).
Result<TritonModelConfig> ParseTritonModelConfig(const std::string& text, const std::string& file);

// One model of the repository, resolved to its files.
struct ModelEntry {
  std::string name;                     // the folder name
  std::filesystem::path dir;            // the model's folder
  ModelFormat format = ModelFormat::kTorchScript;
  // The highest numeric version folder holding model.pt among those
  // `version_policy` selects, or "": the version a request without a
  // version gets.
  std::string version;
  // Every version `version_policy` selects (ascending by number); each one
  // serves (Grid::AddModel adds the others as models of their own).
  std::vector<std::string> versions;
  VersionPolicy version_policy;
  std::optional<std::filesystem::path> torchscript;   // <dir>/<version>/model.pt
  std::optional<std::filesystem::path> hf_config;     // <dir>/config.json
  std::vector<std::filesystem::path> safetensors;     // single file or all shards, sorted
  std::optional<std::filesystem::path> safetensors_index;  // model.safetensors.index.json
  ModelConfig config;
  std::optional<std::filesystem::path> config_yaml;   // <dir>/config.yaml when present
  std::optional<std::filesystem::path> config_pbtxt;  // <dir>/config.pbtxt when present
  // Per output, its class labels (one per line of the output's
  // label_filename in config.pbtxt; trailing "\r" and empty last line dropped).
  std::map<std::string, std::vector<std::string>> labels;
  std::map<std::string, std::string> parameters;  // config.pbtxt parameters
  // Warnings about the configuration files (TritonModelConfig::warnings),
  // each once; ScanRepository logs them.
  std::vector<std::string> warnings;
};

// Parses a model's config.yaml text. `file` names the file in errors.
// Errors: kInvalidArgument "<file>: field '<field>': ..." naming the file and
// the field: unknown field, wrong type, bad value such as a negative
// max_batch_size, an unknown datatype, a memory size that is negative, zero
// or not a byte quantity, memory.limit below memory.request, an unknown
// resolver or load policy (both list the allowed values).
Result<ModelConfig> ParseModelConfig(const std::string& yaml_text, const std::string& file);

// As above, over `base` instead of the defaults: each field the YAML sets
// replaces base's (a list such as inputs, devices or
// dynamic_batching.preferred_batch_sizes as a whole; dynamic_batching and
// memory field by field; tasks added to base's), the others keep base's
// value. This is how a folder's config.yaml adds to and wins over its
// config.pbtxt (OpenModel). Errors: as above.
Result<ModelConfig> ParseModelConfig(const std::string& yaml_text, const std::string& file,
                                     const ModelConfig& base);

// Writes `config` as config.yaml text that ParseModelConfig reads back into
// an equal ModelConfig (every field written, except memory sizes not set
// and `load` when kDefault; strings double-quoted; bytes as plain integers;
// expected_load with 17 significant digits). Used to give
// a model added from a loaded module (modelgrid/grid_module.h) its folder.
// `config` must be one ParseModelConfig could have produced (e.g. platform
// empty or a known one); the text is emitted as is otherwise.
std::string ModelConfigToYaml(const ModelConfig& config);

// Resolves one model folder (or a direct path to a model.pt / .safetensors
// file, named after its stem) into a ModelEntry, reading its configuration:
// config.pbtxt (Triton's, ParseTritonModelConfig) if present, then
// config.yaml (ParseModelConfig over what config.pbtxt gave: the YAML adds
// ModelGrid's own fields and wins where both set one). Label files named by
// label_filename are read. The version served follows config.pbtxt's
// version_policy (latest 1 without one).
// Errors: kNotFound if the path does not exist or holds no model files;
// config.yaml errors as ParseModelConfig, config.pbtxt errors as
// ParseTritonModelConfig (kUnsupported for a non-PyTorch platform);
// kInvalidArgument naming config.pbtxt and the field for a version_policy
// that selects no version folder holding model.pt or a label_filename that
// cannot be read or escapes the model folder.
Result<ModelEntry> OpenModel(const std::filesystem::path& path);

// Lists every model folder under `root` (sorted by name). Folders that hold
// no model files and no config.yaml are skipped, as are folders whose
// config.pbtxt names a platform ModelGrid does not serve (e.g. an ONNX model
// of a Triton repository; logged as a warning). A folder with a broken
// configuration is an error (the whole repository is rejected so the user
// sees the problem at once). Each model's `warnings` are logged once
// (spdlog, warn level).
// Errors: kNotFound if `root` is not a directory; any other OpenModel error.
Result<std::vector<ModelEntry>> ScanRepository(const std::filesystem::path& root);

}  // namespace modelgrid

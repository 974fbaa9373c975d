// modelgrid::InferenceService — the KServe v2 / Open Inference Protocol
// (with Triton's extensions) as one protocol-neutral service over a Grid:
// health, metadata, model configuration, inference, repository, statistics
// and system shared memory. It takes and returns plain structs; the HTTP
// routes (src/server/) and the gRPC server (src/grpc/) are thin transports
// that decode their wire format into these structs, call the service and
// encode what it returns (docs/design.md, "Interfaces"). Everything that is
// the protocol's meaning rather than its wire lives here: version checks,
// readiness reasons, Triton's request parameters (task, priority, timeout,
// shared_memory_*, classification), the admin token, the allowed
// shared-memory keys.
//
// Thread-safety: every method may be called from any thread concurrently.
// The grid is not owned and must outlive the service.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/grid.h"
#include "modelgrid/kserve/infer_codec.h"
#include "modelgrid/service/log_control.h"
#include "modelgrid/service/trace_format.h"
#include "modelgrid/status.h"

namespace modelgrid {

namespace service {
class Tracer;
}  // namespace service

// How the service answers and guards.
struct ServiceOptions {
  std::string server_name = "modelgrid";  // ServerMetadata's name
  std::string server_version;             // ServerMetadata's version; "" = MODELGRID_VERSION
  // The token management calls must present (repository load/unload,
  // shared-memory register/unregister, ModelGrid's reconfiguration): HTTP
  // `Authorization: Bearer <token>`, gRPC metadata `authorization: Bearer
  // <token>`. "" = management calls are open (the server listens on
  // 127.0.0.1 by default).
  std::string admin_token;
  // The POSIX shared memory keys (shm_open names) a client may register:
  // only those starting with this prefix, so that a client cannot map
  // another program's objects through the server (the server's own arenas
  // are memfds and have no key). "" = any key.
  std::string shm_key_prefix = "/modelgrid_";
  // Generation on the huggingface backend runs in calls of at most this many
  // tokens (a session keeps the KV cache between them), so that other
  // requests to the model are served between two calls and a stream gets
  // its text as it comes. >= 1.
  int64_t generate_chunk_tokens = 4;
  // The server's logging, for Triton's logging extension (GetLogSettings,
  // UpdateLogSettings). Not owned; must outlive the service. null = the
  // extension is not served (kUnsupported).
  LogControl* log_control = nullptr;
  // How trace records are written (`modelgrid serve --trace-format`).
  TraceFormat trace_format = TraceFormat::kJsonLines;
};

// One row of a generation (GenerateAsync): the text and tokens produced,
// and why it ended.
struct GeneratedRow {
  std::string text;             // UTF-8; special tokens skipped, a stop string cut
  std::vector<int64_t> ids;     // the generated token ids
  std::string finish_reason;    // "length", "eos", "stop"; "" while going on
  int64_t prompt_tokens = 0;    // tokens of the prompt
};

// A generation request: a model's `generate` task on text or token ids.
struct GenerateRequest {
  std::string model;
  std::string version;  // "" = the one served
  // `text` BYTES [B] (one prompt per row), or `input_ids` INT64 [B,S]
  // (with an optional `attention_mask`).
  std::vector<InferTensor> inputs;
  // The generate task's parameters (modelgrid/backend/hf_backend.h:
  // max_new_tokens, do_sample, temperature, top_k, top_p, seed, stop,
  // ignore_eos); session, chunk_tokens and continue are the service's.
  nlohmann::json params = nlohmann::json::object();
  int priority = 0;
  std::string id;  // the client's request id, for logs
};

struct GenerateResponse {
  std::string model_name;
  std::string model_version;
  std::vector<GeneratedRow> rows;
};

// Called after each call of a generation with what it added per row (text
// and ids; "" and none for a row with nothing new) and each row's
// finish_reason so far. Returning false stops the generation (the client
// went away): `done` then gets what was produced, unfinished rows with
// finish_reason "cancelled".
using GenerationPieces = std::function<bool(const std::vector<GeneratedRow>& added)>;

// Whether something serves, and why not.
struct Readiness {
  bool ready = false;
  std::string reason;  // "" when ready
};

// GET /v2 / ServerMetadata.
struct ServerMetadata {
  std::string name, version;
  std::vector<std::string> extensions;
};

// One tensor of a model's metadata: shape as a client sends it (-1 for the
// batch dimension of a batching model and for variable dimensions).
struct TensorMetadata {
  std::string name;
  DataType datatype = DataType::kFP32;
  std::vector<int64_t> shape;
};

// GET /v2/models/{m}[/versions/{v}] / ModelMetadata.
struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;  // the version served (empty when none)
  std::string platform;               // "pytorch_torchscript"
  std::vector<TensorMetadata> inputs, outputs;
};

// One model of the repository index (Triton's repository extension).
struct RepositoryEntry {
  std::string name, version;
  std::string state;   // READY, LOADING, UNLOADING, UNAVAILABLE (Triton's words)
  std::string reason;
  ModelState modelgrid_state = ModelState::kAdded;  // the finer state
};

// A count with its summed duration (Triton's StatisticDuration).
struct StatisticDuration {
  uint64_t count = 0;
  uint64_t ns = 0;
};

// Where a model's memory is (Triton's MemoryUsage): "CPU" or "GPU", the
// device ordinal, and the bytes its allocator holds (measured).
struct MemoryUsage {
  std::string type;
  int64_t id = 0;
  uint64_t byte_size = 0;
};

// One model's statistics (Triton's statistics extension). Durations in
// nanoseconds from the grid's microsecond sums: success.ns is the request
// duration of every executed request; queue and compute_infer are counted
// per successful request; fail.ns, compute_input.ns and compute_output.ns
// are 0 (not measured separately).
struct ModelStatistics {
  std::string name, version;
  uint64_t last_inference_ms = 0;  // ms since the Unix epoch of the last request; 0 = never
  uint64_t inference_count = 0, execution_count = 0;
  StatisticDuration success, fail, queue, compute_input, compute_infer, compute_output;
  std::vector<MemoryUsage> memory_usage;
};

// The service. See the top of this file.
class InferenceService {
 public:
  // `grid` is not owned and must outlive the service.
  InferenceService(Grid* grid, ServiceOptions options);
  // Writes the trace records still pending.
  ~InferenceService();
  InferenceService(const InferenceService&) = delete;
  InferenceService& operator=(const InferenceService&) = delete;

  // The grid, for ModelGrid's own views (devices, models, changes, metrics).
  Grid* grid() const { return grid_; }
  const ServiceOptions& options() const { return options_; }

  // ---- health and metadata ----

  // Always live while the process answers.
  bool Live() const { return true; }
  // Grid::Ready, with the reason when not ready: the placed models not
  // serving yet and (strict readiness) the failed or unplaced ones, each
  // with its reason.
  Readiness ServerReady() const;
  // Name, version and the extensions served.
  ServerMetadata Metadata() const;
  // Whether `model` (at `version`, "" = the one served) is ready, with its
  // state and reason when not. Errors: FindModel's.
  Result<Readiness> ModelReady(const std::string& model, const std::string& version) const;
  // The model's metadata (inputs and outputs of its infer task). Errors:
  // FindModel's; kUnavailable naming the state and reason for a model that
  // failed or stayed unplaced before it ever loaded (no inputs or outputs
  // known) instead of empty lists.
  Result<ModelMetadata> Metadata(const std::string& model, const std::string& version) const;
  // The model's configuration as Triton's JSON (the fields of its
  // ModelConfig message, src/grpc/kserve_grpc.proto, with Triton's field
  // names; int64 dims as JSON numbers): name, platform, backend,
  // max_batch_size, input, output, dynamic_batching, instance_group,
  // version_policy, parameters — whether the model came with a
  // config.pbtxt, a config.yaml or both (merged, modelgrid/repository.h).
  // Errors: FindModel's.
  Result<nlohmann::json> Config(const std::string& model, const std::string& version) const;
  // The status of `model` at `version`: "" = the highest version served;
  // another version of a model that serves several is the grid's model
  // VersionedModelName(model, version) (modelgrid/grid.h). Errors:
  // kNotFound "unknown model 'm'"; kNotFound "model 'm' has no version 'v'
  // (serving versions '1', '2')".
  Result<ModelStatus> FindModel(const std::string& model, const std::string& version) const;

  // ---- inference ----

  // Runs `request` on `model` and calls `done` once, on a grid thread,
  // with the response: the requested outputs in the requested order (every
  // output in the model's order when none are requested), id echoed,
  // model_version the one served. Request parameters (src/server/README.md):
  // "task", "priority", "timeout" (µs) and the task's own; input parameters
  // "shared_memory_region" / "shared_memory_byte_size" /
  // "shared_memory_offset" read the input in place from a registered
  // region; requested-output parameters of the same names write the output
  // into a region (the response tensor then carries those parameters and
  // no data), "classification": k returns Triton's top-k BYTES strings.
  // Errors via `done`: FindModel's; kInvalidArgument for bad parameters,
  // shapes or regions (named); the grid's (modelgrid/grid.h InferAsync).
  void InferAsync(const std::string& model, const std::string& version, InferRequest request,
                  std::function<void(Result<InferResponse>)> done);
  // InferAsync, waiting for the answer.
  Result<InferResponse> Infer(const std::string& model, const std::string& version,
                              InferRequest request);

  // ---- generation and embeddings (text models; the OpenAI-compatible routes) ----

  // Runs `request.model`'s generate task. On the huggingface backend it
  // runs in calls of ServiceOptions::generate_chunk_tokens tokens through
  // one session, each call queued behind the requests that came meanwhile
  // (requests interleave at token boundaries), and `pieces` (may be empty)
  // hears after each call. On other backends, and for a model with more
  // than one replica (a session lives in one worker): one call
  // (TorchScript's generate returns ids only). `done` is called once, on a grid thread.
  // Errors via `done`: FindModel's; kNotFound when the model has no generate
  // task; the backend's (bad parameters, prompts past the model's limit,
  // each named); the grid's.
  void GenerateAsync(GenerateRequest request, GenerationPieces pieces,
                     std::function<void(Result<GenerateResponse>)> done);
  // GenerateAsync, waiting for the answer.
  Result<GenerateResponse> Generate(GenerateRequest request, GenerationPieces pieces = {});

  // ---- repository (Triton's model repository extension) ----

  // Every model, or only those ready.
  std::vector<RepositoryEntry> RepositoryIndex(bool ready_only) const;
  // Loads / unloads `model`, every version of it (Grid::Load /
  // Grid::Unload). `token` is the admin token the caller presented ("" =
  // none). Errors: Authorize's; the grid's.
  Status LoadModel(const std::string& model, std::string_view token);
  Status UnloadModel(const std::string& model, std::string_view token);

  // ---- statistics ----

  // Statistics of `model` at `version`, of every version of `model` when
  // `version` is "", or of every model when `model` is "" (one entry per
  // model version, named as clients name the model). With `refresh` the workers are asked for fresh memory figures
  // first. Errors: FindModel's.
  Result<std::vector<ModelStatistics>> Statistics(const std::string& model,
                                                  const std::string& version, bool refresh);

  // ---- system shared memory (Triton's extension) ----

  // Every registered region ("" ) or the one named (kNotFound).
  Result<std::vector<ipc::SharedMemoryRegion>> SharedMemoryStatus(const std::string& name) const;
  // Registers `key` as region `name`. Errors: Authorize's; kPermissionDenied
  // naming the key and the allowed prefix when the key does not start with
  // ServiceOptions::shm_key_prefix; Grid::RegisterSharedMemory's.
  Status RegisterSharedMemory(const std::string& name, const std::string& key, uint64_t offset,
                              uint64_t byte_size, std::string_view token);
  // Unregisters `name` ("" = every region). Errors: Authorize's; kNotFound.
  Status UnregisterSharedMemory(const std::string& name, std::string_view token);

  // ---- logging (Triton's logging extension) ----

  // The log settings in force: {"log_file": "...", "log_info": true,
  // "log_warning": true, "log_error": true, "log_verbose_level": 0,
  // "log_format": "text"} (ServerLogSettings). Errors: kUnsupported when
  // the server has no ServiceOptions::log_control.
  Result<nlohmann::json> GetLogSettings() const;
  // Changes the settings named in `settings` (a JSON object; the others
  // stay) and returns them all as GetLogSettings does. Triton's names;
  // "log_warnings" and "log_errors" (the protocol document's spelling) are
  // read as log_warning and log_error. Nothing changes when anything is
  // refused. Errors: Authorize's; kUnsupported (no log control);
  // kInvalidArgument "unknown log setting(s) 'x' (known: ...)",
  // "<setting>: expected <type>, got <type>", "log_format: ..." for a
  // format other than text / json ("default" is text), "log_file: cannot
  // be changed at run time ..." for a file other than the current one.
  Result<nlohmann::json> UpdateLogSettings(const nlohmann::json& settings, std::string_view token);

  // ---- trace (Triton's trace extension; src/service/tracer.h) ----

  // The trace settings of `model` ("" = the global ones) as the protocol
  // answers them: {"trace_file", "trace_level": [...], "trace_rate",
  // "trace_count", "log_frequency"}, every value a string. Errors:
  // FindModel's for an unknown model.
  Result<nlohmann::json> GetTraceSettings(const std::string& model) const;
  // Applies `settings` (a JSON object: strings, arrays of strings, null or
  // [] to clear one of a model's settings) to the global settings (`model`
  // "") or to `model`'s own, and returns the settings now in force there.
  // All or nothing. At TIMESTAMPS every trace_rate-th inference request
  // (InferAsync, both transports) is traced while trace_count lasts, and
  // its record (REQUEST_START, QUEUE_START, COMPUTE_START, COMPUTE_END,
  // REQUEST_END in ns) is written to trace_file. Errors: Authorize's;
  // FindModel's; ParseTraceUpdate's and Tracer::Update's
  // (kInvalidArgument naming the setting).
  Result<nlohmann::json> UpdateTraceSettings(const std::string& model,
                                             const nlohmann::json& settings,
                                             std::string_view token);

  // OK when no admin token is configured or `token` equals it (compared in
  // constant time). Errors: kPermissionDenied "<what> needs the admin
  // token (...)" naming the call.
  Status Authorize(std::string_view token, std::string_view what) const;

 private:
  // Every version of `model` that serves: the grid's model `model` and its
  // VersionedModelName siblings (in the grid's order).
  std::vector<ModelStatus> VersionsOf(const std::string& model) const;
  // The name clients use for a grid model: "m" for "m@2" (version 2 of m).
  std::string PublicName(const ModelStatus& status) const;

  Grid* grid_;
  ServiceOptions options_;
  std::unique_ptr<service::Tracer> tracer_;
};

// Triton's repository state word for a grid state: kReady "READY";
// kLoading, kRestarting and kSwappingIn "LOADING"; kSwappingOut
// "UNLOADING"; everything else "UNAVAILABLE" (standby and swapped included:
// not resident, though their next request brings them back;
// RepositoryEntry::modelgrid_state tells which).
const char* RepositoryStateName(ModelState state);

// The number after the last ':' or '#' of a device id ("cuda:1" -> 1,
// "sim:a100#2" -> 2); 0 when there is none ("cpu", "sim:a100").
int64_t DeviceOrdinal(const std::string& device_id);

// The metadata of a loaded model from its status: versions [version] (none
// when empty), platform "pytorch_torchscript", the infer task's tensors
// with MetadataShape (modelgrid/kserve/metadata.h).
ModelMetadata MetadataOf(const ModelStatus& status);

// Why `status` has no metadata to show, or "" when it has: a model that
// failed or stayed unplaced before ever loading (no inputs or outputs known).
std::string MetadataUnavailableReason(const ModelStatus& status);

// One model's statistics from its status, counters and the devices (for
// memory_usage: one entry for the device it is placed on, "GPU" for an
// accelerator, none when not placed). See ModelStatistics for the units.
ModelStatistics StatisticsOf(const ModelStatus& status, const ModelCounters& counters,
                             const std::vector<DeviceStatus>& devices);

// The token of an `Authorization: Bearer <token>` header value; "" when the
// value is not of that form (scheme matched case-insensitively).
std::string BearerToken(std::string_view authorization);

}  // namespace modelgrid

// modelgrid::Grid — the library API that everything else is a thin layer
// over (docs/design.md, "Processes and paths"; the C++ counterpart of the seed's
// Python ModelGrid API): add models, load them all (estimate, plan, start
// workers, load), run tasks on some or all of them, read device and model
// status, load and unload single models.
//
// Execution per instance goes through a per-instance BatchScheduler
// (modelgrid/scheduler/batch_scheduler.h: dynamic batching, priorities,
// timeouts, bounded queue) to an executor that is either a modelgrid-worker
// process (isolation `model`: one per instance; `device`: one per device
// hosting all its instances) or an in-process TorchScriptBackend (`none`).
//
// Watchdog: when a worker dies, its in-flight requests fail with kUnavailable
// at once, its models go to state `restarting`, and a new worker is started
// after a backoff (initial_backoff, doubling to max_backoff; reset after a
// worker stayed up for a minute) and the models are loaded again.
//
// Thread-safety: every method may be called from any thread concurrently,
// except that Shutdown must not race with the destructor.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/device.h"
#include "modelgrid/estimate.h"
#include "modelgrid/ipc/shm_registry.h"
#include "modelgrid/kserve/tensor.h"
#include "modelgrid/placement.h"
#include "modelgrid/repository.h"
#include "modelgrid/scheduler/request_times.h"
#include "modelgrid/status.h"

namespace modelgrid {

namespace grid_internal {
class WorkerEnv;  // src/grid/worker_pool.h
}  // namespace grid_internal

// How a grid places and runs models.
struct GridOptions {
  Strategy strategy = Strategy::kMemoryOptimized;
  Isolation isolation = Isolation::kModel;
  uint64_t buffer_bytes = 0;   // kept free on every accelerator
  int max_cpu_models = -1;     // CPU fallback bound when accelerators exist; -1 = none
  // Device specs (modelgrid/device.h ParseDeviceSpec); empty = DiscoverDevices().
  std::vector<std::string> devices;
  // modelgrid-worker's path; empty = "modelgrid-worker" next to the running
  // executable (/proc/self/exe), else found on PATH.
  std::string worker_executable;
  // LibTorch intra-op threads per worker (and in-process); 0 = the machine's
  // cores divided by the number of workers, at least 1.
  int worker_threads = 0;
  uint64_t arena_bytes = uint64_t{256} << 20;  // shared-memory arena per worker
  // How long a request to a worker polls for its answer, and a worker's
  // model thread for its next request, before sleeping (WorkerOptions::spin
  // in modelgrid/worker/worker_client.h). 0 = always sleep.
  std::chrono::microseconds spin{50};
  // Estimation (batch, sequence, margin). The device kind is set from the devices.
  EstimateOptions estimate;
  // The graph walk for activation estimates; null = the built-in LibTorch
  // TorchScript walk (modelgrid/torch/graph_walk.h). Not owned; must
  // outlive the grid.
  GraphWalker* walker = nullptr;
  // Where the grid writes the folders of models added from loaded modules
  // (NewModelFolder, modelgrid/grid_module.h); it must exist. Empty = a
  // private directory made under the system temp dir on first use and
  // removed, with everything in it, when the grid is destroyed.
  std::filesystem::path scratch_dir;
  std::chrono::milliseconds load_timeout{120'000};  // per model load in a worker
  // ---- dynamic memory (docs/design.md, "Memory model") ----
  // The host tier that swapped weights go to: files under swap_dir for CPU
  // models, pinned host memory for CUDA models. Empty swap_dir = a private
  // folder under the system temp dir, removed with the grid.
  std::filesystem::path swap_dir;
  // Bytes the host tier may hold (files on the CPU, pinned memory on CUDA);
  // 0 = no swapping (evictions unload instead).
  uint64_t swap_space_bytes = 0;
  // When a model whose config.yaml says no `load:` is loaded: kEager (at
  // LoadAll) or kOnDemand (registered in state standby, loaded on its first
  // request).
  LoadPolicy default_load = LoadPolicy::kEager;
  // An instance loaded or swapped in less than this long ago is never
  // evicted or swapped out to make room (two hot models cannot thrash).
  std::chrono::milliseconds min_residency{5'000};
  // Bytes granted past a request are handed out in chunks of this size.
  uint64_t grant_chunk_bytes = uint64_t{32} << 20;
  std::chrono::milliseconds initial_backoff{100};   // watchdog restart delay, doubled per crash
  std::chrono::milliseconds max_backoff{5'000};
  // Readiness as Triton's --strict-readiness: true = Ready() is false while
  // any model that should serve cannot (failed, or unplaced: it fits on no
  // device); false = only models still loading or restarting hold it back.
  // An unloaded model never does (it was asked not to serve).
  bool strict_readiness = true;
  // Where worker processes and the watchdog's time come from
  // (src/grid/worker_pool.h); null = real modelgrid-worker processes and
  // the steady clock. Tests inject one that fails starts on purpose.
  std::shared_ptr<grid_internal::WorkerEnv> worker_env;
};

// A model to add: a model folder (repository entry) with optional overrides.
struct ModelSpec {
  std::string name;             // empty = the folder's name
  std::filesystem::path path;   // the model's folder (config.yaml, 1/model.pt, ...)
  std::optional<uint64_t> memory_request;  // bytes; overrides config.yaml and the estimate
  std::optional<uint64_t> memory_limit;    // bytes; default: the request
};

// A change of a model's memory settings while it serves (Grid::Reconfigure).
// Unset fields stay as they are.
struct ModelUpdate {
  std::optional<uint64_t> request_bytes;  // >= 1; raised only when the device has the bytes free
  std::optional<uint64_t> limit_bytes;    // >= request; lowered below what an instance
                                          // holds, it applies after the current burst
  std::optional<int> priority;
  std::optional<Resolver> resolver;
  std::optional<LoadPolicy> load;
  std::optional<bool> pinned;
};

// Lifecycle of a model in the grid. Every change of state goes through the
// per-model state machine of src/grid/lifecycle.h, whose one table lists the
// events that move a model from each state to the next (an event a state
// does not accept is an error, never a silent overwrite).
enum class ModelState {
  kAdded,        // known, not loaded yet
  kLoading,      // a worker is loading it (from its files)
  kReady,        // serving
  kRestarting,   // its worker died; the watchdog is bringing it back
  kUnplaced,     // fits nowhere (reason says why)
  kFailed,       // estimate or load failed (reason says why)
  kUnloaded,     // explicitly unloaded (or the grid shut down); Load brings it back
  kStandby,      // registered, not resident: loads on its first request
                 // (more models than fit at once; reason says why it waits)
  kSwappingOut,  // its weights are being copied to the host tier
  kSwapped,      // weights in host memory; worker and graph kept; its next
                 // request swaps it back in (reason says why it was swapped)
  kSwappingIn,   // its weights are being copied back to the device
};
// "added", "loading", "ready", "restarting", "unplaced", "failed",
// "unloaded", "standby", "swapping_out", "swapped", "swapping_in"; "unknown"
// for a value outside the enum.
const char* ModelStateName(ModelState state);

// The grid's name for version `version` of `model` when the model serves
// several versions (Grid::AddModel): "model@version". The highest version
// keeps the plain name. The service layer maps /v2/models/m/versions/v to
// it (modelgrid/service/inference_service.h).
std::string VersionedModelName(const std::string& model, const std::string& version);

// What the grid knows of one model. Bytes are integers.
struct ModelStatus {
  std::string name;
  std::string type;      // "torchscript" or "huggingface": the files' format
  std::string backend;   // the backend kind that runs it ("torchscript",
                         // "huggingface"; BackendKindFor); "" before a load
  std::string version;   // the version folder served, "" when none
  ModelState state = ModelState::kAdded;
  std::string reason;    // why unplaced / failed / restarting / standby / swapped; "" otherwise
  std::string device;    // device id while placed, "" otherwise
  std::optional<MemoryEstimate> estimate;
  uint64_t request_bytes = 0;   // what placement packed
  uint64_t limit_bytes = 0;     // enforced in the worker
  uint64_t current_bytes = 0;   // measured by the worker's allocator (last report)
  uint64_t peak_bytes = 0;      // measured peak
  int64_t worker_pid = 0;       // 0 when in-process or not running
  // The per-process overhead charged for this model's worker: on a GPU the
  // CUDA context as measured through NVML once the worker has loaded
  // (context_measured), else the device's configured charge (docs/design.md,
  // "Memory model"); 0 in-process or while not placed.
  uint64_t context_bytes = 0;
  bool context_measured = false;
  int restarts = 0;             // watchdog restarts so far
  // Dynamic memory (docs/design.md, "Memory model").
  int priority = 0;
  Resolver resolver = Resolver::kWait;
  LoadPolicy load = LoadPolicy::kEager;  // the policy in force (server default applied)
  bool pinned = false;
  uint64_t borrowed_bytes = 0;  // granted past the request now (bursts in flight)
  uint64_t swapped_bytes = 0;   // held in the host tier while swapped
  uint64_t swaps_out = 0, swaps_in = 0, evictions = 0, reloads = 0;
  uint64_t swap_out_us = 0, swap_in_us = 0;  // sums of the swap durations
  // Collisions settled for this model's requests, by "resolver/outcome"
  // (outcome: granted, reclaimed, timed_out, preempted).
  std::map<std::string, uint64_t> collisions;
  int64_t max_batch_size = 0;
  std::vector<std::string> tasks;  // tasks the loaded model answers
  std::vector<TensorSpec> inputs;  // of task infer (see TorchScriptBackend::Inputs)
  std::vector<TensorSpec> outputs;
};

// What the grid knows of one device. Bytes are integers.
struct DeviceStatus {
  Device device;
  uint64_t reserved_bytes = 0;  // requests of placed instances + contexts of their workers
  uint64_t used_bytes = 0;      // used by others + measured current bytes of our instances
  uint64_t free_bytes = 0;      // total - used_by_others - buffer - reserved (never below 0)
  uint64_t buffer_bytes = 0;
  int workers = 0;
  std::vector<std::string> models;
  // device.context_bytes (charged per worker here, by the planner too) is a
  // measured figure: NVML per-process bytes of a worker minus its caching
  // allocator's reserve (MeasureWorkerContext), not the configured default.
  bool context_measured = false;
  uint64_t capacity_bytes = 0;  // what the ledger hands out: total - used by others - buffer
  uint64_t borrowed_bytes = 0;  // granted past requests now
  uint64_t swapped_bytes = 0;   // host-tier bytes of the models swapped off this device
};

// One swap or eviction, for the metrics' histograms.
struct SwapEvent {
  std::string model;
  std::string direction;  // "out", "in" or "reload" (swap file lost: loaded from files)
  uint64_t bytes = 0;
  uint64_t duration_us = 0;
};

// One inference call.
struct InferCall {
  std::string task = "infer";
  // The inputs. An input whose bytes a client placed in a registered
  // system shared-memory region has no `data` and its `shared` set
  // (Grid::SharedMemorySlice; the service layer reads Triton's request
  // parameters into it, modelgrid/service/inference_service.h): the model
  // reads the client's bytes in place. An input with both is refused.
  std::vector<InferTensor> inputs;
  nlohmann::json params = nlohmann::json::object();  // task parameters (generate's)
  // The outputs wanted, by name (empty = every output of the task): a
  // worker copies back only these. A name the task does not produce is an
  // error of the call (kInvalidArgument naming it).
  std::vector<std::string> output_names;
  int priority = 0;
  std::optional<std::chrono::milliseconds> timeout;  // default: the model's default_timeout_us
  std::string id;                                    // client's request id, for logs
  // When set, filled in with the request's queue and compute times before
  // `done` is called (request tracing; modelgrid/scheduler/request_times.h).
  std::shared_ptr<RequestTimes> times;
};

using InferCallback = std::function<void(Result<std::vector<InferTensor>>)>;

// Counters of one model (its instances summed), for statistics endpoints.
struct ModelCounters {
  uint64_t success = 0, failure = 0, executions = 0, inferences = 0;
  uint64_t queue_us = 0, compute_us = 0, request_us = 0;
  uint64_t queued = 0, rejected = 0, timed_out = 0;
  // When the model last got an inference request (Grid::InferAsync), in
  // milliseconds since the Unix epoch; 0 = never (Triton's last_inference).
  uint64_t last_inference_ms = 0;
};

class Grid {
 public:
  // Resolves the devices. Errors: a bad device spec, no devices, or a
  // missing worker executable when isolation is not `none`.
  static Result<std::unique_ptr<Grid>> Create(GridOptions options);
  // Calls Shutdown.
  ~Grid();
  Grid(const Grid&) = delete;
  Grid& operator=(const Grid&) = delete;

  // Adds one model (not loaded yet). A model whose version_policy
  // (config.pbtxt) selects several version folders is added once per
  // version: the highest under its name, each other one as the model
  // VersionedModelName(name, version), so that every version serves (each
  // its own instances, memory and statistics). Errors: kInvalidArgument for
  // a malformed folder or config.yaml (OpenModel's errors) or an override
  // below 1 byte / limit below request; kAlreadyExists for a taken name.
  Status AddModel(const ModelSpec& spec);
  // Adds every model folder of a repository (ScanRepository). A folder that
  // fails to open is an error of the whole call, naming it.
  Status AddRepository(const std::filesystem::path& root);
  // A new, empty model folder for a model called `name`, which the grid
  // keeps for its whole life (workers read it again at a watchdog restart
  // or a later Load): GridOptions::scratch_dir/<name>-<n>, or the same in
  // the grid's private temp directory. What AddModule
  // (modelgrid/grid_module.h) saves a loaded module into before AddModel.
  // Errors: kInvalidArgument for an empty name, ".", "..", or one holding
  // '/' or a NUL; kAlreadyExists when a model of that name was added;
  // kInternal naming the path when a directory cannot be made.
  Result<std::filesystem::path> NewModelFolder(const std::string& name);

  // Estimates and plans every added model that is not loaded, starts the
  // workers and loads each placed instance. A model that does not fit or
  // fails to load is not an error of the call: its status says why, and the
  // others serve. `on_model` (optional) is called once per model as it
  // becomes ready, unplaced or failed. `on_plan` (optional) is called once
  // with the plan after placement and before any worker starts (Devices()
  // already shows the reservations then), so a caller can show the plan
  // ahead of the slow loads. Neither callback may call LoadAll, Load or
  // Unload. Returns the plan made.
  // Errors: MakePlan's (no devices).
  Result<Plan> LoadAll(std::function<void(const ModelStatus&)> on_model = {},
                       std::function<void(const Plan&)> on_plan = {});

  // Loads one added or unloaded model, placing it with the grid's strategy
  // on what the loaded models leave free. Errors: kNotFound for an unknown
  // model; kResourceExhausted "model 'm' does not fit: ..." with the
  // planner's reason; the load error; OK at once when already ready.
  Status Load(const std::string& model);
  // Stops serving `model` (queued requests fail with kUnavailable), unloads
  // it from its worker (stopping the worker when it held nothing else) and
  // frees its reservation. Errors: kNotFound for an unknown model;
  // kInvalidArgument when it is not loaded (the message gives its state).
  Status Unload(const std::string& model);

  // Queues `call` on `model`; `done` receives the outputs or the error,
  // exactly once, on a grid thread (it must not block for long).
  // Errors via `done` (never a throw): kNotFound unknown model or task;
  // kUnavailable not ready (with its state), queue full (RetryAfterSeconds
  // applies), worker died, timeout; kInvalidArgument bad inputs;
  // kResourceExhausted the model's memory limit.
  void InferAsync(const std::string& model, InferCall call, InferCallback done);
  // InferAsync, waiting for the result.
  Result<std::vector<InferTensor>> Infer(const std::string& model, InferCall call);

  // Runs `task` on each model of `inputs` (model name → inputs) at once and
  // waits for all: the seed's run-on-all. Results are per model.
  std::map<std::string, Result<std::vector<InferTensor>>> Run(
      const std::string& task, const std::map<std::string, std::vector<InferTensor>>& inputs,
      std::chrono::milliseconds timeout, const nlohmann::json& params = nlohmann::json::object());

  // Status of every model (added order), of one model (kNotFound), of every device.
  std::vector<ModelStatus> Models() const;
  Result<ModelStatus> Model(const std::string& model) const;
  std::vector<DeviceStatus> Devices() const;
  Result<ModelCounters> Counters(const std::string& model) const;
  // The repository entry `model` was added from: its configuration
  // (config.pbtxt and config.yaml merged), versions, labels and parameters.
  // Errors: kNotFound for an unknown model.
  Result<ModelEntry> Entry(const std::string& model) const;
  // Asks every worker for fresh memory figures (bounded by `timeout` each).
  void RefreshMemory(std::chrono::milliseconds timeout = std::chrono::milliseconds{1000});

  // True when every model that should serve is ready (the readiness probe;
  // GridOptions::strict_readiness says whether failed and unplaced models
  // hold it back). Models in standby or swapped count as ready: their next
  // request brings them back.
  bool Ready() const;

  // ---- reconfiguration while serving ----

  // Changes `model`'s memory settings while it serves: the ledger and the
  // lifecycle apply them at once (a raised request needs free bytes on the
  // device; a lowered limit applies after the instance's current burst) and
  // the change is logged (ChangeLog). Errors: kNotFound unknown model;
  // kInvalidArgument a request of 0, a limit below the request;
  // kResourceExhausted (with a CollisionDetail) a raised request the device
  // cannot hold now.
  Status Reconfigure(const std::string& model, const ModelUpdate& update);
  // The strategy later placements use (on-demand loads, Load, LoadAll).
  void SetStrategy(Strategy strategy);
  Strategy strategy() const;
  // Reconfigurations so far, oldest first ("<UTC time> model m: priority 0 -> 5").
  std::vector<std::string> ChangeLog() const;
  // Every swap and eviction so far, oldest first (bounded: the last 4,096).
  std::vector<SwapEvent> SwapEvents() const;

  // ---- system shared memory (Triton's extension; modelgrid/ipc/shm_registry.h) ----

  // The bytes [offset, offset + byte_size) of region `name` (offsets from
  // the region's start), for an input read in place (InferTensor::shared).
  // Errors: SharedMemoryRegistry::Slice's (kNotFound unknown region,
  // kInvalidArgument a range past the region or an object that shrank).
  Result<std::shared_ptr<const SharedTensorBytes>> SharedMemorySlice(const std::string& name,
                                                                     uint64_t offset,
                                                                     uint64_t byte_size) const;
  // Copies an output's bytes into region `name` at `offset` (Triton's
  // shared-memory outputs). Errors: as SharedMemorySlice for that range.
  Status WriteSharedMemory(const std::string& name, uint64_t offset, std::string_view data) const;

  // Registers the POSIX shared memory object `key` (shm_open name) as
  // region `name`: byte_size bytes from `offset`. Errors: those of
  // SharedMemoryRegistry::Register (kAlreadyExists, kNotFound for an
  // unknown key, kInvalidArgument for sizes).
  Status RegisterSharedMemory(const std::string& name, const std::string& key, uint64_t offset,
                              uint64_t byte_size);
  // Unregisters `name` ("" = every region) and has the workers unmap it.
  // Requests in flight that read it keep their mapping until they end.
  // Errors: kNotFound for an unknown name.
  Status UnregisterSharedMemory(const std::string& name);
  // The registered regions by name; or the one named (kNotFound).
  std::vector<ipc::SharedMemoryRegion> SharedMemoryRegions() const;
  Result<ipc::SharedMemoryRegion> SharedMemoryRegion(const std::string& name) const;

  // Fails queued requests (kUnavailable "server shutting down"), waits for
  // batches in flight, stops every worker and reaps it. Idempotent.
  void Shutdown();

 private:
  // AddModel after its overrides: the entry and its other versions.
  Status AddEntryVersions(ModelEntry entry);
  struct Impl;
  explicit Grid(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelgrid

// Calibration: a measured peak instead of the analytic estimate
// (docs/design.md, "Memory model" → Estimation). `modelgrid estimate --calibrate`
// runs the model once at its max batch in a separate modelgrid-probe process
// and caches the figure per (file hash, device type, LibTorch version,
// batch, sequence length). Declared without LibTorch headers.
#pragma once

#include <chrono>
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

// ------------------------------------------------------------ the probe process

// What modelgrid-probe measured (its --json output; src/torch/probe.h).
struct ProbeMeasurement {
  uint64_t weights_bytes = 0;       // bytes live after loading
  uint64_t peak_bytes = 0;          // peak over load and forward
  uint64_t peak_forward_bytes = 0;  // peak during forward, weights and inputs included
  double forward_ms = 0;
  std::string torch_version;
  // On cuda:N (the byte figures above are then the CUDA allocator's allocated bytes):
  std::string device = "cpu";
  uint64_t peak_reserved_bytes = 0;  // the caching allocator's reserved peak
  uint64_t nvml_process_bytes = 0;   // NVML's bytes for the probe process (context included); 0 = unknown
};

struct ProbeRequest {
  std::filesystem::path probe;     // the modelgrid-probe executable
  std::filesystem::path model_pt;  // the TorchScript file
  std::string model_name;          // names the model in errors; default: model_pt
  std::vector<std::vector<int64_t>> shapes;  // one per input, batch included
  std::vector<DataType> types;
  std::string method = "forward";
  int threads = 0;                 // 0: the probe's default
  std::string device = "cpu";      // or "cuda:N" (a build with CUDA; else the probe refuses)
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
};

// Runs modelgrid-probe as a child process (posix_spawn) and parses its JSON.
// Never hangs: past the timeout the child is killed (SIGKILL).
// Errors (each naming the model): kNotFound if the probe executable is
// missing; kUnavailable if the child times out, crashes (signal) or exits
// non-zero (its stderr's last lines in the message); kInternal for output
// that is not the expected JSON.
Result<ProbeMeasurement> RunProbeProcess(const ProbeRequest& request);

// ------------------------------------------------------------ inputs

struct ModelInputs {
  std::vector<std::vector<int64_t>> shapes;  // batch first when the model batches
  std::vector<DataType> types;
};

// The input shapes of `model` at `batch`: config.yaml's inputs with the
// batch prepended (max_batch_size > 0) and every -1 replaced by
// `sequence_length`. Hugging Face models without declared inputs take INT64
// input_ids [batch, sequence_length].
// Errors: kInvalidArgument for batch < 1, a model that declares no inputs
// (TorchScript), or a -1 dimension with sequence_length < 1.
Result<ModelInputs> InputsFor(const ModelEntry& model, int64_t batch, int64_t sequence_length);

// ------------------------------------------------------------ the cache

// XXH3-128 of a file's bytes as 32 lower-case hex digits.
// Errors: kNotFound if it cannot be opened, kInternal on a read error.
Result<std::string> HashFile(const std::filesystem::path& file);

struct CalibrationKey {
  std::string file_hash;      // HashFile of the model file
  std::string device_type;    // "cpu" or "cuda"
  std::string torch_version;  // TorchVersion()
  int64_t batch = 1;
  int64_t sequence_length = 0;  // 0 for models without one

  // "hash|device|torch|batch|seq": the entry's name in the cache file.
  std::string Id() const;
};

// Measured peaks stored as JSON:
//   {"version": 1, "entries": {"<Id()>": {"peak_bytes": N, "model": "...",
//                                         "measured_at": "2025-01-01T00:00:00Z"}}}
// A missing file is an empty cache. An unreadable or corrupt file is treated
// as empty with a warning (logged, and kept in warnings()); the next Store
// replaces it. Stores write a temporary file and rename it over the cache.
// Not safe for concurrent use of one object; separate processes may race
// (last writer wins, the file stays well-formed).
class CalibrationCache {
 public:
  explicit CalibrationCache(std::filesystem::path file) : file_(std::move(file)) {}

  // $XDG_CACHE_HOME/modelgrid/calibration.json, or
  // $HOME/.cache/modelgrid/calibration.json when XDG_CACHE_HOME is unset.
  static std::filesystem::path DefaultPath();

  const std::filesystem::path& path() const { return file_; }

  std::optional<uint64_t> Lookup(const CalibrationKey& key);
  // Errors: kInternal if the file or its folder cannot be written.
  Status Store(const CalibrationKey& key, uint64_t peak_bytes, const std::string& model_name = {});

  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  std::string ReadEntries(std::string* text);  // returns "" or a warning
  std::filesystem::path file_;
  std::vector<std::string> warnings_;
};

// ------------------------------------------------------------ calibrate

struct CalibrateOptions {
  int64_t batch = 1;
  int64_t sequence_length = 0;  // 0: the model's config sequence_length (HF models)
  DeviceKind device = DeviceKind::kCpu;
  std::filesystem::path probe;  // modelgrid-probe
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  int threads = 0;
  bool refresh = false;         // measure even when the cache has the figure
};

struct Calibration {
  uint64_t peak_bytes = 0;  // measured peak of one instance (weights, inputs, activations)
  bool from_cache = false;
  CalibrationKey key;
};

// The measured peak of `model` at options.batch: from `cache` when present
// (and !refresh), else measured with RunProbeProcess and stored. `cache`
// may be null (no caching).
// Errors: kUnsupported for devices this build cannot measure (the probe runs
// on the CPU only here), kInvalidArgument for models without a TorchScript
// file or inputs, and RunProbeProcess's errors.
Result<Calibration> Calibrate(const ModelEntry& model, const CalibrateOptions& options, CalibrationCache* cache);

}  // namespace modelgrid

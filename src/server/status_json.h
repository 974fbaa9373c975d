// JSON views of the grid's statuses for the HTTP routes (KServe v2 metadata,
// Triton's repository index and statistics, ModelGrid's /v2/modelgrid/...).
// Pure functions over plain structs: no HTTP library, no LibTorch, so they
// are unit-tested without a server (status_json_test.cc). Every byte figure
// is an integer count of bytes in a field whose name ends in _bytes (or
// Triton's byte_size).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "modelgrid/device.h"
#include "modelgrid/estimate.h"
#include "modelgrid/grid.h"

namespace modelgrid::server {

// The platform string of model metadata for TorchScript models executed by
// LibTorch (every ModelGrid model runs that way), as
// ../shared/reference/kserve_v2.md ("model metadata") names it.
inline constexpr const char* kPlatform = "pytorch_torchscript";

// The number after the last ':' or '#' of a device id ("cuda:1" -> 1,
// "sim:a100#2" -> 2); 0 when there is none ("cpu").
int64_t DeviceOrdinal(const std::string& device_id);

// Triton's model state names for the repository index: kReady "READY";
// kLoading, kRestarting and kSwappingIn "LOADING"; kSwappingOut
// "UNLOADING"; everything else "UNAVAILABLE" (standby and swapped included:
// not resident, though their next request brings them back;
// "modelgrid_state" tells which).
const char* RepositoryStateName(ModelState state);

// KServe v2 model metadata (modelgrid/kserve/metadata.h ModelMetadataJson)
// of `status`: versions [status.version] (left out when empty), kPlatform,
// the infer task's inputs and outputs with MetadataShape.
nlohmann::json ModelMetadataView(const ModelStatus& status);

// Why `status` has no metadata to show, or "" when it has: a model that
// failed or stayed unplaced before ever loading (no inputs or outputs known,
// e.g. a folder without config.pbtxt or config.yaml whose estimate failed)
// answers an error naming its state and reason instead of empty lists.
std::string MetadataUnavailableReason(const ModelStatus& status);

// One entry of POST /v2/repository/index:
// {"name", "version", "state" (RepositoryStateName), "reason"}, plus
// "modelgrid_state" (ModelStateName: the finer state).
nlohmann::json RepositoryIndexEntry(const ModelStatus& status);

// The estimate's breakdown (EstimateToJson, modelgrid/estimate_json.h):
// {"model", "batch", "sequence_length", "device_type",
// "parameters", "weights_bytes", "activations_bytes", "kv_cache_bytes",
// "workspace_bytes", "allocator_slack_bytes", "margin_bytes",
// "context_bytes", "instance_peak_bytes", "request_bytes", "total_bytes",
// "method", "notes"[, "calibrated_peak_bytes"]}.
nlohmann::json EstimateView(const MemoryEstimate& estimate);

// One model of GET /v2/modelgrid/models: {"name", "type", "version",
// "state", "reason", "device", "estimate" (EstimateView or null),
// "request_bytes", "limit_bytes", "current_bytes", "peak_bytes",
// "worker_pid", "restarts", "max_batch_size", "tasks"}.
nlohmann::json ModelView(const ModelStatus& status);

// One device of GET /v2/modelgrid/devices: {"id", "name", "kind", "uuid",
// "total_bytes", "used_bytes", "free_bytes", "reserved_bytes",
// "buffer_bytes", "context_bytes", "workers", "models"}.
nlohmann::json DeviceView(const DeviceStatus& status);

// Triton's memory_usage list of one model: one entry {"type": "CPU" | "GPU",
// "id": DeviceOrdinal, "byte_size": current_bytes} for the device it is
// placed on (simulated devices count as GPU); empty when it is not placed.
nlohmann::json MemoryUsageView(const ModelStatus& status, const std::vector<DeviceStatus>& devices);

// One entry of Triton's statistics "model_stats" list: {"name", "version",
// "last_inference": 0, "inference_count", "execution_count",
// "inference_stats": {"success", "fail", "queue", "compute_input",
// "compute_infer", "compute_output"} each {"count", "ns"}, "batch_stats": [],
// "memory_usage"}. Durations come from the counters' microsecond sums
// (× 1000): success.ns is the request duration of every executed request,
// queue and compute_infer are counted per successful request; fail.ns,
// compute_input.ns and compute_output.ns are 0 (not measured separately).
nlohmann::json ModelStatsView(const ModelStatus& status, const ModelCounters& counters,
                              const std::vector<DeviceStatus>& devices);

}  // namespace modelgrid::server

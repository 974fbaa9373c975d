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
#include "modelgrid/service/inference_service.h"

namespace modelgrid::server {

// KServe v2 model metadata: {"name", "versions"?: [...] (left out when
// empty), "platform", "inputs": [{"name", "datatype", "shape"}], "outputs"}.
nlohmann::json MetadataJson(const ModelMetadata& metadata);

// One entry of POST /v2/repository/index:
// {"name", "version", "state", "reason", "modelgrid_state" (ModelStateName:
// the finer state)}.
nlohmann::json RepositoryEntryJson(const RepositoryEntry& entry);

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

// One entry of Triton's statistics "model_stats" list: {"name", "version",
// "last_inference" (ms since the epoch), "inference_count",
// "execution_count", "inference_stats": {"success", "fail", "queue",
// "compute_input", "compute_infer", "compute_output"} each {"count", "ns"},
// "batch_stats": [], "memory_usage": [{"type", "id", "byte_size"}]}.
nlohmann::json StatisticsJson(const ModelStatistics& stats);

}  // namespace modelgrid::server

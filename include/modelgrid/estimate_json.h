// The JSON view of a MemoryEstimate, shared by `modelgrid estimate --json`
// and the server's GET /v2/modelgrid/models. Field names end in _bytes where
// the value is an integer byte count.
#pragma once

#include <nlohmann/json.hpp>

#include "modelgrid/estimate.h"

namespace modelgrid {

// {"model", "batch", "sequence_length", "device_type", "parameters",
//  "weights_bytes", "activations_bytes", "kv_cache_bytes", "workspace_bytes",
//  "allocator_slack_bytes", "margin_bytes", "context_bytes",
//  "instance_peak_bytes", "request_bytes", "total_bytes", "method", "notes"
//  [, "calibrated_peak_bytes" when calibrated]
//  [, "activations_unknown": why, when activations are unknown]}. Never fails.
nlohmann::json EstimateToJson(const MemoryEstimate& e);

}  // namespace modelgrid

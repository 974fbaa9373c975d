// GET /metrics: the grid's state in the Prometheus text exposition format,
// version 0.0.4 (prometheus.io/docs/instrumenting/exposition_formats: one
// "# HELP" and one "# TYPE" line per family, then `name{label="value"} number`
// samples; label values escape backslash, double quote and newline). Debian
// ships no C++ Prometheus client, and the format is a few lines of text, so
// it is written here.
//
// Families (every byte figure an integer, in bytes). Triton's names where
// the meaning is the same (docs/design.md, "Interfaces"; labels model, version):
//   nv_inference_request_success / _failure              counter: requests by outcome
//   nv_inference_count                                   counter: rows executed
//   nv_inference_exec_count                              counter: batches executed
//   nv_inference_request_duration_us                     counter: end-to-end time, summed
//   nv_inference_queue_duration_us                       counter: time queued, summed
//   nv_inference_compute_infer_duration_us               counter: execution time, summed
//   nv_inference_pending_request_count                   gauge: requests waiting
// What only ModelGrid knows (label model or device):
//   modelgrid_model_ready{model}                         gauge 1/0
//   modelgrid_model_restarts_total{model}                counter: watchdog restarts
//   modelgrid_model_rejected_total{model}                counter: queue full (503)
//   modelgrid_model_timed_out_total{model}               counter
//   modelgrid_model_memory_bytes{model,kind}             gauge: request, limit, current, peak
//   modelgrid_model_memory_bytes kinds also borrowed (granted past the request) and swapped
//   modelgrid_model_context_bytes{model,measured}        gauge: its worker's context charge
//   modelgrid_model_state{model,state}                   gauge 1 for its lifecycle state
//   modelgrid_model_collisions_total{model,resolver,outcome} counter
//   modelgrid_model_swaps_total{model,direction}         counter: out, in
//   modelgrid_model_evictions_total{model}               counter
//   modelgrid_swap_duration_us{direction}                histogram (recent swaps)
//   modelgrid_device_memory_bytes{device,kind}           gauge: total, used, free, reserved,
//                                                        buffer, capacity, borrowed, swapped
//   modelgrid_device_context_bytes{device,measured}      gauge: per-worker charge
//   modelgrid_device_workers{device}                     gauge
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/grid.h"

namespace modelgrid::server {

// One model's figures as the grid reports them.
struct ModelMetrics {
  ModelStatus status;
  ModelCounters counters;
};

// The exposition text for `models` and `devices` (ends with a newline).
// `swaps` feeds the swap-duration histogram (Grid::SwapEvents).
std::string FormatMetrics(const std::vector<ModelMetrics>& models,
                          const std::vector<DeviceStatus>& devices,
                          const std::vector<SwapEvent>& swaps = {});

// `value` escaped for a label value: \\ for \, \" for ", \n for a newline.
std::string EscapeLabelValue(std::string_view value);

}  // namespace modelgrid::server

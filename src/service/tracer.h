// service::Tracer — Triton's trace extension behind InferenceService: the
// global trace settings and each model's own, the sampling of inference
// requests (every trace_rate-th, while trace_count lasts), and the records
// of the sampled ones written to trace_file (trace_file.h).
//
// A record is one JSON object (a line of its own in the file; with
// TraceFormat::kTriton an element of a JSON array, trace_file.h):
//   {"id": 3, "model_name": "digits", "model_version": 1, "request_id": "a",
//    "timestamps": [{"name": "REQUEST_START", "ns": ...}, {"name": "QUEUE_START", ...},
//                   {"name": "COMPUTE_START", ...}, {"name": "COMPUTE_END", ...},
//                   {"name": "REQUEST_END", ...}]}
// ns on the steady clock (nanoseconds since an arbitrary point, as Triton's);
// model_version a number when the version is one, else a string;
// request_id only when the client gave one. A request that never reached a
// queue or never ran lacks the stamps it did not get.
//
// Counting: a model that sets its own trace_rate counts its own requests
// toward it; the others count together toward the global one. Likewise a
// model that sets its own trace_count takes its traces from it, the others
// from the global trace_count (which GET shows as what is left, Triton's
// "remaining traces"). Setting trace_rate restarts its count of requests.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "modelgrid/scheduler/request_times.h"
#include "modelgrid/status.h"
#include "service/trace_file.h"
#include "service/trace_settings.h"

namespace modelgrid::service {

// A request Sample chose to trace: what Finish needs to write its record.
struct TraceTicket {
  uint64_t id = 0;  // 1, 2, ... per server
  std::string model, version, request_id;
  std::string file;
  uint64_t log_frequency = 0;
  bool last = false;  // it took the last of its trace_count: written at once
  std::chrono::steady_clock::time_point request_start;
  // Filled in by the scheduler (InferCall::times); never null.
  std::shared_ptr<RequestTimes> times = std::make_shared<RequestTimes>();
};

class Tracer {
 public:
  // Records go to trace files in `format`.
  explicit Tracer(TraceSettings global = {}, TraceFormat format = TraceFormat::kJsonLines);
  // Writes every pending record.
  ~Tracer();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  // The settings of `model` ("" = the global ones): its own over the
  // global ones.
  TraceSettings Settings(const std::string& model) const;

  // Applies `update` to the global settings (`model` "") or to `model`'s
  // own, all or nothing, and returns the settings now in force there.
  // Pending records are written first. Errors (kInvalidArgument):
  // "<setting>: a global setting cannot be cleared" (null is for a model's);
  // "trace_file: must name a file while trace_level is TIMESTAMPS";
  // TraceFile::Open's for a trace_file that cannot be opened.
  Result<TraceSettings> Update(const std::string& model, const TraceUpdate& update);

  // Counts a request of `model` (at `version`) that arrived at
  // `request_start` and says whether it is traced: a ticket when it is the
  // trace_rate-th since the last one and trace_count is not spent (one is
  // taken), else nullopt. Nothing is counted while the model's trace_level
  // is OFF or its trace_file is "".
  std::optional<TraceTicket> Sample(const std::string& model, const std::string& version,
                                    const std::string& request_id,
                                    std::chrono::steady_clock::time_point request_start);

  // Writes the record of `ticket`'s request, which ended at `request_end`.
  void Finish(const TraceTicket& ticket, std::chrono::steady_clock::time_point request_end);

  // Writes every pending record now.
  void Flush();

 private:
  struct ModelTrace {
    TraceOverrides own;
    uint64_t seen = 0;  // requests counted toward own.rate
  };

  Result<TraceFile*> FileLocked(const std::string& path);

  mutable std::mutex mu_;
  const TraceFormat format_;
  TraceSettings global_;
  uint64_t global_seen_ = 0;  // requests counted toward global_.rate
  std::map<std::string, ModelTrace> models_;
  std::map<std::string, std::unique_ptr<TraceFile>> files_;  // by path
  uint64_t next_id_ = 1;
};

// The record of a traced request as one JSON line (see the top of this file).
std::string TraceRecordLine(const TraceTicket& ticket,
                            std::chrono::steady_clock::time_point request_end);

}  // namespace modelgrid::service

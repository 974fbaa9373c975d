// Triton's trace settings (the trace extension: GET/POST
// /v2[/models/{m}]/trace/setting, gRPC TraceSetting) as values, and the
// reading of an update. Every value travels as a string, or an array of
// strings for trace_level (the protocol's form); null or an empty array
// clears a model's setting (it falls back to the global one).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::service {

// What a traced request records. TENSORS (Triton's input and output
// tensors) is not offered.
enum class TraceLevel { kOff, kTimestamps };

// The settings of one scope (the server's, or a model's with its overrides
// applied).
struct TraceSettings {
  std::string file;                     // trace_file: where records go; "" = none (nothing traced)
  TraceLevel level = TraceLevel::kOff;  // trace_level
  uint64_t rate = 1000;                 // trace_rate: every rate-th request is traced; >= 1
  int64_t count = -1;                   // trace_count: traces still to take; -1 = unlimited
  uint64_t log_frequency = 0;           // records kept before a write; 0 = write each at once
};

// A model's own settings: a field not set is the global one.
struct TraceOverrides {
  std::optional<std::string> file;
  std::optional<TraceLevel> level;
  std::optional<uint64_t> rate;
  std::optional<int64_t> count;
  std::optional<uint64_t> log_frequency;

  bool empty() const { return !file && !level && !rate && !count && !log_frequency; }
  // `global` with these overrides applied.
  TraceSettings Over(const TraceSettings& global) const;
};

// A parsed update: the settings given a value, and those cleared.
struct TraceUpdate {
  TraceOverrides set;
  std::vector<std::string> cleared;  // setting names given null / no value
};

// The setting names, in the protocol's order.
inline constexpr const char* kTraceSettingNames[] = {"trace_file", "trace_level", "trace_rate",
                                                     "trace_count", "log_frequency"};

// Reads a trace setting update: a JSON object whose members are settings,
// each a string, an integer, or an array of strings (one element, except
// trace_level), or null / [] to clear it. Errors (kInvalidArgument):
// "trace settings must be a JSON object"; "unknown trace setting(s) 'x'
// (known: ...)"; "<setting>: ..." for a value of the wrong type or range
// (trace_rate >= 1, trace_count >= -1, log_frequency >= 0, levels OFF or
// TIMESTAMPS; TENSORS is refused naming it).
Result<TraceUpdate> ParseTraceUpdate(const nlohmann::json& body);

// The settings as the protocol answers them: {"trace_file": "...",
// "trace_level": ["TIMESTAMPS"], "trace_rate": "1000", "trace_count": "-1",
// "log_frequency": "0"}.
nlohmann::json TraceSettingsJson(const TraceSettings& settings);

// "OFF" or "TIMESTAMPS".
const char* TraceLevelName(TraceLevel level);

}  // namespace modelgrid::service

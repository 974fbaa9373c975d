// modelgrid::LogControl — what the server's logging looks like and what of
// it may change while the server runs (Triton's logging extension, served
// by InferenceService::LogSettings / UpdateLogSettings). `modelgrid serve`
// implements it over its spdlog sinks (src/cli/serve_logging.h); the
// service reads and checks a client's settings and hands the result here.
#pragma once

#include <cstdint>
#include <string>

#include "modelgrid/status.h"

namespace modelgrid {

// The server process's log settings, as Triton's logging extension names
// them (workers log to their own stderr and are not covered).
struct ServerLogSettings {
  std::string file;     // log_file: the file logs also go to; "" = stderr only
  bool info = true;     // log_info: info lines written
  bool warning = true;  // log_warning: warn lines written
  bool error = true;    // log_error: error and critical lines written
  // log_verbose_level: 0 = no debug lines; 1 = debug lines; 2 or more =
  // debug and trace lines (spdlog's levels below info).
  uint32_t verbose_level = 0;
  std::string format = "text";  // log_format: "text" or "json" (--log-format)
};

class LogControl {
 public:
  virtual ~LogControl() = default;
  // The settings in force. Thread-safe.
  virtual ServerLogSettings Current() const = 0;
  // Puts `next` in force (the service has checked its values; `file` is
  // the current one: the sink is not changed at run time). Thread-safe;
  // lines being written meanwhile use the old or the new settings. Errors:
  // kInvalidArgument naming a setting the implementation cannot apply.
  virtual Status Apply(const ServerLogSettings& next) = 0;
};

}  // namespace modelgrid

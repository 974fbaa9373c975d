// Where `modelgrid serve` writes its log (issue 11: a log a service manager
// or a log shipper can keep): stderr as always, plus, when asked, a file
// that rotates by size; lines as text or as JSON objects (one per line);
// and an access log line per HTTP answer. spdlog's sinks do the writing and
// the rotation; this file only chooses them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "modelgrid/server/http_server.h"
#include "modelgrid/service/log_control.h"
#include "modelgrid/status.h"

namespace modelgrid::cli {

// The serve command's logging settings (flags and modelgrid.yaml fields).
struct LogSettings {
  std::string file;                          // "" = stderr only
  uint64_t max_file_bytes = uint64_t{64} << 20;  // a file past this rotates
  int max_files = 5;                         // rotated files kept: FILE.1 .. FILE.N
  std::string format = "text";               // "text" or "json"
  bool access_log = false;                   // one line per HTTP answer (logger "access")
};

// Installs the default logger (name "modelgrid") with a stderr sink and,
// when settings.file is set, a size-rotating file sink, both in
// settings.format. JSON lines are objects {"time" (UTC, ISO 8601 with
// microseconds), "level", "logger", "msg"}, the message escaped as JSON
// (invalid UTF-8 replaced). Errors: kInvalidArgument for an unknown format
// or max_files < 1 or max_file_bytes < 4096; kUnavailable naming the file
// when it cannot be opened for appending.
Status ConfigureServeLogging(const LogSettings& settings);

// The HttpServerOptions::access_log hook for `settings`: null when
// access_log is off; else it logs each record at info level on the
// "access" logger (same sinks and format as the default one) as
// `<remote> "<method> <path>" <status> <request bytes> <response bytes> <µs>us`
// (text) or, in JSON, with the record's fields as JSON members.
std::function<void(const AccessRecord&)> MakeAccessLog(const LogSettings& settings);

// A LogControl over the logging ConfigureServeLogging installed (Triton's
// logging extension; modelgrid/service/log_control.h): log_info, log_warning, log_error and
// log_verbose_level pick the levels the default logger writes (a filter in front of its sinks:
// info, warn, error and critical, debug at 1, trace at 2 and more; the
// access log is its own switch and is not filtered); log_format switches
// every sink, the access log's too, between text and JSON lines; log_file
// is settings.file and is not changed at run time. Call after
// ConfigureServeLogging; it acts on the logging installed last.
std::unique_ptr<LogControl> MakeServeLogControl(const LogSettings& settings);

}  // namespace modelgrid::cli

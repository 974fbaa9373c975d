// One trace file. As JSON lines (TraceFormat::kJsonLines): records kept in
// memory until log_frequency of them are waiting (0: written at once), then
// appended with write(2). As Triton's JSON arrays (TraceFormat::kTriton):
// every log_frequency records written as one array to a new file
// <path>.0, <path>.1, ...; with log_frequency 0 all records kept and <path>
// rewritten with all of them at each Flush. Not thread-safe: the Tracer
// (tracer.h) calls it under its lock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "modelgrid/service/trace_format.h"
#include "modelgrid/status.h"

namespace modelgrid::service {

class TraceFile {
 public:
  // Opens `path` for appending (created 0644 when missing; a symbolic link
  // as the last component is refused, so a trace_file set over the API
  // cannot redirect the server's writes through a link). Errors:
  // kInvalidArgument "trace_file: cannot open '<path>': <reason>".
  static Result<std::unique_ptr<TraceFile>> Open(const std::string& path,
                                                 TraceFormat format = TraceFormat::kJsonLines);
  // Writes what is pending, then closes the file.
  ~TraceFile();
  TraceFile(const TraceFile&) = delete;
  TraceFile& operator=(const TraceFile&) = delete;

  // Keeps `line` (one JSON object, without the newline); writes every
  // pending line when `log_frequency` are waiting, when `write_now`, or
  // (JSON lines only) when it is 0.
  void Append(std::string line, uint64_t log_frequency, bool write_now);
  // Writes every pending line (Triton's format: to the next <path>.N when
  // the last Append's log_frequency was > 0, else all records to <path>).
  // A write error is logged once per file (spdlog, warn) and the lines are
  // dropped.
  void Flush();

  const std::string& path() const { return path_; }

 private:
  TraceFile(std::string path, int fd, TraceFormat format)
      : path_(std::move(path)), fd_(fd), format_(format) {}
  // Writes all of `text` to `fd` (the file `what`), or logs the failure.
  void Write(int fd, const std::string& what, const std::string& text);
  // Logs, once per TraceFile, that writing `what` failed (errno).
  void Warn(const std::string& what);
  void FlushTriton();

  std::string path_;
  int fd_;
  TraceFormat format_;
  std::vector<std::string> pending_;
  uint64_t log_frequency_ = 0;     // the last Append's
  std::vector<std::string> kept_;  // Triton's format, log_frequency 0: every record
  uint64_t next_index_ = 0;        // Triton's format: the next <path>.N
  bool warned_ = false;
};

}  // namespace modelgrid::service

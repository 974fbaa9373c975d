// One trace file: records appended as JSON lines, kept in memory until
// log_frequency of them are waiting (0: written at once), then written
// with write(2) and synced to the kernel. Not thread-safe: the Tracer
// (tracer.h) calls it under its lock.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::service {

class TraceFile {
 public:
  // Opens `path` for appending (created 0644 when missing; a symbolic link
  // as the last component is refused, so a trace_file set over the API
  // cannot redirect the server's writes through a link). Errors:
  // kInvalidArgument "trace_file: cannot open '<path>': <reason>".
  static Result<std::unique_ptr<TraceFile>> Open(const std::string& path);
  // Writes what is pending, then closes the file.
  ~TraceFile();
  TraceFile(const TraceFile&) = delete;
  TraceFile& operator=(const TraceFile&) = delete;

  // Keeps `line` (one JSON object, without the newline); writes every
  // pending line when `log_frequency` are waiting, when it is 0, or when
  // `write_now`.
  void Append(std::string line, uint64_t log_frequency, bool write_now);
  // Writes every pending line. A write error is logged once per file
  // (spdlog, warn) and the lines are dropped.
  void Flush();

  const std::string& path() const { return path_; }

 private:
  TraceFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_;
  std::vector<std::string> pending_;
  bool warned_ = false;
};

}  // namespace modelgrid::service

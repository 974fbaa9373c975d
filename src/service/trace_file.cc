// A trace file's buffered appends (trace_file.h).
#include "service/trace_file.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace modelgrid::service {

namespace {

// Opens `path` for writing without following a symbolic link as its last
// component; -1 with errno on failure.
int OpenForWriting(const std::string& path, int mode) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | mode, 0644);
}

// `records` as one JSON array, a record per line.
std::string JsonArray(const std::vector<std::string>& records) {
  std::string text = "[";
  for (size_t i = 0; i < records.size(); ++i) {
    text += i == 0 ? "\n" : ",\n";
    text += records[i];
  }
  text += "\n]\n";
  return text;
}

}  // namespace

Result<std::unique_ptr<TraceFile>> TraceFile::Open(const std::string& path, TraceFormat format) {
  if (path.empty()) return Status::InvalidArgument("trace_file: cannot open an empty path");
  // JSON lines append; Triton's format rewrites the file (log_frequency 0)
  // or leaves it and writes <path>.N, but the path must be writable either way.
  const int fd = OpenForWriting(path, format == TraceFormat::kJsonLines ? O_APPEND : 0);
  if (fd < 0) {
    return Status::InvalidArgument("trace_file: cannot open '" + path +
                                   "': " + std::strerror(errno));
  }
  return std::unique_ptr<TraceFile>(new TraceFile(path, fd, format));
}

TraceFile::~TraceFile() {
  Flush();
  ::close(fd_);
}

void TraceFile::Append(std::string line, uint64_t log_frequency, bool write_now) {
  pending_.push_back(std::move(line));
  log_frequency_ = log_frequency;
  const bool at_once = log_frequency == 0 && format_ == TraceFormat::kJsonLines;
  if (write_now || at_once || (log_frequency > 0 && pending_.size() >= log_frequency)) Flush();
}

void TraceFile::Flush() {
  if (pending_.empty()) return;
  if (format_ == TraceFormat::kTriton) return FlushTriton();
  std::string text;
  for (const std::string& line : pending_) {
    text += line;
    text += '\n';
  }
  pending_.clear();
  Write(fd_, path_, text);
}

void TraceFile::FlushTriton() {
  if (log_frequency_ == 0) {
    // Every record so far, as the file's whole content.
    for (std::string& line : pending_) kept_.push_back(std::move(line));
    pending_.clear();
    if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) != 0) return Warn(path_);
    Write(fd_, path_, JsonArray(kept_));
    return;
  }
  const std::string path = path_ + "." + std::to_string(next_index_++);
  const std::string text = JsonArray(pending_);
  pending_.clear();
  const int fd = OpenForWriting(path, O_TRUNC);
  if (fd < 0) return Warn(path);
  Write(fd, path, text);
  ::close(fd);
}

void TraceFile::Write(int fd, const std::string& what, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Warn(what);
    done += static_cast<size_t>(n);
  }
}

void TraceFile::Warn(const std::string& what) {
  if (warned_) return;
  spdlog::warn("trace file '{}': write failed ({}); traces dropped", what, std::strerror(errno));
  warned_ = true;
}

}  // namespace modelgrid::service

// A trace file's buffered appends (trace_file.h).
#include "service/trace_file.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace modelgrid::service {

Result<std::unique_ptr<TraceFile>> TraceFile::Open(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("trace_file: cannot open an empty path");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::InvalidArgument("trace_file: cannot open '" + path +
                                   "': " + std::strerror(errno));
  }
  return std::unique_ptr<TraceFile>(new TraceFile(path, fd));
}

TraceFile::~TraceFile() {
  Flush();
  ::close(fd_);
}

void TraceFile::Append(std::string line, uint64_t log_frequency, bool write_now) {
  pending_.push_back(std::move(line));
  if (write_now || log_frequency == 0 || pending_.size() >= log_frequency) Flush();
}

void TraceFile::Flush() {
  if (pending_.empty()) return;
  std::string text;
  for (const std::string& line : pending_) {
    text += line;
    text += '\n';
  }
  pending_.clear();
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!warned_) {
        spdlog::warn("trace file '{}': write failed ({}); traces dropped", path_,
                     std::strerror(errno));
        warned_ = true;
      }
      return;
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace modelgrid::service

// fork + exec of a worker on a process-lifetime helper thread (spawn.h).
#include "worker/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

namespace modelgrid::worker_internal {
namespace {

std::string ErrnoText(int err) {
  char buf[256];
  // GNU strerror_r returns the message (maybe not in buf).
  return std::string(strerror_r(err, buf, sizeof(buf))) + " (errno " + std::to_string(err) + ")";
}

// Marks every descriptor from `first` to `last` close-on-exec. Async-signal-
// safe (called between fork and exec).
void CloseOnExecRange(int first, int last) {
  if (first > last) return;
#ifdef CLOSE_RANGE_CLOEXEC
  if (::close_range(static_cast<unsigned>(first), static_cast<unsigned>(last),
                    CLOSE_RANGE_CLOEXEC) == 0) {
    return;
  }
#endif
  // Older kernels: walk a bounded range (descriptors past it are rare and
  // would merely leak into the worker).
  const int bound = last < 65536 ? last : 65536;
  for (int fd = first; fd <= bound; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

// Runs in the child between fork and exec: only async-signal-safe calls.
[[noreturn]] void ExecChild(char* const* argv, pid_t parent, int socket_fd, int child_fd,
                            int error_pipe) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died before prctl took effect.
  if (::getppid() != parent) ::_exit(126);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  int err = 0;
  if (error_pipe == child_fd) {
    // Keep the error pipe out of the way of the worker's descriptor.
    error_pipe = ::fcntl(error_pipe, F_DUPFD_CLOEXEC, child_fd + 1);
    if (error_pipe < 0) ::_exit(125);
  }
  if (socket_fd == child_fd) {
    if (::fcntl(child_fd, F_SETFD, 0) != 0) err = errno;
  } else if (::dup2(socket_fd, child_fd) < 0) {  // dup2 clears FD_CLOEXEC on child_fd
    err = errno;
  }
  if (err == 0) {
    CloseOnExecRange(3, child_fd - 1);
    CloseOnExecRange(child_fd + 1, 0x7fffffff);
    ::execv(argv[0], argv);
    err = errno;
  }
  ssize_t ignored = ::write(error_pipe, &err, sizeof(err));
  (void)ignored;
  ::_exit(127);
}

Result<pid_t> ForkExec(const std::string& executable, const std::vector<std::string>& args,
                       int socket_fd, int child_fd) {
  std::vector<std::string> strings;
  strings.push_back(executable);
  strings.insert(strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return Status::Internal("starting '" + executable + "': pipe2 failed: " + ErrnoText(errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    return Status::Internal("starting '" + executable + "': fork failed: " + ErrnoText(err));
  }
  if (pid == 0) {
    ::close(pipe_fds[0]);
    ExecChild(argv.data(), parent, socket_fd, child_fd, pipe_fds[1]);
  }
  ::close(pipe_fds[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(pipe_fds[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  ::close(pipe_fds[0]);
  if (n == 0) return pid;  // the pipe closed on exec: the worker is running
  // exec (or the descriptor setup before it) failed: the child has exited.
  int wait_status = 0;
  while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof(child_errno)) &&
      (child_errno == ENOENT || child_errno == EACCES || child_errno == ENOEXEC)) {
    return Status::NotFound("cannot execute worker '" + executable +
                            "': " + ErrnoText(child_errno));
  }
  return Status::Internal("starting worker '" + executable + "' failed in the child: " +
                          (n > 0 ? ErrnoText(child_errno) : "no status"));
}

// The helper thread that forks. It is never joined and its state never
// destroyed (it must outlive every worker; see spawn.h).
class SpawnThread {
 public:
  static SpawnThread& Get() {
    static SpawnThread* instance = new SpawnThread();  // intentionally leaked
    return *instance;
  }

  Result<pid_t> Run(std::function<Result<pid_t>()> job) {
    auto done = std::make_shared<std::promise<Result<pid_t>>>();
    std::future<Result<pid_t>> result = done->get_future();
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back([job = std::move(job), done] { done->set_value(job()); });
    }
    cv_.notify_one();
    return result.get();
  }

 private:
  SpawnThread() {
    std::thread([this] { Loop(); }).detach();
  }

  [[noreturn]] void Loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return !jobs_.empty(); });
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
};

}  // namespace

Result<pid_t> SpawnChild(const std::string& executable, const std::vector<std::string>& args,
                         int socket_fd, int child_fd) {
  if (executable.empty()) return Status::NotFound("no worker executable given");
  if (::access(executable.c_str(), X_OK) != 0) {
    return Status::NotFound("cannot execute worker '" + executable + "': " + ErrnoText(errno));
  }
  return SpawnThread::Get().Run([executable, args, socket_fd, child_fd] {
    return ForkExec(executable, args, socket_fd, child_fd);
  });
}

}  // namespace modelgrid::worker_internal

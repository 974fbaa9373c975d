// A `modelgrid serve` child process for the serving benchmark: started with
// its stdout on a pipe (drained by a thread, so that the pipe never fills,
// and scanned for the "serving on http://127.0.0.1:PORT" line) and its
// stderr in a log file; stopped with SIGTERM and a bounded wait.
// Header-only (the benchmarks are single files). Linux only.
//
// Thread-safety: Start, Stop and WaitReady from one thread; port(), pid()
// and exited() from any.
#pragma once

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::bench {

class ServeProcess {
 public:
  // Runs `argv` (argv[0] is the executable's path) with stderr into `log`
  // and waits at most `timeout` for the "serving on http://127.0.0.1:PORT"
  // line on its stdout. The child gets SIGTERM if this process dies.
  // Errors: kInternal when pipe or fork fail; kUnavailable when the child
  // exits first or prints no such line in time (it is then stopped); the
  // message holds its stdout and the end of its stderr.
  static Result<std::unique_ptr<ServeProcess>> Start(const std::vector<std::string>& argv,
                                                     const std::filesystem::path& log,
                                                     std::chrono::seconds timeout) {
    std::unique_ptr<ServeProcess> p(new ServeProcess(log));
    int fds[2];
    if (pipe(fds) != 0) return Status::Internal("pipe failed");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    p->pid_ = fork();
    if (p->pid_ < 0) return Status::Internal("fork failed");
    if (p->pid_ == 0) {  // only async-signal-safe calls until execv
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      const int err = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fds[1], STDOUT_FILENO);
      if (err >= 0) dup2(err, STDERR_FILENO);
      close(fds[0]);
      close(fds[1]);
      execv(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    ServeProcess* raw = p.get();
    p->reader_ = std::thread([raw, fd = fds[0]] { raw->Drain(fd); });
    std::unique_lock lock(p->mu_);
    p->cv_.wait_for(lock, timeout, [&] { return p->port_ > 0 || p->eof_; });
    if (p->port_ > 0) return p;
    const std::string why =
        p->eof_ ? "exited before listening" : "printed no 'serving on' line in time";
    const std::string out = p->stdout_;
    lock.unlock();
    p->Stop(std::chrono::seconds(5));
    return Status::Unavailable("modelgrid serve " + why + "; stdout:\n" + out + "\nstderr (" +
                               log.string() + "):\n" + p->LogTail());
  }

  // Stops the child (as Stop with 5 s) unless Stop was called.
  ~ServeProcess() {
    if (pid_ > 0 && !stopped_) Stop(std::chrono::seconds(5));
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // The port of the "serving on" line.
  int port() const { return port_; }
  // The child's process id.
  pid_t pid() const { return pid_; }
  // True once the child closed its stdout (it exited).
  bool exited() {
    std::lock_guard lock(mu_);
    return eof_;
  }

  // Polls GET /v2/health/ready until it answers 200, at most `timeout`;
  // false at once when the child exits.
  bool WaitReady(std::chrono::seconds timeout) {
    httplib::Client cli("127.0.0.1", port_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline && !exited()) {
      auto res = cli.Get("/v2/health/ready");
      if (res && res->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Sends SIGTERM and waits at most `timeout` for the exit (then SIGKILL).
  // Returns "exit status N X s after SIGTERM" or what went wrong; `*ok`
  // (when given) says whether it exited with status 0 in time.
  std::string Stop(std::chrono::seconds timeout, bool* ok = nullptr) {
    stopped_ = true;
    const auto start = std::chrono::steady_clock::now();
    kill(pid_, SIGTERM);
    int status = 0;
    char buf[96];
    bool clean = false;
    while (true) {
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      const double waited =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (r == pid_) {
        if (WIFEXITED(status)) {
          std::snprintf(buf, sizeof(buf), "exit status %d %.2f s after SIGTERM",
                        WEXITSTATUS(status), waited);
          clean = WEXITSTATUS(status) == 0;
        } else {
          std::snprintf(buf, sizeof(buf), "killed by signal %d %.2f s after SIGTERM",
                        WTERMSIG(status), waited);
        }
        break;
      }
      if (r < 0 || std::chrono::steady_clock::now() - start > timeout) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        std::snprintf(buf, sizeof(buf), "did not exit within %lld s of SIGTERM (killed)",
                      static_cast<long long>(timeout.count()));
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (reader_.joinable()) reader_.join();
    if (ok) *ok = clean;
    return buf;
  }

  // The last 4,000 bytes of the child's stderr log.
  std::string LogTail() const {
    std::ifstream in(log_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }

 private:
  explicit ServeProcess(std::filesystem::path log) : log_(std::move(log)) {}

  void Drain(int fd) {
    static const std::string kPrefix = "serving on http://127.0.0.1:";
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
      std::lock_guard lock(mu_);
      stdout_.append(buf, static_cast<size_t>(n));
      if (port_ == 0) {
        const size_t at = stdout_.find(kPrefix);
        if (at != std::string::npos && stdout_.find('\n', at) != std::string::npos) {
          port_ = std::atoi(stdout_.c_str() + at + kPrefix.size());
          cv_.notify_all();
        }
      }
    }
    close(fd);
    std::lock_guard lock(mu_);
    eof_ = true;
    cv_.notify_all();
  }

  std::filesystem::path log_;
  pid_t pid_ = -1;
  bool stopped_ = false;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string stdout_;
  int port_ = 0;
  bool eof_ = false;
};

}  // namespace modelgrid::bench

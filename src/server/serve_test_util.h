// Test helpers for http_server_test.cc: run the real `modelgrid serve` as a
// child process, read its "serving on" line with a bounded wait, talk to it
// with httplib::Client on 127.0.0.1, stop it with a signal and wait
// (bounded) for its exit.
#pragma once

#include <algorithm>
#include <cctype>

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace modelgrid::server_test {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

inline constexpr std::chrono::seconds kStartTimeout{180};
inline constexpr std::chrono::seconds kExitTimeout{20};

// The small zoo (MODELGRID_TEST_ZOO), when generated.
inline std::optional<fs::path> Zoo() {
  const char* zoo = std::getenv("MODELGRID_TEST_ZOO");
  if (!zoo || !fs::exists(fs::path(zoo) / "digits" / "test_set.json")) return std::nullopt;
  return fs::path(zoo);
}

// A fresh temp folder with an empty models/ inside.
inline fs::path MakeTempDir(const std::string& tag) {
  const fs::path dir =
      fs::temp_directory_path() / ("mg_http_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "models");
  return dir;
}

// Copies zoo models into a repository folder.
inline void CopyModels(const fs::path& zoo, const fs::path& repo,
                       const std::vector<std::string>& names) {
  for (const auto& name : names) fs::copy(zoo / name, repo / name, fs::copy_options::recursive);
}

// A `modelgrid serve` child process. Killed (SIGKILL) on destruction when
// still running; also killed by the kernel if the test process dies.
class ServeProcess {
 public:
  ServeProcess() = default;
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  ~ServeProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
  }

  // Starts `modelgrid ARGS...` with stderr going to `log_file`. A `serve`
  // without --grpc-port gets --grpc-port 0 (a free port), so that servers
  // of tests running at once do not fight over 8001.
  bool Start(const std::vector<std::string>& args, const fs::path& log_file) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    log_file_ = log_file;
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(fds[1], STDOUT_FILENO);
      const int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log >= 0) ::dup2(log, STDERR_FILENO);
      std::vector<char*> argv;
      std::string exe = MODELGRID_CLI_PATH;
      argv.push_back(exe.data());
      std::vector<std::string> copy = args;
      if (!copy.empty() && copy[0] == "serve" &&
          std::find(copy.begin(), copy.end(), "--grpc-port") == copy.end()) {
        copy.insert(copy.end(), {"--grpc-port", "0"});
      }
      for (std::string& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(exe.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    stdout_fd_ = fds[0];
    return true;
  }

  // Reads stdout until "serving on http://HOST:PORT" (returns PORT) or until
  // the process exits or `timeout` passes (returns nullopt).
  std::optional<int> WaitServing(std::chrono::seconds timeout) {
    static const std::regex kServing(R"(serving on http://127\.0\.0\.1:(\d+))");
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      std::smatch m;
      if (std::regex_search(stdout_, m, kServing)) return std::stoi(m[1].str());
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
      if (n <= 0) return std::nullopt;  // exited before serving
      stdout_.append(buf, static_cast<size_t>(n));
    }
    return std::nullopt;
  }

  // Sends `sig` and waits up to `timeout` for the exit. Returns the exit
  // code, -1 when it died of a signal, -2 when it did not exit in time.
  int SignalAndWait(int sig, std::chrono::seconds timeout) {
    if (pid_ <= 0) return -2;
    ::kill(pid_, sig);
    return WaitExit(timeout);
  }

  // Waits up to `timeout` for the process to exit (see SignalAndWait).
  int WaitExit(std::chrono::seconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      int status = 0;
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        DrainStdout();
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -2;
  }

  // What the process wrote: stdout so far, then its stderr log.
  std::string Output() {
    DrainStdout();
    std::string err;
    if (FILE* f = std::fopen(log_file_.c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) err.append(buf, n);
      std::fclose(f);
    }
    return "--- stdout ---\n" + stdout_ + "\n--- stderr ---\n" + err;
  }
  const std::string& stdout_text() const { return stdout_; }
  // The gRPC port printed before the HTTP line ("serving gRPC on
  // 127.0.0.1:PORT"), 0 when none was printed.
  int grpc_port() {
    DrainStdout();
    static const std::regex kGrpc(R"(serving gRPC on 127\.0\.0\.1:(\d+))");
    std::smatch m;
    return std::regex_search(stdout_, m, kGrpc) ? std::stoi(m[1].str()) : 0;
  }

 private:
  void DrainStdout() {
    if (stdout_fd_ < 0) return;
    for (;;) {
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) return;
      char buf[4096];
      const ssize_t n = ::read(stdout_fd_, buf, sizeof(buf));
      if (n <= 0) return;
      stdout_.append(buf, static_cast<size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string stdout_;
  fs::path log_file_;
};

// One HTTP answer; `json` is parsed from the body when it is JSON (else null).
// A `modelgrid serve` shared by a test suite, over a temporary repository
// holding copies of some zoo models: Start in SetUpTestSuite, Stop in
// TearDownTestSuite.
class SuiteServer {
 public:
  // Copies `models` of `zoo` into a fresh temp folder tagged `tag`, has
  // `prepare` (when given) change the copies, runs `modelgrid serve
  // --repository <it> FLAGS...` and waits until it serves. port() is then
  // > 0; it stays 0 when the server did not start.
  void Start(const fs::path& zoo, const std::string& tag, const std::vector<std::string>& models,
             const std::vector<std::string>& flags,
             const std::function<void(const fs::path& repo)>& prepare = {}) {
    dir_ = MakeTempDir(tag);
    CopyModels(zoo, *dir_ / "models", models);
    if (prepare) prepare(*dir_ / "models");
    std::vector<std::string> args = {"serve", "--repository", (*dir_ / "models").string()};
    args.insert(args.end(), flags.begin(), flags.end());
    server_ = std::make_unique<ServeProcess>();
    if (!server_->Start(args, *dir_ / "serve.log")) return;
    if (auto port = server_->WaitServing(kStartTimeout)) port_ = *port;
  }
  // SIGTERM, expecting exit 0 when it served, then removes the folder.
  void Stop() {
    if (server_ && port_ > 0) {
      EXPECT_EQ(server_->SignalAndWait(SIGTERM, kExitTimeout), 0) << server_->Output();
    }
    server_.reset();
    if (dir_) fs::remove_all(*dir_);
    dir_.reset();
    port_ = 0;
  }
  int port() const { return port_; }
  // The gRPC port of the server, 0 when it serves none.
  int grpc_port() { return server_ ? server_->grpc_port() : 0; }
  // What the server wrote (empty before Start).
  std::string Output() { return server_ ? server_->Output() : std::string(); }

 private:
  std::optional<fs::path> dir_;
  std::unique_ptr<ServeProcess> server_;
  int port_ = 0;
};

struct Reply {
  int status = 0;  // 0: no answer (connection error, see `body`)
  std::string body;
  httplib::Headers headers;
  nlohmann::json json;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  std::string Error() const {
    return json.is_object() && json.contains("error") ? json["error"].get<std::string>() : "";
  }
};

inline Reply ToReply(const httplib::Result& r) {
  Reply reply;
  if (!r) {
    reply.body = "no answer: " + httplib::to_string(r.error());
    return reply;
  }
  reply.status = r->status;
  reply.body = r->body;
  reply.headers = r->headers;
  reply.json = nlohmann::json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  return reply;
}

// A client for 127.0.0.1:port with bounded timeouts.
inline httplib::Client MakeClient(int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(5);
  client.set_read_timeout(60);
  client.set_write_timeout(30);
  return client;
}

inline Reply Get(int port, const std::string& path) {
  auto client = MakeClient(port);
  return ToReply(client.Get(path));
}

inline Reply Post(int port, const std::string& path, const std::string& body,
                  const httplib::Headers& headers = {},
                  const std::string& content_type = "application/json") {
  auto client = MakeClient(port);
  return ToReply(client.Post(path, headers, body, content_type));
}

// One HTTP answer read off a raw connection.
struct RawReply {
  int status = 0;  // 0: none (closed or timed out first)
  std::string head;  // status line and header lines, each ending in CRLF
  std::string body;
  // The JSON body's "error" string; "" when there is none.
  std::string Error() const {
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    return j.is_object() && j.contains("error") && j["error"].is_string()
               ? j["error"].get<std::string>()
               : "";
  }
  // Whether a header line starts with `line`, case-insensitively.
  bool HasHeader(const std::string& line) const {
    std::string h = head, l = line;
    for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (char& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return h.find("\r\n" + l) != std::string::npos;
  }
};

// A TCP connection to 127.0.0.1:port from `source` (any 127.0.0.x), for
// requests no HTTP client library would send (hostile and malformed ones).
// `receive_buffer` > 0 sets SO_RCVBUF before connecting (a client that
// does not read then stalls the server sooner). Sends block at most 5 s;
// every read has a deadline.
class RawConn {
 public:
  explicit RawConn(int port, const std::string& source = "127.0.0.1", int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    if (receive_buffer > 0) {
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
    }
    sockaddr_in from{};
    from.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0 ||
        ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
      Close();
    }
  }
  ~RawConn() { Close(); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  // Whether the connection was made (and not closed by Close).
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Closes this end now.
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Sends all of `data`; false when the connection fails first.
  bool Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  // One answer (head, then Content-Length bytes of body), within `timeout`.
  RawReply Read(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000)) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        RawReply r;
        r.head = buf_.substr(0, end + 2);
        if (r.head.rfind("HTTP/1.", 0) == 0 && r.head.size() > 12)
          r.status = std::stoi(r.head.substr(9, 3));
        size_t length = 0;
        std::string lower = r.head;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (const size_t at = lower.find("\r\ncontent-length:"); at != std::string::npos) {
          length = std::stoul(r.head.substr(at + 17));
        }
        if (buf_.size() >= end + 4 + length) {
          r.body = buf_.substr(end + 4, length);
          buf_.erase(0, end + 4 + length);
          return r;
        }
      }
      if (!Receive(deadline)) return RawReply{};
    }
  }

  // Waits for the server to close the connection (end of stream or reset);
  // returns how long that took from now, nullopt when it stayed open.
  std::optional<Clock::duration> WaitClosed(std::chrono::milliseconds timeout) {
    const auto start = Clock::now();
    const auto deadline = start + timeout;
    while (Receive(deadline)) {
    }
    if (closed_) return Clock::now() - start;
    return std::nullopt;
  }

  // Bytes received and not consumed by Read.
  const std::string& received() const { return buf_; }
  // Whether the server closed the connection (end of stream or reset).
  bool closed() const { return closed_; }

 protected:
  // Receives once (appending to buffer()) before `deadline`; false on
  // timeout or close.
  bool Receive(Clock::time_point deadline) {
    if (closed_ || fd_ < 0) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char chunk[16384];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    buf_.append(chunk, static_cast<size_t>(n));
    return true;
  }
  // Received and not consumed yet; subclasses consume from its front.
  std::string& buffer() { return buf_; }

 private:
  int fd_ = -1;
  std::string buf_;
  bool closed_ = false;
};

// Sends `request` as is on a new connection to 127.0.0.1:port and returns
// everything the server writes until it closes (at most 10 s).
inline std::string RawExchange(int port, const std::string& request) {
  RawConn c(port);
  if (!c.ok() || !c.Send(request)) return "";
  c.WaitClosed(std::chrono::seconds(10));
  return c.received();
}

}  // namespace modelgrid::server_test

// The hostile-input regression corpus (corpus/http/, written by
// tools/make_corpus.py; README.md) against the real `modelgrid serve`:
// starts it once on a copy of the small zoo's digits, sends every corpus
// file as is over a raw TCP connection to 127.0.0.1, and checks per file
// what MANIFEST.tsv says: an answer within 10 s, its status (exact, a class
// such as 4xx, or a connection closed without an answer where a server
// cannot answer a request the client ended early), and a JSON body with a
// non-empty "error" string unless the answer may come from the HTTP library
// itself. After the whole corpus the server must still run, answer, hold
// the same state (no shared-memory region, no reconfiguration, digits
// ready) and give the same infer result as before it. No error text is
// asserted: the corpus must hold whatever HTTP library the server uses.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace modelgrid::fuzz {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr std::chrono::seconds kStartTimeout{180};
constexpr std::chrono::seconds kExitTimeout{20};
constexpr std::chrono::seconds kAnswerTimeout{10};  // per corpus file
constexpr std::chrono::seconds kCorpusBudget{90};  // the whole corpus (it takes about 1 s)
constexpr uint64_t kMaxBody = 1 << 20;  // --max-body-bytes: the corpus's 413 cases assume it

fs::path CorpusDir() { return fs::path(MODELGRID_SOURCE_DIR) / "src" / "fuzz" / "corpus" / "http"; }

std::optional<fs::path> Zoo() {
  const char* zoo = std::getenv("MODELGRID_TEST_ZOO");
  if (!zoo || !fs::exists(fs::path(zoo) / "digits" / "test_set.json")) return std::nullopt;
  return fs::path(zoo);
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// ---------------------------------------------------------------------------
// One MANIFEST.tsv line: file, expect, flags, what.
struct Case {
  std::string file;
  std::vector<std::string> expect;  // "400", "4xx", "close"
  std::set<std::string> flags;      // "shut", "nojson", "head"
  std::string what;
};

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

std::vector<Case> ReadManifest() {
  std::vector<Case> cases;
  std::ifstream in(CorpusDir() / "MANIFEST.tsv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const std::vector<std::string> f = Split(line, '\t');
    if (f.size() != 4) {
      ADD_FAILURE() << "MANIFEST.tsv line without 4 fields: " << line;
      continue;
    }
    Case c{f[0], Split(f[1], '|'), {}, f[3]};
    if (f[2] != "-") {
      for (const std::string& flag : Split(f[2], ',')) c.flags.insert(flag);
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

// ---------------------------------------------------------------------------
// What came back on one connection.
struct Answer {
  int status = 0;         // 0: none (see `outcome`)
  std::string outcome;    // "answer", "closed" (no byte), "timeout", "partial", "connect failed"
  std::string headers;    // the status line and headers, as received
  std::string body;
  std::chrono::milliseconds took{0};

  std::string Header(const std::string& name) const {
    std::istringstream in(headers);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const size_t colon = line.find(':');
      if (colon == std::string::npos || colon != name.size()) continue;
      if (!std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          })) {
        continue;
      }
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
    return "";
  }
};

// Parses the first final (non-1xx) response of `in`. Returns true when it is
// complete (or `eof` ends it), filling `answer`.
bool ParseResponse(const std::string& in, bool head, bool eof, Answer* answer) {
  size_t start = 0;
  for (;;) {
    const size_t end = in.find("\r\n\r\n", start);
    if (end == std::string::npos) return false;
    const std::string status_line = in.substr(start, in.find("\r\n", start) - start);
    static const std::regex kStatus(R"(HTTP/\d\.\d (\d{3})( .*)?)");
    std::smatch m;
    if (!std::regex_match(status_line, m, kStatus)) {
      answer->status = -1;  // not HTTP
      answer->headers = status_line;
      return true;
    }
    const int status = std::stoi(m[1].str());
    if (status >= 100 && status < 200) {  // 100 Continue: the final answer follows
      start = end + 4;
      continue;
    }
    answer->status = status;
    answer->headers = in.substr(start, end - start);
    const std::string rest = in.substr(end + 4);
    if (head || status == 204 || status == 304) return true;
    const std::string length = answer->Header("Content-Length");
    if (!length.empty()) {
      const size_t n = std::strtoull(length.c_str(), nullptr, 10);
      if (rest.size() < n) return eof;
      answer->body = rest.substr(0, n);
      return true;
    }
    if (answer->Header("Transfer-Encoding").find("chunked") != std::string::npos) {
      std::string body;
      size_t at = 0;
      for (;;) {
        const size_t line_end = rest.find("\r\n", at);
        if (line_end == std::string::npos) return eof;
        const size_t size = std::strtoul(rest.substr(at, line_end - at).c_str(), nullptr, 16);
        if (size == 0) {
          answer->body = body;
          return true;
        }
        if (rest.size() < line_end + 2 + size) return eof;
        body.append(rest, line_end + 2, size);
        at = line_end + 2 + size + 2;
      }
    }
    answer->body = rest;  // read until the server closes
    return eof;
  }
}

// Sends `request` on a fresh connection to 127.0.0.1:port (reading while
// sending, so that a server that answers early cannot block the client),
// half-closes when `shut`, and reads the first final answer; everything is
// bounded by `timeout`.
Answer Exchange(int port, const std::string& request, bool shut, bool head,
                std::chrono::seconds timeout = kAnswerTimeout) {
  Answer answer;
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  const int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (sock < 0 || ::connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (sock >= 0) ::close(sock);
    answer.outcome = "connect failed";
    return answer;
  }
  ::fcntl(sock, F_SETFL, ::fcntl(sock, F_GETFL) | O_NONBLOCK);
  size_t sent = 0;
  bool sending = true;
  std::string in;
  bool eof = false;
  answer.outcome = "timeout";
  while (Clock::now() < deadline) {
    if (ParseResponse(in, head, eof, &answer)) {
      answer.outcome = "answer";
      break;
    }
    if (eof) {
      answer.outcome = in.empty() ? "closed" : "partial";
      break;
    }
    if (sending && sent == request.size()) {
      sending = false;
      if (shut) ::shutdown(sock, SHUT_WR);
    }
    pollfd p{sock, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (::poll(&p, 1, static_cast<int>(std::clamp<int64_t>(left, 1, 100))) <= 0) continue;
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      const ssize_t n = ::recv(sock, buf, sizeof(buf), 0);
      if (n > 0) {
        in.append(buf, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        eof = true;  // closed or reset
        sending = false;
      }
      continue;
    }
    if (sending && (p.revents & POLLOUT)) {
      const ssize_t n =
          ::send(sock, request.data() + sent, std::min<size_t>(request.size() - sent, 65536),
                 MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        sending = false;  // the server closed its side: read what it said
      }
    }
  }
  ::close(sock);
  answer.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return answer;
}

std::string HttpRequest(const std::string& method, const std::string& path,
                        const std::string& body = "") {
  std::string r = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (method == "POST") {
    r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  return r + "\r\n" + body;
}

json JsonOf(const Answer& a) { return json::parse(a.body, nullptr, /*allow_exceptions=*/false); }

// ---------------------------------------------------------------------------
// The server: `modelgrid serve` as a child process on a copy of digits.
class Server {
 public:
  ~Server() { Kill(); }

  bool Start(const fs::path& zoo) {
    dir_ = fs::temp_directory_path() / ("mg_fuzz_corpus_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "models");
    fs::copy(zoo / "digits", dir_ / "models" / "digits", fs::copy_options::recursive);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    const std::string log = (dir_ / "serve.log").string();
    std::vector<std::string> args = {MODELGRID_CLI_PATH, "serve", "--repository",
                                     (dir_ / "models").string(), "--device", "cpu",
                                     "--isolation", "none", "--http-port", "0",
                                     "--max-body-bytes", std::to_string(kMaxBody)};
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::dup2(fds[1], STDOUT_FILENO);
      const int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (err >= 0) ::dup2(err, STDERR_FILENO);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_fd_ = fds[0];
    // Reads stdout until "serving on http://127.0.0.1:PORT".
    static const std::regex kServing(R"(serving on http://127\.0\.0\.1:(\d+))");
    const auto deadline = Clock::now() + kStartTimeout;
    while (Clock::now() < deadline) {
      std::smatch m;
      if (std::regex_search(stdout_, m, kServing)) {
        port_ = std::stoi(m[1].str());
        return true;
      }
      pollfd p{out_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[4096];
      const ssize_t n = ::read(out_fd_, buf, sizeof(buf));
      if (n <= 0) return false;  // exited before serving
      stdout_.append(buf, static_cast<size_t>(n));
    }
    return false;
  }

  // True while the process has not exited.
  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = status;
      return false;
    }
    return true;
  }

  // SIGTERM and a bounded wait: the exit code, -1 killed by a signal, -2 still running.
  int Stop() {
    if (!Running()) {
      return (exit_status_ && WIFEXITED(*exit_status_)) ? WEXITSTATUS(*exit_status_) : -1;
    }
    ::kill(pid_, SIGTERM);
    const auto deadline = Clock::now() + kExitTimeout;
    while (Clock::now() < deadline) {
      if (!Running()) return WIFEXITED(*exit_status_) ? WEXITSTATUS(*exit_status_) : -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -2;
  }

  void Kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (out_fd_ >= 0) ::close(out_fd_);
    out_fd_ = -1;
    if (!dir_.empty()) fs::remove_all(dir_);
    dir_.clear();
  }

  // What the server wrote (stdout so far, then its stderr log), for failures.
  std::string Output() {
    std::string err = dir_.empty() ? "" : ReadFile(dir_ / "serve.log");
    if (err.size() > 20000) err = "..." + err.substr(err.size() - 20000);
    return "--- stdout ---\n" + stdout_ + "\n--- stderr ---\n" + err;
  }

  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  std::optional<int> exit_status_;
  std::string stdout_;
  fs::path dir_;
};

// ---------------------------------------------------------------------------

// Rows [0, 4) of the digits test set as one FP32 [4,64] infer request.
std::string GoodInferBody(const fs::path& zoo) {
  std::ifstream in(zoo / "digits" / "test_set.json");
  const json set = json::parse(in);
  json data = json::array();
  for (size_t i = 0; i < 4; ++i) {
    for (const json& v : set["inputs"][i]) data.push_back(v);
  }
  return json({{"id", "good"},
               {"inputs",
                {{{"name", "input"}, {"shape", {4, 64}}, {"datatype", "FP32"}, {"data", data}}}}})
      .dump();
}

bool Matches(const std::vector<std::string>& expect, const Answer& a) {
  for (const std::string& e : expect) {
    if (e == "close") {
      if (a.outcome == "closed") return true;
    } else if (a.outcome == "answer" && a.status > 0) {
      const std::string got = std::to_string(a.status);
      if (e == got) return true;
      if (e.size() == 3 && e.substr(1) == "xx" && e[0] == got[0]) return true;
    }
  }
  return false;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string s;
  for (const std::string& p : parts) s += (s.empty() ? "" : "|") + p;
  return s;
}

class HostileCorpusTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto zoo = Zoo();
    if (!zoo) return;
    server_ = new Server();
    started_ = server_->Start(*zoo);
    good_body_ = new std::string(GoodInferBody(*zoo));
  }
  static void TearDownTestSuite() {
    if (server_ && started_) {
      EXPECT_EQ(server_->Stop(), 0) << server_->Output();
    }
    delete server_;
    server_ = nullptr;
    delete good_body_;
    good_body_ = nullptr;
  }
  void SetUp() override {
    if (!Zoo()) GTEST_SKIP() << "small zoo not generated (make zoo-small); MODELGRID_TEST_ZOO unset";
    ASSERT_TRUE(started_) << "modelgrid serve did not start:\n" << server_->Output();
  }

  static int port() { return server_->port(); }

  // The logits of the good request, or an empty vector after a failure.
  static std::vector<float> GoodLogits() {
    const Answer a = Exchange(port(), HttpRequest("POST", "/v2/models/digits/infer", *good_body_),
                              false, false, std::chrono::seconds(60));
    EXPECT_EQ(a.status, 200) << a.outcome << " " << a.body.substr(0, 500);
    const json j = JsonOf(a);
    if (a.status != 200 || !j.is_object() || !j.contains("outputs")) return {};
    const json& out = j["outputs"][0];
    EXPECT_EQ(out["name"], "logits");
    EXPECT_EQ(out["shape"], json({4, 10}));
    EXPECT_EQ(j["id"], "good");
    return out["data"].get<std::vector<float>>();
  }

  static inline Server* server_ = nullptr;
  static inline bool started_ = false;
  static inline std::string* good_body_ = nullptr;
};

// The manifest and the folder list the same files, and there are enough.
TEST(HostileCorpusManifest, ListsEveryFileOnce) {
  const std::vector<Case> cases = ReadManifest();
  EXPECT_GE(cases.size(), 150u);
  std::set<std::string> listed;
  for (const Case& c : cases) {
    EXPECT_TRUE(listed.insert(c.file).second) << c.file << " listed twice";
    EXPECT_TRUE(fs::is_regular_file(CorpusDir() / c.file)) << c.file << " is missing";
    EXPECT_FALSE(c.expect.empty()) << c.file;
    for (const std::string& e : c.expect) {
      EXPECT_TRUE(std::regex_match(e, std::regex(R"([1-5](\d\d|xx)|close)"))) << c.file << ": " << e;
    }
    if (std::find(c.expect.begin(), c.expect.end(), "close") != c.expect.end()) {
      EXPECT_TRUE(c.flags.count("shut")) << c.file << ": 'close' is only for requests sent with shut";
    }
    for (const std::string& f : c.flags) {
      EXPECT_TRUE(f == "shut" || f == "nojson" || f == "head") << c.file << ": flag " << f;
    }
  }
  for (const auto& e : fs::directory_iterator(CorpusDir())) {
    if (e.path().extension() == ".http") {
      EXPECT_TRUE(listed.count(e.path().filename().string()))
          << e.path().filename() << " is not in MANIFEST.tsv";
    }
  }
}

TEST_F(HostileCorpusTest, EveryRequestGetsItsClientErrorAndTheServerKeepsServing) {
  const std::vector<float> before = GoodLogits();
  ASSERT_EQ(before.size(), 40u);
  const std::vector<Case> cases = ReadManifest();
  ASSERT_GE(cases.size(), 150u);
  // MODELGRID_CORPUS_VERBOSE=1: one line per file (what came back, how fast).
  const bool verbose = std::getenv("MODELGRID_CORPUS_VERBOSE") != nullptr;
  const auto start = Clock::now();
  size_t done = 0;
  for (const Case& c : cases) {
    if (Clock::now() - start > kCorpusBudget) {
      ADD_FAILURE() << "the corpus ran past " << kCorpusBudget.count() << " s: "
                    << cases.size() - done << " files not sent (from " << c.file << " on)";
      break;
    }
    ++done;
    const std::string request = ReadFile(CorpusDir() / c.file);
    const Answer a = Exchange(port(), request, c.flags.count("shut") > 0, c.flags.count("head") > 0);
    const std::string shown = c.file + " (" + c.what + "): expected " + Join(c.expect) + ", got " +
                              (a.outcome == "answer" ? std::to_string(a.status) : a.outcome) +
                              " after " + std::to_string(a.took.count()) + " ms\n" +
                              a.headers.substr(0, 400) + "\n" + a.body.substr(0, 400);
    if (verbose) {
      std::printf("%-55s expect %-16s got %-8s %5lld ms\n", c.file.c_str(), Join(c.expect).c_str(),
                  (a.outcome == "answer" ? std::to_string(a.status) : a.outcome).c_str(),
                  static_cast<long long>(a.took.count()));
    }
    EXPECT_NE(a.outcome, "timeout") << shown;
    EXPECT_NE(a.outcome, "partial") << shown;
    EXPECT_NE(a.outcome, "connect failed") << shown;
    EXPECT_TRUE(Matches(c.expect, a)) << shown;
    EXPECT_LE(a.took, kAnswerTimeout) << shown;
    const bool error_body = a.outcome == "answer" && a.status >= 400 && !c.flags.count("head") &&
                            !c.flags.count("nojson");
    if (error_body) {
      const json j = JsonOf(a);
      EXPECT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string() &&
                  !j["error"].get<std::string>().empty())
          << "no JSON error: " << shown;
      EXPECT_EQ(a.Header("Content-Type").rfind("application/json", 0), 0u) << shown;
    }
    if (!server_->Running()) {
      FAIL() << "modelgrid serve exited after " << c.file << ":\n" << server_->Output();
    }
  }

  // Still serving, with the same state and the same answer.
  const Answer live = Exchange(port(), HttpRequest("GET", "/v2/health/live"), false, false);
  EXPECT_EQ(live.status, 200) << live.outcome << " " << live.body;
  const Answer ready = Exchange(port(), HttpRequest("GET", "/v2/models/digits/ready"), false, false);
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_EQ(JsonOf(ready)["ready"], true) << ready.body;
  const Answer shm = Exchange(port(), HttpRequest("GET", "/v2/systemsharedmemory/status"), false, false);
  EXPECT_EQ(shm.status, 200);
  EXPECT_EQ(JsonOf(shm), json::array()) << "the corpus left a shared memory region: " << shm.body;
  const Answer changes = Exchange(port(), HttpRequest("GET", "/v2/modelgrid/changes"), false, false);
  EXPECT_EQ(changes.status, 200);
  EXPECT_EQ(JsonOf(changes)["changes"], json::array()) << "the corpus reconfigured: " << changes.body;
  const std::vector<float> after = GoodLogits();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_NEAR(after[i], before[i], 1e-5f * (1 + std::fabs(before[i]))) << "logit " << i;
  }
}

}  // namespace
}  // namespace modelgrid::fuzz

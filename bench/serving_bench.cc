// serving_bench: requests per second and latency of the real `modelgrid
// serve` under concurrent HTTP clients, against the conventional setup of
// the seed's paper measured in the same run (issue 3, section 9).
//
//   serving_bench [--zoo DIR] [--seconds S] [--clients C] [--isolation I]
//                 [--models a,b,...] [--tokens N] [--warmup-seconds W]
//                 [--worker-threads N] [--device SPEC]... [--modelgrid PATH]
//
// The request mix: one request per model in turn (round-robin over a shared
// counter), batch 1, inputs made once from each model's config.yaml
// (bench_util.h MakeInputs: FP32 uniform in [0,1), token ids; `--tokens`
// for variable dims) and used by both sides; the task is `encode` for models
// that declare it (bert-base), `infer` otherwise (gpt2: one forward over the
// prompt).
//
// Baseline, first: the models loaded one after another into this process
// (TorchScriptBackend), the same request sequence run one request at a
// time: no batching, no HTTP. W seconds of warm-up, then S seconds timed.
// Run twice, with LibTorch's default intra-op threads (the machine's cores)
// and with 1 thread (what each ModelGrid worker gets on a small machine):
// on a loaded machine many threads can be much slower, so the ratio is
// taken against the faster of the two. The first output per model is kept
// as the expected answer; the backends are freed before the server starts.
//
// ModelGrid, second: `modelgrid serve --repository TMP --http-port 0
// --isolation I` on a temporary folder of symlinks to the chosen zoo models;
// a bounded wait for its "serving on http://127.0.0.1:PORT" line and for
// GET /v2/health/ready; C client threads, each with its own keep-alive
// cpp-httplib client, POST /v2/models/{m}/infer with binary tensor data in
// and out (Triton's binary extension: EncodeInferRequest,
// DecodeInferResponse); W seconds of warm-up, then S seconds timed. Every
// response is decoded and compared with the baseline's answer; a transport
// error, an HTTP status other than 200, an undecodable body or an answer
// off by more than 1e-3 × max(1, max |expected|) is an error. SIGTERM at the
// end, with a bounded wait for exit status 0.
//
// Prints machine, date, load average before and after, inputs, clients and isolation, the two
// setups' requests/s and p50/p90/p99 latency overall and per model, the errors, and the ratio
// ModelGrid / baseline. Exit status 1 when anything failed (server start, an error, a non-zero
// server exit).

#include <fcntl.h>
#include <httplib.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "modelgrid/backend/backend.h"
#include "modelgrid/kserve/infer_codec.h"
#include "modelgrid/repository.h"

namespace {

using namespace modelgrid;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// One model of the mix: its request (decoded and encoded) and the answer.
struct Workload {
  ModelEntry entry;
  std::string task;
  std::vector<InferTensor> inputs;
  EncodedBody body;                   // the HTTP request, binary inputs and outputs
  std::vector<InferTensor> expected;  // the baseline's first output
};

// The latencies (µs) of one setup's successful requests per model, and its
// errors by message.
struct Measurement {
  std::vector<std::vector<double>> per_model_us;
  std::map<std::string, uint64_t> errors;
  double seconds = 0;              // from the start of the timed phase until the last request ended
  double worst_relative_diff = 0;  // ModelGrid: largest output difference seen, relative

  explicit Measurement(size_t models) : per_model_us(models) {}
  uint64_t Requests() const {
    uint64_t n = 0;
    for (const auto& v : per_model_us) n += v.size();
    return n;
  }
  uint64_t ErrorCount() const {
    uint64_t n = 0;
    for (const auto& [m, c] : errors) n += c;
    return n;
  }
  std::vector<double> All() const {
    std::vector<double> all;
    for (const auto& v : per_model_us) all.insert(all.end(), v.begin(), v.end());
    return all;
  }
  void Merge(const Measurement& other) {
    for (size_t i = 0; i < per_model_us.size(); ++i) {
      per_model_us[i].insert(per_model_us[i].end(), other.per_model_us[i].begin(),
                             other.per_model_us[i].end());
    }
    for (const auto& [m, c] : other.errors) errors[m] += c;
    worst_relative_diff = std::max(worst_relative_diff, other.worst_relative_diff);
  }
};

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "serving_bench: %s\n", what.c_str());
  std::exit(1);
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// The difference of `got` from `want`, relative to max(1, max |want|); a
// negative value when the outputs do not correspond (count, name, shape).
double RelativeDiff(const std::vector<InferTensor>& got, const std::vector<InferTensor>& want) {
  if (got.size() != want.size()) return -1;
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (got[i].name != want[i].name) return -1;
    const double d = bench::MaxAbsDiffFp32(got[i], want[i]);
    if (d < 0) return -1;
    double scale = 1;
    const size_t n = want[i].data.size() / sizeof(float);
    for (size_t k = 0; k < n; ++k) {
      float v;
      std::memcpy(&v, want[i].data.data() + k * sizeof(float), sizeof(float));
      scale = std::max(scale, static_cast<double>(std::fabs(v)));
    }
    worst = std::max(worst, d / scale);
  }
  return worst;
}

constexpr double kTolerance = 1e-3;

// ------------------------------------------------------------ baseline

// Loads the models into this process one after another and runs the mix one
// request at a time: `warmup` seconds untimed, then `seconds` timed. Fills
// each workload's expected answer from its first run.
Measurement RunBaseline(std::vector<Workload>& work, double warmup, double seconds, int threads) {
  std::vector<TorchScriptBackend> backends(work.size());
  for (size_t i = 0; i < work.size(); ++i) {
    Status s = backends[i].Load(work[i].entry, "cpu", threads);
    if (!s.ok()) Fail("baseline: loading " + work[i].entry.name + ": " + s.ToString());
    auto out = backends[i].Run(work[i].task, work[i].inputs);
    if (!out.ok()) Fail("baseline: " + work[i].entry.name + ": " + out.status().ToString());
    if (work[i].expected.empty()) {
      work[i].expected = std::move(out).value();
    } else if (const double d = RelativeDiff(*out, work[i].expected); d < 0 || d > kTolerance) {
      Fail("baseline: " + work[i].entry.name + ": the output with " + std::to_string(threads) +
           " threads differs from the first baseline's");
    }
  }
  Measurement m(work.size());
  auto phase = [&](double duration, bool record) {
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(duration));
    for (uint64_t i = 0; Clock::now() < deadline; ++i) {
      const size_t k = i % work.size();
      const auto t0 = Clock::now();
      auto out = backends[k].Run(work[k].task, work[k].inputs);
      const auto t1 = Clock::now();
      if (!record) continue;
      if (!out.ok()) {
        ++m.errors[work[k].entry.name + ": " + out.status().ToString()];
      } else {
        m.per_model_us[k].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
    }
    if (record) m.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  };
  phase(warmup, false);
  phase(seconds, true);
  return m;
}

// ------------------------------------------------------------ the server

// A running `modelgrid serve`: its pid, the port it printed, and its
// stdout (drained by a thread so that the pipe never fills) and stderr log.
class Server {
 public:
  // Starts `argv` with stdout on a pipe and stderr into `log`; waits at most
  // `timeout` for the "serving on http://127.0.0.1:PORT" line.
  Server(const std::vector<std::string>& argv, const fs::path& log, std::chrono::seconds timeout)
      : log_(log) {
    int fds[2];
    if (pipe(fds) != 0) Fail("pipe failed");
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) Fail("fork failed");
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive the benchmark
      const int err = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fds[1], STDOUT_FILENO);
      if (err >= 0) dup2(err, STDERR_FILENO);
      close(fds[0]);
      close(fds[1]);
      execv(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] { Drain(fd); });
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return port_ > 0 || eof_; });
    if (port_ == 0) {
      const std::string why =
          eof_ ? "exited before listening" : "printed no 'serving on' line in time";
      lock.unlock();
      Stop(std::chrono::seconds(5));
      Fail("modelgrid serve " + why + "; stdout:\n" + stdout_ + "\nstderr (" + log_.string() +
           "):\n" + LogTail());
    }
  }
  ~Server() {
    if (pid_ > 0 && !stopped_) Stop(std::chrono::seconds(5));
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // True once the server closed its stdout (it exited).
  bool exited() {
    std::lock_guard lock(mu_);
    return eof_;
  }

  // Sends SIGTERM and waits at most `timeout` for the exit (then SIGKILL).
  // Returns "exit status N after X s" or what went wrong; `ok` says
  // whether it exited with status 0 in time.
  std::string Stop(std::chrono::seconds timeout, bool* ok = nullptr) {
    stopped_ = true;
    const auto start = Clock::now();
    kill(pid_, SIGTERM);
    int status = 0;
    std::string result;
    bool clean = false;
    while (true) {
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      const double waited = std::chrono::duration<double>(Clock::now() - start).count();
      char buf[96];
      if (r == pid_) {
        if (WIFEXITED(status)) {
          std::snprintf(buf, sizeof(buf), "exit status %d %.2f s after SIGTERM",
                        WEXITSTATUS(status), waited);
          clean = WEXITSTATUS(status) == 0;
        } else {
          std::snprintf(buf, sizeof(buf), "killed by signal %d %.2f s after SIGTERM",
                        WTERMSIG(status), waited);
        }
        result = buf;
        break;
      }
      if (r < 0 || Clock::now() - start > timeout) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        std::snprintf(buf, sizeof(buf), "did not exit within %lld s of SIGTERM (killed)",
                      static_cast<long long>(timeout.count()));
        result = buf;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (reader_.joinable()) reader_.join();
    if (ok) *ok = clean;
    return result;
  }

  // The last lines of the stderr log.
  std::string LogTail() const {
    std::ifstream in(log_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }

 private:
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

  fs::path log_;
  pid_t pid_ = -1;
  bool stopped_ = false;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string stdout_;
  int port_ = 0;
  bool eof_ = false;
};

// Polls GET /v2/health/ready until it answers 200, at most `timeout`;
// false at once when the server exits.
bool WaitReady(Server& server, std::chrono::seconds timeout) {
  httplib::Client cli("127.0.0.1", server.port());
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline && !server.exited()) {
    auto res = cli.Get("/v2/health/ready");
    if (res && res->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// One client thread's loop: requests until `deadline`, the model chosen by
// `next` round-robin; records into `m` when `record`.
void ClientLoop(int port, const std::vector<Workload>& work, std::atomic<uint64_t>& next,
                Clock::time_point deadline, bool record, Measurement& m) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_keep_alive(true);
  cli.set_tcp_nodelay(
      true);  // headers and body are two writes: no Nagle wait for the server's delayed ACK
  cli.set_decompress(false);  // no Accept-Encoding: the server sends bytes as they are
  cli.set_read_timeout(120, 0);
  cli.set_write_timeout(120, 0);
  while (Clock::now() < deadline) {
    const size_t k = next.fetch_add(1) % work.size();
    const Workload& w = work[k];
    httplib::Headers headers;
    if (w.body.json_header_length) {
      headers.emplace("Inference-Header-Content-Length",
                      std::to_string(*w.body.json_header_length));
    }
    const auto t0 = Clock::now();
    auto res =
        cli.Post("/v2/models/" + w.entry.name + "/infer", headers, w.body.body,
                 w.body.json_header_length ? "application/octet-stream" : "application/json");
    const auto t1 = Clock::now();
    if (!record) continue;
    const std::string& name = w.entry.name;
    if (!res) {
      ++m.errors[name + ": transport: " + httplib::to_string(res.error())];
      continue;
    }
    if (res->status != 200) {
      ++m.errors[name + ": HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 200)];
      continue;
    }
    std::optional<size_t> header_length;
    if (res->has_header("Inference-Header-Content-Length")) {
      header_length = std::strtoull(
          res->get_header_value("Inference-Header-Content-Length").c_str(), nullptr, 10);
    }
    auto decoded = DecodeInferResponse(res->body, header_length);
    if (!decoded.ok()) {
      ++m.errors[name + ": undecodable response: " + decoded.status().ToString()];
      continue;
    }
    const double diff = RelativeDiff(decoded->outputs, w.expected);
    if (diff < 0 || diff > kTolerance) {
      ++m.errors[name + ": outputs differ from the baseline's" +
                 (diff < 0 ? std::string(" (names or shapes)") : " by " + std::to_string(diff))];
      continue;
    }
    m.worst_relative_diff = std::max(m.worst_relative_diff, diff);
    m.per_model_us[k].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
}

// Runs `clients` threads for `warmup` seconds untimed, then `seconds` timed.
Measurement RunClients(int port, const std::vector<Workload>& work, int clients, double warmup,
                       double seconds) {
  Measurement total(work.size());
  std::atomic<uint64_t> next{0};
  for (bool record : {false, true}) {
    const double duration = record ? seconds : warmup;
    const auto start = Clock::now();
    const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(duration));
    std::vector<Measurement> parts(clients, Measurement(work.size()));
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] { ClientLoop(port, work, next, deadline, record, parts[c]); });
    }
    for (auto& t : threads) t.join();
    if (!record) continue;
    total.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    for (const auto& p : parts) total.Merge(p);
  }
  return total;
}

// ------------------------------------------------------------ report

void PrintSummaryRow(const char* setup, const Measurement& m) {
  const bench::LatencyStats s = bench::Summarize(m.All());
  std::printf("%-16s %9llu %9.1f %9.3f %9.3f %9.3f %9.3f %7llu\n", setup,
              static_cast<unsigned long long>(s.count), static_cast<double>(s.count) / m.seconds,
              s.p50 / 1000, s.p90 / 1000, s.p99 / 1000, s.mean / 1000,
              static_cast<unsigned long long>(m.ErrorCount()));
}

void PrintErrors(const char* setup, const Measurement& m) {
  std::printf("errors (%s): %llu\n", setup, static_cast<unsigned long long>(m.ErrorCount()));
  for (const auto& [message, count] : m.errors)
    std::printf("  %6llu x %s\n", static_cast<unsigned long long>(count), message.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::string zoo = MODELGRID_DEFAULT_ZOO;
  std::string modelgrid = MODELGRID_CLI_PATH;
  std::string models_text = "digits,mobilenet_v3_small,resnet18,gpt2,bert-base";
  std::string isolation = "model";
  std::vector<std::string> devices;
  double seconds = 10, warmup = 2;
  int clients = 4, tokens = 8, worker_threads = 0, start_timeout_s = 180;
  CLI::App app{
      "modelgrid serve under concurrent HTTP clients vs the models run one at a time in one "
      "process"};
  app.add_option("--zoo", zoo, "model repository (default: the build's small zoo)");
  app.add_option("--seconds", seconds, "timed seconds per setup")->check(CLI::PositiveNumber);
  app.add_option("--warmup-seconds", warmup, "untimed seconds per setup first")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--clients", clients, "concurrent HTTP client threads")->check(CLI::Range(1, 256));
  app.add_option("--isolation", isolation, "modelgrid serve --isolation: model, device or none");
  app.add_option("--models", models_text, "comma-separated zoo models of the mix");
  app.add_option("--tokens", tokens, "tokens per request for variable dims (gpt2, bert-base)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--worker-threads", worker_threads,
                 "modelgrid serve --worker-threads (0: its default)");
  app.add_option("--device", devices,
                 "modelgrid serve --device (repeatable; default: its discovery)");
  app.add_option("--modelgrid", modelgrid, "the modelgrid executable");
  app.add_option("--start-timeout-s", start_timeout_s,
                 "bounded wait for the server to listen and be ready");
  CLI11_PARSE(app, argc, argv);

  std::vector<Workload> work;
  for (const std::string& name : SplitList(models_text)) {
    Workload w;
    auto entry = OpenModel(fs::path(zoo) / name);
    if (!entry.ok())
      Fail(name + " (generate the zoo with tools/zoo/generate.py): " + entry.status().ToString());
    w.entry = std::move(entry).value();
    w.task = w.entry.config.tasks.count("encode") ? "encode" : "infer";
    auto inputs = bench::MakeInputs(w.entry, 1, tokens, 7);
    if (!inputs.ok()) Fail(inputs.status().ToString());
    w.inputs = std::move(inputs).value();
    InferRequest request;
    request.inputs = w.inputs;
    request.binary_data_output = true;
    if (w.task != "infer") request.parameters["task"] = w.task;
    auto body = EncodeInferRequest(request, /*binary_inputs=*/true);
    if (!body.ok()) Fail(name + ": " + body.status().ToString());
    w.body = std::move(body).value();
    work.push_back(std::move(w));
  }
  if (work.empty()) Fail("no models given");

  const std::string load_before = bench::LoadAverage();
  std::vector<int> baseline_threads = {
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};
  if (baseline_threads[0] != 1) baseline_threads.push_back(1);
  std::vector<Measurement> baselines;
  for (int threads : baseline_threads) {
    std::fprintf(stderr, "serving_bench: baseline, %d LibTorch threads, %.0f s + %.0f s warm-up\n",
                 threads, seconds, warmup);
    baselines.push_back(RunBaseline(work, warmup, seconds, threads));
  }
  size_t best = 0;
  for (size_t i = 1; i < baselines.size(); ++i) {
    if (static_cast<double>(baselines[i].Requests()) / baselines[i].seconds >
        static_cast<double>(baselines[best].Requests()) / baselines[best].seconds) {
      best = i;
    }
  }
  const Measurement& baseline = baselines[best];

  char tmpl[] = "/tmp/serving_bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Fail("mkdtemp failed");
  const fs::path tmp = tmpl, repo = tmp / "repository";
  fs::create_directories(repo);
  for (const Workload& w : work)
    fs::create_directory_symlink(fs::absolute(w.entry.dir), repo / w.entry.name);
  std::vector<std::string> args = {modelgrid,     "serve", "--repository", repo.string(),
                                   "--http-port", "0",     "--isolation",  isolation};
  if (worker_threads > 0)
    args.insert(args.end(), {"--worker-threads", std::to_string(worker_threads)});
  for (const auto& d : devices) args.insert(args.end(), {"--device", d});
  std::string command;
  for (size_t i = 1; i < args.size(); ++i) command += (i > 1 ? " " : "") + args[i];

  Measurement served(work.size());
  std::string server_exit;
  bool server_ok = false;
  pid_t server_pid = 0;
  {
    Server server(args, tmp / "serve.log", std::chrono::seconds(start_timeout_s));
    server_pid = server.pid();
    std::fprintf(stderr, "serving_bench: server pid %d listening on port %d; waiting for ready\n",
                 static_cast<int>(server_pid), server.port());
    if (!WaitReady(server, std::chrono::seconds(start_timeout_s))) {
      const std::string tail = server.LogTail();
      server.Stop(std::chrono::seconds(10));
      Fail("the server did not become ready (GET /v2/health/ready); stderr:\n" + tail);
    }
    std::fprintf(stderr, "serving_bench: ModelGrid, %d clients, %.0f s + %.0f s warm-up\n", clients,
                 seconds, warmup);
    served = RunClients(server.port(), work, clients, warmup, seconds);
    server_exit = server.Stop(std::chrono::seconds(60), &server_ok);
    if (!server_ok)
      std::fprintf(stderr, "serving_bench: server stderr:\n%s\n", server.LogTail().c_str());
  }
  fs::remove_all(tmp);
  const std::string load_after = bench::LoadAverage();

  std::printf("serving_bench — ModelGrid over HTTP vs the conventional one-process loop\n");
  std::printf("machine:   %s\n", bench::MachineLine().c_str());
  std::printf("date:      %s\n", bench::NowUtc().c_str());
  std::printf("load avg:  %s before, %s after (1, 5, 15 min; /proc/loadavg)\n", load_before.c_str(),
              load_after.c_str());
  std::printf("zoo:       %s\n", zoo.c_str());
  for (const Workload& w : work) {
    std::printf("input:     %-20s %-7s %s\n", w.entry.name.c_str(), w.task.c_str(),
                bench::DescribeTensors(w.inputs).c_str());
  }
  std::printf(
      "ModelGrid: modelgrid %s (pid %d); %d client threads (cpp-httplib, keep-alive, binary "
      "tensors in and\n"
      "           out), each request the next model round-robin; %.0f s warm-up, then %.0f s "
      "timed\n",
      command.c_str(), static_cast<int>(server_pid), clients, warmup, seconds);
  std::printf(
      "baseline:  the same %zu models loaded one after another into one process "
      "(TorchScriptBackend),\n"
      "           the same inputs and model order, one request at a time, no batching, no HTTP; "
      "%.0f s\n"
      "           warm-up, then %.0f s timed; run with LibTorch's default threads (the cores) and "
      "with 1\n",
      work.size(), warmup, seconds);
  std::printf("\n%-16s %9s %9s %9s %9s %9s %9s %7s\n", "setup", "requests", "req/s", "p50 ms",
              "p90 ms", "p99 ms", "mean ms", "errors");
  PrintSummaryRow("ModelGrid", served);
  for (size_t i = 0; i < baselines.size(); ++i) {
    const std::string label =
        "baseline " + std::to_string(baseline_threads[i]) + "t" + (i == best ? "*" : "");
    PrintSummaryRow(label.c_str(), baselines[i]);
  }
  std::printf("(* the faster baseline, used below; Nt = N LibTorch threads)\n");
  const bench::LatencyStats s_all = bench::Summarize(served.All()),
                            b_all = bench::Summarize(baseline.All());
  const double s_rps = static_cast<double>(s_all.count) / served.seconds;
  const double b_rps = static_cast<double>(b_all.count) / baseline.seconds;
  std::printf("ratio ModelGrid/baseline: requests/s %.2fx; p50 latency %.2fx; p99 latency %.2fx\n",
              b_rps > 0 ? s_rps / b_rps : 0.0, b_all.p50 > 0 ? s_all.p50 / b_all.p50 : 0.0,
              b_all.p99 > 0 ? s_all.p99 / b_all.p99 : 0.0);

  std::printf("\n%-20s %-7s | %-35s | %-35s\n", "", "", "ModelGrid",
              ("baseline " + std::to_string(baseline_threads[best]) + "t").c_str());
  std::printf("%-20s %-7s | %8s %8s %8s %8s | %8s %8s %8s %8s\n", "model", "task", "requests",
              "p50 ms", "p90 ms", "p99 ms", "requests", "p50 ms", "p90 ms", "p99 ms");
  for (size_t k = 0; k < work.size(); ++k) {
    const bench::LatencyStats s = bench::Summarize(served.per_model_us[k]);
    const bench::LatencyStats b = bench::Summarize(baseline.per_model_us[k]);
    std::printf("%-20s %-7s | %8llu %8.3f %8.3f %8.3f | %8llu %8.3f %8.3f %8.3f\n",
                work[k].entry.name.c_str(), work[k].task.c_str(),
                static_cast<unsigned long long>(s.count), s.p50 / 1000, s.p90 / 1000, s.p99 / 1000,
                static_cast<unsigned long long>(b.count), b.p50 / 1000, b.p90 / 1000, b.p99 / 1000);
  }
  std::printf("\n");
  PrintErrors("ModelGrid", served);
  for (size_t i = 0; i < baselines.size(); ++i) {
    PrintErrors(("baseline " + std::to_string(baseline_threads[i]) + "t").c_str(), baselines[i]);
  }
  std::printf(
      "answers:   every ModelGrid response decoded and compared with the baseline's output: worst "
      "difference "
      "%.1e of max(1, max |expected|) (tolerance %.0e)\n",
      served.worst_relative_diff, kTolerance);
  std::printf("server:    %s\n", server_exit.c_str());
  uint64_t baseline_errors = 0;
  for (const auto& b : baselines) baseline_errors += b.ErrorCount();
  return served.ErrorCount() == 0 && baseline_errors == 0 && server_ok ? 0 : 1;
}

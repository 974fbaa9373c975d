// serving_bench: requests per second and latency of the real `modelgrid
// serve` under concurrent HTTP clients, against the conventional setup of
// the seed's paper measured in the same run (issue 3, section 9).
//
//   serving_bench [--zoo DIR] [--seconds S] [--clients C] [--isolation I]
//                 [--models a,b,...] [--tokens N] [--warmup-seconds W] [--slices K]
//                 [--worker-threads N] [--device SPEC]... [--modelgrid PATH]
//
// The request mix: one request per model in turn (round-robin over a shared
// counter), batch 1, inputs made once from each model's config.yaml
// (bench_util.h MakeInputs: FP32 uniform in [0,1), token ids; `--tokens`
// for variable dims) and used by both sides; the task is `encode` for models
// that declare it (bert-base), `infer` otherwise (gpt2: one forward over the
// prompt).
//
// Baseline: the models loaded one after another into this process
// (TorchScriptBackend), the same request sequence run one request at a
// time: no batching, no HTTP. Twice: with LibTorch's default intra-op
// threads (the machine's cores) and with 1 thread (what each ModelGrid
// worker gets on a small machine); on a loaded machine more threads can be
// much slower, so the ratio is taken against the faster of the two. The
// first baseline's output per model is the expected answer.
//
// ModelGrid: `modelgrid serve --repository TMP --http-port 0 --isolation I`
// on a temporary folder of symlinks to the chosen zoo models; a bounded wait
// for its "serving on" line and GET /v2/health/ready; C client threads, each
// with its own keep-alive cpp-httplib client (TCP_NODELAY), POST
// /v2/models/{m}/infer with binary tensor data in and out (Triton's binary
// extension: EncodeInferRequest / DecodeInferResponse). Every response is
// decoded and compared with the expected answer; a transport error, an HTTP
// status other than 200, an undecodable body or an answer off by more than
// 1e-3 × max(1, max |expected|) is an error. SIGTERM at the end, with a
// bounded wait for exit status 0.
//
// Timing: W seconds of warm-up per setup, then the S timed seconds of each
// setup cut into K slices run in turn (baseline, baseline 1 thread,
// ModelGrid, baseline, ...), so that a change of the shared machine's load
// hits every setup alike. The baselines stay loaded while the server runs
// (idle between their slices).
//
// Prints machine, date, load average before and after, inputs, clients and
// isolation, each setup's requests/s and p50/p90/p99 latency overall and per
// model, the errors, and the ratio ModelGrid / baseline. Exit status 1 when
// anything failed (server start, an error, a non-zero server exit).

#include <httplib.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "modelgrid/backend/backend.h"
#include "modelgrid/kserve/infer_codec.h"
#include "modelgrid/repository.h"
#include "serve_process.h"

namespace {

using namespace modelgrid;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr double kTolerance = 1e-3;  // relative to max(1, max |expected|)

// One model of the mix: its request (decoded and encoded) and the answer.
struct Workload {
  ModelEntry entry;
  std::string task;
  std::vector<InferTensor> inputs;
  EncodedBody body;                   // the HTTP request, binary inputs and outputs
  std::vector<InferTensor> expected;  // the first baseline's output
};

// The latencies (µs) of one setup's successful requests per model, its
// errors by message, and the timed seconds.
struct Measurement {
  std::vector<std::vector<double>> per_model_us;
  std::map<std::string, uint64_t> errors;
  double seconds = 0;              // sum over slices: start until the last request ended
  double worst_relative_diff = 0;  // ModelGrid: largest output difference seen, relative

  explicit Measurement(size_t models) : per_model_us(models) {}
  uint64_t Requests() const {
    uint64_t n = 0;
    for (const auto& v : per_model_us) n += v.size();
    return n;
  }
  double RequestsPerSecond() const {
    return seconds > 0 ? static_cast<double>(Requests()) / seconds : 0.0;
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

Clock::time_point After(Clock::time_point start, double seconds) {
  return start +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
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

// ------------------------------------------------------------ baseline

// The conventional setup: every model in this process, one request at a time.
struct Baseline {
  int threads = 1;  // LibTorch intra-op threads
  std::vector<TorchScriptBackend> backends;
  Measurement m;
  Baseline(int t, size_t models) : threads(t), backends(models), m(models) {}
};

// Loads the models one after another and runs each once: the first
// baseline's outputs become the expected answers; later ones must agree.
void LoadBaseline(Baseline& b, std::vector<Workload>& work) {
  for (size_t i = 0; i < work.size(); ++i) {
    Status s = b.backends[i].Load(work[i].entry, "cpu", b.threads);
    if (!s.ok()) Fail("baseline: loading " + work[i].entry.name + ": " + s.ToString());
    auto out = b.backends[i].Run(work[i].task, work[i].inputs);
    if (!out.ok()) Fail("baseline: " + work[i].entry.name + ": " + out.status().ToString());
    if (work[i].expected.empty()) {
      work[i].expected = std::move(out).value();
    } else if (const double d = RelativeDiff(*out, work[i].expected); d < 0 || d > kTolerance) {
      Fail("baseline: " + work[i].entry.name + ": the output with " + std::to_string(b.threads) +
           " threads differs from the first baseline's");
    }
  }
}

// Runs the mix one request at a time for `duration` seconds, continuing the
// round-robin at `*next`; records into b.m when `record`. LibTorch's thread
// count is process-wide and set by Load: the first model is loaded again
// with b.threads first, so that each baseline runs with its own.
void RunBaselineSlice(Baseline& b, const std::vector<Workload>& work, double duration, bool record,
                      uint64_t* next) {
  Status s = b.backends[0].Load(work[0].entry, "cpu", b.threads);
  if (!s.ok()) Fail("baseline: reloading " + work[0].entry.name + ": " + s.ToString());
  const auto start = Clock::now();
  const auto deadline = After(start, duration);
  while (Clock::now() < deadline) {
    const size_t k = (*next)++ % work.size();
    const auto t0 = Clock::now();
    auto out = b.backends[k].Run(work[k].task, work[k].inputs);
    const auto t1 = Clock::now();
    if (!record) continue;
    if (!out.ok()) {
      ++b.m.errors[work[k].entry.name + ": " + out.status().ToString()];
    } else {
      b.m.per_model_us[k].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
  }
  if (record) b.m.seconds += std::chrono::duration<double>(Clock::now() - start).count();
}

// ------------------------------------------------------------ ModelGrid

// One client thread's loop: requests until `deadline`, the model chosen by
// `next` round-robin; records into `m` when `record`.
void ClientLoop(int port, const std::vector<Workload>& work, std::atomic<uint64_t>& next,
                Clock::time_point deadline, bool record, Measurement& m) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_keep_alive(true);
  // Headers and body go out in two writes: without TCP_NODELAY the body
  // waits for the server's delayed ACK (about 40 ms on Linux).
  cli.set_tcp_nodelay(true);
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

// Runs `clients` threads for `duration` seconds; merges into `total` when
// `record`.
void RunClientSlice(int port, const std::vector<Workload>& work, int clients, double duration,
                    bool record, std::atomic<uint64_t>& next, Measurement& total) {
  const auto start = Clock::now();
  const auto deadline = After(start, duration);
  std::vector<Measurement> parts(clients, Measurement(work.size()));
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] { ClientLoop(port, work, next, deadline, record, parts[c]); });
  }
  for (auto& t : threads) t.join();
  if (!record) return;
  total.seconds += std::chrono::duration<double>(Clock::now() - start).count();
  for (const auto& p : parts) total.Merge(p);
}

// ------------------------------------------------------------ report

void PrintSummaryRow(const std::string& setup, const Measurement& m) {
  const bench::LatencyStats s = bench::Summarize(m.All());
  std::printf("%-16s %9llu %9.1f %9.3f %9.3f %9.3f %9.3f %7llu\n", setup.c_str(),
              static_cast<unsigned long long>(s.count), m.RequestsPerSecond(), s.p50 / 1000,
              s.p90 / 1000, s.p99 / 1000, s.mean / 1000,
              static_cast<unsigned long long>(m.ErrorCount()));
}

void PrintErrors(const std::string& setup, const Measurement& m) {
  std::printf("errors (%s): %llu\n", setup.c_str(),
              static_cast<unsigned long long>(m.ErrorCount()));
  for (const auto& [message, count] : m.errors) {
    std::printf("  %6llu x %s\n", static_cast<unsigned long long>(count), message.c_str());
  }
}

void PrintPerModel(const std::vector<Workload>& work, const Measurement& served,
                   const Baseline& baseline) {
  std::printf("\n%-20s %-7s | %-35s | baseline %dt\n", "", "", "ModelGrid", baseline.threads);
  std::printf("%-20s %-7s | %8s %8s %8s %8s | %8s %8s %8s %8s\n", "model", "task", "requests",
              "p50 ms", "p90 ms", "p99 ms", "requests", "p50 ms", "p90 ms", "p99 ms");
  for (size_t k = 0; k < work.size(); ++k) {
    const bench::LatencyStats s = bench::Summarize(served.per_model_us[k]);
    const bench::LatencyStats b = bench::Summarize(baseline.m.per_model_us[k]);
    std::printf("%-20s %-7s | %8llu %8.3f %8.3f %8.3f | %8llu %8.3f %8.3f %8.3f\n",
                work[k].entry.name.c_str(), work[k].task.c_str(),
                static_cast<unsigned long long>(s.count), s.p50 / 1000, s.p90 / 1000, s.p99 / 1000,
                static_cast<unsigned long long>(b.count), b.p50 / 1000, b.p90 / 1000, b.p99 / 1000);
  }
}

// The mix, its inputs and encoded requests, from the zoo.
std::vector<Workload> MakeWorkloads(const std::string& zoo, const std::string& models, int tokens) {
  std::vector<Workload> work;
  for (const std::string& name : SplitList(models)) {
    Workload w;
    auto entry = OpenModel(fs::path(zoo) / name);
    if (!entry.ok()) {
      Fail(name + " (generate the zoo with tools/zoo/generate.py): " + entry.status().ToString());
    }
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
  return work;
}

}  // namespace

int main(int argc, char** argv) {
  std::string zoo = MODELGRID_DEFAULT_ZOO;
  std::string modelgrid = MODELGRID_CLI_PATH;
  std::string models_text = "digits,mobilenet_v3_small,resnet18,gpt2,bert-base";
  std::string isolation = "model";
  std::vector<std::string> devices;
  double seconds = 10, warmup = 2;
  int clients = 4, tokens = 8, slices = 5, worker_threads = 0, start_timeout_s = 180;
  CLI::App app{"modelgrid serve under concurrent HTTP clients vs the models run one at a time"};
  app.add_option("--zoo", zoo, "model repository (default: the build's small zoo)");
  app.add_option("--seconds", seconds, "timed seconds per setup")->check(CLI::PositiveNumber);
  app.add_option("--warmup-seconds", warmup, "untimed seconds per setup first")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--slices", slices, "timed slices per setup, run in turn")
      ->check(CLI::Range(1, 1000));
  app.add_option("--clients", clients, "concurrent HTTP client threads")->check(CLI::Range(1, 256));
  app.add_option("--isolation", isolation, "modelgrid serve --isolation: model, device or none");
  app.add_option("--models", models_text, "comma-separated zoo models of the mix");
  app.add_option("--tokens", tokens, "tokens per request for variable dims (gpt2, bert-base)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--worker-threads", worker_threads,
                 "modelgrid serve --worker-threads (0: its default)");
  app.add_option("--device", devices, "modelgrid serve --device (repeatable; default: discovery)");
  app.add_option("--modelgrid", modelgrid, "the modelgrid executable");
  app.add_option("--start-timeout-s", start_timeout_s, "bounded wait for listening and ready");
  CLI11_PARSE(app, argc, argv);

  std::vector<Workload> work = MakeWorkloads(zoo, models_text, tokens);
  const std::string load_before = bench::LoadAverage();

  std::vector<std::unique_ptr<Baseline>> baselines;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int threads : {cores, 1}) {
    if (!baselines.empty() && threads == baselines[0]->threads) continue;
    baselines.push_back(std::make_unique<Baseline>(threads, work.size()));
    LoadBaseline(*baselines.back(), work);
  }

  char tmpl[] = "/tmp/serving_bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Fail("mkdtemp failed");
  const fs::path tmp = tmpl, repo = tmp / "repository";
  fs::create_directories(repo);
  for (const Workload& w : work) {
    fs::create_directory_symlink(fs::absolute(w.entry.dir), repo / w.entry.name);
  }
  std::vector<std::string> args = {modelgrid,     "serve", "--repository", repo.string(),
                                   "--http-port", "0",     "--isolation",  isolation,
                                   "--grpc-port", "0"};
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
    auto server =
        bench::ServeProcess::Start(args, tmp / "serve.log", std::chrono::seconds(start_timeout_s));
    if (!server.ok()) Fail(server.status().ToString());
    bench::ServeProcess& s = **server;
    server_pid = s.pid();
    std::fprintf(stderr, "serving_bench: server pid %d on port %d; waiting for ready\n",
                 static_cast<int>(server_pid), s.port());
    if (!s.WaitReady(std::chrono::seconds(start_timeout_s))) {
      const std::string tail = s.LogTail();
      s.Stop(std::chrono::seconds(10));
      Fail("the server did not become ready (GET /v2/health/ready); stderr:\n" + tail);
    }
    std::fprintf(stderr, "serving_bench: warm-up %.0f s per setup, then %d x %.1f s slices each\n",
                 warmup, slices, seconds / slices);
    uint64_t baseline_next = 0;
    std::atomic<uint64_t> grid_next{0};
    for (int slice = -1; slice < slices; ++slice) {  // slice -1: the warm-up
      const bool record = slice >= 0;
      const double duration = record ? seconds / slices : warmup;
      for (auto& b : baselines) RunBaselineSlice(*b, work, duration, record, &baseline_next);
      RunClientSlice(s.port(), work, clients, duration, record, grid_next, served);
    }
    server_exit = s.Stop(std::chrono::seconds(60), &server_ok);
    if (!server_ok)
      std::fprintf(stderr, "serving_bench: server stderr:\n%s\n", s.LogTail().c_str());
  }
  fs::remove_all(tmp);
  const std::string load_after = bench::LoadAverage();

  size_t best = 0;
  for (size_t i = 1; i < baselines.size(); ++i) {
    if (baselines[i]->m.RequestsPerSecond() > baselines[best]->m.RequestsPerSecond()) best = i;
  }
  const Baseline& baseline = *baselines[best];

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
  std::printf("ModelGrid: modelgrid %s (pid %d)\n", command.c_str(), static_cast<int>(server_pid));
  std::printf(
      "           %d client threads (cpp-httplib, keep-alive, TCP_NODELAY, binary tensors in\n"
      "           and out), each request the next model round-robin\n",
      clients);
  std::printf(
      "baseline:  the same %zu models loaded one after another into this process\n"
      "           (TorchScriptBackend), the same inputs and model order, one request at a\n"
      "           time, no batching, no HTTP; with %d LibTorch threads (the cores) and with 1\n",
      work.size(), cores);
  std::printf(
      "timing:    %.0f s warm-up per setup, then %.0f s per setup in %d slices run in turn\n",
      warmup, seconds, slices);
  std::printf("\n%-16s %9s %9s %9s %9s %9s %9s %7s\n", "setup", "requests", "req/s", "p50 ms",
              "p90 ms", "p99 ms", "mean ms", "errors");
  PrintSummaryRow("ModelGrid", served);
  for (size_t i = 0; i < baselines.size(); ++i) {
    PrintSummaryRow(
        "baseline " + std::to_string(baselines[i]->threads) + "t" + (i == best ? "*" : ""),
        baselines[i]->m);
  }
  std::printf("(Nt = N LibTorch threads; * the faster baseline, used for the ratio)\n");
  const bench::LatencyStats s_all = bench::Summarize(served.All());
  const bench::LatencyStats b_all = bench::Summarize(baseline.m.All());
  const double b_rps = baseline.m.RequestsPerSecond();
  std::printf("ratio ModelGrid/baseline: requests/s %.2fx; p50 latency %.2fx; p99 latency %.2fx\n",
              b_rps > 0 ? served.RequestsPerSecond() / b_rps : 0.0,
              b_all.p50 > 0 ? s_all.p50 / b_all.p50 : 0.0,
              b_all.p99 > 0 ? s_all.p99 / b_all.p99 : 0.0);
  PrintPerModel(work, served, baseline);

  std::printf("\n");
  PrintErrors("ModelGrid", served);
  uint64_t baseline_errors = 0;
  for (const auto& b : baselines) {
    PrintErrors("baseline " + std::to_string(b->threads) + "t", b->m);
    baseline_errors += b->m.ErrorCount();
  }
  std::printf(
      "answers:   every ModelGrid response decoded and compared with the expected output:\n"
      "           worst difference %.1e of max(1, max |expected|) (tolerance %.0e)\n",
      served.worst_relative_diff, kTolerance);
  std::printf("server:    %s\n", server_exit.c_str());
  return served.ErrorCount() == 0 && baseline_errors == 0 && server_ok ? 0 : 1;
}

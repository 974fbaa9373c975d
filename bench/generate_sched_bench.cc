// generate_sched_bench: how the real `modelgrid serve` schedules text
// generation on one model (issue 12 §4): head-of-line blocking of short
// requests behind a long generation, and generated tokens/s under
// concurrent clients vs rows batched into one request.
//
//   generate_sched_bench [--zoo DIR] [--models gpt2-hf,llama-tiny]
//       [--worker-threads 1] [--blas-threads 1] [--prompt-tokens 8]
//       [--long-tokens 240] [--short-tokens 4] [--short-clients 1,4]
//       [--short-alone 5] [--start-delay-ms 20] [--hol-runs 5]
//       [--tokens 64] [--clients 1,2,4,8] [--batches 2,4,8] [--tput-runs 5]
//       [--budget-s 1500] [--modelgrid PATH]
//
// Two ways the same server runs a generation, chosen per request, so both
// are measured against one server in one run:
//   chunked   POST /v2/models/{m}/infer, parameters {"task": "generate",
//             "max_new_tokens": N, "ignore_eos": true}: the service's
//             GenerateAsync (src/service/service_generate.cc) runs it in
//             calls of ServiceOptions::generate_chunk_tokens (4) tokens
//             through one backend session, each call queued anew, so other
//             requests to the model run between two calls;
//   one-call  the same request with a unique "session" parameter added:
//             InferAsync then hands the call to the model as it is (it
//             takes a request that names a session for one of the
//             service's own calls), and the backend, given a session
//             without chunk_tokens, generates all N tokens in that one
//             call. This is what generation is with chunking off (the
//             server has no flag for generate_chunk_tokens; a model with
//             replicas > 1 also generates in one call).
// Greedy decoding, prompt = --prompt-tokens ids from a fixed seed in
// [1, vocab − 2] (config.json vocab_size); new tokens are capped so that
// prompt + new fits the model's positions (n_positions /
// max_position_embeddings). Every reply is checked: HTTP 200,
// generated_ids INT64 [B,W] with N ids per row, finish_reason "length";
// anything else is an error (exit status 1). The long generation's tokens
// must be the same in both modes (printed).
//
// 1. Head-of-line, per model, mode and number of short clients S: per run
//    (a) the long generation (--long-tokens) alone; (b) S clients sending
//    short generations (--short-tokens, one call in either mode at 4)
//    back to back, --short-alone each, nothing else running; (c) the long
//    generation again, and --start-delay-ms after it was sent, S clients
//    sending short generations back to back until it has returned. A
//    short request counts as "during" when it was sent before the long
//    one returned. The modes alternate run by run. Figures: short latency
//    alone and during (median and max over all runs' samples), short
//    requests answered during the long one (median per run), the long
//    one's time alone and with the shorts (median over runs).
// 2. Throughput, per model and mode: C concurrent clients (one thread and
//    keep-alive connection each, released together) each sending one
//    request of 1 row × --tokens new tokens; and one request of B rows ×
//    --tokens. Figure: rows·tokens / wall time from the release until the
//    last reply, median over --tput-runs; also the median request latency
//    (when the clients got their answers). Ratios are to 1 client × 1 row
//    chunked and to 1 client × 1 row of the same mode, measured in the same
//    run.
//
// The server: `modelgrid serve --repository TMP --http-port 0 --grpc-port
// -1 --worker-threads T --http-threads 32 --http-idle-timeout 600` on a
// temporary folder of symlinks to the chosen zoo models (one worker
// process per model), OPENBLAS_NUM_THREADS=--blas-threads in its
// environment (OpenBLAS keeps its own pool, which --worker-threads does not
// set). Bounded: a start timeout, a read timeout per request, --budget-s
// for the whole bench (runs left are skipped and the table says how many
// ran), SIGTERM at the end with a bounded wait.
//
// Prints machine, date, load average at every section's start and end,
// the server's command line, inputs and the tables (Markdown).

#include <httplib.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "modelgrid/repository.h"
#include "serve_process.h"

namespace {

using namespace modelgrid;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace fs = std::filesystem;

enum class Mode { kChunked, kOneCall };
constexpr Mode kModes[] = {Mode::kChunked, Mode::kOneCall};
const char* ModeName(Mode m) { return m == Mode::kChunked ? "chunked" : "one-call"; }

struct Options {
  std::string zoo = MODELGRID_DEFAULT_ZOO_HF;
  std::string modelgrid = MODELGRID_CLI_PATH;
  std::vector<std::string> models = {"gpt2-hf", "llama-tiny"};
  int worker_threads = 1, blas_threads = 1;
  int64_t prompt = 8, long_tokens = 240, short_tokens = 4, tokens = 64;
  std::vector<int> short_clients = {1, 4}, clients = {1, 2, 4, 8};
  std::vector<int64_t> batches = {2, 4, 8};
  int short_alone = 5, start_delay_ms = 20, hol_runs = 5, tput_runs = 5;
  int start_timeout_s = 180, request_timeout_s = 300;
  double budget_s = 1500;
};

// The temporary repository folder, removed by Die as well as at the end.
fs::path g_tmp;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "generate_sched_bench: %s\n", what.c_str());
  if (!g_tmp.empty()) {
    std::error_code ec;
    fs::remove_all(g_tmp, ec);
  }
  std::exit(1);
}

double Max(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
}
double Min(const std::vector<double>& v) {
  return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
}
double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

// A model of the run: its prompt and the lengths it can take.
struct Model {
  std::string name;
  fs::path dir;
  int64_t vocab = 0, positions = 0;
  std::vector<int64_t> prompt;  // --prompt-tokens ids
  int64_t long_tokens = 0, tokens = 0, short_tokens = 0;
};

Model OpenZooModel(const Options& o, const std::string& name) {
  auto entry = OpenModel(fs::path(o.zoo) / name);
  if (!entry.ok()) Die("opening " + name + ": " + entry.status().ToString());
  Model m;
  m.name = name;
  m.dir = entry->dir;
  m.vocab = bench::VocabSize(*entry, 0);
  if (m.vocab < 4) Die(name + ": config.json has no vocab_size >= 4 (not a Hugging Face folder?)");
  std::ifstream in(*entry->hf_config);
  const json cfg = json::parse(in, nullptr, /*allow_exceptions=*/false);
  for (const char* key : {"n_positions", "max_position_embeddings", "n_ctx"}) {
    if (cfg.is_object() && cfg.contains(key) && cfg[key].is_number_integer()) {
      m.positions = cfg[key].get<int64_t>();
      break;
    }
  }
  const int64_t room = m.positions > 0 ? m.positions - o.prompt : o.long_tokens;
  if (room < 1)
    Die(name + ": the prompt does not fit its " + std::to_string(m.positions) + " positions");
  m.long_tokens = std::min(o.long_tokens, room);
  m.tokens = std::min(o.tokens, room);
  m.short_tokens = std::min(o.short_tokens, room);
  std::mt19937 gen(42);
  for (int64_t i = 0; i < o.prompt; ++i) {
    m.prompt.push_back(1 + static_cast<int64_t>(gen() % static_cast<uint32_t>(m.vocab - 2)));
  }
  return m;
}

// The KServe infer body of a generation of `rows` copies of the prompt.
std::string GenerateBody(const Model& m, int64_t rows, int64_t tokens, Mode mode) {
  static std::atomic<uint64_t> next_session{1};
  json data = json::array();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t id : m.prompt) data.push_back(id);
  json params = {{"task", "generate"}, {"max_new_tokens", tokens}, {"ignore_eos", true}};
  if (mode == Mode::kOneCall) {
    params["session"] = "sched-bench-" + std::to_string(::getpid()) + "-" +
                        std::to_string(next_session.fetch_add(1));
  }
  json input = {{"name", "input_ids"},
                {"datatype", "INT64"},
                {"shape", {rows, static_cast<int64_t>(m.prompt.size())}},
                {"data", data}};
  return json{{"inputs", json::array({input})}, {"parameters", params}}.dump();
}

// Errors by message, from any thread.
struct Errors {
  std::mutex mu;
  std::map<std::string, uint64_t> count;
  void Add(const std::string& e) {
    std::lock_guard lock(mu);
    ++count[e.substr(0, 300)];
  }
  uint64_t Total() {
    std::lock_guard lock(mu);
    uint64_t n = 0;
    for (const auto& [e, c] : count) n += c;
    return n;
  }
};

// One generation request: its latency (s) and the ids of row 0, or an
// error recorded in `errors` (then ok is false).
struct Reply {
  bool ok = false;
  double seconds = 0;
  std::vector<int64_t> ids;
};

Reply Generate(httplib::Client& cli, const Model& m, int64_t rows, int64_t tokens, Mode mode,
               Errors& errors) {
  const std::string body = GenerateBody(m, rows, tokens, mode);
  const std::string where = m.name + " " + ModeName(mode) + ": ";
  Reply reply;
  const auto t0 = Clock::now();
  auto res = cli.Post("/v2/models/" + m.name + "/infer", body, "application/json");
  reply.seconds = Since(t0);
  if (!res) {
    errors.Add(where + "transport: " + httplib::to_string(res.error()));
    return reply;
  }
  if (res->status != 200) {
    errors.Add(where + "HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 200));
    return reply;
  }
  const json j = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  const json* ids = nullptr;
  const json* reasons = nullptr;
  if (j.is_object() && j.contains("outputs") && j["outputs"].is_array()) {
    for (const json& out : j["outputs"]) {
      if (out.value("name", "") == "generated_ids") ids = &out;
      if (out.value("name", "") == "finish_reason") reasons = &out;
    }
  }
  if (!ids || !reasons || !(*ids)["shape"].is_array() || (*ids)["shape"].size() != 2 ||
      (*ids)["shape"][0] != rows || !(*ids)["data"].is_array()) {
    errors.Add(where + "no generated_ids [" + std::to_string(rows) + ",N] and finish_reason");
    return reply;
  }
  const auto width = (*ids)["shape"][1].get<size_t>();
  const json& flat = (*ids)["data"];
  if (flat.size() != static_cast<size_t>(rows) * width) {
    errors.Add(where + "generated_ids data does not match its shape");
    return reply;
  }
  for (int64_t r = 0; r < rows; ++r) {
    int64_t n = 0;
    for (size_t i = 0; i < width; ++i) {
      const int64_t id = flat[r * width + i].get<int64_t>();
      if (id < 0) continue;
      ++n;
      if (r == 0) reply.ids.push_back(id);
    }
    const json& why = (*reasons)["data"];
    const std::string reason =
        why.is_array() && why.size() > static_cast<size_t>(r) && why[r].is_string()
            ? why[r].get<std::string>()
            : "?";
    if (n != tokens || reason != "length") {
      errors.Add(where + "row generated " + std::to_string(n) + " tokens (finish_reason '" +
                 reason + "'), asked " + std::to_string(tokens));
      return reply;
    }
  }
  reply.ok = true;
  return reply;
}

// A keep-alive client per thread index, made once per server.
class Clients {
 public:
  Clients(int port, int count, int timeout_s) {
    for (int i = 0; i < count; ++i) {
      auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
      c->set_keep_alive(true);
      c->set_tcp_nodelay(true);
      c->set_decompress(false);
      c->set_read_timeout(timeout_s, 0);
      c->set_write_timeout(timeout_s, 0);
      clients_.push_back(std::move(c));
    }
  }
  httplib::Client& operator[](size_t i) { return *clients_.at(i); }

 private:
  std::vector<std::unique_ptr<httplib::Client>> clients_;
};

// ------------------------------------------------------------ head-of-line

struct HolCell {
  std::vector<double> short_alone_s, short_during_s, answered_during, long_with_s;
};
struct HolMode {
  std::vector<double> long_alone_s;
  std::map<int, HolCell> by_clients;
  std::vector<int64_t> long_ids;  // the first long generation's tokens
};

// S clients, `each` short requests back to back, nothing else running.
void ShortsAlone(Clients& cl, const Model& m, Mode mode, int s, int each, Errors& errors,
                 HolCell& cell) {
  std::vector<std::vector<double>> got(s);
  std::vector<std::thread> threads;
  for (int c = 0; c < s; ++c) {
    threads.emplace_back([&, c] {
      for (int i = 0; i < each; ++i) {
        Reply r = Generate(cl[1 + c], m, 1, m.short_tokens, mode, errors);
        if (r.ok) got[c].push_back(r.seconds);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& g : got) cell.short_alone_s.insert(cell.short_alone_s.end(), g.begin(), g.end());
}

// The long generation, and S clients sending shorts from `delay` after it
// was sent until it returned. Returns the long one's reply.
Reply LongWithShorts(Clients& cl, const Model& m, Mode mode, int s, std::chrono::milliseconds delay,
                     Errors& errors, HolCell& cell) {
  std::atomic<bool> long_done{false};
  Clock::time_point long_end;
  Reply long_reply;
  const auto t0 = Clock::now();
  std::thread long_thread([&] {
    long_reply = Generate(cl[0], m, 1, m.long_tokens, mode, errors);
    long_end = Clock::now();
    long_done.store(true);
  });
  std::this_thread::sleep_until(t0 + delay);
  struct Sample {
    Clock::time_point sent;
    double seconds;
  };
  std::vector<std::vector<Sample>> got(s);
  std::vector<std::thread> threads;
  for (int c = 0; c < s; ++c) {
    threads.emplace_back([&, c] {
      while (!long_done.load()) {
        const auto sent = Clock::now();
        Reply r = Generate(cl[1 + c], m, 1, m.short_tokens, mode, errors);
        if (r.ok) got[c].push_back({sent, r.seconds});
      }
    });
  }
  long_thread.join();
  for (auto& t : threads) t.join();
  double answered = 0;
  for (const auto& g : got) {
    for (const Sample& x : g) {
      if (x.sent >= long_end) continue;
      cell.short_during_s.push_back(x.seconds);
      ++answered;
    }
  }
  cell.answered_during.push_back(answered);
  if (long_reply.ok) cell.long_with_s.push_back(long_reply.seconds);
  return long_reply;
}

// ------------------------------------------------------------ throughput

struct TputRow {
  Mode mode;
  int clients = 1;
  int64_t rows = 1;
  std::vector<double> wall_s, request_s;
};

// `clients` threads released together, each one request of `rows` rows.
void Concurrent(Clients& cl, const Model& m, TputRow& row, Errors& errors) {
  std::latch ready(row.clients + 1);
  std::atomic<bool> go{false};
  std::vector<double> latency(row.clients, -1);
  std::vector<std::thread> threads;
  for (int c = 0; c < row.clients; ++c) {
    threads.emplace_back([&, c] {
      ready.count_down();
      while (!go.load()) std::this_thread::yield();
      Reply r = Generate(cl[c], m, row.rows, m.tokens, row.mode, errors);
      if (r.ok) latency[c] = r.seconds;
    });
  }
  ready.arrive_and_wait();
  const auto t0 = Clock::now();
  go.store(true);
  for (auto& t : threads) t.join();
  const double wall = Since(t0);
  if (std::any_of(latency.begin(), latency.end(), [](double v) { return v < 0; })) return;
  row.wall_s.push_back(wall);
  row.request_s.insert(row.request_s.end(), latency.begin(), latency.end());
}

// ------------------------------------------------------------ report

std::string Ms(double s) { return Fmt("%.1f", s * 1000); }

void PrintHol(const Model& m, const Options& o, std::map<Mode, HolMode>& hol,
              const std::string& load) {
  std::printf(
      "\n### Head-of-line: %s (prompt %zu, long %lld new tokens, short %lld new tokens, "
      "start delay %d ms; load %s)\n\n",
      m.name.c_str(), m.prompt.size(), static_cast<long long>(m.long_tokens),
      static_cast<long long>(m.short_tokens), o.start_delay_ms, load.c_str());
  std::printf(
      "| mode | short clients | runs | short alone p50 / max ms | short during long p50 / max ms "
      "| × alone (p50) | shorts answered during long (median/run) | long alone s | long with "
      "shorts s | long × alone |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (Mode mode : kModes) {
    HolMode& h = hol[mode];
    const double alone = bench::Median(h.long_alone_s);
    for (int s : o.short_clients) {
      HolCell& c = h.by_clients[s];
      const double sa = bench::Median(c.short_alone_s), sd = bench::Median(c.short_during_s);
      const double lw = bench::Median(c.long_with_s);
      std::printf(
          "| %s | %d | %zu | %s / %s | %s / %s | %s | %.0f | %.3f | %.3f | %s |\n", ModeName(mode),
          s, c.long_with_s.size(), Ms(sa).c_str(), Ms(Max(c.short_alone_s)).c_str(), Ms(sd).c_str(),
          Ms(Max(c.short_during_s)).c_str(), sa > 0 ? Fmt("%.2f×", sd / sa).c_str() : "—",
          bench::Median(c.answered_during), alone, lw, alone > 0 ? Fmt("%.2f×", lw / alone).c_str() : "—");
    }
  }
  for (int s : o.short_clients) {
    const double blocked = bench::Median(hol[Mode::kOneCall].by_clients[s].short_during_s);
    const double inter = bench::Median(hol[Mode::kChunked].by_clients[s].short_during_s);
    const double lc = bench::Median(hol[Mode::kChunked].by_clients[s].long_with_s);
    const double lo = bench::Median(hol[Mode::kOneCall].by_clients[s].long_with_s);
    std::printf(
        "\n%s, %d short client(s): short latency during the long one, one-call ÷ chunked (p50) "
        "%s; long generation with shorts, chunked ÷ one-call %s",
        m.name.c_str(), s, inter > 0 ? Fmt("%.1f×", blocked / inter).c_str() : "—",
        lo > 0 ? Fmt("%.2f×", lc / lo).c_str() : "—");
  }
  const double ca = bench::Median(hol[Mode::kChunked].long_alone_s);
  const double oa = bench::Median(hol[Mode::kOneCall].long_alone_s);
  std::printf("\n%s: long generation alone, chunked ÷ one-call %s (min %.3f / %.3f s)\n",
              m.name.c_str(), oa > 0 ? Fmt("%.2f×", ca / oa).c_str() : "—",
              Min(hol[Mode::kChunked].long_alone_s), Min(hol[Mode::kOneCall].long_alone_s));
  const auto& a = hol[Mode::kChunked].long_ids;
  const auto& b = hol[Mode::kOneCall].long_ids;
  std::printf("check: %s long generation tokens, chunked vs one-call: %s (%zu vs %zu ids)\n",
              m.name.c_str(), !a.empty() && a == b ? "same" : "DIFFERENT", a.size(), b.size());
}

void PrintTput(const Model& m, const std::vector<TputRow>& rows, const std::string& load) {
  std::printf("\n### Throughput: %s (prompt %zu, %lld new tokens per row; load %s)\n\n",
              m.name.c_str(), m.prompt.size(), static_cast<long long>(m.tokens), load.c_str());
  std::printf(
      "| mode | clients × rows per request | runs | median wall s | min–max s | tokens/s | × 1×1 "
      "chunked | × 1×1 same mode | request latency p50 / max s |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  // tokens/s of one client with one row, per mode.
  std::map<Mode, double> single;
  for (const TputRow& r : rows) {
    if (r.clients == 1 && r.rows == 1 && !r.wall_s.empty())
      single[r.mode] = static_cast<double>(m.tokens) / bench::Median(r.wall_s);
  }
  auto ratio = [](double v, double base) { return base > 0 ? Fmt("%.2f×", v / base) : "—"; };
  for (const TputRow& r : rows) {
    const double wall = bench::Median(r.wall_s);
    const double tps = wall > 0 ? static_cast<double>(r.clients * r.rows * m.tokens) / wall : 0;
    std::printf("| %s | %d × %lld | %zu | %.3f | %.3f–%.3f | %.1f | %s | %s | %.3f / %.3f |\n",
                ModeName(r.mode), r.clients, static_cast<long long>(r.rows), r.wall_s.size(), wall,
                Min(r.wall_s), Max(r.wall_s), tps, ratio(tps, single[Mode::kChunked]).c_str(),
                ratio(tps, single[r.mode]).c_str(), bench::Median(r.request_s), Max(r.request_s));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"modelgrid serve: generation scheduling (head-of-line, concurrency vs batching)"};
  app.add_option("--zoo", o.zoo, "Hugging Face zoo (default: the build's zoo-small-hf)");
  app.add_option("--models", o.models, "decoder models of the zoo, comma-separated")
      ->delimiter(',');
  app.add_option("--modelgrid", o.modelgrid, "the modelgrid executable");
  app.add_option("--worker-threads", o.worker_threads, "modelgrid serve --worker-threads")
      ->check(CLI::Range(1, 256));
  app.add_option("--blas-threads", o.blas_threads,
                 "OPENBLAS_NUM_THREADS for the server (0: leave the environment as it is)")
      ->check(CLI::Range(0, 256));
  app.add_option("--prompt-tokens", o.prompt, "prompt length")->check(CLI::Range(1, 4096));
  app.add_option("--long-tokens", o.long_tokens, "new tokens of the long generation (capped)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--short-tokens", o.short_tokens, "new tokens of a short request")
      ->check(CLI::Range(1, 1024));
  app.add_option("--short-clients", o.short_clients, "short-request clients, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(1, 30));
  app.add_option("--short-alone", o.short_alone, "short requests per client per run, alone")
      ->check(CLI::Range(1, 1000));
  app.add_option("--start-delay-ms", o.start_delay_ms, "shorts start this long after the long one")
      ->check(CLI::Range(0, 60000));
  app.add_option("--hol-runs", o.hol_runs, "head-of-line runs per mode")
      ->check(CLI::Range(1, 1000));
  app.add_option("--tokens", o.tokens, "new tokens per row in the throughput part (capped)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--clients", o.clients, "concurrent clients, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(1, 30));
  app.add_option("--batches", o.batches, "rows of one request, comma-separated")
      ->delimiter(',')
      ->check(CLI::Range(1, 8));
  app.add_option("--tput-runs", o.tput_runs, "throughput runs (median)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--budget-s", o.budget_s, "the whole bench; runs past it are skipped")
      ->check(CLI::PositiveNumber);
  app.add_option("--start-timeout-s", o.start_timeout_s, "bounded wait for listening and ready");
  app.add_option("--request-timeout-s", o.request_timeout_s, "read/write timeout per request");
  CLI11_PARSE(app, argc, argv);

  const auto bench_start = Clock::now();
  auto over_budget = [&] { return Since(bench_start) > o.budget_s; };
  std::vector<Model> models;
  for (const std::string& name : o.models) models.push_back(OpenZooModel(o, name));
  const std::string load_start = bench::LoadAverage();

  char tmpl[] = "/tmp/generate_sched_bench-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) Die("mkdtemp failed");
  const fs::path tmp = tmpl, repo = tmp / "repository";
  g_tmp = tmp;
  fs::create_directories(repo);
  for (const Model& m : models) fs::create_directory_symlink(m.dir, repo / m.name);
  if (o.blas_threads > 0)
    ::setenv("OPENBLAS_NUM_THREADS", std::to_string(o.blas_threads).c_str(), 1);
  const std::vector<std::string> args = {o.modelgrid,           "serve",
                                         "--repository",        repo.string(),
                                         "--http-port",         "0",
                                         "--grpc-port",         "-1",
                                         "--worker-threads",    std::to_string(o.worker_threads),
                                         "--http-threads",      "32",
                                         "--http-idle-timeout", "600"};
  std::string command;
  for (size_t i = 1; i < args.size(); ++i) command += " " + args[i];

  std::printf(
      "generate_sched_bench — generation scheduling on one model, modelgrid serve over HTTP\n");
  std::printf("machine: %s\n", bench::MachineLine().c_str());
  std::printf("date:    %s\n", bench::NowUtc().c_str());
  std::printf("load:    %s (load average 1, 5, 15 min, /proc/loadavg) at start\n",
              load_start.c_str());
  std::printf("server:  %s%s\n",
              o.blas_threads > 0
                  ? ("OPENBLAS_NUM_THREADS=" + std::to_string(o.blas_threads) + " ").c_str()
                  : "",
              (o.modelgrid + command).c_str());
  std::printf("zoo:     %s\n", o.zoo.c_str());
  for (const Model& m : models) {
    std::string ids;
    for (int64_t id : m.prompt) ids += (ids.empty() ? "" : ",") + std::to_string(id);
    std::printf(
        "model:   %s: vocab %lld, positions %lld; prompt [%s]; long %lld, short %lld, "
        "throughput %lld new tokens\n",
        m.name.c_str(), static_cast<long long>(m.vocab), static_cast<long long>(m.positions),
        ids.c_str(), static_cast<long long>(m.long_tokens), static_cast<long long>(m.short_tokens),
        static_cast<long long>(m.tokens));
  }
  std::printf(
      "modes:   chunked = KServe infer task generate (GenerateAsync, calls of 4 tokens);\n"
      "         one-call = the same with a unique \"session\" parameter (one backend call)\n");
  std::fflush(stdout);

  Errors errors;
  std::string server_exit;
  bool server_ok = false;
  {
    auto server = bench::ServeProcess::Start(args, tmp / "serve.log",
                                             std::chrono::seconds(o.start_timeout_s));
    if (!server.ok()) Die(server.status().ToString());
    bench::ServeProcess& s = **server;
    std::fprintf(stderr, "generate_sched_bench: server pid %d on port %d; waiting for ready\n",
                 static_cast<int>(s.pid()), s.port());
    if (!s.WaitReady(std::chrono::seconds(o.start_timeout_s))) {
      const std::string tail = s.LogTail();
      s.Stop(std::chrono::seconds(10));
      Die("the server did not become ready; stderr:\n" + tail);
    }
    int most = 1;
    for (int c : o.clients) most = std::max(most, c);
    for (int c : o.short_clients) most = std::max(most, c + 1);
    Clients cl(s.port(), most, o.request_timeout_s);

    for (const Model& m : models) {
      // Warm-up: a long generation and a few shorts per mode.
      for (Mode mode : kModes) {
        Generate(cl[0], m, 1, m.long_tokens, mode, errors);
        for (int i = 0; i < 3; ++i) Generate(cl[1], m, 1, m.short_tokens, mode, errors);
      }
      const std::string hol_load = bench::LoadAverage();
      std::map<Mode, HolMode> hol;
      for (int r = 0; r < o.hol_runs && !over_budget(); ++r) {
        std::fprintf(stderr, "generate_sched_bench: %s head-of-line run %d/%d\n", m.name.c_str(),
                     r + 1, o.hol_runs);
        for (Mode mode : kModes) {
          HolMode& h = hol[mode];
          Reply alone = Generate(cl[0], m, 1, m.long_tokens, mode, errors);
          if (alone.ok) {
            h.long_alone_s.push_back(alone.seconds);
            if (h.long_ids.empty()) h.long_ids = alone.ids;
          }
          for (int sc : o.short_clients) {
            HolCell& cell = h.by_clients[sc];
            ShortsAlone(cl, m, mode, sc, o.short_alone, errors, cell);
            LongWithShorts(cl, m, mode, sc, std::chrono::milliseconds(o.start_delay_ms), errors,
                           cell);
          }
        }
      }
      PrintHol(m, o, hol, hol_load + " -> " + bench::LoadAverage());
      std::fflush(stdout);

      const std::string tput_load = bench::LoadAverage();
      std::vector<TputRow> rows;
      for (Mode mode : kModes) {
        for (int c : o.clients) rows.push_back({mode, c, 1, {}, {}});
        for (int64_t b : o.batches)
          if (b > 1) rows.push_back({mode, 1, b, {}, {}});
      }
      for (int r = 0; r < o.tput_runs && !over_budget(); ++r) {
        std::fprintf(stderr, "generate_sched_bench: %s throughput run %d/%d\n", m.name.c_str(),
                     r + 1, o.tput_runs);
        for (TputRow& row : rows) Concurrent(cl, m, row, errors);
      }
      PrintTput(m, rows, tput_load + " -> " + bench::LoadAverage());
      std::fflush(stdout);
    }
    server_exit = s.Stop(std::chrono::seconds(60), &server_ok);
    if (!server_ok) std::fprintf(stderr, "server stderr:\n%s\n", s.LogTail().c_str());
  }
  fs::remove_all(tmp);

  std::printf("\nerrors:  %llu\n", static_cast<unsigned long long>(errors.Total()));
  for (const auto& [e, c] : errors.count)
    std::printf("  %6llu x %s\n", static_cast<unsigned long long>(c), e.c_str());
  if (over_budget()) std::printf("budget:  %.0f s passed: later runs were skipped\n", o.budget_s);
  std::printf("server:  %s\n", server_exit.c_str());
  std::printf("load:    %s at end\n", bench::LoadAverage().c_str());
  std::printf("total bench time: %.1f s\n", Since(bench_start));
  return errors.Total() == 0 && server_ok ? 0 : 1;
}

// dynamic_memory_bench: what dynamic memory (docs/design.md, "Memory
// model") buys and costs on real modelgrid-worker processes: more models
// than the device holds, swap-in against a cold load, and bursts that
// borrow past their request.
//
//   dynamic_memory_bench [--section oversubscription|swap|bursts|all]
//                        [--zoo DIR] [--seconds N] [--clients N] [--seed N]
//                        [--isolation model|device] [--min-residency-ms M]
//                        [--timeout-ms T] [--reps N] [--burst-model NAME]
//                        [--worker PATH] [--device cpu|cuda:N]
//                        [--h2d-gb-s G --d2h-gb-s G]
//
// Every figure is measured in the run that prints it; each section's
// baseline is measured in the same run, so its ratios compare like with
// like on the same (shared) machine. A first plan of the chosen zoo models
// (a grid whose models are all on standby: estimates, no worker) gives each
// model's request and weight bytes and the CPU's per-worker context charge;
// the device capacities below are computed from those figures.
//
// 1. oversubscription. The seven quick zoo models (digits, gpt2, bert-base,
//    vit_b_16, mobilenet_v3_small, resnet18, echo_image) added three times
//    under new names (resnet18_r1, resnet18_r2, ...): 21 models on a
//    `cpu=CAP` device, CAP = one worker context (isolation device; in
//    isolation model the contexts of a third of the models) + a third of the
//    summed requests. --requests uniform (default): every model's
//    memory_request (ModelSpec) is the largest first-plan estimate
//    (resnet18's), so 7 of the 21 fit; --requests estimate: each model its
//    own estimate, so a third of the bytes fit (resnet18's copies are 70% of
//    them: most small models fit, the resnet18 copies do not). Each grid
//    loads eagerly what the planner places (the same set in every
//    configuration); the rest go to standby. Zipf traffic (s = 1.1 over the
//    21 models in an order shuffled with --seed) from --clients closed-loop
//    threads for --seconds, batch 1 (bench_util.h MakeInputs, 8 tokens).
//    Configurations, one after another in the same run:
//      (a) refuse: what the grid did before dynamic memory: only the models
//          placed at start serve; a request to any other counts as refused
//          (not sent: a 503 at once);
//      (b) evict-by-unload: swap_space_bytes 0; a standby model loads on its
//          first request, evicting idle least-recently-used instances;
//      (c) evict-by-swap: swap_space_bytes 4 GiB (files, CPU) and every model
//          given resolver swap by Grid::Reconfigure: evictions swap out.
//    min_residency --min-residency-ms (200) in all three. A request is warm
//    (a hit) when its model was `ready` just before it was sent and the
//    model's evictions and swaps_out counters (ModelStatus) are the same
//    just after it answered: it neither brought its model in nor saw it
//    leave. Every other answered request is cold. Hit rate = warm / offered
//    (offered = served + refused + errors).
// 2. swap. Per zoo model X, --reps times, a fresh grid (isolation model,
//    everything on demand, min_residency 0, swap space 4 GiB) holding X and
//    a pusher (a copy of digits whose memory_request is X's request), both
//    with resolver swap, on cpu = 2 contexts + 1.5 × X's request: only one
//    of them is resident at a time. Request X (cold: a new worker process +
//    LibTorch load + one forward), 5 more requests (warm: the median of
//    the last 3, LibTorch's profiling executor optimizes over the first
//    runs), request the pusher (X swaps out to its file), request X
//    (swap-in + one forward), and X 5 times more (median). Swap durations and bytes
//    from Grid::SwapEvents (X's "out" and "in"); cold load = cold request −
//    warm request; medians over the reps.
// 3. bursts. Two copies of --burst-model (gpt2) with request R = its weight
//    bytes (the estimate's, as loaded) + max(64 KiB, weights / 16) and limit
//    3R, on cpu = 4R + 2 contexts (isolation model), each bursting at its
//    max batch (and sequence_length tokens) from --clients / 2 threads: a
//    max-batch forward needs more than R past the request, so two bursts at
//    once do not fit and collide. One row per resolver (wait; priority with
//    copy a at priority 1 and b at 0; swap), swap space 1 GiB in each; the
//    baseline row is static reservation: request = limit = 3R on cpu = 6R +
//    2 contexts (no grant, no collision).
//
// On a GPU (--device cuda:N; default cpu): sections 1 and 2 run on that
// GPU instead of `cpu=CAP`. The first plan estimates for CUDA on the whole
// GPU, then sends one request to its first model (digits): that on-demand
// load starts a worker, after which the grid measures the worker's CUDA
// context through NVML (MeasureContext in src/grid/grid.cc); the bench reads
// it from Grid::Devices(). A fresh grid charges its workers the default
// (DefaultContextBytes, 512 MiB) until one of its own workers has loaded and
// been measured, and the measured figure after that; so section 1 counts
// each context as the larger of the two (on an H200 the measured one, 518
// MiB) and section 2 as the first worker's default + the measured figure,
// which keeps "exactly 7 fit" and "only one of X and the pusher is
// resident" true whichever of the two is larger. ParseDeviceSpec takes no
// `cuda:N=CAP`: the cap is GridOptions::buffer_bytes = total − used by
// others − CAP (LedgerCapacity: the ledger and the planner both subtract
// it), and the grid is made again, up to 5 times, until its ledger capacity
// (DeviceStatus::capacity_bytes) is exactly CAP (NVML's "used" moves while
// the previous grid's workers exit). Swap on CUDA goes to pinned host
// memory, not files. --h2d-gb-s / --d2h-gb-s (pinned host↔device GB/s
// measured elsewhere, e.g. scripts/swap_floor.py; scripts/gpu-check.sh's
// `dynamic` step passes them) add a second section-2 table: each swap
// against the time those bandwidths allow for the swapped bytes. Section 3
// stays on the CPU (it says so): the small zoo's gpt2 burst is about 1 MiB
// past R, below the CUDA caching allocator's 2 MiB blocks and the 32 MiB
// cuBLAS workspace a first matrix product creates, so R and the limit sized
// from its weights would not describe a burst on a GPU. Without a CUDA
// device (no NVML GPU, or a build whose LibTorch lacks CUDA) --device cuda:N
// exits with status 3 and says why.
//
// Bounded waits everywhere: each request carries --timeout-ms (10,000) and
// the bench waits at most that + 30 s for its answer (then counts it as
// hung); errors are counted by message and the first ones printed. Exit
// status 1 on a setup failure (a grid that cannot start, a model not in the
// state expected); errors and hangs during the traffic are reported, not
// fatal.

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "modelgrid/bytes.h"
#include "modelgrid/device.h"
#include "modelgrid/grid.h"
#include "modelgrid/repository.h"
#include "modelgrid/torch/cuda_memory.h"

namespace {

using namespace modelgrid;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const char* const kQuickModels[] = {"digits",   "gpt2",     "bert-base", "vit_b_16",
                                    "mobilenet_v3_small", "resnet18", "echo_image"};
constexpr double kZipfS = 1.1;
constexpr int kCopies = 3;
constexpr uint64_t kSwapSpace = uint64_t{4} << 30;
constexpr auto kHangSlack = std::chrono::seconds{30};

struct Args {
  std::string section = "all";
  std::string zoo = MODELGRID_DEFAULT_ZOO;
  std::string worker = MODELGRID_WORKER_PATH;
  int seconds = 20;
  int clients = 4;
  uint32_t seed = 1;
  std::string isolation = "device";
  std::string requests = "uniform";  // section 1: uniform | estimate
  int64_t min_residency_ms = 200;
  int64_t timeout_ms = 10'000;
  int reps = 5;
  std::string burst_model = "gpt2";
  std::string device = "cpu";  // sections 1 and 2: cpu or cuda:N
  double h2d_gb_s = 0, d2h_gb_s = 0;  // section 2 on CUDA: pinned copy bandwidths (0 = not given)
  std::optional<Device> gpu;   // --device cuda:N as discovered at start (NVML)
  std::string command;  // the command line, for the headers
};

[[noreturn]] void Fail(const std::string& what, const Status& status) {
  std::fprintf(stderr, "dynamic_memory_bench: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::exit(1);
}

std::string Mib(uint64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return b;
}

std::string Ms(double us) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", us / 1000.0);
  return b;
}

std::string Ratio(double num, double den) {
  if (den <= 0 || num < 0) return "—";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f×", num / den);
  return b;
}

// One zoo model as the bench calls it: its folder, task and inputs.
struct ZooModel {
  ModelEntry entry;
  std::string task;
  std::vector<InferTensor> inputs;
};

ZooModel OpenZooModel(const std::string& zoo, const std::string& name, int64_t batch,
                      int64_t tokens, uint32_t seed) {
  auto entry = OpenModel(std::filesystem::path(zoo) / name);
  if (!entry.ok()) Fail(name + " (generate the zoo with tools/zoo/generate.py)", entry.status());
  ZooModel m;
  m.entry = std::move(entry).value();
  m.task = m.entry.config.tasks.count("encode") ? "encode" : "infer";
  auto inputs = bench::MakeInputs(m.entry, batch, tokens, seed);
  if (!inputs.ok()) Fail(name, inputs.status());
  m.inputs = std::move(inputs).value();
  return m;
}

// What a first plan says of one model: request and weight bytes.
struct Sizes {
  uint64_t request = 0;
  uint64_t weights = 0;
  uint64_t peak = 0;  // the estimate's instance peak (weights + activations + ...)
};

// One answered (or not) request.
struct CallResult {
  Status status;
  double us = 0;
  bool hung = false;
};

// Sends `inputs` to `model` and waits for the answer, at most the request
// timeout + kHangSlack. The inputs are copied before the clock starts.
CallResult Call(Grid& grid, const std::string& model, const ZooModel& m, milliseconds timeout,
                int priority = 0) {
  InferCall call;
  call.task = m.task;
  call.inputs = m.inputs;
  call.timeout = timeout;
  call.priority = priority;
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  const auto t0 = Clock::now();
  grid.InferAsync(model, std::move(call), [promise](Result<std::vector<InferTensor>> r) {
    promise->set_value(r.ok() && r->empty() ? Status::Internal("no outputs") : r.status());
  });
  CallResult out;
  if (future.wait_for(timeout + kHangSlack) != std::future_status::ready) {
    out.hung = true;
    out.status = Status::Unavailable("bench: no answer within the request timeout + 30 s (hung)");
  } else {
    out.status = future.get();
  }
  out.us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
  return out;
}

// A GPU's per-worker context as the grids charge it (--device cuda:N).
struct GpuContext {
  uint64_t charged = 0;   // what a fresh grid charges a worker until one of its own is measured
  uint64_t measured = 0;  // Grid::Devices() after a first load: NVML-measured, else `charged`
  bool is_measured = false;
};

// Estimates `names` of the zoo on a grid whose models all go to standby
// (no worker starts): request and weights per model, and the CPU's
// per-worker context charge. With `gpu` (--device cuda:N): the estimates
// are for that GPU, and one request to names.front() loads it on demand so
// that the grid measures a worker's context; *context_bytes is then the
// device's context as Grid::Devices() reports it after that load.
std::map<std::string, Sizes> FirstPlan(const Args& a, const std::vector<std::string>& names,
                                       uint64_t* context_bytes, GpuContext* gpu = nullptr) {
  GridOptions o;
  o.devices = {gpu ? a.device : std::string("cpu")};
  o.isolation = Isolation::kModel;
  o.worker_executable = a.worker;
  o.default_load = LoadPolicy::kOnDemand;
  auto grid = Grid::Create(o);
  if (!grid.ok()) Fail("first plan: grid", grid.status());
  for (const auto& n : names) {
    Status s = (*grid)->AddModel({n, std::filesystem::path(a.zoo) / n, {}, {}});
    if (!s.ok()) Fail("first plan: " + n, s);
  }
  auto plan = (*grid)->LoadAll();
  if (!plan.ok()) Fail("first plan", plan.status());
  std::map<std::string, Sizes> out;
  for (const ModelStatus& st : (*grid)->Models()) {
    if (st.state != ModelState::kStandby || !st.estimate) {
      Fail("first plan: " + st.name,
           Status::Internal(std::string("expected standby with an estimate, got ") +
                            ModelStateName(st.state) + ": " + st.reason));
    }
    out[st.name] = Sizes{st.request_bytes, st.estimate->weights, st.estimate->instance_peak()};
  }
  *context_bytes = (*grid)->Devices().at(0).device.context_bytes;
  if (gpu) {
    gpu->charged = *context_bytes;
    const ZooModel m = OpenZooModel(a.zoo, names.front(), 1, 8, 42);
    CallResult c = Call(**grid, names.front(), m, milliseconds{a.timeout_ms});
    if (!c.status.ok()) {
      Fail("first plan: the request to " + names.front() + " that measures a worker's context on " +
               a.device,
           c.status);
    }
    const DeviceStatus ds = (*grid)->Devices().at(0);
    gpu->measured = ds.device.context_bytes;
    gpu->is_measured = ds.context_measured;
    *context_bytes = gpu->measured;
  }
  return out;
}

// Errors by message (cut to 200 characters), merged over threads.
using ErrorCounts = std::map<std::string, uint64_t>;

void CountError(const Status& s, ErrorCounts* errors) {
  std::string m = s.ToString();
  if (m.size() > 200) m = m.substr(0, 200) + "...";
  ++(*errors)[m];
}

void PrintErrors(const std::string& who, const ErrorCounts& errors) {
  int shown = 0;
  for (const auto& [m, n] : errors) {
    if (shown++ == 5) {
      std::printf("  (%zu more distinct errors)\n", errors.size() - 5);
      break;
    }
    std::printf("  error %s ×%llu: %s\n", who.c_str(), static_cast<unsigned long long>(n),
                m.c_str());
  }
}

void Header(const char* title, const Args& a) {
  std::printf("\n### %s\n\n", title);
  std::printf("machine: %s\n", bench::MachineLine().c_str());
  std::printf("date:    %s\n", bench::NowUtc().c_str());
  std::printf("load:    %s (load average 1, 5, 15 min; /proc/loadavg)\n",
              bench::LoadAverage().c_str());
  std::printf("command: %s\n", a.command.c_str());
  std::printf("zoo:     %s\n", a.zoo.c_str());
  if (a.gpu) {
    std::printf("gpu:     %s = %s, %s MiB, %s MiB used by others at start (NVML)\n",
                a.gpu->id.c_str(), a.gpu->name.c_str(), Mib(a.gpu->total_bytes).c_str(),
                Mib(a.gpu->used_bytes).c_str());
  }
}

// A grid with options `o` whose one device holds `capacity` bytes: cpu=CAP,
// or on --device cuda:N that GPU with buffer_bytes = total − used by others
// − CAP (ParseDeviceSpec takes no cuda:N=CAP; LedgerCapacity subtracts the
// buffer). NVML's used bytes move while an earlier grid's workers exit: on
// CUDA the grid is made again, up to 5 times 200 ms apart, until its
// ledger's capacity is exactly `capacity`. *effective: the ledger's
// capacity of the grid returned.
std::unique_ptr<Grid> CreateCapped(const Args& a, GridOptions o, uint64_t capacity,
                                   const std::string& what, uint64_t* effective) {
  if (!a.gpu) {
    o.devices = {"cpu=" + std::to_string(capacity)};
    auto created = Grid::Create(o);
    if (!created.ok()) Fail(what, created.status());
    *effective = capacity;
    return std::move(created).value();
  }
  std::unique_ptr<Grid> grid;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(milliseconds{200});
    auto d = ParseDeviceSpec(a.device);
    if (!d.ok()) Fail(what, d.status());
    const uint64_t free = d->total_bytes > d->used_bytes ? d->total_bytes - d->used_bytes : 0;
    if (free < capacity) {
      Fail(what, Status::ResourceExhausted(a.device + " has " + std::to_string(free) +
                                           " bytes free (NVML), fewer than the " +
                                           std::to_string(capacity) + " bytes asked"));
    }
    o.devices = {a.device};
    o.buffer_bytes = free - capacity;
    grid.reset();
    auto created = Grid::Create(o);
    if (!created.ok()) Fail(what, created.status());
    grid = std::move(created).value();
    *effective = grid->Devices().at(0).capacity_bytes;
    if (*effective == capacity) break;
  }
  return grid;
}

// The device line of sections 1 and 2: "cpu=CAP" or "cuda:N capped at CAP".
std::string DeviceText(const Args& a, uint64_t capacity) {
  if (!a.gpu) return "cpu=" + std::to_string(capacity);
  return a.device + " capped at " + std::to_string(capacity) + " B";
}

std::string CollisionText(const std::map<std::string, uint64_t>& c) {
  std::string s;
  for (const auto& [k, n] : c) s += (s.empty() ? "" : ", ") + k + " " + std::to_string(n);
  return s.empty() ? "none" : s;
}

// ---------------------------------------------------------------------------
// 1. oversubscription

struct OverConfig {
  const char* name;
  bool refuse;
  bool swap;
};

struct OverResult {
  std::string name;
  int placed = 0;
  uint64_t placed_bytes = 0;
  std::string placed_names;
  uint64_t offered = 0, served = 0, refused = 0, errors = 0, hung = 0, warm = 0;
  std::vector<double> warm_us, cold_us;
  ErrorCounts error_text;
  uint64_t evictions = 0, swaps_out = 0, swaps_in = 0, reloads = 0;
  std::vector<double> swap_out_us, swap_in_us;
  double seconds = 0;
  bool resident_at_end_ok = true;
  uint64_t capacity = 0;  // the ledger's capacity of the grid (CreateCapped)
};

OverResult RunOverConfig(const Args& a, const OverConfig& cfg, Isolation isolation,
                         uint64_t capacity, const std::vector<std::string>& names,
                         const std::map<std::string, uint64_t>& request_of,
                         const std::map<std::string, ZooModel>& base_of,
                         const std::vector<double>& zipf_weights,
                         const std::vector<size_t>& rank_to_model) {
  OverResult r;
  r.name = cfg.name;
  GridOptions o;
  o.isolation = isolation;
  o.worker_executable = a.worker;
  o.default_load = LoadPolicy::kEager;
  o.min_residency = milliseconds{a.min_residency_ms};
  o.swap_space_bytes = cfg.swap ? kSwapSpace : 0;
  std::unique_ptr<Grid> grid = CreateCapped(a, o, capacity,
                                            std::string("oversubscription ") + cfg.name,
                                            &r.capacity);
  for (const auto& n : names) {
    const ZooModel& m = base_of.at(n);
    Status s = grid->AddModel({n, m.entry.dir, request_of.at(n), {}});
    if (!s.ok()) Fail("adding " + n, s);
  }
  auto plan = grid->LoadAll();
  if (!plan.ok()) Fail(std::string("oversubscription ") + cfg.name + ": LoadAll", plan.status());
  std::vector<bool> resident(names.size(), false);
  for (size_t i = 0; i < names.size(); ++i) {
    auto st = grid->Model(names[i]);
    if (!st.ok()) Fail(names[i], st.status());
    if (st->state == ModelState::kReady) {
      resident[i] = true;
      ++r.placed;
      r.placed_names += (r.placed_names.empty() ? "" : ", ") + names[i];
      r.placed_bytes += st->request_bytes;
    } else if (st->state != ModelState::kStandby) {
      Fail(names[i], Status::Internal(std::string("after LoadAll: ") + ModelStateName(st->state) +
                                      ": " + st->reason));
    }
    if (cfg.swap) {
      ModelUpdate u;
      u.resolver = Resolver::kSwap;
      Status s = grid->Reconfigure(names[i], u);
      if (!s.ok()) Fail("reconfigure " + names[i], s);
    }
  }
  // Warm-up: one request to each model resident at start (untimed).
  for (size_t i = 0; i < names.size(); ++i) {
    if (!resident[i]) continue;
    CallResult c = Call(*grid, names[i], base_of.at(names[i]), milliseconds{a.timeout_ms});
    if (!c.status.ok()) Fail("warm-up " + names[i], c.status);
  }

  const milliseconds timeout{a.timeout_ms};
  std::vector<OverResult> per(static_cast<size_t>(a.clients));
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds{a.seconds};
  std::vector<std::thread> threads;
  for (int t = 0; t < a.clients; ++t) {
    threads.emplace_back([&, t] {
      OverResult& mine = per[static_cast<size_t>(t)];
      std::mt19937 gen(a.seed * 7919u + static_cast<uint32_t>(t));
      std::discrete_distribution<size_t> zipf(zipf_weights.begin(), zipf_weights.end());
      while (Clock::now() < end) {
        const size_t i = rank_to_model[zipf(gen)];
        const std::string& name = names[i];
        ++mine.offered;
        if (cfg.refuse && !resident[i]) {
          ++mine.refused;
          continue;
        }
        auto before = grid->Model(name);
        CallResult c = Call(*grid, name, base_of.at(name), timeout);
        auto after = grid->Model(name);
        if (!c.status.ok()) {
          ++mine.errors;
          if (c.hung) ++mine.hung;
          CountError(c.status, &mine.error_text);
          continue;
        }
        ++mine.served;
        const bool warm = before.ok() && after.ok() && before->state == ModelState::kReady &&
                          before->evictions == after->evictions &&
                          before->swaps_out == after->swaps_out;
        if (warm) {
          ++mine.warm;
          mine.warm_us.push_back(c.us);
        } else {
          mine.cold_us.push_back(c.us);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& p : per) {
    r.offered += p.offered;
    r.served += p.served;
    r.refused += p.refused;
    r.errors += p.errors;
    r.hung += p.hung;
    r.warm += p.warm;
    r.warm_us.insert(r.warm_us.end(), p.warm_us.begin(), p.warm_us.end());
    r.cold_us.insert(r.cold_us.end(), p.cold_us.begin(), p.cold_us.end());
    for (const auto& [m, n] : p.error_text) r.error_text[m] += n;
  }
  for (const ModelStatus& st : grid->Models()) {
    r.evictions += st.evictions;
    r.swaps_out += st.swaps_out;
    r.swaps_in += st.swaps_in;
    r.reloads += st.reloads;
  }
  for (const SwapEvent& e : grid->SwapEvents()) {
    if (e.direction == "out") r.swap_out_us.push_back(static_cast<double>(e.duration_us));
    if (e.direction == "in") r.swap_in_us.push_back(static_cast<double>(e.duration_us));
  }
  grid.reset();
  return r;
}

void Oversubscription(const Args& a) {
  std::vector<std::string> base_names(std::begin(kQuickModels), std::end(kQuickModels));
  uint64_t context = 0;
  GpuContext gpu;
  const std::map<std::string, Sizes> sizes =
      FirstPlan(a, base_names, &context, a.gpu ? &gpu : nullptr);
  // On a GPU a grid charges its first workers the default until one has
  // been measured: count each context as the larger figure, so that no
  // fewer models fit than the formula says.
  if (a.gpu) context = std::max(gpu.charged, gpu.measured);
  auto isolation = ParseIsolation(a.isolation);
  if (!isolation.ok() || *isolation == Isolation::kNone) {
    Fail("--isolation", Status::InvalidArgument("model or device"));
  }
  std::vector<std::string> names;
  std::map<std::string, ZooModel> base_of;
  std::map<std::string, uint64_t> request_of;
  for (int k = 1; k <= kCopies; ++k) {
    for (const auto& b : base_names) {
      const std::string n = b + "_r" + std::to_string(k);
      names.push_back(n);
      base_of[n] = OpenZooModel(a.zoo, b, 1, 8, 42);
      request_of[n] = sizes.at(b).request;
    }
  }
  uint64_t largest = 0;
  std::string largest_name;
  for (const auto& b : base_names) {
    if (sizes.at(b).request > largest) {
      largest = sizes.at(b).request;
      largest_name = b;
    }
  }
  const bool uniform = a.requests == "uniform";
  uint64_t sum = 0;
  for (auto& [n, r] : request_of) {
    if (uniform) r = largest;
    sum += r;
  }
  const uint64_t contexts = *isolation == Isolation::kDevice
                                ? context
                                : context * ((names.size() + kCopies - 1) / kCopies);
  const uint64_t capacity = contexts + (sum + kCopies - 1) / kCopies;
  // Zipf over ranks 1..N; rank k is the model rank_to_model[k-1] (a shuffle
  // of the 21 names, fixed by --seed).
  std::vector<double> weights;
  for (size_t k = 1; k <= names.size(); ++k) weights.push_back(1.0 / std::pow(double(k), kZipfS));
  std::vector<size_t> rank_to_model(names.size());
  std::iota(rank_to_model.begin(), rank_to_model.end(), size_t{0});
  std::mt19937 shuffle_gen(a.seed);
  std::shuffle(rank_to_model.begin(), rank_to_model.end(), shuffle_gen);

  const OverConfig configs[] = {{"(a) refuse (baseline)", true, false},
                                {"(b) evict-by-unload", false, false},
                                {"(c) evict-by-swap", false, true}};
  std::vector<OverResult> results;
  for (const auto& cfg : configs) {
    std::fprintf(stderr, "dynamic_memory_bench: oversubscription %s...\n", cfg.name);
    results.push_back(
        RunOverConfig(a, cfg, *isolation, capacity, names, request_of, base_of, weights,
                      rank_to_model));
  }

  Header("Over-subscription: 21 models on a device that holds about a third", a);
  std::printf("models:  %s × %d copies (name_rK), batch 1, 8 tokens for gpt2/bert-base\n",
              "digits, gpt2, bert-base, vit_b_16, mobilenet_v3_small, resnet18, echo_image",
              kCopies);
  if (uniform) {
    std::printf("sizes:   every model's memory_request (ModelSpec) = the largest first-plan "
                "estimate (%s, %s MiB): sum %s MiB over 21 models; context %s MiB per worker\n",
                largest_name.c_str(), Mib(largest).c_str(), Mib(sum).c_str(), Mib(context).c_str());
  } else {
    std::printf("sizes:   memory_request (ModelSpec) = each model's first-plan estimate: ");
    for (const auto& b : base_names) std::printf("%s %s, ", b.c_str(), Mib(sizes.at(b).request).c_str());
    std::printf("MiB; sum %s MiB over 21 models; context %s MiB per worker\n", Mib(sum).c_str(),
                Mib(context).c_str());
  }
  if (a.gpu) {
    std::printf("context: %s MiB per worker = the larger of the %s MiB the grid measured for a "
                "worker on %s after a first load (%s) and the %s MiB a fresh grid charges until "
                "one of its own workers is measured\n",
                Mib(context).c_str(), Mib(gpu.measured).c_str(), a.device.c_str(),
                gpu.is_measured ? "NVML per-process bytes minus the caching allocator's reserve"
                                : "NOT measured: the default charge, see the grid's log",
                Mib(gpu.charged).c_str());
  }
  std::printf("device:  %s (%s MiB = %s MiB of contexts [isolation %s] + sum / 3)%s\n",
              DeviceText(a, capacity).c_str(), Mib(capacity).c_str(), Mib(contexts).c_str(),
              a.isolation.c_str(),
              a.gpu ? "; the cap is GridOptions::buffer_bytes = total − used by others − cap" : "");
  for (const auto& r : results) {
    if (r.capacity != capacity) {
      std::printf("         NOTE: %s's ledger capacity is %llu B, not %llu B (NVML's used bytes "
                  "moved while the grid was made)\n",
                  r.name.c_str(), static_cast<unsigned long long>(r.capacity),
                  static_cast<unsigned long long>(capacity));
    }
  }
  std::printf("traffic: Zipf s=%.1f over the 21 models (rank order shuffled, seed %u), %d "
              "closed-loop clients, %d s per configuration, request timeout %lld ms\n",
              kZipfS, a.seed, a.clients, a.seconds, static_cast<long long>(a.timeout_ms));
  std::printf("zipf order (rank 1 first): ");
  for (size_t k = 0; k < rank_to_model.size(); ++k) {
    std::printf("%s%s", k ? ", " : "", names[rank_to_model[k]].c_str());
  }
  std::printf("\nplaced:  %s (at start, by the planner, memory-optimized)\n",
              results.front().placed_names.c_str());
  for (const auto& r : results) {
    if (r.placed_names != results.front().placed_names) {
      std::printf("         NOTE: %s placed a different set: %s\n", r.name.c_str(),
                  r.placed_names.c_str());
    }
  }
  std::printf("residency: min_residency %lld ms; warm = model ready before the request and no "
              "eviction/swap-out of it until the answer; hit rate = warm / offered\n\n",
              static_cast<long long>(a.min_residency_ms));
  std::printf("| configuration | placed at start | offered | served | refused | errors | "
              "served/s | served / offered | hit rate | warm p50 ms | warm p99 ms | cold | cold p50 ms | "
              "cold p99 ms | evictions | swaps out / in | swap-out p50 ms | swap-in p50 ms | "
              "served vs (a) |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
              "---:|---:|---:|\n");
  const double base_served = static_cast<double>(results.front().served);
  for (const auto& r : results) {
    const auto w = bench::Summarize(r.warm_us);
    const auto c = bench::Summarize(r.cold_us);
    char placed[64];
    std::snprintf(placed, sizeof placed, "%d (%s MiB)", r.placed, Mib(r.placed_bytes).c_str());
    std::printf("| %s | %s | %llu | %llu | %llu | %llu | %.1f | %.1f%% | %.1f%% | %s | %s | %llu | "
                "%s | %s "
                "| %llu | %llu / %llu | %s | %s | %s |\n",
                r.name.c_str(), placed, static_cast<unsigned long long>(r.offered),
                static_cast<unsigned long long>(r.served),
                static_cast<unsigned long long>(r.refused),
                static_cast<unsigned long long>(r.errors), double(r.served) / r.seconds,
                r.offered ? 100.0 * double(r.served) / double(r.offered) : 0.0,
                r.offered ? 100.0 * double(r.warm) / double(r.offered) : 0.0, Ms(w.p50).c_str(),
                Ms(w.p99).c_str(), static_cast<unsigned long long>(c.count),
                c.count ? Ms(c.p50).c_str() : "—", c.count ? Ms(c.p99).c_str() : "—",
                static_cast<unsigned long long>(r.evictions),
                static_cast<unsigned long long>(r.swaps_out),
                static_cast<unsigned long long>(r.swaps_in),
                r.swap_out_us.empty() ? "—" : Ms(bench::Median(r.swap_out_us)).c_str(),
                r.swap_in_us.empty() ? "—" : Ms(bench::Median(r.swap_in_us)).c_str(),
                Ratio(double(r.served), base_served).c_str());
  }
  for (const auto& r : results) {
    if (r.hung) std::printf("  %s: %llu requests hung\n", r.name.c_str(), (unsigned long long)r.hung);
    PrintErrors(r.name, r.error_text);
  }
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------
// 2. swap-in vs cold load

void SwapVsCold(const Args& a) {
  std::vector<std::string> base_names(std::begin(kQuickModels), std::end(kQuickModels));
  uint64_t context = 0;
  GpuContext gpu;
  const std::map<std::string, Sizes> sizes =
      FirstPlan(a, base_names, &context, a.gpu ? &gpu : nullptr);
  // The two workers' contexts as a fresh grid charges them: on the CPU twice
  // the (unmeasured) charge; on a GPU X's worker, the grid's first, at the
  // default, and the pusher's, started after X's worker was measured, at
  // the measured figure.
  const uint64_t contexts = a.gpu ? gpu.charged + gpu.measured : 2 * context;
  const ZooModel pusher_model = OpenZooModel(a.zoo, "digits", 1, 8, 42);
  const milliseconds timeout{a.timeout_ms};

  struct Row {
    std::string model;
    uint64_t request = 0, swapped_bytes = 0;
    std::vector<double> cold_us, warm_us, swapreq_us, next_us, out_us, in_us;
    int reloads = 0, anomalies = 0;
    std::vector<std::string> notes;
    std::vector<uint64_t> contexts_seen;  // GPU: X's worker's context as its grid measured it
    uint64_t capacity = 0;
    int capacity_off = 0;  // GPU: grids whose ledger capacity was not `capacity`
  };
  std::vector<Row> rows;
  for (const auto& name : base_names) {
    std::fprintf(stderr, "dynamic_memory_bench: swap %s...\n", name.c_str());
    const ZooModel x = OpenZooModel(a.zoo, name, 1, 8, 42);
    Row row;
    row.model = name;
    row.request = sizes.at(name).request;
    const uint64_t capacity = contexts + row.request + row.request / 2;
    row.capacity = capacity;
    for (int rep = 0; rep < a.reps; ++rep) {
      GridOptions o;
      o.isolation = Isolation::kModel;
      o.worker_executable = a.worker;
      o.default_load = LoadPolicy::kOnDemand;
      o.min_residency = milliseconds{0};
      o.swap_space_bytes = kSwapSpace;
      uint64_t effective = 0;
      std::unique_ptr<Grid> grid = CreateCapped(a, o, capacity, "swap grid", &effective);
      if (effective != capacity) ++row.capacity_off;
      Status s = grid->AddModel({name, x.entry.dir, {}, {}});
      if (s.ok()) s = grid->AddModel({"pusher", pusher_model.entry.dir, row.request, {}});
      if (!s.ok()) Fail("swap: adding models", s);
      auto plan = grid->LoadAll();
      if (!plan.ok()) Fail("swap: LoadAll", plan.status());
      for (const char* m : {name.c_str(), "pusher"}) {
        ModelUpdate u;
        u.resolver = Resolver::kSwap;
        s = grid->Reconfigure(m, u);
        if (!s.ok()) Fail(std::string("swap: reconfigure ") + m, s);
        auto st = grid->Model(m);
        if (!st.ok() || st->state != ModelState::kStandby) {
          Fail(std::string("swap: ") + m,
               Status::Internal("expected standby after LoadAll, got " +
                                std::string(st.ok() ? ModelStateName(st->state) : "?")));
        }
      }
      auto expect = [&](const std::string& m, ModelState want, const char* when) {
        auto st = grid->Model(m);
        if (st.ok() && st->state == want) return true;
        ++row.anomalies;
        row.notes.push_back(std::string("rep ") + std::to_string(rep + 1) + " " + when + ": " + m +
                            " is " + (st.ok() ? ModelStateName(st->state) : "?") + " (" +
                            (st.ok() ? st->reason : st.status().message()) + "), expected " +
                            ModelStateName(want));
        return false;
      };
      auto must = [&](const CallResult& c, const std::string& what) {
        if (c.status.ok()) return true;
        ++row.anomalies;
        row.notes.push_back("rep " + std::to_string(rep + 1) + " " + what + ": " +
                            c.status.ToString());
        return false;
      };
      CallResult cold = Call(*grid, name, x, timeout);
      if (!must(cold, "cold request")) continue;
      row.cold_us.push_back(cold.us);
      if (a.gpu) {
        auto st = grid->Model(name);
        if (st.ok() && st->context_measured) row.contexts_seen.push_back(st->context_bytes);
      }
      // Warm: 5 more requests, the median of the last 3 (LibTorch's
      // profiling executor optimizes the graph over the first runs).
      std::vector<double> warm;
      for (int i = 0; i < 5; ++i) {
        CallResult w = Call(*grid, name, x, timeout);
        if (must(w, "warm request") && i >= 2) warm.push_back(w.us);
      }
      row.warm_us.push_back(bench::Median(warm));
      if (!must(Call(*grid, "pusher", pusher_model, timeout), "pusher request")) continue;
      if (!expect(name, ModelState::kSwapped, "after the pusher's request")) continue;
      CallResult back = Call(*grid, name, x, timeout);
      if (!must(back, "request after swap-out")) continue;
      row.swapreq_us.push_back(back.us);
      expect(name, ModelState::kReady, "after the swap-in");
      // The next 5 requests: does the forward run as fast as before the swap?
      std::vector<double> next;
      for (int i = 0; i < 5; ++i) {
        CallResult n = Call(*grid, name, x, timeout);
        if (must(n, "request after the swap-in")) next.push_back(n.us);
      }
      row.next_us.push_back(bench::Median(next));
      for (const SwapEvent& e : grid->SwapEvents()) {
        if (e.model != name) continue;
        if (e.direction == "out") {
          row.out_us.push_back(static_cast<double>(e.duration_us));
          row.swapped_bytes = e.bytes;
        } else if (e.direction == "in") {
          row.in_us.push_back(static_cast<double>(e.duration_us));
        } else if (e.direction == "reload") {
          ++row.reloads;
          row.in_us.push_back(static_cast<double>(e.duration_us));
        }
      }
    }
    rows.push_back(std::move(row));
  }

  Header("Swap-in vs cold load, per zoo model", a);
  if (!a.gpu) {
    std::printf("setup:   per model and rep a fresh grid: isolation model, load on demand, "
                "min_residency 0, swap space %s MiB (files under the temp dir);\n"
                "         the model X and a pusher (digits with memory_request = X's request), both "
                "resolver swap, on cpu = 2 × %s MiB contexts + 1.5 × X's request;\n"
                "         request X (cold: new worker + LibTorch load + 1 forward), 5 × X (warm: "
                "median of the last 3), the pusher (X swapped out),\n"
                "         X (swap-in + 1 forward), 5 × X more (median: the forward after a "
                "swap-in)\n",
                Mib(kSwapSpace).c_str(), Mib(context).c_str());
  } else {
    std::printf("setup:   per model and rep a fresh grid: isolation model, load on demand, "
                "min_residency 0, swap space %s MiB (pinned host memory);\n"
                "         the model X and a pusher (digits with memory_request = X's request), both "
                "resolver swap, on %s capped at %s MiB of contexts + 1.5 × X's request\n"
                "         (contexts: X's worker, a grid's first, charged the default %s MiB; the "
                "pusher's %s MiB, %s;\n"
                "         the cap is GridOptions::buffer_bytes = total − used by others − cap);\n"
                "         request X (cold: new worker + CUDA context + LibTorch load + 1 forward), "
                "5 × X (warm: median of the last 3), the pusher (X swapped out),\n"
                "         X (swap-in + 1 forward), 5 × X more (median: the forward after a "
                "swap-in)\n",
                Mib(kSwapSpace).c_str(), a.device.c_str(), Mib(contexts).c_str(),
                Mib(gpu.charged).c_str(), Mib(gpu.measured).c_str(),
                gpu.is_measured ? "as a first plan's worker measured it through NVML"
                                : "NOT measured in the first plan: the default, see the grid's log");
  }
  std::printf("reps:    %d per model; medians over the reps; batch 1 (8 tokens); swap-out/in = "
              "the worker's swap call timed by the grid (Grid::SwapEvents, ledger wait "
              "excluded);\n"
              "         cold load = cold request − warm request\n\n",
              a.reps);
  std::printf("| model | request MiB | swapped bytes | swap-out ms | swap-in ms | cold request ms "
              "| warm request ms | request after swap ms | next 5 requests ms | cold load ms | "
              "cold load ÷ swap-in | request after swap ÷ cold request |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const Row& r : rows) {
    const double cold = bench::Median(r.cold_us), warm = bench::Median(r.warm_us);
    const double load = std::max(0.0, cold - warm);
    const double in = bench::Median(r.in_us), after = bench::Median(r.swapreq_us);
    char speedup[32] = "—", share[32] = "—";
    if (!r.in_us.empty() && in > 0) std::snprintf(speedup, sizeof speedup, "%.0f×", load / in);
    if (!r.swapreq_us.empty() && cold > 0) std::snprintf(share, sizeof share, "%.3f", after / cold);
    std::printf("| %s | %s | %llu | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
                r.model.c_str(), Mib(r.request).c_str(),
                static_cast<unsigned long long>(r.swapped_bytes),
                r.out_us.empty() ? "—" : Ms(bench::Median(r.out_us)).c_str(),
                r.in_us.empty() ? "—" : Ms(in).c_str(), Ms(cold).c_str(), Ms(warm).c_str(),
                r.swapreq_us.empty() ? "—" : Ms(after).c_str(),
                r.next_us.empty() ? "—" : Ms(bench::Median(r.next_us)).c_str(), Ms(load).c_str(),
                speedup, share);
  }
  for (const Row& r : rows) {
    std::printf("  %s: %zu cold, %zu swap-out, %zu swap-in samples", r.model.c_str(),
                r.cold_us.size(), r.out_us.size(), r.in_us.size());
    if (r.reloads) std::printf(", %d swap-ins reloaded from files", r.reloads);
    std::printf("%s\n", r.anomalies ? "" : "; no anomaly");
    for (const auto& n : r.notes) std::printf("    anomaly: %s\n", n.c_str());
  }
  if (a.gpu) {
    for (const Row& r : rows) {
      std::printf("  %s: cap %llu B", r.model.c_str(), static_cast<unsigned long long>(r.capacity));
      if (r.capacity_off) std::printf(" (%d grids' ledger capacity differed from it)", r.capacity_off);
      if (!r.contexts_seen.empty()) {
        const auto [lo, hi] = std::minmax_element(r.contexts_seen.begin(), r.contexts_seen.end());
        std::printf("; X's worker context as its grids measured it %s–%s MiB (the pusher is "
                    "charged that)",
                    Mib(*lo).c_str(), Mib(*hi).c_str());
      }
      std::printf("\n");
    }
  }
  if (a.gpu && a.h2d_gb_s > 0 && a.d2h_gb_s > 0) {
    std::printf("\nSwaps against the pinned copy floor: host→device %.1f GB/s, device→host %.1f "
                "GB/s (given with --h2d-gb-s / --d2h-gb-s); floor = swapped bytes / bandwidth "
                "(swap-out: device→host, swap-in: host→device); medians as above\n\n",
                a.h2d_gb_s, a.d2h_gb_s);
    std::printf("| model | swapped bytes | swap-out ms | swap-out floor ms | swap-out ÷ floor | "
                "swap-out GB/s | swap-in ms | swap-in floor ms | swap-in ÷ floor | swap-in GB/s |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    auto cells = [](const std::vector<double>& us, uint64_t bytes, double gb_s) {
      if (us.empty()) return std::string("— | — | — | —");
      const double ms = bench::Median(us) / 1000.0;
      const double floor_ms = double(bytes) / (gb_s * 1e9) * 1e3;
      char b[160];
      char ratio[32] = "—", rate[32] = "—";
      if (floor_ms >= 0.001) std::snprintf(ratio, sizeof ratio, "%.1f", ms / floor_ms);
      if (ms > 0) std::snprintf(rate, sizeof rate, "%.2f", double(bytes) / (ms * 1e6));
      std::snprintf(b, sizeof b, "%.3f | %.3f | %s | %s", ms, floor_ms, ratio, rate);
      return std::string(b);
    };
    for (const Row& r : rows) {
      std::printf("| %s | %llu | %s | %s |\n", r.model.c_str(),
                  static_cast<unsigned long long>(r.swapped_bytes),
                  cells(r.out_us, r.swapped_bytes, a.d2h_gb_s).c_str(),
                  cells(r.in_us, r.swapped_bytes, a.h2d_gb_s).c_str());
    }
  }
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------
// 3. bursts

struct BurstRow {
  std::string name;
  uint64_t requests[2] = {0, 0};
  uint64_t errors = 0, hung = 0;
  std::vector<double> us;
  ErrorCounts error_text;
  std::map<std::string, uint64_t> collisions;
  uint64_t swaps_out = 0, swaps_in = 0, evictions = 0;
  double seconds = 0;
};

BurstRow RunBurst(const Args& a, const char* label, const ZooModel& m, uint64_t request,
                  uint64_t limit, uint64_t capacity, std::optional<Resolver> resolver,
                  bool priorities) {
  BurstRow row;
  row.name = label;
  GridOptions o;
  o.devices = {"cpu=" + std::to_string(capacity)};
  o.isolation = Isolation::kModel;
  o.worker_executable = a.worker;
  o.default_load = LoadPolicy::kEager;
  o.min_residency = milliseconds{a.min_residency_ms};
  o.swap_space_bytes = uint64_t{1} << 30;
  auto created = Grid::Create(o);
  if (!created.ok()) Fail(std::string("bursts ") + label, created.status());
  std::unique_ptr<Grid> grid = std::move(created).value();
  const std::string names[2] = {"burst_a", "burst_b"};
  for (const auto& n : names) {
    Status s = grid->AddModel({n, m.entry.dir, request, limit});
    if (!s.ok()) Fail("bursts: adding " + n, s);
  }
  auto plan = grid->LoadAll();
  if (!plan.ok()) Fail("bursts: LoadAll", plan.status());
  for (int i = 0; i < 2; ++i) {
    auto st = grid->Model(names[i]);
    if (!st.ok() || st->state != ModelState::kReady) {
      Fail(std::string("bursts ") + label + ": " + names[i],
           Status::Internal(std::string("not ready: ") +
                            (st.ok() ? std::string(ModelStateName(st->state)) + ": " + st->reason
                                     : st.status().message())));
    }
    if (resolver) {
      ModelUpdate u;
      u.resolver = *resolver;
      if (priorities) u.priority = i == 0 ? 1 : 0;
      Status s = grid->Reconfigure(names[i], u);
      if (!s.ok()) Fail("bursts: reconfigure " + names[i], s);
    }
  }
  const milliseconds timeout{a.timeout_ms};
  for (const auto& n : names) {  // warm-up, one at a time
    CallResult c = Call(*grid, n, m, timeout);
    if (!c.status.ok()) Fail("bursts: warm-up " + n, c.status);
  }
  const int clients = std::max(2, a.clients);
  std::vector<BurstRow> per(static_cast<size_t>(clients));
  const auto start = Clock::now();
  const auto end = start + std::chrono::seconds{a.seconds};
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      BurstRow& mine = per[static_cast<size_t>(t)];
      const int which = t % 2;
      while (Clock::now() < end) {
        CallResult c = Call(*grid, names[which], m, timeout);
        ++mine.requests[which];
        if (!c.status.ok()) {
          ++mine.errors;
          if (c.hung) ++mine.hung;
          CountError(c.status, &mine.error_text);
          continue;
        }
        mine.us.push_back(c.us);
      }
    });
  }
  for (auto& th : threads) th.join();
  row.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& p : per) {
    row.requests[0] += p.requests[0];
    row.requests[1] += p.requests[1];
    row.errors += p.errors;
    row.hung += p.hung;
    row.us.insert(row.us.end(), p.us.begin(), p.us.end());
    for (const auto& [msg, n] : p.error_text) row.error_text[msg] += n;
  }
  for (const ModelStatus& st : grid->Models()) {
    for (const auto& [k, n] : st.collisions) row.collisions[k] += n;
    row.swaps_out += st.swaps_out;
    row.swaps_in += st.swaps_in;
    row.evictions += st.evictions;
  }
  return row;
}

void Bursts(const Args& a) {
  uint64_t context = 0;
  const std::map<std::string, Sizes> sizes = FirstPlan(a, {a.burst_model}, &context);
  const Sizes& z = sizes.at(a.burst_model);
  // Max batch, and sequence_length tokens for HF models: what the estimate is for.
  auto probe = OpenModel(std::filesystem::path(a.zoo) / a.burst_model);
  if (!probe.ok()) Fail(a.burst_model, probe.status());
  const int64_t batch = std::max<int64_t>(1, probe->config.max_batch_size);
  const ZooModel m =
      OpenZooModel(a.zoo, a.burst_model, batch, probe->config.sequence_length, 42);
  const uint64_t r = z.weights + std::max<uint64_t>(64 * 1024, z.weights / 16);
  // What a max-batch burst asks past R (Grid's BurstBytes: the estimate's
  // instance peak − the request).
  const uint64_t burst_need = z.peak > r ? z.peak - r : 0;

  struct Setup {
    const char* label;
    uint64_t request, limit, capacity;
    std::optional<Resolver> resolver;
    bool priorities;
  };
  const Setup setups[] = {
      {"static 3R (baseline)", 3 * r, 3 * r, 6 * r + 2 * context, std::nullopt, false},
      {"wait", r, 3 * r, 4 * r + 2 * context, Resolver::kWait, false},
      {"priority (a=1, b=0)", r, 3 * r, 4 * r + 2 * context, Resolver::kPriority, true},
      {"swap", r, 3 * r, 4 * r + 2 * context, Resolver::kSwap, false},
  };
  std::vector<BurstRow> rows;
  for (const auto& s : setups) {
    std::fprintf(stderr, "dynamic_memory_bench: bursts %s...\n", s.label);
    rows.push_back(RunBurst(a, s.label, m, s.request, s.limit, s.capacity, s.resolver,
                            s.priorities));
  }

  Header("Bursts: two models borrowing past their request on one device", a);
  if (a.gpu) {
    std::printf("note:    on the CPU, not %s (--device applies to sections 1 and 2): a %s burst "
                "here is %llu B past R, below the CUDA caching allocator's 2 MiB blocks and the "
                "32 MiB cuBLAS workspace a first matrix product creates, so R and the limit "
                "sized from the weights would not describe a burst on a GPU\n",
                a.device.c_str(), a.burst_model.c_str(), (unsigned long long)burst_need);
  }
  std::printf("models:  burst_a, burst_b = %s, each request %s (batch %lld%s), from %d clients "
              "(half on each), closed loop, %d s per row, timeout %lld ms\n",
              a.burst_model.c_str(), bench::DescribeTensors(m.inputs).c_str(),
              static_cast<long long>(batch),
              m.entry.hf_config ? ", sequence_length tokens" : "", std::max(2, a.clients),
              a.seconds, static_cast<long long>(a.timeout_ms));
  std::printf("sizes:   weights %llu B; R = weights + max(64 KiB, weights/16) = %llu B; limit 3R = "
              "%llu B; the estimate's max-batch instance peak %llu B, so a burst asks %llu B past R "
              "(%s R)\n",
              (unsigned long long)z.weights, (unsigned long long)r, (unsigned long long)(3 * r),
              (unsigned long long)z.peak, (unsigned long long)burst_need,
              burst_need > r ? "more than" : "NOT more than: no collision expected;");
  std::printf("device:  dynamic rows cpu = 4R + 2 × %s MiB contexts = %llu B; static row request "
              "= limit = 3R on cpu = 6R + 2 contexts; isolation model; min_residency %lld ms; "
              "swap space 1 GiB\n\n",
              Mib(context).c_str(), (unsigned long long)(4 * r + 2 * context),
              static_cast<long long>(a.min_residency_ms));
  std::printf("| resolver | device bytes | requests a / b | errors | req/s | p50 ms | p99 ms | "
              "req/s vs static | p99 vs static | collisions (resolver/outcome) | swaps out / in | "
              "evictions |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n");
  const auto base = bench::Summarize(rows.front().us);
  const double base_rps = double(rows.front().us.size()) / rows.front().seconds;
  for (size_t i = 0; i < rows.size(); ++i) {
    const BurstRow& b = rows[i];
    const auto st = bench::Summarize(b.us);
    const double rps = double(b.us.size()) / b.seconds;
    std::printf("| %s | %llu | %llu / %llu | %llu | %.1f | %s | %s | %s | %s | %s | %llu / %llu | "
                "%llu |\n",
                b.name.c_str(), (unsigned long long)setups[i].capacity,
                (unsigned long long)b.requests[0], (unsigned long long)b.requests[1],
                (unsigned long long)b.errors, rps, Ms(st.p50).c_str(), Ms(st.p99).c_str(),
                Ratio(rps, base_rps).c_str(), Ratio(st.p99, base.p99).c_str(),
                CollisionText(b.collisions).c_str(), (unsigned long long)b.swaps_out,
                (unsigned long long)b.swaps_in, (unsigned long long)b.evictions);
  }
  for (const auto& b : rows) {
    if (b.hung) std::printf("  %s: %llu requests hung\n", b.name.c_str(), (unsigned long long)b.hung);
    PrintErrors(b.name, b.error_text);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"Dynamic memory: over-subscription, swap-in vs cold load, bursts"};
  app.add_option("--section", a.section, "which section to run")
      ->check(CLI::IsMember({"oversubscription", "swap", "bursts", "all"}));
  app.add_option("--zoo", a.zoo, "model repository (default: the build's small zoo)");
  app.add_option("--seconds", a.seconds, "timed seconds per configuration (sections 1 and 3)")
      ->check(CLI::PositiveNumber);
  app.add_option("--clients", a.clients, "concurrent client threads (sections 1 and 3)")
      ->check(CLI::Range(1, 256));
  app.add_option("--seed", a.seed, "seed of the Zipf traffic and of the model order");
  app.add_option("--requests", a.requests,
                 "section 1: every model's memory_request = the largest estimate (uniform: a "
                 "third of the models fit) or each its own estimate (estimate: a third of the "
                 "bytes fit)")
      ->check(CLI::IsMember({"uniform", "estimate"}));
  app.add_option("--isolation", a.isolation, "isolation of section 1's grids")
      ->check(CLI::IsMember({"model", "device"}));
  app.add_option("--min-residency-ms", a.min_residency_ms,
                 "GridOptions::min_residency of sections 1 and 3")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--timeout-ms", a.timeout_ms, "per-request timeout")->check(CLI::PositiveNumber);
  app.add_option("--reps", a.reps, "repetitions per model (section 2)")->check(CLI::Range(1, 100));
  app.add_option("--burst-model", a.burst_model, "zoo model copied twice in section 3");
  app.add_option("--worker", a.worker, "modelgrid-worker executable");
  app.add_option("--device", a.device,
                 "device of sections 1 and 2: cpu (cpu=CAP) or cuda:N (the GPU, capped through "
                 "GridOptions::buffer_bytes); section 3 stays on the CPU");
  app.add_option("--h2d-gb-s", a.h2d_gb_s,
                 "section 2 on cuda:N: pinned host->device GB/s measured elsewhere (e.g. "
                 "scripts/swap_floor.py); with --d2h-gb-s, adds swaps vs the copy floor")
      ->check(CLI::PositiveNumber);
  app.add_option("--d2h-gb-s", a.d2h_gb_s, "section 2 on cuda:N: pinned device->host GB/s")
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);
  for (int i = 0; i < argc; ++i) a.command += (i ? " " : "") + std::string(argv[i]);
  if (a.device != "cpu") {
    const bool cuda_form = a.device.rfind("cuda:", 0) == 0 && a.device.size() > 5 &&
                           a.device.find_first_not_of("0123456789", 5) == std::string::npos;
    if (!cuda_form) {
      std::fprintf(stderr, "dynamic_memory_bench: --device must be cpu or cuda:N, not '%s'\n",
                   a.device.c_str());
      return 2;
    }
    // Both reasons at once when both hold: the GPU, then the build.
    std::string why;
    auto gpu = ParseDeviceSpec(a.device);
    if (!gpu.ok()) why = gpu.status().message();
    if (!CudaBuild()) {
      why += std::string(why.empty() ? "" : "; and ") +
             "this build's LibTorch has no CUDA (MODELGRID_WITH_CUDA is OFF): its "
             "modelgrid-worker cannot run a model on a GPU";
    }
    if (!why.empty()) {
      std::fprintf(stderr,
                   "dynamic_memory_bench: --device %s: no usable CUDA device: %s\n"
                   "dynamic_memory_bench: run without --device (cpu) here, or on a machine with "
                   "an NVIDIA GPU and a CUDA build (scripts/gpu-check.sh --steps ...,dynamic)\n",
                   a.device.c_str(), why.c_str());
      return 3;
    }
    a.gpu = *gpu;
  } else if (a.h2d_gb_s > 0 || a.d2h_gb_s > 0) {
    std::fprintf(stderr, "dynamic_memory_bench: --h2d-gb-s / --d2h-gb-s apply to --device "
                         "cuda:N (a swap on the CPU writes files)\n");
    return 2;
  }
  if ((a.h2d_gb_s > 0) != (a.d2h_gb_s > 0)) {
    std::fprintf(stderr, "dynamic_memory_bench: give both --h2d-gb-s and --d2h-gb-s, or neither\n");
    return 2;
  }
  // The grids' log lines go to stderr: stdout carries the tables.
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "dynamic_memory_bench", std::make_shared<spdlog::sinks::stderr_sink_mt>()));

  const auto started = Clock::now();
  std::printf("dynamic_memory_bench — dynamic memory on real modelgrid-worker processes\n");
  if (a.section == "oversubscription" || a.section == "all") Oversubscription(a);
  if (a.section == "swap" || a.section == "all") SwapVsCold(a);
  if (a.section == "bursts" || a.section == "all") Bursts(a);
  std::printf("\ntotal bench time: %.1f s\n",
              std::chrono::duration<double>(Clock::now() - started).count());
  return 0;
}

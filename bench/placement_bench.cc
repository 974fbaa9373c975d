// placement_bench: the planner's strategies on realistic and random
// instances, against the optimal strategy and against the seed's algorithm
// (best-fit decreasing with a fixed 0.5 GiB buffer and no context charge),
// plus time per plan for 10, 100 and 1,000 models. Prints plain tables.
//
// Usage: placement_bench [--quick]   (--quick: smaller budgets, for smoke runs)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "modelgrid/bytes.h"
#include "modelgrid/placement.h"

namespace mg = modelgrid;
using Clock = std::chrono::steady_clock;

namespace {

// --- inputs ---

// Request sizes (bytes packed per instance), derived from fp32 weights plus
// activations / KV cache at batch 8 and allocator slack, rounded:
struct ModelKind {
  const char* name;
  double gib;
  const char* derivation;
};
constexpr ModelKind kKinds[] = {
    {"resnet50", 0.2,
     "25.6M params x 4 B = 98 MiB + batch-8 224px activations ~60 MiB + cuDNN workspace/slack"},
    {"vit_b_16", 0.5,
     "86.6M x 4 B = 330 MiB + batch-8 197-token activations and attention ~120 MiB + slack"},
    {"bert-base", 0.6,
     "110M x 4 B = 420 MiB + batch-8 x 512-token activations (attention 8x12x512^2 x 4 B) ~170 "
     "MiB"},
    {"gpt2", 0.9,
     "124M x 4 B = 475 MiB + KV cache 8 x 512 tok x 12 layers x 2 x 768 x 4 B = 288 MiB + "
     "logits/slack"},
    {"gpt2-large", 3.5,
     "774M x 4 B = 2.9 GiB + KV cache 8 x 256 tok x 36 x 2 x 1280 x 4 B = 0.7 GiB"},
    {"llama-7b", 14.0,
     "6.74B x 2 B (fp16) = 12.6 GiB + KV cache 1 x 2048 tok x 32 x 2 x 4096 x 2 B = 1 GiB + slack"},
};
// Instances of each kind per 40 GiB of GPU (29 instances, 34.6 GiB of
// requests + 14.5 GiB of contexts in model isolation: about 1.3x the space).
constexpr int kPerBlock[] = {8, 6, 6, 6, 2, 1};

constexpr uint64_t kContext = 512 * mg::kMiB;  // per worker process on a GPU
constexpr uint64_t kBuffer = 1 * mg::kGiB;     // kept free per GPU
constexpr uint64_t kSeedBuffer = 512 * mg::kMiB;

constexpr mg::Strategy kStrategies[] = {mg::Strategy::kFillFirst, mg::Strategy::kBalance,
                                        mg::Strategy::kMemoryOptimized,
                                        mg::Strategy::kLatencySensitive, mg::Strategy::kOptimal};

std::chrono::milliseconds g_budget = mg::PlanOptions{}.time_budget;  // the default budget

mg::Device Gpu(const std::string& id, uint64_t total) {
  mg::Device d;
  d.id = id;
  d.kind = mg::DeviceKind::kSimulated;
  d.name = id;
  d.total_bytes = total;
  d.context_bytes = kContext;
  return d;
}

std::vector<mg::Device> Gpus(int n, int gib) {
  std::vector<mg::Device> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(Gpu("sim:a100-" + std::to_string(gib) + "g#" + std::to_string(i),
                      static_cast<uint64_t>(gib) * mg::kGiB));
  }
  return out;
}

mg::PlacementItem Item(const std::string& model, uint64_t bytes) {
  mg::PlacementItem it;
  it.model = model;
  it.request_bytes = bytes;
  return it;
}

// `blocks` copies of the per-40-GiB mix; each instance is its own model
// (fine-tuned variants), a few marked latency-sensitive / busy.
std::vector<mg::PlacementItem> RealisticMix(int blocks) {
  std::vector<mg::PlacementItem> items;
  for (int b = 0; b < blocks; ++b) {
    for (size_t k = 0; k < std::size(kKinds); ++k) {
      for (int i = 0; i < kPerBlock[k]; ++i) {
        mg::PlacementItem it =
            Item(std::string(kKinds[k].name) + "-" + std::to_string(b) + "-" + std::to_string(i),
                 static_cast<uint64_t>(kKinds[k].gib * mg::kGiB));
        it.latency_sensitive = i == 0;
        it.expected_load = i < 2 ? 50.0 : 5.0;
        items.push_back(it);
      }
    }
  }
  return items;
}

// n models drawn from the realistic kinds with weights 8:6:6:6:2:1, each size
// jittered ±10% (seeded).
std::vector<mg::PlacementItem> SampledMix(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::discrete_distribution<int> kind(std::begin(kPerBlock), std::end(kPerBlock));
  std::uniform_real_distribution<double> jitter(0.9, 1.1);
  std::vector<mg::PlacementItem> items;
  for (int i = 0; i < n; ++i) {
    const ModelKind& k = kKinds[kind(rng)];
    items.push_back(Item(std::string(k.name) + "-" + std::to_string(i),
                         static_cast<uint64_t>(k.gib * jitter(rng) * mg::kGiB)));
  }
  return items;
}

// --- the seed's algorithm and the real memory model ---

struct SeedResult {
  int placed = 0;
  uint64_t bytes = 0;
  int oom_devices = 0;    // devices whose real need exceeds their memory
  int oom_instances = 0;  // instances placed on those devices
};

// Best-fit decreasing on total − used − 0.5 GiB, no context charge; then
// the real need of each device: used + Σ requests + one context per
// instance (model isolation, one worker per instance).
SeedResult SeedBaseline(const std::vector<mg::Device>& devices,
                        const std::vector<mg::PlacementItem>& items) {
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return items[a].request_bytes > items[b].request_bytes;
  });
  std::vector<uint64_t> free(devices.size()), bytes(devices.size(), 0);
  std::vector<int> count(devices.size(), 0);
  for (size_t d = 0; d < devices.size(); ++d) {
    const uint64_t taken = devices[d].used_bytes + kSeedBuffer;
    free[d] = devices[d].total_bytes > taken ? devices[d].total_bytes - taken : 0;
  }
  SeedResult r;
  for (size_t i : order) {
    int best = -1;
    for (size_t d = 0; d < devices.size(); ++d) {
      if (items[i].request_bytes <= free[d] && (best < 0 || free[d] < free[best])) best = d;
    }
    if (best < 0) continue;
    free[best] -= items[i].request_bytes;
    bytes[best] += items[i].request_bytes;
    ++count[best];
    ++r.placed;
    r.bytes += items[i].request_bytes;
  }
  for (size_t d = 0; d < devices.size(); ++d) {
    const uint64_t need = devices[d].used_bytes + bytes[d] + devices[d].context_bytes * count[d];
    if (need > devices[d].total_bytes) {
      ++r.oom_devices;
      r.oom_instances += count[d];
    }
  }
  return r;
}

// Devices of `plan` whose real need (used by others + requests + one context
// per worker process) exceeds their memory, recomputed from the
// assignments: 0 for every strategy, by construction.
int OverCommitted(const std::vector<mg::Device>& devices, const mg::Plan& plan) {
  int over = 0;
  for (const mg::Device& d : devices) {
    uint64_t bytes = 0;
    int count = 0;
    for (const auto& a : plan.placed) {
      if (a.device != d.id) continue;
      bytes += a.request_bytes;
      ++count;
    }
    int workers = 0;
    if (plan.isolation == mg::Isolation::kModel) workers = count;
    if (plan.isolation == mg::Isolation::kDevice) workers = count > 0 ? 1 : 0;
    over += d.used_bytes + bytes + d.context_bytes * workers > d.total_bytes;
  }
  return over;
}

uint64_t TotalBytes(const std::vector<mg::Device>& devices) {
  uint64_t t = 0;
  for (const auto& d : devices) t += d.total_bytes;
  return t;
}

uint64_t ModelBytes(const mg::Plan& plan) {
  uint64_t t = 0;
  for (const auto& a : plan.placed) t += a.request_bytes;
  return t;
}

struct Run {
  mg::Plan plan;
  double ms = 0;      // wall clock
  double cpu_ms = 0;  // process CPU time
};

Run PlanWith(const std::vector<mg::Device>& devices, const std::vector<mg::PlacementItem>& items,
             mg::Strategy s, mg::Isolation iso) {
  mg::PlanOptions opt;
  opt.strategy = s;
  opt.isolation = iso;
  opt.buffer_bytes = kBuffer;
  opt.time_budget = g_budget;
  const auto start = Clock::now();
  const std::clock_t cpu_start = std::clock();
  auto plan = mg::MakePlan(devices, items, opt);
  const double cpu_ms = 1000.0 * (std::clock() - cpu_start) / CLOCKS_PER_SEC;
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (!plan.ok()) {
    std::fprintf(stderr, "MakePlan failed: %s\n", plan.status().ToString().c_str());
    std::exit(1);
  }
  return {std::move(plan).value(), ms, cpu_ms};
}

// --- printing ---

void PrintMachine() {
  std::string cpu = "unknown";
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::printf("placement_bench — ModelGrid planner (src/placement)\n");
  std::printf("machine: %s, %u cores\n", cpu.c_str(), std::thread::hardware_concurrency());
  std::printf(
      "inputs: GPU context %s per worker (model isolation unless stated), buffer %s per "
      "GPU; optimal and memory-optimized budget %lld ms\n",
      mg::FormatBytes(kContext).c_str(), mg::FormatBytes(kBuffer).c_str(),
      static_cast<long long>(g_budget.count()));
  std::printf(
      "baseline (seed): best-fit decreasing, fixed %s buffer per device, no context "
      "charge;\n  'OOM' = devices whose real need (requests + %s per instance) exceeds "
      "their memory, and the instances on them\n",
      mg::FormatBytes(kSeedBuffer).c_str(), mg::FormatBytes(kContext).c_str());
  std::printf("request sizes:\n");
  for (const ModelKind& k : kKinds)
    std::printf("  %-10s %5.1f GiB  %s\n", k.name, k.gib, k.derivation);
  std::printf("\n");
}

void PrintRealistic() {
  std::printf(
      "== Realistic mixes: per 40 GiB of GPU, 8 resnet50 + 6 vit_b_16 + 6 bert-base + 6 "
      "gpt2 + 2 gpt2-large + 1 llama-7b ==\n");
  std::printf(
      "util = model bytes / device bytes; opt = optimal's placed; seed = the seed's placed "
      "and util in the same run;\nOOM = devices whose real need exceeds their memory, "
      "recomputed from the assignments\n");
  std::printf("%-10s %-6s %-18s %8s %6s %8s %9s %9s %4s %8s\n", "devices", "iso", "strategy",
              "placed", "util", "plc/opt", "plc/seed", "util/seed", "OOM", "ms");
  struct Config {
    int gpus, gib;
    mg::Isolation iso;
  };
  const Config configs[] = {{1, 40, mg::Isolation::kModel}, {1, 80, mg::Isolation::kModel},
                            {2, 40, mg::Isolation::kModel}, {2, 80, mg::Isolation::kModel},
                            {4, 40, mg::Isolation::kModel}, {4, 80, mg::Isolation::kModel},
                            {4, 80, mg::Isolation::kDevice}};
  for (const Config& c : configs) {
    const auto devices = Gpus(c.gpus, c.gib);
    const auto items = RealisticMix(c.gpus * c.gib / 40);
    const double total = static_cast<double>(TotalBytes(devices));
    const SeedResult seed = SeedBaseline(devices, items);
    std::map<mg::Strategy, Run> runs;
    for (mg::Strategy s : kStrategies) runs[s] = PlanWith(devices, items, s, c.iso);
    const Run& opt = runs[mg::Strategy::kOptimal];
    const std::string dev = std::to_string(c.gpus) + "x" + std::to_string(c.gib) + "G";
    const char* iso = mg::IsolationName(c.iso);
    for (mg::Strategy s : kStrategies) {
      const Run& r = runs[s];
      const double util = ModelBytes(r.plan) / total;
      std::string name = mg::StrategyName(s);
      if (s == mg::Strategy::kOptimal) name += r.plan.optimal_proven ? " (proven)" : " (budget)";
      std::printf("%-10s %-6s %-18s %4zu/%-3zu %5.1f%% %8.3f %9.3f %9.3f %4d %8.1f\n", dev.c_str(),
                  iso, name.c_str(), r.plan.placed.size(), items.size(), 100 * util,
                  static_cast<double>(r.plan.placed.size()) / opt.plan.placed.size(),
                  static_cast<double>(r.plan.placed.size()) / seed.placed,
                  util / (seed.bytes / total), OverCommitted(devices, r.plan), r.ms);
    }
    std::printf("%-10s %-6s %-18s %4d/%-3zu %5.1f%% %8s %9s %9s %4d  (%d instances on them)\n",
                dev.c_str(), "-", "seed: BFD, no ctx", seed.placed, items.size(),
                100 * (seed.bytes / total), "", "", "", seed.oom_devices, seed.oom_instances);
  }
  std::printf("\n");
}

// Random instances: 2-6 GPUs of 16/24/40/48/80 GiB, some with memory used
// by others; 20-40 models of log-uniform size 0.1-16 GiB; seeds 1..N.
void PrintRandom(int instances) {
  std::printf(
      "== Random instances (%d, seeds 1..%d): 2-6 GPUs of 16/24/40/48/80 GiB (1 in 4 with "
      "0-4 GiB used by others), 20-40 models, log-uniform 0.1-16 GiB ==\n",
      instances, instances);
  struct Sum {
    double placed_ratio_opt = 0, util = 0, x_seed = 0, util_seed = 0;
    int equal_opt = 0, placed = 0, oom = 0;
  };
  std::map<mg::Strategy, Sum> sums;
  int seed_oom_devices = 0, seed_oom_instances = 0, total_devices = 0, proven = 0, seed_placed = 0;
  int total_items = 0;
  double seed_util = 0;
  for (int k = 1; k <= instances; ++k) {
    std::mt19937_64 rng(k);
    const int gib_choices[] = {16, 24, 40, 48, 80};
    const int n_dev = std::uniform_int_distribution<int>(2, 6)(rng);
    std::vector<mg::Device> devices;
    for (int d = 0; d < n_dev; ++d) {
      const int gib = gib_choices[std::uniform_int_distribution<int>(0, 4)(rng)];
      mg::Device dev = Gpu("sim:r" + std::to_string(gib) + "#" + std::to_string(d),
                           static_cast<uint64_t>(gib) * mg::kGiB);
      if (std::uniform_int_distribution<int>(0, 3)(rng) == 0) {
        dev.used_bytes = std::uniform_int_distribution<uint64_t>(0, 4 * mg::kGiB)(rng);
      }
      devices.push_back(dev);
    }
    const int n_items = std::uniform_int_distribution<int>(20, 40)(rng);
    std::vector<mg::PlacementItem> items;
    std::uniform_real_distribution<double> log_size(std::log(0.1), std::log(16.0));
    for (int i = 0; i < n_items; ++i) {
      items.push_back(
          Item("m" + std::to_string(i), static_cast<uint64_t>(std::exp(log_size(rng)) * mg::kGiB)));
    }
    const double total = static_cast<double>(TotalBytes(devices));
    const SeedResult seed = SeedBaseline(devices, items);
    seed_oom_devices += seed.oom_devices;
    seed_oom_instances += seed.oom_instances;
    seed_placed += seed.placed;
    seed_util += seed.bytes / total;
    total_devices += n_dev;
    total_items += n_items;
    std::map<mg::Strategy, Run> runs;
    for (mg::Strategy s : kStrategies) runs[s] = PlanWith(devices, items, s, mg::Isolation::kModel);
    const Run& opt = runs[mg::Strategy::kOptimal];
    proven += opt.plan.optimal_proven ? 1 : 0;
    for (mg::Strategy s : kStrategies) {
      const mg::Plan& p = runs[s].plan;
      Sum& sum = sums[s];
      sum.placed += p.placed.size();
      sum.placed_ratio_opt += static_cast<double>(p.placed.size()) / opt.plan.placed.size();
      sum.util += ModelBytes(p) / total;
      sum.x_seed += static_cast<double>(p.placed.size()) / seed.placed;
      sum.util_seed += static_cast<double>(ModelBytes(p)) / seed.bytes;
      sum.oom += OverCommitted(devices, p);
      sum.equal_opt +=
          p.placed.size() == opt.plan.placed.size() && ModelBytes(p) == ModelBytes(opt.plan);
    }
  }
  std::printf("means over instances; = opt: same (count, bytes) as optimal\n");
  std::printf("%-18s %9s %6s %8s %9s %9s %8s %4s\n", "strategy", "placed", "util", "plc/opt",
              "plc/seed", "util/seed", "= opt", "OOM");
  for (mg::Strategy s : kStrategies) {
    const Sum& sum = sums[s];
    std::printf("%-18s %4d/%-4d %5.1f%% %8.3f %9.3f %9.3f %4d/%-3d %4d\n", mg::StrategyName(s),
                sum.placed, total_items, 100 * sum.util / instances,
                sum.placed_ratio_opt / instances, sum.x_seed / instances, sum.util_seed / instances,
                sum.equal_opt, instances, sum.oom);
  }
  std::printf("%-18s %4d/%-4d %5.1f%% %8s %9s %9s %8s %4d  (of %d devices; %d instances on them)\n",
              "seed: BFD, no ctx", seed_placed, total_items, 100 * seed_util / instances, "", "",
              "", "", seed_oom_devices, total_devices, seed_oom_instances);
  std::printf("optimal proven within budget: %d of %d instances\n", proven, instances);
  std::printf("\n");
}

void PrintTiming() {
  std::printf(
      "== Time per plan: sampled realistic mix (sizes +-10%%, seed 7); one 16 GiB GPU for 10 "
      "models, one 80 GiB GPU per 50 models otherwise ==\n");
  std::printf(
      "demand = (requests + one context each) / (device bytes - buffers); wall time on a "
      "shared machine, CPU time beside it\n");
  std::printf("%-7s %-5s %-7s %-18s %9s %9s %10s  %s\n", "models", "GPUs", "demand", "strategy",
              "wall ms", "cpu ms", "placed", "note");
  for (int n : {10, 100, 1000}) {
    const auto devices = n < 50 ? Gpus(1, 16) : Gpus(n / 50, 80);
    const auto items = SampledMix(n, 7);
    double demand = 0, space = 0;
    for (const auto& it : items) demand += it.request_bytes + kContext;
    for (const auto& d : devices) space += d.total_bytes - kBuffer;
    for (mg::Strategy s : kStrategies) {
      // Repeat cheap plans for a stable mean: up to 50 runs or 200 ms.
      double wall = 0, cpu = 0;
      int reps = 0;
      Run r;
      do {
        r = PlanWith(devices, items, s, mg::Isolation::kModel);
        wall += r.ms;
        cpu += r.cpu_ms;
        ++reps;
      } while (wall < 200 && reps < 50 && s != mg::Strategy::kOptimal);
      std::string note;
      if (s == mg::Strategy::kOptimal) {
        note = r.plan.optimal_proven ? "proven optimal" : "hit the budget (best found)";
      }
      if (s == mg::Strategy::kMemoryOptimized && wall / reps >= g_budget.count() * 0.95) {
        note = "improvement stopped by the budget";
      }
      std::printf("%-7d %-5zu %6.2fx %-18s %9.3f %9.3f %5zu/%-4d  %s\n", n, devices.size(),
                  demand / space, mg::StrategyName(s), wall / reps, cpu / reps,
                  r.plan.placed.size(), n, note.c_str());
    }
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) quick = quick || std::strcmp(argv[i], "--quick") == 0;
  if (quick) g_budget = std::chrono::milliseconds(100);
  const auto start = Clock::now();
  PrintMachine();
  PrintRealistic();
  PrintRandom(quick ? 5 : 20);
  PrintTiming();
  std::printf("total bench time: %.1f s\n",
              std::chrono::duration<double>(Clock::now() - start).count());
  return 0;
}

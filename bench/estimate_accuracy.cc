// estimate_accuracy: how close the static memory estimate comes to the
// measured peak, per model of a zoo repository and batch.
//
//   estimate_accuracy [ZOO] [--batches 1,8,32] [--models a,b] [--probe PATH]
//                     [--threads N] [--timeout-s S] [--device cpu|cuda:N]
//
// For each TorchScript model and batch: the estimate (EstimateModel with the
// TorchScript graph walk, instance_peak(), no margin), the peak measured by
// modelgrid-probe in its own process (one process per case, so cases do not
// pollute each other), their relative error, and the seed's formula
// (parameters × 4 bytes × 1.2 × 1.1) with its error as the baseline.
// Prints the machine, the date and the LibTorch version, the table, then the
// median and worst |error| of both.
//
// With --device cuda:N (a build whose LibTorch has CUDA) the estimate is the
// CUDA one (EstimateOptions::device = kCuda: allocator rounding, cuBLAS
// workspace) and the measured figure is the CUDA caching allocator's
// reserved peak (what the GPU gives the process for tensors), with two more
// columns: the allocated peak and NVML's bytes for the probe process (which
// include its CUDA context, charged apart by the planner).

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "modelgrid/bytes.h"
#include "modelgrid/estimate.h"
#include "modelgrid/repository.h"
#include "modelgrid/torch/calibration.h"
#include "modelgrid/torch/graph_walk.h"
#include "modelgrid/torch/torch_info.h"

namespace {

using namespace modelgrid;

std::string MiB(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", static_cast<double>(bytes) / kMiB);
  return buf;
}

std::string Pct(double e) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%+.1f%%", 100.0 * e);
  return buf;
}

std::vector<int64_t> ParseList(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(std::stoll(item));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string zoo = "/tmp/zoo-full";
  std::string batches_text = "1,8,32";
  std::string models_text;
  std::string probe = MODELGRID_PROBE_PATH;
  int threads = 0;
  int timeout_s = 900;
  std::string device = "cpu";
  CLI::App app{"Static memory estimate vs measured peak, per zoo model and batch"};
  app.add_option("zoo", zoo, "model repository (default /tmp/zoo-full)");
  app.add_option("--batches", batches_text, "comma-separated batches");
  app.add_option("--models", models_text, "comma-separated model names (default: all)");
  app.add_option("--probe", probe, "modelgrid-probe executable");
  app.add_option("--threads", threads, "intra-op threads for the probe and the walk (default: LibTorch's)");
  app.add_option("--timeout-s", timeout_s, "per-measurement timeout");
  app.add_option("--device", device, "cpu, or cuda:N (a LibTorch with CUDA)");
  CLI11_PARSE(app, argc, argv);
  const bool cuda = device.rfind("cuda:", 0) == 0;
  if (!cuda && device != "cpu") {
    std::fprintf(stderr, "estimate_accuracy: --device '%s': expected cpu or cuda:N\n", device.c_str());
    return 2;
  }
  const DeviceKind kind = cuda ? DeviceKind::kCuda : DeviceKind::kCpu;
  const std::vector<int64_t> batches = ParseList(batches_text);
  std::vector<std::string> only;
  {
    std::stringstream ss(models_text);
    std::string m;
    while (std::getline(ss, m, ',')) {
      if (!m.empty()) only.push_back(m);
    }
  }

  auto repo = ScanRepository(zoo);
  if (!repo.ok()) {
    std::fprintf(stderr, "estimate_accuracy: %s\n", repo.status().ToString().c_str());
    return 1;
  }
  std::printf("# estimate_accuracy\n\n");
  std::printf("machine: %s\ndate:    %s\ntorch:   LibTorch %s\ndevice:  %s\nzoo:     %s\n", bench::MachineLine().c_str(),
              bench::NowUtc().c_str(), TorchVersion().c_str(), device.c_str(), zoo.c_str());
  std::printf("estimate = EstimateModel(graph walk).instance_peak(), margin 0; walk = walker weights + "
              "activations + workspace; measured = modelgrid-probe peak_bytes (load + one forward, own process); "
              "seed = parameters x 4 x 1.2 x 1.1\n\n");
  if (cuda) {
    std::printf("on %s, measured = the CUDA caching allocator's reserved peak; allocated = its allocated peak; "
                "NVML = the probe process's bytes as NVML reports them (context included)\n\n",
                device.c_str());
  }
  std::printf("| model | batch | measured MiB | estimate MiB | error | walk MiB | walk error | seed MiB | seed error |"
              " walk - measured (bytes) | weights (walk/probe) |%s\n",
              cuda ? " allocated MiB | NVML MiB |" : "");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|%s\n", cuda ? "---:|---:|" : "");
  std::fflush(stdout);

  GraphWalkOptions walk_options;
  walk_options.threads = threads;
  TorchScriptGraphWalker walker(walk_options);
  std::vector<double> est_errors, walk_errors, seed_errors;
  std::vector<std::string> problems;
  for (const ModelEntry& model : *repo) {
    if (!only.empty() && std::find(only.begin(), only.end(), model.name) == only.end()) continue;
    if (!model.torchscript) continue;
    auto summary = SummarizeModule(*model.torchscript);
    const uint64_t seed = summary.ok() ? static_cast<uint64_t>(summary->parameters * 4 * 1.2 * 1.1) : 0;
    for (int64_t batch : batches) {
      const int64_t seq = model.config.sequence_length;
      auto inputs = InputsFor(model, batch, seq);
      if (!inputs.ok()) {
        problems.push_back(model.name + " b" + std::to_string(batch) + ": " + inputs.status().message());
        continue;
      }
      auto walk = walker.Walk(*model.torchscript, inputs->shapes, inputs->types, kind);
      EstimateOptions eo;
      eo.device = kind;
      eo.batch = batch;
      eo.sequence_length = seq;
      eo.margin_fraction = 0;
      auto est = EstimateModel(model, eo, &walker);
      ProbeRequest req;
      req.probe = probe;
      req.model_pt = *model.torchscript;
      req.model_name = model.name;
      req.shapes = inputs->shapes;
      req.types = inputs->types;
      req.threads = threads;
      req.device = device;
      req.timeout = std::chrono::seconds(timeout_s);
      auto measured = RunProbeProcess(req);
      if (!measured.ok()) {
        problems.push_back(model.name + " b" + std::to_string(batch) + ": " + measured.status().message());
        continue;
      }
      const uint64_t measured_bytes = cuda ? measured->peak_reserved_bytes : measured->peak_bytes;
      const double m = static_cast<double>(measured_bytes);
      std::string est_cell = "n/a", est_err = "n/a", walk_cell = "n/a", walk_err = "n/a", weights = "n/a";
      std::string walk_diff = "n/a";
      if (est.ok()) {
        const double e = (static_cast<double>(est->instance_peak()) - m) / m;
        est_errors.push_back(std::fabs(e));
        est_cell = MiB(est->instance_peak());
        est_err = Pct(e);
      } else {
        problems.push_back(model.name + " b" + std::to_string(batch) + " estimate: " + est.status().message());
      }
      if (walk.ok()) {
        const uint64_t total = walk->weight_bytes + walk->peak_activation_bytes + walk->peak_workspace_bytes;
        const double e = (static_cast<double>(total) - m) / m;
        walk_errors.push_back(std::fabs(e));
        walk_cell = MiB(total);
        walk_err = Pct(e);
        walk_diff = std::to_string(static_cast<int64_t>(total) - static_cast<int64_t>(measured_bytes));
        weights = walk->weight_bytes == measured->weights_bytes ? "equal"
                                                                : std::to_string(walk->weight_bytes) + "/" +
                                                                      std::to_string(measured->weights_bytes);
        if (!walk->notes.empty()) problems.push_back(model.name + " b" + std::to_string(batch) + " walk notes: " + walk->notes);
      } else {
        problems.push_back(model.name + " b" + std::to_string(batch) + " walk: " + walk.status().message());
      }
      const double se = seed > 0 ? (static_cast<double>(seed) - m) / m : 0;
      if (seed > 0) seed_errors.push_back(std::fabs(se));
      std::string extra;
      if (cuda) {
        extra = " " + MiB(measured->peak_bytes) + " | " +
                (measured->nvml_process_bytes > 0 ? MiB(measured->nvml_process_bytes) : std::string("n/a")) +
                " |";
      }
      std::printf("| %s | %lld | %s | %s | %s | %s | %s | %s | %s | %s | %s |%s\n", model.name.c_str(),
                  static_cast<long long>(batch), MiB(measured_bytes).c_str(), est_cell.c_str(), est_err.c_str(),
                  walk_cell.c_str(), walk_err.c_str(), seed > 0 ? MiB(seed).c_str() : "n/a",
                  seed > 0 ? Pct(se).c_str() : "n/a", walk_diff.c_str(), weights.c_str(), extra.c_str());
      std::fflush(stdout);
    }
  }
  std::printf("\n| | cases | median abs error | worst abs error |\n|---|---:|---:|---:|\n");
  auto row = [](const char* what, const std::vector<double>& v) {
    const double worst = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
    std::printf("| %s | %zu | %.1f%% | %.1f%% |\n", what, v.size(), 100 * bench::Median(v), 100 * worst);
  };
  row("estimate (EstimateModel + graph walk)", est_errors);
  row("graph walk alone", walk_errors);
  row("seed formula", seed_errors);
  if (!problems.empty()) {
    std::printf("\nnotes:\n");
    for (const std::string& p : problems) std::printf("- %s\n", p.c_str());
  }
  return 0;
}

// `modelgrid estimate`: the predicted memory of each model, before loading it.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/json_output.h"
#include "cli/table.h"
#include "modelgrid/bytes.h"
#include "modelgrid/repository.h"
#include "modelgrid/torch/calibration.h"

namespace modelgrid::cli {

namespace {

struct EstimateArgs {
  std::vector<std::string> paths;
  int64_t batch = 0;
  int64_t seq = 0;
  std::string device = "cpu";
  double margin = 0.10;
  bool json = false;
  bool calibrate = false;
  bool refresh = false;
};

// --calibrate: the measured peak of one dry run in an isolated process,
// cached per (file hash, device type, library version, batch, seq).
void AddCalibration(const EstimateArgs& args, const ModelEntry& model, MemoryEstimate& e,
                    CalibrationCache& cache) {
  CalibrateOptions options;
  options.batch = e.batch;
  options.sequence_length = e.sequence_length;
  options.device = args.device == "cpu" ? DeviceKind::kCpu : DeviceKind::kCuda;
  options.probe = std::filesystem::path(SelfPath("modelgrid")).parent_path() / "modelgrid-probe";
  options.refresh = args.refresh;
  auto c = Calibrate(model, options, &cache);
  if (!c.ok()) {
    e.notes.push_back("calibration failed: " + c.status().message());
    return;
  }
  e.calibrated_peak = c->peak_bytes;
  const double err = (static_cast<double>(e.instance_peak()) - static_cast<double>(c->peak_bytes)) /
                     static_cast<double>(c->peak_bytes);
  e.notes.push_back(fmt::format("calibrated peak {} ({}); static instance peak {} is {:+.1f}% off",
                                FormatBytes(c->peak_bytes), c->from_cache ? "cached" : "measured now",
                                FormatBytes(e.instance_peak()), 100.0 * err));
}

// A path may be one model or a whole repository (a folder of model folders).
Result<std::vector<ModelEntry>> ModelsAt(const std::string& path) {
  auto one = OpenModel(path);
  if (one.ok()) {
    for (const std::string& w : one->warnings) spdlog::warn("{}", w);  // ScanRepository's do
    return std::vector<ModelEntry>{std::move(one).value()};
  }
  if (one.status().code() != StatusCode::kNotFound || !std::filesystem::is_directory(path)) {
    return one.status();
  }
  MG_ASSIGN_OR_RETURN(auto models, ScanRepository(path));
  if (models.empty()) return one.status();
  return models;
}

int Run(const EstimateArgs& args) {
  EstimateOptions options;
  if (args.batch > 0) options.batch = args.batch;
  if (args.seq > 0) options.sequence_length = args.seq;
  options.device = args.device == "cpu" ? DeviceKind::kCpu : DeviceKind::kCuda;
  options.margin_fraction = args.margin;
  // A model without configuration still gets its weights (activations unknown).
  options.weights_only_without_inputs = true;
  auto walker = MakeWalker();
  CalibrationCache cache(CalibrationCache::DefaultPath());

  int exit_code = 0;
  Table table({"MODEL", "BATCH", "SEQ", "PARAMS", "WEIGHTS", "ACTIVATIONS", "WORKSPACE", "SLACK",
               "MARGIN", "REQUEST", "CONTEXT", "TOTAL", "CALIBRATED", "METHOD"},
              {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  nlohmann::json json = nlohmann::json::array();
  std::vector<std::string> notes;
  for (const auto& path : args.paths) {
    auto models = ModelsAt(path);
    if (!models.ok()) {
      std::cerr << "error: " << models.status().message() << "\n";
      json.push_back({{"path", path}, {"error", models.status().message()}});
      exit_code = 1;
      continue;
    }
    for (const auto& model : *models) {
      auto e = EstimateModel(model, options, walker.get());
      if (!e.ok()) {
        std::cerr << "error: model '" << model.name << "': " << e.status().message() << "\n";
        json.push_back({{"model", model.name}, {"error", e.status().message()}});
        exit_code = 1;
        continue;
      }
      if (args.calibrate) AddCalibration(args, model, *e, cache);
      json.push_back(EstimateToJson(*e));
      table.AddRow({e->model, std::to_string(e->batch),
                    e->sequence_length ? std::to_string(e->sequence_length) : "-",
                    std::to_string(e->parameters), FormatBytes(e->weights),
                    e->activations_unknown.empty() ? FormatBytes(e->activations) : "unknown",
                    FormatBytes(e->workspace), FormatBytes(e->allocator_slack),
                    FormatBytes(e->margin), FormatBytes(e->request()), FormatBytes(e->context),
                    FormatBytes(e->total()),
                    e->calibrated_peak ? FormatBytes(*e->calibrated_peak) : "-", e->method});
      for (const auto& n : e->notes) notes.push_back(e->model + ": " + n);
    }
  }
  if (args.json) {
    std::cout << json.dump(2) << "\n";
  } else {
    table.Print(std::cout);
    std::cout << "\nREQUEST = weights + activations + workspace + slack + margin (what placement "
                 "packs); TOTAL adds one worker context on "
              << args.device << ".\n";
    for (const auto& n : notes) std::cout << "note: " << n << "\n";
  }
  return exit_code;
}

}  // namespace

void AddEstimateCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<EstimateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "estimate", "Predict the peak memory of models statically (no forward pass)");
  cmd->add_option("path", args->paths, "Model folders, model files, or repositories")
      ->required()
      ->check(CLI::ExistingPath);
  cmd->add_option("--batch", args->batch, "Batch size (default: the model's max_batch_size)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--seq", args->seq, "Tokens per sample for HF models (default: sequence_length)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--device", args->device, "Device type whose allocator applies")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--margin", args->margin, "Safety margin as a fraction of the peak")
      ->check(CLI::Range(0.0, 10.0));
  cmd->add_flag("--json", args->json, "Machine-readable output");
  cmd->add_flag("--calibrate", args->calibrate,
                "Also measure one dry run at the batch in an isolated process (cached)");
  cmd->add_flag("--refresh", args->refresh, "With --calibrate: measure again even if cached");
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

}  // namespace modelgrid::cli

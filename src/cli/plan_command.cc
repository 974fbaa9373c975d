// `modelgrid plan`: what fits where, before anything is loaded.

#include <fmt/format.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/json_output.h"
#include "cli/table.h"
#include "modelgrid/bytes.h"
#include "modelgrid/repository_plan.h"

namespace modelgrid::cli {

namespace {

struct PlanArgs {
  std::string repository;
  std::vector<std::string> devices;
  std::string strategy = "memory-optimized";
  std::string isolation = "model";
  std::string buffer = "0";
  int max_cpu_models = -1;
  int64_t batch = 0;
  double margin = 0.10;
  int64_t time_budget_ms = 2000;
  bool json = false;
};

std::string Percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? "-" : fmt::format("{:.1f}%", 100.0 * static_cast<double>(part) / static_cast<double>(whole));
}

void PrintHuman(const RepositoryPlan& rp, size_t model_count) {
  const Plan& plan = rp.plan;
  std::cout << fmt::format("Plan: strategy {}, isolation {}, {} device(s), {} model(s): {} instance(s) placed, {} unplaced{}\n\n",
                           StrategyName(plan.strategy), IsolationName(plan.isolation),
                           plan.devices.size(), model_count, plan.placed.size(), plan.unplaced.size(),
                           plan.strategy == Strategy::kOptimal
                               ? (plan.optimal_proven ? " (proven optimal)" : " (time budget reached: best found)")
                               : "");
  Table devices({"DEVICE", "TOTAL", "MODELS", "CONTEXTS", "BUFFER", "OTHERS", "FREE", "USED", "WORKERS", "INSTANCES"},
                {1, 2, 3, 4, 5, 6, 7, 8});
  for (const auto& d : plan.devices) {
    std::string names;
    for (const auto& m : d.models) names += (names.empty() ? "" : ", ") + m;
    const uint64_t committed = d.committed();
    devices.AddRow({d.device, FormatBytes(d.total_bytes), FormatBytes(d.model_bytes),
                    FormatBytes(d.context_bytes), FormatBytes(d.buffer_bytes),
                    FormatBytes(d.used_by_others),
                    FormatBytes(d.total_bytes > committed ? d.total_bytes - committed : 0),
                    Percent(committed, d.total_bytes), std::to_string(d.workers),
                    names.empty() ? "-" : names});
  }
  devices.Print(std::cout);
  std::cout << "\n";
  Table models({"MODEL", "REPLICA", "DEVICE", "REQUEST", "LIMIT", "ESTIMATE"}, {1, 3, 4, 5});
  for (const auto& a : plan.placed) {
    const ModelEstimateOutcome* outcome = nullptr;
    for (const auto& e : rp.estimates) {
      if (e.model == a.model) outcome = &e;
    }
    models.AddRow({a.model, std::to_string(a.replica), a.device, FormatBytes(a.request_bytes),
                   outcome ? FormatBytes(outcome->limit_bytes) : "-",
                   outcome && outcome->estimate ? FormatBytes(outcome->estimate->instance_peak()) : "-"});
  }
  models.Print(std::cout);
  if (!plan.unplaced.empty()) {
    std::cout << "\nUnplaced:\n";
    for (const auto& u : plan.unplaced) {
      std::cout << "  " << u.model << (u.replica > 0 ? "#" + std::to_string(u.replica) : "") << ": "
                << u.reason << "\n";
    }
  }
}

int Run(const PlanArgs& args) {
  auto models = ScanRepository(args.repository);
  if (!models.ok()) {
    std::cerr << "error: " << models.status().message() << "\n";
    return 1;
  }
  Result<std::vector<Device>> devices =
      args.devices.empty() ? DiscoverDevices() : ParseDeviceSpecs(args.devices);
  if (!devices.ok()) {
    std::cerr << "error: " << devices.status().message() << "\n";
    return 1;
  }
  PlanOptions options;
  auto strategy = ParseStrategy(args.strategy);
  auto isolation = ParseIsolation(args.isolation);
  auto buffer = ParseBytes(args.buffer);
  for (const Status& s : {strategy.status(), isolation.status(), buffer.status()}) {
    if (!s.ok()) {
      std::cerr << "error: " << s.message() << "\n";
      return 1;
    }
  }
  options.strategy = *strategy;
  options.isolation = *isolation;
  options.buffer_bytes = *buffer;
  options.max_cpu_models = args.max_cpu_models;
  options.time_budget = std::chrono::milliseconds(args.time_budget_ms);
  EstimateOptions estimate_options;
  if (args.batch > 0) estimate_options.batch = args.batch;
  estimate_options.margin_fraction = args.margin;

  auto walker = MakeWalker();
  auto rp = PlanRepository(*models, *devices, options, estimate_options, walker.get());
  if (!rp.ok()) {
    std::cerr << "error: " << rp.status().message() << "\n";
    return 1;
  }
  if (args.json) {
    nlohmann::json j = PlanToJson(rp->plan);
    nlohmann::json estimates = nlohmann::json::array();
    for (const auto& e : rp->estimates) {
      nlohmann::json entry = {{"model", e.model}, {"request_bytes", e.request_bytes},
                              {"limit_bytes", e.limit_bytes}};
      if (e.estimate) entry["estimate"] = EstimateToJson(*e.estimate);
      if (!e.error.ok()) entry["error"] = e.error.message();
      estimates.push_back(entry);
    }
    j["models"] = estimates;
    std::cout << j.dump(2) << "\n";
  } else {
    PrintHuman(*rp, models->size());
  }
  return 0;
}

}  // namespace

void AddPlanCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<PlanArgs>();
  CLI::App* cmd = app.add_subcommand("plan", "Place the models of a repository onto devices");
  cmd->add_option("--repository", args->repository, "Model repository folder")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--device", args->devices,
                  "Device spec, repeatable: cpu, cpu=CAP, sim:NAME=CAP[,context=B][,used=B] "
                  "(default: the devices of this machine)");
  cmd->add_option("--strategy", args->strategy,
                  "fill-first | balance | memory-optimized | latency-sensitive | optimal");
  cmd->add_option("--isolation", args->isolation, "model | device | none");
  cmd->add_option("--buffer", args->buffer, "Bytes kept free on every GPU, e.g. 1GiB");
  cmd->add_option("--max-cpu-models", args->max_cpu_models,
                  "Most instances placed on the CPU when GPUs exist (-1: no bound)");
  cmd->add_option("--batch", args->batch, "Estimate every model at this batch (default: its max_batch_size)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--margin", args->margin, "Safety margin as a fraction of each estimate")
      ->check(CLI::Range(0.0, 10.0));
  cmd->add_option("--time-budget-ms", args->time_budget_ms, "Time budget of the optimal strategy")
      ->check(CLI::Range(1, 3'600'000));
  cmd->add_flag("--json", args->json, "Machine-readable output");
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

}  // namespace modelgrid::cli

// MakePlan: validation, strategy dispatch, and the strategy / isolation names.
#include <set>
#include <unordered_set>
#include <utility>

#include "modelgrid/placement.h"
#include "placement/report.h"
#include "placement/strategies.h"

namespace modelgrid {
namespace {

constexpr std::pair<Strategy, const char*> kStrategies[] = {
    {Strategy::kFillFirst, "fill-first"},
    {Strategy::kBalance, "balance"},
    {Strategy::kMemoryOptimized, "memory-optimized"},
    {Strategy::kLatencySensitive, "latency-sensitive"},
    {Strategy::kOptimal, "optimal"},
};

constexpr std::pair<Isolation, const char*> kIsolations[] = {
    {Isolation::kModel, "model"},
    {Isolation::kDevice, "device"},
    {Isolation::kNone, "none"},
};

template <typename Enum, size_t N>
Result<Enum> ParseName(const std::pair<Enum, const char*> (&table)[N], const std::string& name,
                       const char* what) {
  std::string valid;
  for (const auto& [value, text] : table) {
    if (name == text) return value;
    valid += (valid.empty() ? "" : ", ") + std::string(text);
  }
  return Status::InvalidArgument("unknown " + std::string(what) + " '" + name +
                                 "' (valid: " + valid + ")");
}

Status Validate(const std::vector<Device>& devices, const std::vector<PlacementItem>& items) {
  if (devices.empty()) return Status::InvalidArgument("no devices to place models on");
  std::unordered_set<std::string> ids;
  for (const Device& d : devices) {
    if (!ids.insert(d.id).second) {
      return Status::InvalidArgument("duplicate device id '" + d.id + "'");
    }
  }
  std::set<std::pair<std::string, int>> instances;
  for (const PlacementItem& it : items) {
    if (!instances.emplace(it.model, it.replica).second) {
      return Status::InvalidArgument("duplicate instance: model '" + it.model + "' replica " +
                                     std::to_string(it.replica) + " appears twice");
    }
  }
  return Status::Ok();
}

// A heuristic's plan. The fill pass is a safety net: each greedy strategy
// already offered every item every device it may use, so it adds nothing
// there; it guarantees that no unplaced item fits anywhere.
Plan Finish(placement::CapacityState s) {
  placement::FillRemaining(s);
  return placement::BuildPlan(s, false);
}

}  // namespace

const char* StrategyName(Strategy s) {
  for (const auto& [value, text] : kStrategies) {
    if (value == s) return text;
  }
  return "unknown";
}

Result<Strategy> ParseStrategy(const std::string& name) {
  return ParseName(kStrategies, name, "placement strategy");
}

const char* IsolationName(Isolation i) {
  for (const auto& [value, text] : kIsolations) {
    if (value == i) return text;
  }
  return "unknown";
}

Result<Isolation> ParseIsolation(const std::string& name) {
  return ParseName(kIsolations, name, "isolation mode");
}

Result<Plan> MakePlan(const std::vector<Device>& devices, const std::vector<PlacementItem>& items,
                      const PlanOptions& options) {
  MG_RETURN_IF_ERROR(Validate(devices, items));
  using namespace placement;
  const Problem p = BuildProblem(devices, items, options);
  const Deadline deadline = Clock::now() + options.time_budget;
  switch (options.strategy) {
    case Strategy::kOptimal: {
      OptimalResult r = RunOptimal(p, deadline);
      return BuildPlan(r.state, r.proven);
    }
    case Strategy::kFillFirst:
      return Finish(RunFillFirst(p));
    case Strategy::kBalance:
      return Finish(RunBalance(p));
    case Strategy::kLatencySensitive:
      return Finish(RunLatencySensitive(p));
    case Strategy::kMemoryOptimized:
      break;
  }
  return Finish(RunMemoryOptimized(p, deadline));
}

}  // namespace modelgrid

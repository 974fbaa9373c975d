// The model lifecycle state machine (lifecycle.h) and ModelStateName
// (modelgrid/grid.h), which lives here, next to the states' table, so that
// the state machine and its test build without the rest of the grid.
#include "grid/lifecycle.h"

#include <array>
#include <utility>

namespace modelgrid {

namespace {

constexpr uint32_t Bit(ModelState s) { return uint32_t{1} << static_cast<int>(s); }

template <typename... States>
constexpr uint32_t From(States... states) {
  return (Bit(states) | ...);
}

constexpr uint32_t kEveryState = (uint32_t{1} << kModelStateCount) - 1;

using S = ModelState;
using E = LifecycleEvent;

// THE table: per event, the states that accept it and where it leads.
// One row per event, in LifecycleEvent order (checked below). The same
// table, as text, heads lifecycle.h.
constexpr std::array<LifecycleTransition, kLifecycleEventCount> kTable = {{
    {E::kPlace, From(S::kAdded, S::kUnplaced, S::kFailed, S::kUnloaded, S::kStandby), S::kLoading},
    {E::kLoaded, From(S::kLoading), S::kReady},
    {E::kLoadFailed, From(S::kLoading), S::kFailed},
    {E::kEstimateFailed, From(S::kAdded, S::kUnplaced, S::kFailed, S::kUnloaded, S::kStandby),
     S::kFailed},
    {E::kNoFit, From(S::kAdded, S::kUnplaced, S::kFailed, S::kUnloaded, S::kStandby), S::kUnplaced},
    {E::kPark, From(S::kAdded, S::kUnplaced, S::kFailed, S::kUnloaded), S::kStandby},
    {E::kDemand, From(S::kStandby), S::kLoading},
    {E::kWorkerDied,
     From(S::kLoading, S::kReady, S::kRestarting, S::kSwappingOut, S::kSwapped, S::kSwappingIn),
     S::kRestarting},
    {E::kRestarted, From(S::kRestarting), S::kReady},
    {E::kRestartFailed, From(S::kRestarting), S::kFailed},
    {E::kSwapOut, From(S::kReady), S::kSwappingOut},
    {E::kSwappedOut, From(S::kSwappingOut), S::kSwapped},
    {E::kSwapOutFailed, From(S::kSwappingOut), S::kReady},
    {E::kSwapIn, From(S::kSwapped), S::kSwappingIn},
    {E::kSwappedIn, From(S::kSwappingIn), S::kReady},
    {E::kSwapInFailed, From(S::kSwappingIn), S::kLoading},
    {E::kEvict, From(S::kReady, S::kSwapped, S::kRestarting), S::kStandby},
    {E::kUnload, From(S::kLoading, S::kReady, S::kRestarting, S::kSwapped, S::kStandby),
     S::kUnloaded},
    {E::kShutdown, kEveryState, S::kUnloaded},
}};

constexpr bool RowsFollowEventOrder() {
  for (int i = 0; i < kLifecycleEventCount; ++i) {
    if (static_cast<int>(kTable[i].event) != i) return false;
    if ((kTable[i].from_mask & ~kEveryState) != 0) return false;
  }
  return true;
}
static_assert(RowsFollowEventOrder(), "kTable: one row per LifecycleEvent, in enum order");
static_assert(kModelStateCount <= 32, "from_mask holds one bit per ModelState");

}  // namespace

const char* ModelStateName(ModelState state) {
  switch (state) {
    case ModelState::kAdded: return "added";
    case ModelState::kLoading: return "loading";
    case ModelState::kReady: return "ready";
    case ModelState::kRestarting: return "restarting";
    case ModelState::kUnplaced: return "unplaced";
    case ModelState::kFailed: return "failed";
    case ModelState::kUnloaded: return "unloaded";
    case ModelState::kStandby: return "standby";
    case ModelState::kSwappingOut: return "swapping_out";
    case ModelState::kSwapped: return "swapped";
    case ModelState::kSwappingIn: return "swapping_in";
  }
  return "unknown";
}

const char* LifecycleEventName(LifecycleEvent event) {
  switch (event) {
    case E::kPlace: return "place";
    case E::kLoaded: return "loaded";
    case E::kLoadFailed: return "load_failed";
    case E::kEstimateFailed: return "estimate_failed";
    case E::kNoFit: return "no_fit";
    case E::kPark: return "park";
    case E::kDemand: return "demand";
    case E::kWorkerDied: return "worker_died";
    case E::kRestarted: return "restarted";
    case E::kRestartFailed: return "restart_failed";
    case E::kSwapOut: return "swap_out";
    case E::kSwappedOut: return "swapped_out";
    case E::kSwapOutFailed: return "swap_out_failed";
    case E::kSwapIn: return "swap_in";
    case E::kSwappedIn: return "swapped_in";
    case E::kSwapInFailed: return "swap_in_failed";
    case E::kEvict: return "evict";
    case E::kUnload: return "unload";
    case E::kShutdown: return "shutdown";
  }
  return "unknown";
}

std::span<const LifecycleTransition> LifecycleTable() { return kTable; }

Result<ModelState> NextState(ModelState from, LifecycleEvent event) {
  const int e = static_cast<int>(event);
  const int s = static_cast<int>(from);
  if (e >= 0 && e < kLifecycleEventCount && s >= 0 && s < kModelStateCount &&
      (kTable[e].from_mask & Bit(from)) != 0) {
    return kTable[e].to;
  }
  return Status::Internal(std::string("event '") + LifecycleEventName(event) +
                          "' is not allowed in state '" + ModelStateName(from) + "'");
}

bool IsResident(ModelState state) {
  switch (state) {
    case S::kLoading:
    case S::kReady:
    case S::kRestarting:
    case S::kSwappingOut:
    case S::kSwappingIn:
      return true;
    case S::kAdded:
    case S::kUnplaced:
    case S::kFailed:
    case S::kUnloaded:
    case S::kStandby:
    case S::kSwapped:
      return false;
  }
  return false;
}

bool CountsTowardsReadiness(ModelState state) {
  switch (state) {
    case S::kAdded:
    case S::kLoading:
    case S::kRestarting:
      return false;
    case S::kReady:
    case S::kUnplaced:
    case S::kFailed:
    case S::kUnloaded:
    case S::kStandby:
    case S::kSwappingOut:
    case S::kSwapped:
    case S::kSwappingIn:
      return true;
  }
  return false;
}

bool KeepsReason(ModelState state) {
  switch (state) {
    case S::kFailed:
    case S::kUnplaced:
    case S::kRestarting:
    case S::kStandby:
    case S::kSwapped:
      return true;
    case S::kAdded:
    case S::kLoading:
    case S::kReady:
    case S::kUnloaded:
    case S::kSwappingOut:
    case S::kSwappingIn:
      return false;
  }
  return false;
}

ModelLifecycle::ModelLifecycle(std::string model) : model_(std::move(model)) {}

Status ModelLifecycle::Apply(LifecycleEvent event, std::string reason) {
  Result<ModelState> next = NextState(state_, event);
  if (!next.ok()) return next.status().WithPrefix("model '" + model_ + "'");
  state_ = *next;
  if (KeepsReason(state_)) {
    reason_ = std::move(reason);
  } else {
    reason_.clear();
  }
  last_event_ = event;
  return Status::Ok();
}

}  // namespace modelgrid

// The lifecycle of one model in the grid as a state machine (internal to the
// grid component). The states are ModelState (modelgrid/grid.h); the events
// below are what happens to a model. One table (lifecycle.cc, kTable) says,
// per event, the states that accept it and the state it leads to; every
// change of a model's state goes through ModelLifecycle::Apply, which looks
// the pair up there. An event a state does not accept is an error (kInternal
// naming the model, the state and the event) and leaves the state as it was.
//
// The table (event: from states -> to state):
//
//   place           added, unplaced, failed, unloaded, standby -> loading
//   loaded          loading                                    -> ready
//   load_failed     loading                                    -> failed
//   estimate_failed added, unplaced, failed, unloaded, standby -> failed
//   no_fit          added, unplaced, failed, unloaded, standby -> unplaced
//   park            added, unplaced, failed, unloaded          -> standby
//   demand          standby                                    -> loading
//   worker_died     loading, ready, restarting, swapping_out,
//                   swapped, swapping_in                       -> restarting
//   restarted       restarting                                 -> ready
//   restart_failed  restarting                                 -> failed
//   swap_out        ready                                      -> swapping_out
//   swapped_out     swapping_out                               -> swapped
//   swap_out_failed swapping_out                               -> ready
//   swap_in         swapped                                    -> swapping_in
//   swapped_in      swapping_in                                -> ready
//   swap_in_failed  swapping_in                                -> loading
//   evict           ready, swapped, restarting                 -> standby
//   unload          loading, ready, restarting, swapped,
//                   standby                                    -> unloaded
//   shutdown        every state                                -> unloaded
//
// Beyond the brief's list: estimate_failed (the planner could not estimate
// the model, so it never reached a worker: grid.cc's "estimate failed"
// unplaced entries) and worker_died from restarting (the fresh worker of a
// restart died too; the watchdog tries again after a longer backoff).
// evict from restarting: a worker that died while its model was swapped out
// took the host copy with it; the model goes back to standby. park from
// failed and unloaded: an explicit Load of a model that does not fit now.
// swap_in_failed goes to loading: the weights are read again from the files.
// unload is not accepted while a swap is in flight (swapping_out,
// swapping_in): the grid lets the swap settle first; shutdown takes any state.
//
// Reasons: Apply keeps the reason it is given when the new state is one
// whose status explains itself (failed, unplaced, restarting, standby,
// swapped: ModelStatus::reason) and clears it for every other state, so a
// stale "worker died" never outlives the restart.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "modelgrid/grid.h"
#include "modelgrid/status.h"

namespace modelgrid {

// What happens to a model; names as LifecycleEventName gives them.
enum class LifecycleEvent {
  kPlace,          // the planner gave it a device; a worker starts loading it
  kLoaded,         // its worker loaded it
  kLoadFailed,     // its worker could not load it
  kEstimateFailed, // its memory could not be estimated; never placed
  kNoFit,          // fits on no device, even with every other model gone
  kPark,           // does not fit now but could: registered, loads on demand
  kDemand,         // a request arrived for a model on standby
  kWorkerDied,     // its worker process exited or stopped answering
  kRestarted,      // the watchdog's new worker loaded it again
  kRestartFailed,  // the watchdog gave up on it
  kSwapOut,        // copying its weights to the host tier begins
  kSwappedOut,     // its weights are in host memory; device bytes freed
  kSwapOutFailed,  // the copy to the host failed; the device copy still serves
  kSwapIn,         // a request arrived for a swapped model; copy-back begins
  kSwappedIn,      // its weights are back on the device
  kSwapInFailed,   // the copy-back failed; it is loaded again from its files
  kEvict,          // its device bytes are taken for another model; back to standby
  kUnload,         // an explicit Unload
  kShutdown,       // the grid shuts down
};

// Number of LifecycleEvent values (kShutdown is the last).
inline constexpr int kLifecycleEventCount = static_cast<int>(LifecycleEvent::kShutdown) + 1;
// Number of ModelState values (kSwappingIn is the last).
inline constexpr int kModelStateCount = static_cast<int>(ModelState::kSwappingIn) + 1;

// The event's snake_case name ("place", "swap_in_failed", ...); "unknown"
// for a value outside the enum.
const char* LifecycleEventName(LifecycleEvent event);

// One row of the table: the states (bit 1 << int(state)) that accept
// `event`, and the state it leads to.
struct LifecycleTransition {
  LifecycleEvent event;
  uint32_t from_mask;
  ModelState to;
};

// The table itself, one row per event in LifecycleEvent order (for
// documentation and listings; NextState is the lookup).
std::span<const LifecycleTransition> LifecycleTable();

// The table lookup: the state `event` leads to from `from`. Errors:
// kInternal "event 'E' is not allowed in state 'S'" when the table has no
// such transition.
Result<ModelState> NextState(ModelState from, LifecycleEvent event);

// True when a model in `state` holds (or is taking) device bytes for its
// weights: loading, ready, restarting, swapping_out, swapping_in. A swapped
// model keeps its worker (and that worker's context) but not its weights.
bool IsResident(ModelState state);

// True when a model in `state` lets the grid report ready (the readiness
// probe, Grid::Ready): it serves, or is settled where it is (ready,
// standby, swapped, swapping_out, swapping_in, unplaced, failed, unloaded).
// False for the states the probe waits out: added (not planned yet),
// loading, restarting. Swaps are routine while serving and do not take the
// server out of rotation; a model on standby or swapped answers its next
// request itself.
bool CountsTowardsReadiness(ModelState state);

// True when a model in `state` keeps a reason in its status (failed,
// unplaced, restarting, standby, swapped); Apply clears it otherwise.
bool KeepsReason(ModelState state);

// The state machine of one model. Starts in kAdded with no reason.
// Thread-compatible: the grid applies events under its own lock.
class ModelLifecycle {
 public:
  // `model` names the model in errors.
  explicit ModelLifecycle(std::string model);

  // The model's name, its state, and the reason kept for that state ("" when
  // the state keeps none, see KeepsReason).
  const std::string& model() const { return model_; }
  ModelState state() const { return state_; }
  const std::string& reason() const { return reason_; }
  // The last event applied successfully; nullopt before the first.
  std::optional<LifecycleEvent> last_event() const { return last_event_; }

  // Moves the model along `event` (NextState) and sets the reason: `reason`
  // when the new state keeps one, "" otherwise. Errors: kInternal
  // "model 'M': event 'E' is not allowed in state 'S'" when the table has no
  // such transition; the state, reason and last_event stay unchanged then.
  Status Apply(LifecycleEvent event, std::string reason = "");

 private:
  std::string model_;
  ModelState state_ = ModelState::kAdded;
  std::string reason_;
  std::optional<LifecycleEvent> last_event_;
};

}  // namespace modelgrid

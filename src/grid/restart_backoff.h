// The watchdog's restart delays for one worker slot (grid.h, "Watchdog"),
// apart from processes and clocks so that they are tested with made-up
// times: the first restart after a crash waits `initial`, each further
// crash or failed start doubles the wait up to `max`, and a worker that
// stayed up for `stable` (a minute in the grid) starts again from `initial`.
// Internal to the grid component; thread-compatible (the grid's mutex
// guards each slot's instance).
#pragma once

#include <algorithm>
#include <chrono>

namespace modelgrid::grid_internal {

class RestartBackoff {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Millis = std::chrono::milliseconds;

  RestartBackoff(Millis initial, Millis max, Millis stable)
      : initial_(initial), max_(std::max(initial, max)), stable_(stable), next_(initial) {}

  // A worker process of the slot started (or restarted) at `now`.
  void Started(TimePoint now) {
    started_ = now;
    running_ = true;
  }

  // The slot's worker exited unrequested at `now`: returns how long to wait
  // before starting it again. A worker that ran for `stable` or longer (or
  // whose start was never recorded) resets the wait to `initial`.
  Millis OnExit(TimePoint now) {
    if (!running_ || now - started_ >= stable_) next_ = initial_;
    running_ = false;
    return Take();
  }

  // Starting the worker failed: returns how long to wait before trying again.
  Millis OnStartFailed() { return Take(); }

  // The wait the next OnExit/OnStartFailed would return without a reset.
  Millis next() const { return next_; }

 private:
  Millis Take() {
    const Millis delay = next_;
    next_ = std::min(max_, next_ * 2);
    return delay;
  }

  Millis initial_, max_, stable_;
  Millis next_;
  TimePoint started_{};
  bool running_ = false;
};

}  // namespace modelgrid::grid_internal

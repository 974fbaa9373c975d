// The frontend's handle on one modelgrid-worker process (docs/design.md,
// "Processes and paths"): starts the process, speaks the control protocol of
// modelgrid/ipc/messages.h over a socketpair, places tensors in the worker's
// shared-memory arena (modelgrid/ipc/tensor_arena.h), and notices at once when
// the process dies.
//
// Death: a reader thread owns the receiving side of the channel. End of
// stream (the worker exited or was killed, e.g. kill -9) fails every call in
// flight with kUnavailable "worker 'NAME' (pid P) exited: <how>" within
// milliseconds, reaps the child, and then calls the `on_exit` callback once.
// The client does not restart anything: restarting with backoff is the
// watchdog's job (the Grid), which starts a new WorkerClient.
//
// Outputs: the frontend owns every arena region. For each infer it allocates
// an output region of a guessed size (the last size seen for the model and
// task, per batch row, else 1 MiB plus the input bytes; a minimal region when
// the guess does not fit the arena). When the outputs do not fit, the worker
// answers `output_needed` with the exact size; the client allocates that and
// sends `output_region`, and the worker writes there (one extra round trip,
// no recomputation). When the arena cannot hold that size either, the client
// answers with an empty region and Infer fails with the arena's
// kResourceExhausted. A request's regions are freed when its result (or the
// worker's death) arrives, whichever path it took.
//
// Lanes (modelgrid/ipc/messages.h): Load gives each model a socket of its
// own to the worker's thread for that model; Infer sends the request there
// and reads the result itself, one request at a time per model, so neither
// the worker's receive loop nor this client's reader thread is on the
// request's path. An Infer that finds its model's lane busy with another
// call takes the control socket instead (its request queues in the worker
// behind the running one, as before lanes). Load, Unload, Stats, SwapOut,
// SwapIn, SetLimit and death detection stay on the control socket; when the
// worker dies, a call on a lane fails with the same "worker ... exited"
// error as the others.
//
// Thread-safety: every method may be called from any thread, concurrently
// (many Infer calls may be in flight at once; replies are matched by request
// id). The destructor calls Shutdown.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/ipc/messages.h"
#include "modelgrid/kserve/tensor.h"
#include "modelgrid/status.h"

namespace modelgrid {

// How a worker process ended, for logs and the watchdog.
struct WorkerExit {
  pid_t pid = 0;
  int exit_code = -1;      // >= 0 when it exited normally
  int signal = 0;          // > 0 when a signal killed it (9 for kill -9)
  bool requested = false;  // true when Shutdown() asked it to stop
  // "exited with code 3", "killed by signal 9 (Killed)".
  std::string Describe() const;
};

// How to start a worker.
struct WorkerOptions {
  // Path of the modelgrid-worker executable.
  std::string executable;
  // For messages and logs, e.g. "resnet50" or "cpu".
  std::string name;
  // Shared-memory arena capacity in bytes, a positive multiple of 64.
  uint64_t arena_bytes = uint64_t{256} << 20;
  // LibTorch intra-op threads in the worker; 0 = LibTorch's default.
  int threads = 0;
  // How long Start waits for the worker to answer ping.
  std::chrono::milliseconds start_timeout{10'000};
  // Spin budget of the request path (modelgrid/ipc/spin.h): how long Infer
  // polls its model's lane for the result before it sleeps, and how long
  // the worker's model threads poll for their next request before they
  // sleep (passed as --spin-us). At most this much CPU time is spent per
  // wait; it saves the two wake-ups of a request that answers within it
  // (docs/benchmarks.md, "Dispatch cost"). Requests with more than
  // ipc::kSpinMaxInputBytes of inputs are not spun for (spin.h says why).
  // 0 = always sleep.
  std::chrono::microseconds spin{50};
};

// A running worker process. Create with Start.
class WorkerClient {
 public:
  // Spawns `options.executable --fd N --name NAME [--threads T]` with one end of a
  // socketpair as descriptor N, the child set to die with the parent
  // (PR_SET_PDEATHSIG SIGKILL, so no orphans survive a crashed frontend;
  // the fork runs on a process-lifetime helper thread, because Linux sends
  // that signal when the forking *thread* ends, and the caller may be a
  // short-lived one); attaches the arena; waits for `pong`. `on_exit` (may
  // be empty) is called once, from the reader thread, after the process has
  // ended and every call in flight has failed; it must not destroy the
  // client (it may call Shutdown, which then returns at once). It is not
  // called when Start fails.
  // Errors: kNotFound when the executable is missing; kUnavailable when the
  // worker does not answer within start_timeout or dies while starting (the
  // message includes how it ended); kInternal for spawn/socket failures.
  static Result<std::unique_ptr<WorkerClient>> Start(
      WorkerOptions options, std::function<void(const WorkerExit&)> on_exit);

  ~WorkerClient();
  WorkerClient(const WorkerClient&) = delete;
  WorkerClient& operator=(const WorkerClient&) = delete;

  pid_t pid() const;
  const std::string& name() const;
  // False once the process has ended (or Shutdown ran).
  bool alive() const;

  // Loads an instance (messages.h `load`: `path` is the model's folder);
  // returns the worker's `loaded` figures (bytes) and the model's tasks and
  // tensor specs. Errors: the worker's load error as its Status code (e.g.
  // kNotFound naming the path, kCorruption, kResourceExhausted naming the
  // limit, kAlreadyExists when the worker holds a model of that name);
  // kUnavailable when the worker died or did not answer within `timeout`.
  Result<ipc::LoadedMessage> Load(const ipc::LoadMessage& load, std::chrono::milliseconds timeout);

  // Unloads an instance, after the requests sent to it before. Errors:
  // kNotFound for a model the worker does not hold; kUnavailable as Load.
  Status Unload(const std::string& model, std::chrono::milliseconds timeout);

  // Runs `task` of `model` on `inputs` in the worker: copies the inputs into
  // the arena (one copy, no socket transfer; none for an input in a
  // registered shared-memory region), waits for the result and copies the
  // outputs out. `params` is a JSON object handed to the backend's Run
  // (e.g. generate's max_new_tokens); null means {}. `limit_bytes`, when
  // set, is this execution's memory cap in bytes (the model's request plus
  // the bytes the grid granted it for this batch; 0 = none), in force in
  // the worker while the request runs in place of the load's limit
  // (messages.h, InferMessage::limit_bytes); unset = the load's limit.
  // `output_names` (empty = all) are the outputs the worker sends back, in
  // that order: the others are never copied (a name the task lacks is the
  // worker's kInvalidArgument).
  // Errors: the worker's error for the request (e.g. kInvalidArgument for a
  // wrong shape, kResourceExhausted for the memory limit, with
  // Status::memory_limit() {model, device, limit, in use, requested bytes},
  // kNotFound for an unknown task or a model the worker does not hold,
  // kUnavailable "model 'M' is swapped out: ..." after SwapOut) with its
  // message;
  // kInvalidArgument, before anything is sent, for an input whose bytes do
  // not match its datatype and shape or a `params` that is not an object;
  // kResourceExhausted when the arena has no room for the inputs or the
  // outputs; kUnavailable when the worker died ("worker 'NAME' (pid P)
  // exited: killed by signal 9 (Killed)") or `timeout` passed (the request
  // is then abandoned: its arena regions are freed only when the worker
  // answers or dies).
  Result<std::vector<InferTensor>> Infer(const std::string& model, const std::string& task,
                                         const std::vector<InferTensor>& inputs,
                                         const nlohmann::json& params,
                                         std::chrono::milliseconds timeout,
                                         std::optional<uint64_t> limit_bytes = std::nullopt,
                                         const std::vector<std::string>& output_names = {});

  // Moves `model`'s weights off its device while the worker keeps the model
  // (messages.h swap_out): CPU models to one file in `swap_dir` (a folder,
  // created when missing), CUDA models to pinned host memory (`swap_dir`
  // ignored). Runs after the requests sent to the model before it; later
  // Infer calls fail with kUnavailable "model 'M' is swapped out" until
  // SwapIn. Returns the worker's figures: bytes moved, microseconds, and its
  // resident memory before and after (bytes); a model swapped out already
  // gives bytes 0. Errors (the model keeps serving, weights in place):
  // kNotFound for a model the worker does not hold; the worker's error
  // (e.g. kUnavailable naming the swap file and the system error,
  // kInvalidArgument for a CPU model without `swap_dir`); kUnavailable as
  // Load.
  Result<ipc::SwappedOutMessage> SwapOut(const std::string& model, const std::string& swap_dir,
                                         std::chrono::milliseconds timeout);

  // Brings `model`'s weights back onto its device (messages.h swap_in).
  // Returns bytes moved and microseconds; `reloaded` (with `reason`) when
  // the swap file was missing or corrupt and the worker loaded the model
  // again from its repository files instead. A resident model gives bytes 0.
  // Errors (the model stays swapped out): kNotFound for a model the worker
  // does not hold; kResourceExhausted with Status::memory_limit() when the
  // limit refused the weights; the load error when the reload failed;
  // kUnavailable as Load.
  Result<ipc::SwappedInMessage> SwapIn(const std::string& model, std::chrono::milliseconds timeout);

  // Sets `model`'s memory cap in the worker to `limit_bytes` bytes (0 =
  // none) at once (messages.h set_limit): the worker applies it from its
  // receive loop, not behind the model's queued requests, so a request the
  // model is running now is capped from its next allocation on. Lowered
  // under what that request holds, it fails the request with
  // kResourceExhausted (Status::memory_limit() set) whose message ends with
  // "; <reason>" (e.g. "preempted by model 'hi' (priority 5)"; "" adds
  // nothing). The cap replaces the load's limit for later requests that
  // carry no limit of their own; an Infer with `limit_bytes` still runs
  // under its own, so the grid's next batch is not held to it. It also
  // gives the model's device cached-but-unused bytes back (CUDA:
  // emptyCache; CPU caches nothing). Returns `held_bytes`, what the model
  // holds right after (CPU: its own counters; CUDA: the caching allocator's
  // allocated bytes on its device, every model of the worker there), and
  // `released_bytes`, the cached bytes given back (CPU: 0). Errors:
  // kNotFound for a model the worker does not hold; kUnavailable while its
  // load has not finished, or as Load (the worker died, or no answer within
  // `timeout`); kInternal or kNotFound with the CUDA error when the device
  // cap could not be set (nothing changed then).
  Result<ipc::LimitSetMessage> SetLimit(const std::string& model, uint64_t limit_bytes,
                                        const std::string& reason,
                                        std::chrono::milliseconds timeout);

  // Has the worker forget shared-memory region `region_id` (messages.h
  // detach_region; no reply): the grid calls it when the region is
  // unregistered. Inputs in a registered region (InferTensor::shared) are
  // attached on first use by Infer, which sends their place instead of
  // copying them into the arena. A no-op for a region never attached.
  void DetachRegion(uint64_t region_id);

  // The worker's memory figures (`stats`, bytes): the process's allocator
  // current and peak, and per model its own counters' current and peak
  // since its load and whether it is swapped out (ipc::ModelMemory;
  // src/worker/README.md says what is exact). Errors: kUnavailable as Load.
  Result<ipc::StatsMessage> Stats(std::chrono::milliseconds timeout);

  // Sends `shutdown`, waits up to `grace` for the process to exit, then
  // SIGKILLs it; reaps it; fails calls still in flight with kUnavailable.
  // Idempotent; `on_exit` still runs once (with requested = true).
  void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds{2000});

 private:
  struct Impl;
  explicit WorkerClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelgrid

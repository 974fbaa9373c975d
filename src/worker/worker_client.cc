// WorkerClient: spawning a worker, the reader thread that matches replies to
// calls, death handling, and Infer's arena bookkeeping (worker_client.h).
#include "modelgrid/worker/worker_client.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <thread>
#include <utility>

#include "modelgrid/ipc/channel.h"
#include "modelgrid/ipc/spin.h"
#include "modelgrid/ipc/tensor_arena.h"
#include "modelgrid/ipc/unix_socket.h"
#include "worker/spawn.h"

namespace modelgrid {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// The descriptor number the worker finds its socket under (--fd).
constexpr int kWorkerFd = 3;
// First output guess when nothing is known for (model, task): this plus the
// input bytes.
constexpr uint64_t kFirstOutputGuessBytes = uint64_t{1} << 20;
// After end of stream the process should be gone at once (kill -9) or within
// its drain (shutdown); past this it is killed.
constexpr milliseconds kExitGrace{3'000};
// Bound on writing one control frame (the worker always reads its socket).
constexpr milliseconds kSendTimeout{5'000};
// When a lane ends: how long to wait for the reader to report the worker's
// death (it notices end of stream and reaps within milliseconds) before
// taking the worker for alive (it closed the lane: an unload overtook the
// call).
constexpr milliseconds kLaneDeathGrace{250};

std::string Quote(const std::string& s) { return "'" + s + "'"; }

}  // namespace

std::string WorkerExit::Describe() const {
  if (signal > 0) {
    const char* what = ::sigdescr_np(signal);
    return "killed by signal " + std::to_string(signal) + " (" + (what ? what : "unknown") + ")";
  }
  if (exit_code >= 0) return "exited with code " + std::to_string(exit_code);
  return "ended (status unknown)";
}

// One call waiting for its reply. Fields below `mu` are guarded by it.
struct PendingCall {
  explicit PendingCall(uint64_t request_id) : id(request_id) {}

  const uint64_t id;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;       // a reply or a failure is recorded
  bool abandoned = false;  // the caller timed out; the reader cleans up
  std::optional<ipc::Frame> reply;
  Status failure;
  // Infer only: every arena region of the request (inputs, the first output
  // region, the one allocated for output_needed), the region the outputs
  // are expected in, and the arena's error when output_needed asked for
  // more than it had.
  std::vector<ipc::Region> regions;
  ipc::Region output;
  Status output_error;
};

// The frontend's end of one model's lane. One call at a time holds `mu`.
struct Lane {
  std::mutex mu;
  std::unique_ptr<ipc::Channel> channel;  // guarded by mu; null once broken
  // Calls that gave up waiting (timeout) with their arena regions, freed
  // when their `result` arrives or the lane goes. Guarded by mu.
  std::map<uint64_t, std::vector<ipc::Region>> abandoned;
};

struct WorkerClient::Impl {
  WorkerOptions options;
  pid_t pid = 0;
  std::unique_ptr<ipc::TensorArena> arena;
  std::unique_ptr<ipc::Channel> channel;
  std::thread reader;
  std::atomic<uint64_t> next_id{1};
  std::atomic<bool> alive{true};

  std::mutex shutdown_mu;      // serializes Shutdown
  bool shutdown_done = false;  // guarded by shutdown_mu

  std::mutex mu;
  std::condition_variable reaped_cv;
  std::map<uint64_t, std::shared_ptr<PendingCall>> pending;  // guarded by mu
  bool shutdown_requested = false;                           // guarded by mu
  bool reaped = false;                                       // guarded by mu
  bool ended = false;  // guarded by mu: calls fail with `death` from now on
  Status death;        // guarded by mu
  std::function<void(const WorkerExit&)> on_exit;  // guarded by mu

  std::map<std::string, std::shared_ptr<Lane>> lanes;  // guarded by mu

  std::mutex regions_mu;        // serializes attach_region round trips
  std::set<uint64_t> attached;  // guarded by regions_mu: region ids the worker maps

  // Makes sure the worker maps the shared-memory region of `bytes` (one
  // attach_region round trip the first time). Errors: the worker's, or
  // kUnavailable as Roundtrip.
  Status EnsureRegion(const SharedTensorBytes& bytes, Clock::time_point deadline) {
    std::lock_guard<std::mutex> lock(regions_mu);
    if (attached.contains(bytes.region_id)) return Status::Ok();
    auto call = std::make_shared<PendingCall>(next_id++);
    MG_ASSIGN_OR_RETURN(
        ipc::Frame reply,
        Roundtrip(
            call,
            ipc::ToFrame(ipc::AttachRegionMessage{bytes.region_id, bytes.map_bytes}, call->id),
            deadline, std::array<int, 1>{bytes.fd}));
    if (reply.type != static_cast<uint16_t>(ipc::MessageType::kRegionAttached)) {
      return UnexpectedReply(reply, "'region_attached'");
    }
    auto attached_reply = ipc::FromFrame<ipc::RegionAttachedMessage>(reply);
    if (!attached_reply.ok()) return attached_reply.status().WithPrefix(Who());
    if (attached_reply->error) {
      return attached_reply->error->ToStatus().WithPrefix("shared memory region '" + bytes.region +
                                                          "'");
    }
    attached.insert(bytes.region_id);
    return Status::Ok();
  }

  std::mutex guess_mu;
  std::map<std::pair<std::string, std::string>, uint64_t> bytes_per_row;  // guarded by guess_mu

  std::string Who() const {
    return "worker '" + options.name + "' (pid " + std::to_string(pid) + ")";
  }

  void FreeRegions(const std::vector<ipc::Region>& regions) {
    for (const ipc::Region& r : regions) {
      Status s = arena->Free(r);
      if (!s.ok()) spdlog::error("{}: freeing an arena region: {}", Who(), s.ToString());
    }
  }

  // ---- calls ----

  // Registers `call`, sends `frame` and waits for the reply until `deadline`.
  Result<ipc::Frame> Roundtrip(const std::shared_ptr<PendingCall>& call, const ipc::Frame& frame,
                               Clock::time_point deadline, std::span<const int> fds = {}) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (ended) return death;
      if (!alive.load()) return Status::Unavailable(Who() + " is shut down");
      pending[call->id] = call;
    }
    // Not bounded by the caller's deadline: a frame that cannot be written in
    // kSendTimeout means a worker that stopped reading, which is a fault.
    Status sent = channel->Send(frame, fds, kSendTimeout);
    if (!sent.ok()) {
      bool mine = false;
      {
        std::lock_guard<std::mutex> lock(mu);
        mine = pending.erase(call->id) > 0;
        if (sent.code() == StatusCode::kUnavailable && !reaped && !shutdown_requested) {
          // The stream is unusable (peer gone, or a partial frame): make the
          // death explicit so the reader fails everything and reaps.
          ::kill(pid, SIGKILL);
        }
      }
      if (mine) {
        return Status::Unavailable(
            Who() + ": cannot send '" +
            std::string(ipc::MessageTypeName(static_cast<ipc::MessageType>(frame.type))) +
            "': " + sent.message());
      }
      // The reader already answered or failed the call: take that outcome.
    }
    return Wait(*call, deadline, frame);
  }

  Result<ipc::Frame> Wait(PendingCall& call, Clock::time_point deadline, const ipc::Frame& sent) {
    std::unique_lock<std::mutex> lock(call.mu);
    if (!call.cv.wait_until(lock, deadline, [&] { return call.done; })) {
      call.abandoned = true;
      return Status::Unavailable(
          Who() + ": no reply to '" +
          std::string(ipc::MessageTypeName(static_cast<ipc::MessageType>(sent.type))) +
          "' (request " + std::to_string(call.id) + ") within the timeout");
    }
    if (!call.failure.ok()) return call.failure;
    return *call.reply;
  }

  // The error a reply of an unexpected type stands for: a `result` error
  // (the worker's answer to a message it does not accept) or a protocol bug.
  Status UnexpectedReply(const ipc::Frame& reply, const char* expected) {
    if (reply.type == static_cast<uint16_t>(ipc::MessageType::kResult)) {
      auto result = ipc::FromFrame<ipc::ResultMessage>(reply);
      if (result.ok() && result->error) return result->error->ToStatus();
    }
    return Status::Internal(Who() + ": expected " + expected + ", got message type " +
                            std::to_string(reply.type));
  }

  // Sends `message` and waits until `timeout` for its reply of type
  // `expected` (`name` for errors), decoded as Reply; a reply carrying an
  // `error` becomes that error. The shape of swap_out, swap_in, set_limit.
  template <typename Reply, typename Message>
  Result<Reply> Call(const Message& message, ipc::MessageType expected, const char* name,
                     std::chrono::milliseconds timeout) {
    auto call = std::make_shared<PendingCall>(next_id++);
    MG_ASSIGN_OR_RETURN(ipc::Frame reply,
                        Roundtrip(call, ipc::ToFrame(message, call->id), Clock::now() + timeout));
    if (reply.type != static_cast<uint16_t>(expected)) return UnexpectedReply(reply, name);
    auto done = ipc::FromFrame<Reply>(reply);
    if (!done.ok()) return done.status().WithPrefix(Who());
    if (done->error) return done->error->ToStatus();
    return std::move(done).value();
  }

  // ---- the reader thread ----

  void ReaderLoop() {
    Status end;
    for (;;) {
      auto frame = channel->Receive(ipc::kNoTimeout);
      if (!frame.ok()) {
        end = frame.status();
        break;
      }
      if (frame->type == static_cast<uint16_t>(ipc::MessageType::kOutputNeeded)) {
        OnOutputNeeded(*frame);
      } else {
        Complete(std::move(frame).value());
      }
    }
    OnEnd(end);
  }

  void Complete(ipc::Frame frame) {
    std::shared_ptr<PendingCall> call;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = pending.find(frame.request_id);
      if (it == pending.end()) {
        spdlog::warn("{}: reply type {} for request {}, which nobody waits for", Who(), frame.type,
                     frame.request_id);
        return;
      }
      call = std::move(it->second);
      pending.erase(it);
    }
    std::unique_lock<std::mutex> lock(call->mu);
    if (call->abandoned) {
      std::vector<ipc::Region> regions = std::move(call->regions);
      lock.unlock();
      FreeRegions(regions);
      return;
    }
    call->reply = std::move(frame);
    call->done = true;
    lock.unlock();
    call->cv.notify_all();
  }

  // Allocates what the worker asks for and answers with the region, or with
  // {0, 0} when the request was abandoned or the arena has no room (the
  // worker then answers the request with an error).
  void OnOutputNeeded(const ipc::Frame& frame) {
    std::shared_ptr<PendingCall> call;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = pending.find(frame.request_id);
      if (it != pending.end()) call = it->second;
    }
    AnswerOutputNeeded(frame, call.get(), *channel);
  }

  // Answers `output_needed` on `on` with a region for `call` (null, or
  // abandoned: an empty region).
  void AnswerOutputNeeded(const ipc::Frame& frame, PendingCall* call, ipc::Channel& on) {
    ipc::OutputRegionMessage answer{frame.request_id, 0, 0};
    auto needed = ipc::FromFrame<ipc::OutputNeededMessage>(frame);
    if (!needed.ok()) {
      spdlog::error("{}: {}", Who(), needed.status().ToString());
    } else if (call) {
      std::lock_guard<std::mutex> lock(call->mu);
      if (!call->abandoned) {
        auto region =
            arena->Allocate(needed->bytes, "request " + std::to_string(call->id) +
                                               " outputs of model '" + needed->model + "'");
        if (region.ok()) {
          call->regions.push_back(*region);
          call->output = *region;
          answer.offset = region->offset;
          answer.size = region->size;
        } else {
          call->output_error = Status(
              region.status().code(),
              region.status().message() +
                  " (the worker's shared-memory arena; raise it with --arena or modelgrid.yaml's "
                  "`arena`)");
        }
      }
    }
    Status s = on.Send(ipc::ToFrame(answer), {}, kSendTimeout);
    if (!s.ok()) spdlog::warn("{}: cannot send output_region: {}", Who(), s.ToString());
  }

  // ---- lanes (messages.h, "Lanes") ----

  std::shared_ptr<Lane> LaneOf(const std::string& model) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = lanes.find(model);
    return it == lanes.end() ? nullptr : it->second;
  }

  void DropLane(const std::string& model) {
    std::shared_ptr<Lane> lane;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = lanes.find(model);
      if (it == lanes.end()) return;
      lane = std::move(it->second);
      lanes.erase(it);
    }
    std::lock_guard<std::mutex> lock(lane->mu);
    lane->channel.reset();
    for (auto& [id, regions] : lane->abandoned) FreeRegions(regions);
    lane->abandoned.clear();
  }

  // The error of a call whose lane failed: the worker's death as the reader
  // records it (waiting up to kLaneDeathGrace for it), else the lane's own
  // error.
  Status LaneFailed(Lane& lane, const std::string& model, const Status& error) {
    lane.channel.reset();
    std::unique_lock<std::mutex> lock(mu);
    if (reaped_cv.wait_for(lock, kLaneDeathGrace, [&] { return ended; })) return death;
    return Status::Unavailable(Who() + ": the lane of model '" + model +
                               "' failed: " + error.message());
  }

  // Sends `frame` (the `infer` of `call`) on `lane` and waits for its result
  // until `deadline`, spinning for `spin` first (spin.h), answering
  // the call's output_needed and freeing the regions of earlier abandoned
  // calls whose results come in. On timeout the call is abandoned: its
  // regions stay with the lane until its result arrives.
  Result<ipc::Frame> LaneRoundtrip(Lane& lane, const std::string& model,
                                   const std::shared_ptr<PendingCall>& pending_call,
                                   const ipc::Frame& frame, Clock::time_point deadline,
                                   std::chrono::microseconds spin) {
    PendingCall& call = *pending_call;
    // A lane busy with another call, or broken: the control socket, whose
    // requests queue in the worker behind the one running.
    std::unique_lock<std::mutex> lock(lane.mu, std::try_to_lock);
    if (!lock.owns_lock() || !lane.channel) return Roundtrip(pending_call, frame, deadline);
    Status sent = lane.channel->Send(frame, {}, kSendTimeout);
    if (!sent.ok()) return LaneFailed(lane, model, sent);
    for (;;) {
      ipc::SpinUntil(spin, [&] { return lane.channel->Readable(); });
      const auto left = std::chrono::ceil<milliseconds>(deadline - Clock::now());
      Result<ipc::Frame> got =
          left.count() > 0 ? lane.channel->Receive(left) : Status::Unavailable("timed out");
      if (!got.ok()) {
        if (Clock::now() < deadline) return LaneFailed(lane, model, got.status());
        lane.abandoned[call.id] = std::move(call.regions);
        call.regions.clear();
        call.abandoned = true;
        return Status::Unavailable(Who() + ": no reply to 'infer' (request " +
                                   std::to_string(call.id) + ") within the timeout");
      }
      if (got->type == static_cast<uint16_t>(ipc::MessageType::kOutputNeeded)) {
        AnswerOutputNeeded(*got, got->request_id == call.id ? &call : nullptr, *lane.channel);
        continue;
      }
      if (got->request_id == call.id) return std::move(got).value();
      auto it = lane.abandoned.find(got->request_id);
      if (it != lane.abandoned.end()) {
        FreeRegions(it->second);
        lane.abandoned.erase(it);
      } else {
        spdlog::warn(
            "{}: lane of model '{}': message type {} for request {}, which nobody waits "
            "for",
            Who(), model, got->type, got->request_id);
      }
    }
  }

  // Waits for the process to end (killing it when it lingers), then records
  // how it ended. Polls with WNOHANG, so `mu` is never held across a wait.
  WorkerExit Reap(bool kill_now) {
    const auto kill_at = Clock::now() + (kill_now ? milliseconds{0} : kExitGrace);
    int status = 0;
    bool killed = false;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        const pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno != EINTR)) {
          reaped = true;
          if (r < 0) status = -1;  // ECHILD: someone else reaped it
          break;
        }
        if (!killed && Clock::now() >= kill_at) {
          ::kill(pid, SIGKILL);
          killed = true;
        }
      }
      std::this_thread::sleep_for(milliseconds{1});
    }
    reaped_cv.notify_all();
    WorkerExit exit;
    exit.pid = pid;
    if (status != -1 && WIFEXITED(status)) exit.exit_code = WEXITSTATUS(status);
    if (status != -1 && WIFSIGNALED(status)) exit.signal = WTERMSIG(status);
    return exit;
  }

  void OnEnd(const Status& end) {
    alive.store(false);
    const bool broken = end.code() != StatusCode::kUnavailable;
    if (broken) spdlog::error("{}: control stream failed: {}", Who(), end.ToString());
    WorkerExit exit = Reap(/*kill_now=*/broken);
    std::map<uint64_t, std::shared_ptr<PendingCall>> failed;
    std::function<void(const WorkerExit&)> callback;
    Status error;
    {
      std::lock_guard<std::mutex> lock(mu);
      exit.requested = shutdown_requested;
      std::string message = Who() + " exited: " + exit.Describe();
      if (exit.requested) message += " (shut down by the frontend)";
      if (broken) message += "; killed after its control stream failed: " + end.message();
      death = Status::Unavailable(message);
      error = death;
      ended = true;
      failed.swap(pending);
      callback = std::move(on_exit);
      on_exit = nullptr;
    }
    reaped_cv.notify_all();  // calls on lanes wait for `ended` (LaneFailed)
    for (auto& [id, call] : failed) {
      std::unique_lock<std::mutex> lock(call->mu);
      if (call->abandoned) {
        std::vector<ipc::Region> regions = std::move(call->regions);
        lock.unlock();
        FreeRegions(regions);
        continue;
      }
      call->failure = error;
      call->done = true;
      lock.unlock();
      call->cv.notify_all();
    }
    if (exit.requested) {
      spdlog::info("{} exited: {}", Who(), exit.Describe());
    } else {
      spdlog::warn("{} exited: {}; {} call(s) in flight failed", Who(), exit.Describe(),
                   failed.size());
    }
    if (callback) callback(exit);
  }

  // ---- Infer helpers ----

  // Rows of the batch: the first dim of the first input (1 without one).
  static uint64_t BatchRows(const std::vector<InferTensor>& inputs) {
    if (inputs.empty() || inputs[0].shape.empty() || inputs[0].shape[0] <= 0) return 1;
    return static_cast<uint64_t>(inputs[0].shape[0]);
  }

  uint64_t GuessOutputBytes(const std::string& model, const std::string& task, uint64_t rows,
                            uint64_t input_bytes) {
    std::lock_guard<std::mutex> lock(guess_mu);
    auto it = bytes_per_row.find({model, task});
    if (it == bytes_per_row.end()) return kFirstOutputGuessBytes + input_bytes;
    return it->second * rows;
  }

  void RecordOutputBytes(const std::string& model, const std::string& task, uint64_t rows,
                         uint64_t bytes) {
    std::lock_guard<std::mutex> lock(guess_mu);
    bytes_per_row[{model, task}] = (bytes + rows - 1) / rows;
  }

  // Reads the outputs of a successful result out of the arena.
  Result<std::vector<InferTensor>> ReadOutputs(const ipc::ResultMessage& result,
                                               const ipc::Region& output) {
    Status within = ipc::CheckTensorsWithin(result.outputs, output);
    if (!within.ok()) return within.WithPrefix(Who() + ": result");
    std::vector<InferTensor> outputs;
    outputs.reserve(result.outputs.size());
    for (const ipc::TensorRef& ref : result.outputs) {
      MG_ASSIGN_OR_RETURN(std::span<std::byte> bytes, arena->Bytes(ref.region()));
      InferTensor t;
      t.name = ref.name;
      t.datatype = ref.datatype;
      t.shape = ref.shape;
      t.data.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
      outputs.push_back(std::move(t));
    }
    return outputs;
  }

  // Ends the process if it is still running; joins the reader (not from the
  // reader itself).
  void KillAndJoin() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!reaped) ::kill(pid, SIGKILL);
    }
    if (reader.joinable() && reader.get_id() != std::this_thread::get_id()) reader.join();
  }
};

WorkerClient::WorkerClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

WorkerClient::~WorkerClient() {
  if (impl_) Shutdown();
}

Result<std::unique_ptr<WorkerClient>> WorkerClient::Start(
    WorkerOptions options, std::function<void(const WorkerExit&)> on_exit) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  const WorkerOptions& o = impl->options;
  MG_ASSIGN_OR_RETURN(impl->arena, ipc::TensorArena::Create(o.name, o.arena_bytes));
  auto pair = ipc::SocketPair();
  if (!pair.ok()) return pair.status().WithPrefix("worker '" + o.name + "'");
  auto [mine, theirs] = std::move(pair).value();
  std::vector<std::string> args = {"--fd", std::to_string(kWorkerFd), "--name", o.name};
  if (o.threads > 0) {
    args.push_back("--threads");
    args.push_back(std::to_string(o.threads));
  }
  if (o.spin.count() > 0) {
    args.push_back("--spin-us");
    args.push_back(std::to_string(o.spin.count()));
  }
  MG_ASSIGN_OR_RETURN(impl->pid,
                      worker_internal::SpawnChild(o.executable, args, theirs.get(), kWorkerFd));
  theirs.reset();
  impl->channel = std::make_unique<ipc::Channel>(std::move(mine));
  Impl* raw = impl.get();
  impl->reader = std::thread([raw] { raw->ReaderLoop(); });
  // From here on the client owns a process: failures go through the client's
  // destructor (Shutdown), with no on_exit installed yet.
  std::unique_ptr<WorkerClient> client(new WorkerClient(std::move(impl)));

  const auto deadline = Clock::now() + o.start_timeout;
  Status started = raw->channel->Send(
      ipc::ToFrame(ipc::AttachArenaMessage{o.name, raw->arena->capacity()}),
      std::array<int, 1>{raw->arena->fd()}, std::min(o.start_timeout, kSendTimeout));
  bool timed_out = false;
  if (started.ok()) {
    auto call = std::make_shared<PendingCall>(raw->next_id++);
    auto pong = raw->Roundtrip(call, ipc::ToFrame(ipc::PingMessage{}, call->id), deadline);
    if (!pong.ok()) {
      started = pong.status();
      std::lock_guard<std::mutex> lock(call->mu);
      timed_out = call->abandoned;
    } else if (auto p = ipc::FromFrame<ipc::PongMessage>(*pong); !p.ok()) {
      started = p.status().WithPrefix(raw->Who());
    } else if (p->protocol_version != ipc::kProtocolVersion) {
      started = Status::Unavailable(raw->Who() + " speaks protocol version " +
                                    std::to_string(p->protocol_version) + ", the frontend " +
                                    std::to_string(ipc::kProtocolVersion));
    }
  }
  if (!started.ok()) {
    raw->KillAndJoin();  // a process that already ended keeps its exit status
    std::lock_guard<std::mutex> lock(raw->mu);
    if (timed_out) {
      return Status::Unavailable(raw->Who() + " did not answer ping within " +
                                 std::to_string(o.start_timeout.count()) + " ms; killed");
    }
    if (started.message() == raw->death.message()) {
      return Status::Unavailable(started.message() + " while starting");
    }
    return Status::Unavailable(started.message() + "; " + raw->death.message());
  }
  {
    std::lock_guard<std::mutex> lock(raw->mu);
    if (raw->ended) return Status::Unavailable(raw->death.message() + " while starting");
    raw->on_exit = std::move(on_exit);
  }
  return client;
}

pid_t WorkerClient::pid() const { return impl_->pid; }

const std::string& WorkerClient::name() const { return impl_->options.name; }

bool WorkerClient::alive() const { return impl_->alive.load(); }

Result<ipc::LoadedMessage> WorkerClient::Load(const ipc::LoadMessage& load,
                                              std::chrono::milliseconds timeout) {
  // The model's lane: the worker gets one end with the load; this end is
  // kept once the load succeeded.
  auto pair = ipc::SocketPair();
  if (!pair.ok()) return pair.status().WithPrefix(impl_->Who() + ": lane of '" + load.model + "'");
  auto [mine, theirs] = std::move(pair).value();
  auto call = std::make_shared<PendingCall>(impl_->next_id++);
  auto sent = impl_->Roundtrip(call, ipc::ToFrame(load, call->id), Clock::now() + timeout,
                               std::array<int, 1>{theirs.get()});
  theirs.reset();  // the worker's copy alone must keep its end open
  MG_ASSIGN_OR_RETURN(ipc::Frame reply, std::move(sent));
  if (reply.type == static_cast<uint16_t>(ipc::MessageType::kLoaded)) {
    auto loaded = ipc::FromFrame<ipc::LoadedMessage>(reply);
    if (!loaded.ok()) return loaded.status().WithPrefix(impl_->Who());
    auto lane = std::make_shared<Lane>();
    lane->channel = std::make_unique<ipc::Channel>(std::move(mine));
    impl_->DropLane(load.model);  // a lane left by an earlier instance of the name
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->lanes[load.model] = std::move(lane);
    return std::move(loaded).value();
  }
  if (reply.type == static_cast<uint16_t>(ipc::MessageType::kLoadFailed)) {
    auto failed = ipc::FromFrame<ipc::LoadFailedMessage>(reply);
    if (!failed.ok()) return failed.status().WithPrefix(impl_->Who());
    return failed->error.ToStatus();
  }
  return impl_->UnexpectedReply(reply, "'loaded' or 'load_failed'");
}

Status WorkerClient::Unload(const std::string& model, std::chrono::milliseconds timeout) {
  auto call = std::make_shared<PendingCall>(impl_->next_id++);
  MG_ASSIGN_OR_RETURN(ipc::Frame reply,
                      impl_->Roundtrip(call, ipc::ToFrame(ipc::UnloadMessage{model}, call->id),
                                       Clock::now() + timeout));
  impl_->DropLane(model);
  if (reply.type == static_cast<uint16_t>(ipc::MessageType::kUnloaded)) return Status::Ok();
  if (reply.type == static_cast<uint16_t>(ipc::MessageType::kLoadFailed)) {
    auto failed = ipc::FromFrame<ipc::LoadFailedMessage>(reply);
    if (!failed.ok()) return failed.status().WithPrefix(impl_->Who());
    return failed->error.ToStatus();
  }
  return impl_->UnexpectedReply(reply, "'unloaded'");
}

Result<ipc::StatsMessage> WorkerClient::Stats(std::chrono::milliseconds timeout) {
  auto call = std::make_shared<PendingCall>(impl_->next_id++);
  MG_ASSIGN_OR_RETURN(ipc::Frame reply,
                      impl_->Roundtrip(call, ipc::ToFrame(ipc::GetStatsMessage{}, call->id),
                                       Clock::now() + timeout));
  if (reply.type != static_cast<uint16_t>(ipc::MessageType::kStats)) {
    return impl_->UnexpectedReply(reply, "'stats'");
  }
  auto stats = ipc::FromFrame<ipc::StatsMessage>(reply);
  if (!stats.ok()) return stats.status().WithPrefix(impl_->Who());
  return std::move(stats).value();
}

Result<ipc::SwappedOutMessage> WorkerClient::SwapOut(const std::string& model,
                                                     const std::string& swap_dir,
                                                     std::chrono::milliseconds timeout) {
  return impl_->Call<ipc::SwappedOutMessage>(ipc::SwapOutMessage{model, swap_dir},
                                             ipc::MessageType::kSwappedOut, "'swapped_out'",
                                             timeout);
}

Result<ipc::SwappedInMessage> WorkerClient::SwapIn(const std::string& model,
                                                   std::chrono::milliseconds timeout) {
  return impl_->Call<ipc::SwappedInMessage>(ipc::SwapInMessage{model},
                                            ipc::MessageType::kSwappedIn, "'swapped_in'", timeout);
}

Result<ipc::LimitSetMessage> WorkerClient::SetLimit(const std::string& model, uint64_t limit_bytes,
                                                    const std::string& reason,
                                                    std::chrono::milliseconds timeout) {
  return impl_->Call<ipc::LimitSetMessage>(ipc::SetLimitMessage{model, limit_bytes, reason},
                                           ipc::MessageType::kLimitSet, "'limit_set'", timeout);
}

Result<std::vector<InferTensor>> WorkerClient::Infer(const std::string& model,
                                                     const std::string& task,
                                                     const std::vector<InferTensor>& inputs,
                                                     const nlohmann::json& params,
                                                     std::chrono::milliseconds timeout,
                                                     std::optional<uint64_t> limit_bytes,
                                                     const std::vector<std::string>& output_names) {
  Impl& im = *impl_;
  const auto deadline = Clock::now() + timeout;
  if (!params.is_null() && !params.is_object()) {
    return Status::InvalidArgument("model '" + model + "': task parameters must be a JSON object");
  }
  auto call = std::make_shared<PendingCall>(im.next_id++);
  const std::string request = "request " + std::to_string(call->id);
  ipc::InferMessage msg;
  msg.request_id = call->id;
  msg.model = model;
  msg.task = task;
  msg.params = params.is_object() ? params : nlohmann::json::object();
  msg.limit_bytes = limit_bytes;
  msg.output_names = output_names;

  // Inputs: one copy each into the arena. The call owns every region from
  // allocation on; every return below frees them (or hands them to the
  // reader when the request is abandoned).
  uint64_t input_bytes = 0;
  for (const InferTensor& in : inputs) {
    Status valid = ValidateTensorData(in, "input");
    if (!valid.ok()) {
      im.FreeRegions(call->regions);
      return valid.WithPrefix("model '" + model + "'");
    }
    if (in.shared && in.shared->region_id != 0) {
      // In a registered shared-memory region: the worker reads it in place.
      // (Region 0: bytes borrowed from a request body, copied below.)
      Status mapped = im.EnsureRegion(*in.shared, deadline);
      if (!mapped.ok()) {
        im.FreeRegions(call->regions);
        return mapped.WithPrefix("model '" + model + "': input '" + in.name + "'");
      }
      msg.inputs.push_back(ipc::TensorRef{in.name, in.datatype, in.shape, in.shared->offset,
                                          in.shared->bytes.size(), in.shared->region_id});
      input_bytes += in.shared->bytes.size();
      continue;
    }
    const std::string_view data = TensorBytes(in);
    auto region = im.arena->Allocate(data.size(), request + " input " + Quote(in.name));
    if (!region.ok()) {
      im.FreeRegions(call->regions);
      return region.status();
    }
    call->regions.push_back(*region);
    auto bytes = im.arena->Bytes(*region);
    if (!data.empty()) std::memcpy(bytes->data(), data.data(), data.size());
    msg.inputs.push_back(
        ipc::TensorRef{in.name, in.datatype, in.shape, region->offset, data.size()});
    input_bytes += data.size();
  }
  // Output: the guess, or a minimal region when the guess does not fit (the
  // worker then asks for the exact size with output_needed).
  const uint64_t rows = Impl::BatchRows(inputs);
  const uint64_t guess = im.GuessOutputBytes(model, task, rows, input_bytes);
  auto output = im.arena->Allocate(guess, request + " outputs");
  if (!output.ok()) output = im.arena->Allocate(0, request + " outputs");
  if (!output.ok()) {
    im.FreeRegions(call->regions);
    return output.status();
  }
  call->regions.push_back(*output);
  call->output = *output;
  msg.output = *output;

  std::shared_ptr<Lane> lane = im.LaneOf(model);
  const auto spin =
      input_bytes <= ipc::kSpinMaxInputBytes ? im.options.spin : std::chrono::microseconds{0};
  auto reply = lane ? im.LaneRoundtrip(*lane, model, call, ipc::ToFrame(msg), deadline, spin)
                    : im.Roundtrip(call, ipc::ToFrame(msg), deadline);
  if (!reply.ok()) {
    // Not abandoned (a timeout hands the regions to the reader): free here.
    std::vector<ipc::Region> regions;
    {
      std::lock_guard<std::mutex> lock(call->mu);
      if (!call->abandoned) regions = std::move(call->regions);
    }
    im.FreeRegions(regions);
    return reply.status();
  }
  // The reply is ours: the reader no longer touches the call.
  Result<std::vector<InferTensor>> outcome = Status::Internal("unset");
  auto result = ipc::FromFrame<ipc::ResultMessage>(*reply);
  if (!result.ok()) {
    outcome = result.status().WithPrefix(im.Who());
  } else if (result->error) {
    outcome = call->output_error.ok() ? result->error->ToStatus() : call->output_error;
  } else {
    outcome = im.ReadOutputs(*result, call->output);
    if (outcome.ok()) {
      uint64_t end = call->output.offset;
      for (const ipc::TensorRef& t : result->outputs) end = std::max(end, t.offset + t.size);
      im.RecordOutputBytes(model, task, rows, end - call->output.offset);
    }
  }
  im.FreeRegions(call->regions);
  return outcome;
}

void WorkerClient::DetachRegion(uint64_t region_id) {
  Impl& im = *impl_;
  {
    std::lock_guard<std::mutex> lock(im.regions_mu);
    if (im.attached.erase(region_id) == 0) return;
  }
  Status s = im.channel->Send(ipc::ToFrame(ipc::DetachRegionMessage{region_id}), {}, kSendTimeout);
  if (!s.ok()) spdlog::info("{}: cannot send detach_region: {}", im.Who(), s.message());
}

void WorkerClient::Shutdown(std::chrono::milliseconds grace) {
  Impl& im = *impl_;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    im.shutdown_requested = true;
  }
  im.alive.store(false);
  // From on_exit (the reader thread): the process has ended already.
  if (im.reader.joinable() && im.reader.get_id() == std::this_thread::get_id()) return;
  std::lock_guard<std::mutex> once(im.shutdown_mu);
  if (im.shutdown_done) return;
  im.shutdown_done = true;
  bool reaped;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    reaped = im.reaped;
  }
  if (!reaped) {
    Status s =
        im.channel->Send(ipc::ToFrame(ipc::ShutdownMessage{}), {}, std::min(grace, kSendTimeout));
    if (!s.ok()) spdlog::info("{}: cannot send shutdown: {}", im.Who(), s.message());
    std::unique_lock<std::mutex> lock(im.mu);
    im.reaped_cv.wait_for(lock, grace, [&] { return im.reaped; });
  }
  im.KillAndJoin();
}

}  // namespace modelgrid

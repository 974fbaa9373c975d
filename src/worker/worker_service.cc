// The receive loop of modelgrid-worker: decodes each frame and routes it to
// the model's runner or answers it at once (ping, attach_arena, get_stats,
// set_limit).
#include "worker/worker_service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "modelgrid/ipc/messages.h"
#include "modelgrid/torch/counting_allocator.h"
#include "worker/model_runner.h"
#include "modelgrid/torch/cuda_memory.h"
#include "worker/worker_context.h"

namespace modelgrid::worker {
namespace {

using ipc::MessageType;

std::string TypeText(uint16_t type) {
  const auto known = ipc::ToMessageType(type);
  return known ? "'" + std::string(ipc::MessageTypeName(*known)) + "'"
               : "unknown type " + std::to_string(type);
}

class WorkerService {
 public:
  WorkerService(ipc::UniqueFd socket, const WorkerServiceOptions& options)
      : channel_(std::move(socket)), context_(&channel_, options) {}

  Status Run() {
    Status end;
    while (!shutdown_) {
      auto got = channel_.ReceiveWithFds(ipc::kNoTimeout);
      if (!got.ok()) {
        if (got.status().code() == StatusCode::kUnavailable) {
          spdlog::info("the frontend closed the connection: {}", got.status().message());
        } else {
          spdlog::error("control stream unusable: {}", got.status().ToString());
          end = got.status();
        }
        break;
      }
      try {
        Dispatch(*got);
      } catch (const std::exception& e) {
        // Nothing here should throw; a bug must still not kill the worker.
        spdlog::error("handling a {} frame (request {}) threw: {}", TypeText(got->frame.type),
                      got->frame.request_id, e.what());
      }
      ReapRetired();
    }
    StopAll();
    return end;
  }

 private:
  void Dispatch(ipc::ReceivedFrame& received) {
    const ipc::Frame& frame = received.frame;
    const auto type = ipc::ToMessageType(frame.type);
    if (!type) {
      Unexpected(frame);
      return;
    }
    switch (*type) {
      case MessageType::kPing:
        OnPing(frame);
        return;
      case MessageType::kAttachArena:
        OnAttachArena(received);
        return;
      case MessageType::kLoad:
        OnLoad(received);
        return;
      case MessageType::kInfer:
        OnInfer(frame);
        return;
      case MessageType::kOutputRegion:
        OnOutputRegion(frame);
        return;
      case MessageType::kGetStats:
        OnGetStats(frame);
        return;
      case MessageType::kUnload:
        OnUnload(frame);
        return;
      case MessageType::kSwapOut:
        OnSwapOut(frame);
        return;
      case MessageType::kSwapIn:
        OnSwapIn(frame);
        return;
      case MessageType::kSetLimit:
        OnSetLimit(frame);
        return;
      case MessageType::kShutdown:
        OnShutdown(frame);
        return;
      case MessageType::kAttachRegion:
        OnAttachRegion(received);
        return;
      case MessageType::kDetachRegion:
        if (auto detach = ipc::FromFrame<ipc::DetachRegionMessage>(frame); detach.ok()) {
          context_.DetachRegion(detach->id);
        } else {
          spdlog::warn("ignoring a malformed detach_region: {}", detach.status().ToString());
        }
        return;
      default:
        Unexpected(frame);
        return;
    }
  }

  // A type the worker does not accept: logged; answered with a `result`
  // error when it carries a request id, so the caller does not wait for its
  // timeout.
  void Unexpected(const ipc::Frame& frame) {
    const std::string what = context_.Who() + ": unexpected message " + TypeText(frame.type);
    spdlog::warn("{} (request {})", what, frame.request_id);
    if (frame.request_id == 0) return;
    ipc::ResultMessage result;
    result.request_id = frame.request_id;
    result.error = ipc::ErrorInfo{StatusCode::kInvalidArgument, what};
    context_.Send(ipc::ToFrame(result));
  }

  void OnPing(const ipc::Frame& frame) {
    auto ping = ipc::FromFrame<ipc::PingMessage>(frame);
    if (!ping.ok()) spdlog::warn("answering a malformed ping: {}", ping.status().ToString());
    context_.Send(
        ipc::ToFrame(ipc::PongMessage{ipc::kProtocolVersion, ::getpid()}, frame.request_id));
  }

  void OnAttachArena(ipc::ReceivedFrame& received) {
    auto attach = ipc::FromFrame<ipc::AttachArenaMessage>(received.frame);
    if (!attach.ok()) {
      spdlog::error("ignoring attach_arena: {}", attach.status().ToString());
      return;
    }
    if (received.fds.size() != 1) {
      spdlog::error("ignoring attach_arena '{}': expected 1 descriptor, got {}", attach->name,
                    received.fds.size());
      return;
    }
    auto memory = ipc::SharedMemory::MapFromFd(std::move(received.fds[0]), attach->capacity_bytes);
    if (!memory.ok()) {
      spdlog::error("ignoring attach_arena '{}': {}", attach->name, memory.status().ToString());
      return;
    }
    context_.SetArena(std::make_shared<const ipc::SharedMemory>(std::move(memory).value()));
    spdlog::info("attached arena '{}' of {} bytes", attach->name, attach->capacity_bytes);
  }

  // The frame's one descriptor, when it carries one, is the model's lane.
  // Maps a registered shared-memory region from the frame's descriptor;
  // answers region_attached (with the error when it cannot).
  void OnAttachRegion(ipc::ReceivedFrame& received) {
    auto attach = ipc::FromFrame<ipc::AttachRegionMessage>(received.frame);
    ipc::RegionAttachedMessage reply;
    if (!attach.ok()) {
      reply.error = ipc::ErrorInfo::FromStatus(attach.status());
    } else {
      reply.id = attach->id;
      Result<ipc::SharedMemory> memory =
          received.fds.size() == 1
              ? ipc::SharedMemory::MapFromFd(std::move(received.fds[0]), attach->map_bytes)
              : Result<ipc::SharedMemory>(Status::InvalidArgument(
                    "attach_region " + std::to_string(attach->id) +
                    ": expected 1 descriptor, got " + std::to_string(received.fds.size())));
      if (memory.ok()) {
        context_.AttachRegion(attach->id,
                              std::make_shared<const ipc::SharedMemory>(std::move(memory).value()));
      } else {
        reply.error = ipc::ErrorInfo::FromStatus(memory.status().WithPrefix(context_.Who()));
      }
    }
    context_.Send(ipc::ToFrame(reply, received.frame.request_id));
  }

  void OnLoad(ipc::ReceivedFrame& received) {
    const ipc::Frame& frame = received.frame;
    auto load = ipc::FromFrame<ipc::LoadMessage>(frame);
    if (!load.ok()) {
      context_.Send(ipc::ToFrame(
          ipc::LoadFailedMessage{"", ipc::ErrorInfo::FromStatus(load.status())}, frame.request_id));
      return;
    }
    std::lock_guard<std::mutex> lock(models_mu_);
    if (models_.contains(load->model)) {
      context_.Send(ipc::ToFrame(
          ipc::LoadFailedMessage{
              load->model,
              {StatusCode::kAlreadyExists, context_.Who() + ": model '" + load->model +
                                               "' is already loaded (unload it first)"}},
          frame.request_id));
      return;
    }
    auto runner = std::make_shared<ModelRunner>(load->model, &context_,
                                                [this](ModelRunner* r) { Retire(r); });
    models_[load->model] = runner;
    ipc::UniqueFd lane;
    if (received.fds.size() == 1) {
      lane = std::move(received.fds[0]);
    } else if (!received.fds.empty()) {
      spdlog::warn(
          "load '{}' carried {} descriptors; expected at most 1, the lane; serving "
          "without one",
          load->model, received.fds.size());
    }
    runner->EnqueueLoad(std::move(load).value(), frame.request_id, std::move(lane));
  }

  void OnInfer(const ipc::Frame& frame) {
    auto infer = ipc::FromFrame<ipc::InferMessage>(frame);
    if (!infer.ok()) {
      spdlog::warn("rejecting a malformed infer (request {}): {}", frame.request_id,
                   infer.status().ToString());
      if (frame.request_id != 0) {
        ipc::ResultMessage result;
        result.request_id = frame.request_id;
        result.error = ipc::ErrorInfo::FromStatus(infer.status());
        context_.Send(ipc::ToFrame(result));
      }
      return;
    }
    std::lock_guard<std::mutex> lock(models_mu_);
    auto it = models_.find(infer->model);
    if (it == models_.end()) {
      ipc::ResultMessage result;
      result.request_id = infer->request_id;
      result.model = infer->model;
      result.error = ipc::ErrorInfo{
          StatusCode::kNotFound, context_.Who() + ": model '" + infer->model + "' is not loaded"};
      context_.Send(ipc::ToFrame(result));
      return;
    }
    it->second->EnqueueInfer(std::move(infer).value());
  }

  void OnOutputRegion(const ipc::Frame& frame) {
    auto region = ipc::FromFrame<ipc::OutputRegionMessage>(frame);
    Result<ipc::Region> delivered =
        region.ok() ? Result<ipc::Region>(region->region()) : Result<ipc::Region>(region.status());
    if (!context_.DeliverOutputRegion(frame.request_id, std::move(delivered))) {
      spdlog::warn("output_region for request {}, which waits for none{}", frame.request_id,
                   region.ok() ? "" : ": " + region.status().ToString());
    }
  }

  // Process figures from the process-wide counters; per model, its own
  // counters (ModelRunner::memory; README.md says what is exact).
  void OnGetStats(const ipc::Frame& frame) {
    auto get = ipc::FromFrame<ipc::GetStatsMessage>(frame);
    if (!get.ok()) spdlog::warn("answering a malformed get_stats: {}", get.status().ToString());
    const ProcessMemory memory = context_.Memory();
    ipc::StatsMessage stats;
    stats.current_bytes = memory.current_bytes;
    stats.peak_bytes = memory.peak_bytes;
    std::lock_guard<std::mutex> lock(models_mu_);
    uint64_t mapped = 0;  // weights mapped from files: the process's too
    for (const auto& [name, runner] : models_) {
      if (!runner->loaded()) continue;
      stats.models.push_back(runner->memory());
      mapped += runner->mapped_bytes();
    }
    stats.current_bytes += mapped;
    stats.peak_bytes += mapped;
    for (int index : context_.CudaDevices()) {
      auto st = CudaStats(index);
      if (!st.ok()) continue;
      stats.cuda.push_back(ipc::CudaMemory{index, st->allocated_bytes, st->reserved_bytes,
                                           st->peak_reserved_bytes});
    }
    context_.Send(ipc::ToFrame(stats, frame.request_id));
  }

  // Unload goes through the model's queue, after the requests sent before
  // it. A model the worker does not hold is answered with load_failed
  // NOT_FOUND.
  void OnUnload(const ipc::Frame& frame) {
    auto unload = ipc::FromFrame<ipc::UnloadMessage>(frame);
    if (!unload.ok()) {
      context_.Send(
          ipc::ToFrame(ipc::LoadFailedMessage{"", ipc::ErrorInfo::FromStatus(unload.status())},
                       frame.request_id));
      return;
    }
    std::lock_guard<std::mutex> lock(models_mu_);
    auto it = models_.find(unload->model);
    if (it == models_.end()) {
      context_.Send(ipc::ToFrame(
          ipc::LoadFailedMessage{unload->model,
                                 {StatusCode::kNotFound, context_.Who() + ": model '" +
                                                             unload->model + "' is not loaded"}},
          frame.request_id));
      return;
    }
    std::shared_ptr<ModelRunner> runner = std::move(it->second);
    models_.erase(it);
    runner->EnqueueUnload(frame.request_id);
    retired_.push_back(std::move(runner));
  }

  // Swaps go through the model's queue, after the requests sent before.
  // Malformed, or for a model the worker does not hold: answered at once
  // with the error. `Request` is SwapOutMessage or SwapInMessage, `Reply`
  // its answer; `enqueue` queues the decoded request on the model's runner.
  template <typename Request, typename Reply, typename Enqueue>
  void OnSwap(const ipc::Frame& frame, Enqueue enqueue) {
    auto swap = ipc::FromFrame<Request>(frame);
    Reply reply;
    if (!swap.ok()) {
      reply.error = ipc::ErrorInfo::FromStatus(swap.status());
      context_.Send(ipc::ToFrame(reply, frame.request_id));
      return;
    }
    reply.model = swap->model;
    std::lock_guard<std::mutex> lock(models_mu_);
    auto it = models_.find(swap->model);
    if (it == models_.end()) {
      reply.error = NotHeld(swap->model);
      context_.Send(ipc::ToFrame(reply, frame.request_id));
      return;
    }
    enqueue(*it->second, *swap);
  }

  void OnSwapOut(const ipc::Frame& frame) {
    OnSwap<ipc::SwapOutMessage, ipc::SwappedOutMessage>(
        frame, [&](auto& runner, ipc::SwapOutMessage& m) {
          runner.EnqueueSwapOut(std::move(m.swap_dir), frame.request_id);
        });
  }

  void OnSwapIn(const ipc::Frame& frame) {
    OnSwap<ipc::SwapInMessage, ipc::SwappedInMessage>(
        frame, [&](auto& runner, ipc::SwapInMessage&) { runner.EnqueueSwapIn(frame.request_id); });
  }

  // Not queued: the cap changes now, even while the model's thread runs a
  // request (this loop never waits for a model; ModelRunner::SetLimit is
  // thread-safe). Answered with limit_set, the error set when nothing
  // changed.
  void OnSetLimit(const ipc::Frame& frame) {
    auto set = ipc::FromFrame<ipc::SetLimitMessage>(frame);
    ipc::LimitSetMessage reply;
    if (!set.ok()) {
      reply.error = ipc::ErrorInfo::FromStatus(set.status());
      context_.Send(ipc::ToFrame(reply, frame.request_id));
      return;
    }
    reply.model = set->model;
    std::shared_ptr<ModelRunner> runner;
    {
      std::lock_guard<std::mutex> lock(models_mu_);
      auto it = models_.find(set->model);
      if (it != models_.end()) runner = it->second;
    }
    if (!runner) {
      reply.error = NotHeld(set->model);
    } else if (auto done = runner->SetLimit(set->limit_bytes, set->reason); done.ok()) {
      reply = std::move(done).value();
    } else {
      reply.error = ipc::ErrorInfo::FromStatus(done.status());
    }
    context_.Send(ipc::ToFrame(reply, frame.request_id));
  }

  ipc::ErrorInfo NotHeld(const std::string& model) const {
    return ipc::ErrorInfo{StatusCode::kNotFound,
                          context_.Who() + ": model '" + model + "' is not loaded"};
  }

  void OnShutdown(const ipc::Frame& frame) {
    auto shutdown = ipc::FromFrame<ipc::ShutdownMessage>(frame);
    if (!shutdown.ok()) {
      spdlog::warn("ignoring a malformed shutdown: {}", shutdown.status().ToString());
      return;
    }
    spdlog::info("shutdown requested");
    shutdown_ = true;
  }

  // Called on a runner's thread when its load failed.
  void Retire(ModelRunner* runner) {
    std::lock_guard<std::mutex> lock(models_mu_);
    auto it = models_.find(runner->model());
    if (it != models_.end() && it->second.get() == runner) {
      retired_.push_back(std::move(it->second));
      models_.erase(it);
    }
  }

  // Joins runners whose thread has ended (outside the lock: a runner's
  // destructor joins its thread).
  void ReapRetired() {
    std::vector<std::shared_ptr<ModelRunner>> done;
    {
      std::lock_guard<std::mutex> lock(models_mu_);
      for (auto it = retired_.begin(); it != retired_.end();) {
        if ((*it)->finished()) {
          done.push_back(std::move(*it));
          it = retired_.erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  // Stops every runner and waits up to drain_timeout for the requests they
  // compute; ends the process when one is still busy then.
  void StopAll() {
    context_.CancelOutputWaits();
    std::vector<std::shared_ptr<ModelRunner>> all;
    {
      std::lock_guard<std::mutex> lock(models_mu_);
      for (auto& [name, runner] : models_) all.push_back(std::move(runner));
      models_.clear();
      for (auto& runner : retired_) all.push_back(std::move(runner));
      retired_.clear();
    }
    for (auto& runner : all) runner->Stop();
    const auto deadline = std::chrono::steady_clock::now() + context_.options().drain_timeout;
    for (;;) {
      size_t busy = 0;
      for (const auto& runner : all) busy += runner->finished() ? 0 : 1;
      if (busy == 0) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        spdlog::warn("{} model(s) still computing after {} ms; exiting without waiting", busy,
                     context_.options().drain_timeout.count());
        std::_Exit(0);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    all.clear();  // joins the threads and frees the models
  }

  ipc::Channel channel_;
  WorkerContext context_;
  bool shutdown_ = false;

  std::mutex models_mu_;
  std::map<std::string, std::shared_ptr<ModelRunner>> models_;  // guarded by models_mu_
  // Runners no longer routed to (unloading, or their load failed), until
  // their thread ends. Guarded by models_mu_.
  std::vector<std::shared_ptr<ModelRunner>> retired_;
};

}  // namespace

Status RunWorker(ipc::UniqueFd socket, const WorkerServiceOptions& options) {
  CountingAllocator::Install();
  WorkerService service(std::move(socket), options);
  return service.Run();
}

}  // namespace modelgrid::worker

// One model's thread in modelgrid-worker: load, infer (with the output_needed
// round trip) and unload.
#include "worker/model_runner.h"

#include "modelgrid/backend/backend_kind.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <optional>

#include "modelgrid/ipc/spin.h"
#include "modelgrid/repository.h"
#include "modelgrid/torch/cuda_memory.h"

namespace modelgrid::worker {
namespace {

constexpr uint64_t kAlign = ipc::kRegionAlignment;
// Bound on writing one reply on the lane (the frontend reads it at once, or
// has given up and closed it).
constexpr std::chrono::milliseconds kLaneSendTimeout{5'000};
// Bound on the rest of a lane frame whose first bytes have arrived.
constexpr std::chrono::milliseconds kLaneFrameTimeout{5'000};

uint64_t AlignUp(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

bool IsCuda(const std::string& device) { return device.rfind("cuda", 0) == 0; }

// Offsets of `outputs` from the start of an output region, each 64-byte
// aligned, back to back; `*needed` gets the bytes the region must hold.
std::vector<uint64_t> LayOut(const std::vector<InferTensor>& outputs, uint64_t* needed) {
  std::vector<uint64_t> offsets;
  uint64_t at = 0;
  *needed = 0;
  for (const InferTensor& t : outputs) {
    offsets.push_back(at);
    *needed = at + t.data.size();
    at = AlignUp(*needed);
  }
  return offsets;
}

// The outputs named in `names` in that order (all of them when empty).
Result<std::vector<InferTensor>> SelectOutputs(std::vector<InferTensor> outputs,
                                               const std::vector<std::string>& names,
                                               const std::string& model, const std::string& task) {
  if (names.empty()) return outputs;
  std::vector<InferTensor> picked;
  for (const std::string& name : names) {
    auto it = std::find_if(outputs.begin(), outputs.end(),
                           [&](const InferTensor& t) { return t.name == name; });
    if (it == outputs.end()) {
      std::string have;
      for (const InferTensor& t : outputs) have += (have.empty() ? "" : ", ") + t.name;
      return Status::InvalidArgument("model '" + model + "': task '" + task + "' has no output '" +
                                     name + "' (outputs: " + have + ")");
    }
    picked.push_back(std::move(*it));
    outputs.erase(it);
  }
  return picked;
}

// `error` with "; <reason>" appended when it is a memory limit's refusal
// and `reason` is not empty; its detail is kept.
Status WithReason(const Status& error, const std::string& reason) {
  if (reason.empty() || error.code() != StatusCode::kResourceExhausted) return error;
  Status out(error.code(), error.message() + "; " + reason);
  return error.detail() != nullptr ? out.WithDetail(*error.detail()) : out;
}

}  // namespace

ModelRunner::ModelRunner(std::string model, WorkerContext* context, RetireFn on_retire)
    : model_(std::move(model)),
      context_(context),
      on_retire_(std::move(on_retire)),
      wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      counters_(CountingAllocator::AcquireModelCounters()) {
  if (!wake_.valid()) spdlog::error("model '{}': eventfd failed: {}", model_, strerror(errno));
  thread_ = std::thread([this] { Loop(); });
}

ModelRunner::~ModelRunner() {
  Stop();
  if (thread_.joinable()) thread_.join();
  backend_.reset();  // its blocks go back to counters_ first
  CountingAllocator::ReleaseModelCounters(counters_);
}

ipc::ModelMemory ModelRunner::memory() const {
  ipc::ModelMemory m;
  m.model = model_;
  m.swapped = swapped_.load();
  if (on_cuda_.load()) {
    m.current_bytes = m.swapped ? 0 : loaded_bytes_.load();
    m.peak_bytes = cuda_load_peak_.load();
  } else {
    m.current_bytes = counters_->current_aligned_bytes() + mapped_bytes_.load();
    m.peak_bytes = counters_->peak_aligned_bytes() + mapped_bytes_.load();
  }
  return m;
}

void ModelRunner::EnqueueLoad(ipc::LoadMessage load, uint64_t request_id, ipc::UniqueFd lane) {
  Enqueue(LoadJob{std::move(load), request_id, std::move(lane)});
}

void ModelRunner::EnqueueInfer(ipc::InferMessage infer) {
  Enqueue(InferJob{std::move(infer), false});
}

void ModelRunner::EnqueueUnload(uint64_t request_id) { Enqueue(UnloadJob{request_id}); }

void ModelRunner::EnqueueSwapOut(std::string swap_dir, uint64_t request_id) {
  Enqueue(SwapOutJob{std::move(swap_dir), request_id});
}

void ModelRunner::EnqueueSwapIn(uint64_t request_id) { Enqueue(SwapInJob{request_id}); }

void ModelRunner::Enqueue(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  poke_.store(true);
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

void ModelRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    jobs_.clear();
  }
  poke_.store(true);
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

void ModelRunner::Loop() {
  // Everything this thread allocates is the model's (README.md, "Memory limit").
  CountingAllocator::ScopedCharge charge(counters_);
  for (;;) {
    std::optional<Job> job = NextJob();
    if (!job) break;
    bool keep_serving = true;
    if (auto* load = std::get_if<LoadJob>(&*job)) {
      keep_serving = RunLoad(*load);
    } else if (auto* infer = std::get_if<InferJob>(&*job)) {
      RunInfer(*infer);
      uint64_t input_bytes = 0;
      for (const ipc::TensorRef& ref : infer->infer.inputs) input_bytes += ref.size;
      spin_next_ = input_bytes <= ipc::kSpinMaxInputBytes;
    } else if (auto* swap_out = std::get_if<SwapOutJob>(&*job)) {
      // Requests that reached the lane before the swap-out are served first.
      while (std::optional<InferJob> early = NextLaneJob()) RunInfer(*early);
      RunSwapOut(*swap_out);
    } else if (auto* swap_in = std::get_if<SwapInJob>(&*job)) {
      RunSwapIn(*swap_in);
    } else {
      // Requests that reached the lane before the unload are served first.
      while (std::optional<InferJob> early = NextLaneJob()) RunInfer(*early);
      RunUnload(std::get<UnloadJob>(*job));
      keep_serving = false;
    }
    if (!keep_serving) break;
  }
  lane_.reset();
  finished_.store(true);
}

std::optional<ModelRunner::Job> ModelRunner::NextJob() {
  for (;;) {
    poke_.store(false);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return std::nullopt;
      if (!jobs_.empty()) {
        Job job = std::move(jobs_.front());
        jobs_.pop_front();
        return job;
      }
    }
    if (std::optional<InferJob> job = NextLaneJob()) return Job(std::move(*job));
    // Nothing yet: spin a little (a caller waiting for this model usually
    // sends its next request within microseconds), then sleep.
    if (ipc::SpinUntil(spin_next_ ? context_->options().spin : std::chrono::microseconds{0},
                       [&] { return poke_.load() || (lane_ && lane_->Readable()); })) {
      continue;
    }
    pollfd fds[2] = {{wake_.get(), POLLIN, 0}, {lane_ ? lane_->fd() : -1, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
      spdlog::error("model '{}': poll failed: {}", model_, strerror(errno));
      return std::nullopt;
    }
    if (fds[0].revents != 0) {
      uint64_t count = 0;
      (void)!::read(wake_.get(), &count, sizeof(count));
    }
  }
}

std::optional<ModelRunner::InferJob> ModelRunner::NextLaneJob() {
  for (;;) {
    std::optional<ipc::Frame> frame;
    if (!lane_backlog_.empty()) {
      frame = std::move(lane_backlog_.front());
      lane_backlog_.pop_front();
    } else if (lane_ && lane_->Readable()) {
      frame = ReadLane();
      if (!frame) return std::nullopt;  // the lane closed
    } else {
      return std::nullopt;
    }
    if (std::optional<InferJob> job = FromLane(std::move(*frame))) return job;
  }
}

std::optional<ipc::Frame> ModelRunner::ReadLane() {
  auto frame = lane_->Receive(kLaneFrameTimeout);
  if (!frame.ok()) {
    // The frontend closed the lane (unload, its own end) or broke it: the
    // control socket still carries requests, and its end ends the worker.
    spdlog::info("model '{}': lane closed: {}", model_, frame.status().message());
    lane_.reset();
    return std::nullopt;
  }
  return std::move(frame).value();
}

std::optional<ModelRunner::InferJob> ModelRunner::FromLane(ipc::Frame frame) {
  InferJob job;
  job.on_lane = true;
  if (frame.type == static_cast<uint16_t>(ipc::MessageType::kInfer)) {
    auto infer = ipc::FromFrame<ipc::InferMessage>(frame);
    if (infer.ok()) {
      job.infer = std::move(infer).value();
      return job;
    }
    spdlog::warn("model '{}': rejecting a malformed infer on the lane (request {}): {}", model_,
                 frame.request_id, infer.status().ToString());
    job.infer.request_id = frame.request_id;
    if (frame.request_id != 0) ReplyError(job, infer.status());
    return std::nullopt;
  }
  // An output_region for a request that stopped waiting, or a message that
  // does not belong on a lane.
  const std::string what = context_->Who() + ": model '" + model_ + "': unexpected message type " +
                           std::to_string(frame.type) + " on the lane";
  spdlog::warn("{} (request {})", what, frame.request_id);
  if (frame.type != static_cast<uint16_t>(ipc::MessageType::kOutputRegion) &&
      frame.request_id != 0) {
    job.infer.request_id = frame.request_id;
    ReplyError(job, Status::InvalidArgument(what));
  }
  return std::nullopt;
}

bool ModelRunner::RunLoad(LoadJob& job) {
  const ipc::LoadMessage& load = job.load;
  Status status;
  ipc::LoadedMessage loaded;
  loaded.model = model_;
  try {
    std::lock_guard<std::mutex> load_lock(context_->load_mutex());
    auto entry = OpenModel(load.path);
    if (!entry.ok()) {
      status = entry.status().WithPrefix("model '" + model_ + "'");
    } else {
      entry->name = model_;  // errors name the model as the frontend knows it
      if (load.max_batch_size > 0 && entry->config.max_batch_size > 0) {
        entry->config.max_batch_size = load.max_batch_size;
      }
      uint64_t before = 0;
      if (IsCuda(load.device)) {
        on_cuda_.store(true);
        // The device's caching allocator is capped at the sum of the limits
        // of this worker's models there (cuda_memory.h).
        cuda_index_ = CudaIndex(load.device);
        cuda_request_ = load.request_bytes == 0 ? load.limit_bytes : load.request_bytes;
        status = cuda_index_ < 0
                     ? Status::InvalidArgument("device '" + load.device + "' is not cuda:N")
                     : context_->AddCudaBudget(cuda_index_, load.limit_bytes, cuda_request_);
        if (status.ok()) {
          {
            std::lock_guard<std::mutex> caps(cap_mu_);
            cuda_budget_added_ = true;
            standing_cap_ = share_ = load.limit_bytes;
          }
          (void)ResetCudaPeak(cuda_index_);
          if (auto st = CudaStats(cuda_index_); st.ok()) before = st->allocated_bytes;
        } else {
          status = status.WithPrefix("model '" + model_ + "' on " + load.device);
        }
      } else {
        // The model's own limit on its counters, and its share of the
        // process-wide sum (the backstop for allocations charged to no model).
        {
          std::lock_guard<std::mutex> caps(cap_mu_);
          standing_cap_ = share_ = load.limit_bytes;
          counters_->SetLimit(load.limit_bytes == 0 ? std::nullopt
                                                    : std::optional<uint64_t>(load.limit_bytes));
          context_->AddLimit(load.limit_bytes);
          limit_added_ = true;
        }
        before = counters_->current_aligned_bytes();
        counters_->ResetPeak();
      }
      if (status.ok()) status = CreateBackendFor(load, *entry);
      if (status.ok()) status = backend_->Load(*entry, load.device, context_->options().threads);
      uint64_t after = 0, window_peak = 0;
      if (cuda_index_ >= 0) {
        if (auto st = CudaStats(cuda_index_); st.ok()) {
          after = st->allocated_bytes;
          window_peak = std::max(st->peak_allocated_bytes, after);
        }
      } else {
        after = counters_->current_aligned_bytes();
        window_peak = std::max(counters_->peak_aligned_bytes(), after);
      }
      if (status.ok()) {
        // Weights mapped from files are the model's too, outside the allocator.
        mapped_bytes_.store(cuda_index_ >= 0 ? 0 : backend_->MappedBytes());
        loaded.current_bytes = (after > before ? after - before : 0) + mapped_bytes_.load();
        loaded.peak_bytes = (window_peak > before ? window_peak - before : 0) + mapped_bytes_.load();
        loaded.backend = std::string(backend_->kind());
        loaded.tasks = backend_->Tasks();
        loaded.inputs = backend_->Inputs("infer");
        loaded.outputs = backend_->Outputs();
      } else if (status.code() != StatusCode::kResourceExhausted &&
                 IsCudaOutOfMemory(status.message())) {
        // The CPU counting allocator's refusals come back typed from the
        // backend (kResourceExhausted with a MemoryLimitDetail); the CUDA
        // caching allocator's reach LibTorch's loader as text only.
        status = Status::ResourceExhausted(status.message());
      }
    }
  } catch (const std::bad_alloc&) {
    status = Status::ResourceExhausted("model '" + model_ + "': out of memory while loading");
  } catch (const std::exception& e) {
    status = Status::Internal("model '" + model_ + "': loading failed: " + e.what());
  }
  if (status.ok()) {
    loaded_bytes_.store(loaded.current_bytes);
    if (cuda_index_ >= 0) cuda_load_peak_.store(loaded.peak_bytes);
    loaded_.store(true);
    spdlog::info("loaded model '{}' from {} on {}: {} bytes (peak {}), limit {}", model_, load.path,
                 load.device, loaded.current_bytes, loaded.peak_bytes,
                 load.limit_bytes == 0 ? std::string("none") : std::to_string(load.limit_bytes));
    if (job.lane.valid()) lane_ = std::make_unique<ipc::Channel>(std::move(job.lane));
    context_->Send(ipc::ToFrame(loaded, job.request_id));
    return true;
  }
  RemoveBudgets();
  spdlog::warn("loading model '{}' failed: {}", model_, status.ToString());
  // Unrouted before the reply, so a load sent right after it finds the name free.
  on_retire_(this);
  context_->Send(ipc::ToFrame(ipc::LoadFailedMessage{model_, ipc::ErrorInfo::FromStatus(status)},
                              job.request_id));
  FailQueued(status);
  return false;
}

void ModelRunner::FailQueued(const Status& error) {
  std::deque<Job> jobs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs.swap(jobs_);
  }
  for (const Job& job : jobs) {
    if (const auto* infer = std::get_if<InferJob>(&job)) {
      ReplyError(*infer,
                 Status::Unavailable("model '" + model_ +
                                     "' is not loaded: its load failed: " + error.message()));
    } else if (const auto* unload = std::get_if<UnloadJob>(&job)) {
      context_->Send(ipc::ToFrame(ipc::UnloadedMessage{model_}, unload->request_id));
    } else {
      const ipc::ErrorInfo why = ipc::ErrorInfo::FromStatus(Status::Unavailable(
          "model '" + model_ + "' is not loaded: its load failed: " + error.message()));
      if (const auto* out = std::get_if<SwapOutJob>(&job)) {
        ipc::SwappedOutMessage reply;
        reply.model = model_;
        reply.error = why;
        context_->Send(ipc::ToFrame(reply, out->request_id));
      } else if (const auto* in = std::get_if<SwapInJob>(&job)) {
        ipc::SwappedInMessage reply;
        reply.model = model_;
        reply.error = why;
        context_->Send(ipc::ToFrame(reply, in->request_id));
      }
    }
  }
}

void ModelRunner::RunInfer(const InferJob& job) {
  const ipc::InferMessage& infer = job.infer;
  Result<std::vector<ipc::TensorRef>> outputs = Status::Internal("not run");
  try {
    outputs = Execute(job);
  } catch (const std::bad_alloc&) {
    outputs = Status::ResourceExhausted("model '" + model_ + "': task '" + infer.task +
                                        "': out of memory in the worker");
  } catch (const std::exception& e) {
    outputs = Status::Internal("model '" + model_ + "': task '" + infer.task +
                               "' failed in the worker: " + e.what());
  }
  if (!outputs.ok()) {
    ReplyError(job, outputs.status());
    return;
  }
  ipc::ResultMessage result;
  result.request_id = infer.request_id;
  result.model = model_;
  result.outputs = std::move(outputs).value();
  Reply(job, ipc::ToFrame(result));
}

void ModelRunner::Reply(const InferJob& job, const ipc::Frame& frame) {
  if (!job.on_lane) {
    context_->Send(frame);
    return;
  }
  if (!lane_) return;  // closed while the request ran: nobody waits on it
  Status sent = lane_->Send(frame, {}, kLaneSendTimeout);
  if (!sent.ok()) {
    spdlog::warn("model '{}': cannot answer request {} on the lane: {}", model_, frame.request_id,
                 sent.ToString());
    lane_.reset();
  }
}

Result<ipc::Region> ModelRunner::AskOutputRegion(const InferJob& job, uint64_t needed) {
  const uint64_t id = job.infer.request_id;
  const ipc::Frame ask = ipc::ToFrame(ipc::OutputNeededMessage{id, model_, needed});
  if (!job.on_lane) {
    context_->ExpectOutputRegion(id);
    context_->Send(ask);
    return context_->WaitOutputRegion(id, context_->options().output_region_timeout);
  }
  Reply(job, ask);
  const auto deadline =
      std::chrono::steady_clock::now() + context_->options().output_region_timeout;
  while (lane_) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto frame = lane_->Receive(left);
    if (!frame.ok()) {
      if (std::chrono::steady_clock::now() >= deadline) break;  // timed out
      spdlog::info("model '{}': lane closed: {}", model_, frame.status().message());
      lane_.reset();
      break;
    }
    if (frame->type == static_cast<uint16_t>(ipc::MessageType::kOutputRegion) &&
        frame->request_id == id) {
      auto region = ipc::FromFrame<ipc::OutputRegionMessage>(*frame);
      if (!region.ok()) return region.status();
      return region->region();
    }
    lane_backlog_.push_back(std::move(frame).value());  // a later request: after this one
  }
  return Status::Unavailable(context_->Who() + ": model '" + model_ +
                             "': no output_region for request " + std::to_string(id));
}

Result<std::vector<ipc::TensorRef>> ModelRunner::Execute(const InferJob& job) {
  const ipc::InferMessage& infer = job.infer;
  std::shared_ptr<const ipc::SharedMemory> arena = context_->arena();
  if (!arena) return Status::Unavailable(context_->Who() + ": no arena attached");

  // The model runs on views of the arena: the request bytes are not copied
  // in the worker (torch::from_blob aliases them). The frontend frees the
  // input regions only after this request's reply, so they stay put.
  std::vector<InferTensorView> inputs;
  inputs.reserve(infer.inputs.size());
  // Registered shared-memory regions the inputs point into, held while the
  // model reads them (an unregister meanwhile does not unmap them).
  std::vector<std::shared_ptr<const ipc::SharedMemory>> regions;
  for (const ipc::TensorRef& ref : infer.inputs) {
    const ipc::SharedMemory* memory = arena.get();
    if (ref.region_id != 0) {
      regions.push_back(context_->Region(ref.region_id));
      memory = regions.back().get();
      if (memory == nullptr) {
        return Status::InvalidArgument("model '" + model_ + "': input '" + ref.name +
                                       "': shared memory region " + std::to_string(ref.region_id) +
                                       " is not attached to " + context_->Who());
      }
    }
    auto bytes = memory->Bytes(ref.region());
    if (!bytes.ok()) {
      return bytes.status().WithPrefix("model '" + model_ + "': input '" + ref.name + "'");
    }
    inputs.push_back(InferTensorView{
        ref.name, ref.datatype, ref.shape,
        std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size())});
  }
  // This execution's own limit (the frontend's grant past the request), or
  // the standing cap; the standing cap is back when the run is over,
  // whatever happens. SetLimit may change the cap in force meanwhile.
  const bool own_limit = infer.limit_bytes.has_value();
  MG_RETURN_IF_ERROR(BeginExecution(infer.limit_bytes));
  struct End {
    ModelRunner* runner;
    bool own_limit;
    bool active = true;
    ~End() {
      if (active) runner->EndExecution(own_limit);
    }
  } end{this, own_limit};

  const uint64_t refusals_before = counters_->stats().refusals;
  if (!backend_) return Status::Unavailable("model '" + model_ + "' is not loaded");
  auto run = backend_->Run(infer.task, std::span<const InferTensorView>(inputs), infer.params);
  // Read before the execution ends: a refusal under a cap SetLimit set
  // names why it was set (e.g. the model that preempted this one).
  const std::string reason = run.ok() ? std::string() : ReasonInForce();
  if (cuda_index_ >= 0) {
    const WorkerContext::CudaBudget during = context_->cuda_budget(cuda_index_);
    EndExecution(own_limit);
    end.active = false;
    ReleaseCudaBurst();
    // kResourceExhausted: the typed c10::OutOfMemoryError; the text for the
    // allocator's error rethrown by the TorchScript interpreter as a plain
    // runtime_error (cuda_memory.h, IsCudaOutOfMemory).
    if (!run.ok() && (run.status().code() == StatusCode::kResourceExhausted ||
                      IsCudaOutOfMemory(run.status().message()))) {
      return WithReason(CudaLimitError(run.status(), infer.task, during), reason);
    }
  }
  if (!run.ok()) {
    return WithReason(LimitOrError(run.status(), infer.task, refusals_before), reason);
  }
  std::vector<InferTensor> all = std::move(run).value();
  MG_ASSIGN_OR_RETURN(std::vector<InferTensor> outputs,
                      SelectOutputs(std::move(all), infer.output_names, model_, infer.task));

  uint64_t needed = 0;
  const std::vector<uint64_t> offsets = LayOut(outputs, &needed);
  ipc::Region region = infer.output;
  if (needed > region.size) {
    MG_ASSIGN_OR_RETURN(region, AskOutputRegion(job, needed));
    if (region.size < needed) {
      return Status::ResourceExhausted(
          "model '" + model_ + "': the outputs need " + std::to_string(needed) +
          " bytes of the arena; the frontend gave " + std::to_string(region.size));
    }
  }
  auto dst = arena->Bytes(region);
  if (!dst.ok()) return dst.status().WithPrefix("model '" + model_ + "': output region");

  std::vector<ipc::TensorRef> refs;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const InferTensor& t = outputs[i];
    if (!t.data.empty()) std::memcpy(dst->data() + offsets[i], t.data.data(), t.data.size());
    refs.push_back(
        ipc::TensorRef{t.name, t.datatype, t.shape, region.offset + offsets[i], t.data.size()});
  }
  return refs;
}

Status ModelRunner::ApplyCapLocked(uint64_t cap) {
  if (cuda_index_ >= 0) {
    MG_RETURN_IF_ERROR(context_->ReplaceCudaLimit(cuda_index_, share_, cap));
    share_ = cap;
    return Status::Ok();
  }
  counters_->SetLimit(cap == 0 ? std::nullopt : std::optional<uint64_t>(cap));
  // Never below what the model holds now: lowering a model under what its
  // request in flight holds must not make the process-wide sum refuse the
  // worker's other models until that request has given its bytes back.
  const uint64_t share = cap == 0 ? 0 : std::max(cap, counters_->current_aligned_bytes());
  context_->ReplaceLimit(share_, share);
  share_ = share;
  return Status::Ok();
}

Status ModelRunner::BeginExecution(std::optional<uint64_t> own_limit) {
  std::lock_guard<std::mutex> lock(cap_mu_);
  if (!own_limit) {
    reason_in_force_ = standing_reason_;
    return Status::Ok();
  }
  Status s = ApplyCapLocked(*own_limit);
  if (!s.ok()) {
    return s.WithPrefix("model '" + model_ + "': applying the request's limit of " +
                        std::to_string(*own_limit) + " bytes");
  }
  reason_in_force_.clear();
  return Status::Ok();
}

void ModelRunner::EndExecution(bool had_own_limit) {
  std::lock_guard<std::mutex> lock(cap_mu_);
  reason_in_force_ = standing_reason_;
  if (!had_own_limit) return;
  Status s = ApplyCapLocked(standing_cap_);
  if (!s.ok()) {
    spdlog::warn("model '{}': cannot put its cap of {} bytes back: {}", model_, standing_cap_,
                 s.ToString());
  }
}

std::string ModelRunner::ReasonInForce() const {
  std::lock_guard<std::mutex> lock(cap_mu_);
  return reason_in_force_;
}

Result<ipc::LimitSetMessage> ModelRunner::SetLimit(uint64_t limit_bytes,
                                                   const std::string& reason) {
  ipc::LimitSetMessage reply;
  reply.model = model_;
  {
    std::lock_guard<std::mutex> lock(cap_mu_);
    if (!loaded_.load() || (!limit_added_ && !cuda_budget_added_)) {
      return Status::Unavailable(context_->Who() + ": model '" + model_ +
                                 "' is not loaded (its load has not finished, or failed)");
    }
    Status s = ApplyCapLocked(limit_bytes);
    if (!s.ok()) {
      return s.WithPrefix("model '" + model_ + "': setting its cap to " +
                          std::to_string(limit_bytes) + " bytes");
    }
    standing_cap_ = limit_bytes;
    standing_reason_ = reason;
    reason_in_force_ = reason;
  }
  if (cuda_index_ >= 0) {
    // Cached blocks no tensor uses go back to the device now, not after
    // the request in flight.
    if (auto released = EmptyCudaCache(cuda_index_); released.ok()) {
      reply.released_bytes = *released;
    } else {
      spdlog::warn("model '{}': cannot give cuda:{}'s cache back: {}", model_, cuda_index_,
                   released.status().ToString());
    }
    if (auto st = CudaStats(cuda_index_); st.ok()) reply.held_bytes = st->allocated_bytes;
  } else {
    reply.held_bytes = counters_->current_aligned_bytes();
  }
  spdlog::info("model '{}': cap set to {}{}; it holds {} bytes, {} cached bytes released", model_,
               limit_bytes == 0 ? std::string("none") : std::to_string(limit_bytes) + " bytes",
               reason.empty() ? "" : " (" + reason + ")", reply.held_bytes, reply.released_bytes);
  return reply;
}

void ModelRunner::RunSwapOut(const SwapOutJob& job) {
  ipc::SwappedOutMessage reply;
  reply.model = model_;
  if (!loaded_.load()) {
    reply.error = ipc::ErrorInfo::FromStatus(
        Status::Unavailable(context_->Who() + ": model '" + model_ + "' is not loaded"));
  } else {
    Result<SwapOutReport> report = Status::Internal("not run");
    try {
      report = backend_->SwapOut(SwapTarget{job.swap_dir});
    } catch (const std::exception& e) {
      report =
          Status::Internal("model '" + model_ + "': swap-out failed in the worker: " + e.what());
    }
    if (report.ok()) {
      reply.bytes = report->bytes;
      reply.duration_us = report->duration_us;
      reply.rss_before_bytes = report->rss_before_bytes;
      reply.rss_after_bytes = report->rss_after_bytes;
      spdlog::info("model '{}' swapped out to {}: {} bytes in {} us, resident {} -> {} bytes",
                   model_, report->location, report->bytes, report->duration_us,
                   report->rss_before_bytes, report->rss_after_bytes);
    } else {
      reply.error = ipc::ErrorInfo::FromStatus(report.status());
      spdlog::warn("swapping model '{}' out failed: {}", model_, report.status().ToString());
    }
  }
  swapped_.store(backend_ && backend_->swapped());
  mapped_bytes_.store(backend_ && cuda_index_ < 0 ? backend_->MappedBytes() : 0);
  context_->Send(ipc::ToFrame(reply, job.request_id));
}

void ModelRunner::RunSwapIn(const SwapInJob& job) {
  ipc::SwappedInMessage reply;
  reply.model = model_;
  if (!loaded_.load()) {
    reply.error = ipc::ErrorInfo::FromStatus(
        Status::Unavailable(context_->Who() + ": model '" + model_ + "' is not loaded"));
  } else {
    Result<SwapInReport> report = Status::Internal("not run");
    try {
      report = backend_->SwapIn();
    } catch (const std::exception& e) {
      report =
          Status::Internal("model '" + model_ + "': swap-in failed in the worker: " + e.what());
    }
    if (report.ok()) {
      reply.bytes = report->bytes;
      reply.duration_us = report->duration_us;
      reply.reloaded = report->reloaded;
      reply.reason = report->reason;
      if (report->reloaded) {
        spdlog::warn("model '{}' reloaded from its files instead of swapped in: {}", model_,
                     report->reason);
      } else {
        spdlog::info("model '{}' swapped in: {} bytes in {} us", model_, report->bytes,
                     report->duration_us);
      }
    } else {
      reply.error = ipc::ErrorInfo::FromStatus(report.status());
      spdlog::warn("swapping model '{}' in failed: {}", model_, report.status().ToString());
    }
  }
  swapped_.store(backend_ && backend_->swapped());
  mapped_bytes_.store(backend_ && cuda_index_ < 0 ? backend_->MappedBytes() : 0);
  context_->Send(ipc::ToFrame(reply, job.request_id));
}

void ModelRunner::RemoveBudgets() {
  std::lock_guard<std::mutex> lock(cap_mu_);
  if (limit_added_) {
    context_->RemoveLimit(share_);
    counters_->SetLimit(std::nullopt);
    limit_added_ = false;
  }
  if (cuda_budget_added_) {
    context_->RemoveCudaBudget(cuda_index_, share_, cuda_request_);
    cuda_budget_added_ = false;
  }
  share_ = standing_cap_ = 0;
  standing_reason_.clear();
  reason_in_force_.clear();
}

void ModelRunner::ReleaseCudaBurst() {
  const uint64_t keep = context_->cuda_budget(cuda_index_).request_sum;
  auto released = ReleaseCudaCache(cuda_index_, keep);
  if (released.ok() && *released > 0) {
    spdlog::debug("model '{}': gave {} cached bytes of cuda:{} back (above the requests' {})",
                  model_, *released, cuda_index_, keep);
  }
}

Status ModelRunner::CudaLimitError(const Status& error, const std::string& task,
                                   const WorkerContext::CudaBudget& b) const {
  uint64_t in_use = 0;
  std::string use = "unknown";
  if (auto st = CudaStats(cuda_index_); st.ok()) {
    in_use = st->allocated_bytes;
    use = std::to_string(in_use);
  }
  // The refused size is in the caching allocator's text only ("Tried to
  // allocate 20.00 MiB"; cuda_memory.h, CudaRequestedBytes): 0 when absent.
  const uint64_t asked = CudaRequestedBytes(error.message()).value_or(0);
  // The cap the allocator enforced: the sum of the models' limits on the
  // device during the request (this model's share being this execution's).
  const bool capped = b.unlimited_models == 0;
  const uint64_t device_cap = b.limit_sum;
  MemoryLimitDetail detail;
  detail.model = model_;
  detail.device = "cuda:" + std::to_string(cuda_index_);
  detail.limit_bytes = capped ? device_cap : 0;
  detail.in_use_bytes = in_use;
  detail.requested_bytes = asked;
  StatusDetail details;
  details.memory_limit = detail;
  return Status::ResourceExhausted(
             "model '" + model_ +
             "': memory limit exceeded on cuda:" + std::to_string(cuda_index_) + ": limit " +
             (capped ? std::to_string(device_cap) : std::string("none")) +
             " bytes (the worker's cap on this device), in use " + use + " bytes, requested " +
             (asked > 0 ? std::to_string(asked) + " bytes" : std::string("unknown")) + " (task '" +
             task + "')")
      .WithDetail(std::move(details));
}

Status ModelRunner::LimitOrError(const Status& error, const std::string& task,
                                 uint64_t refusals_before) const {
  if (error.code() != StatusCode::kInternal || counters_->stats().refusals == refusals_before) {
    return error;
  }
  // The backend recognises the refusals of the calling thread and of its
  // charged counters; the model's counters saw one during the request all
  // the same (e.g. through a path the backend does not watch): report it as
  // the limit it is, with the counters' record.
  const std::optional<CountingAllocator::Refusal> r = counters_->last_refusal();
  MemoryLimitDetail detail;
  detail.model = model_;
  detail.device = "cpu";
  if (r) {
    detail.limit_bytes = r->limit_bytes;
    detail.in_use_bytes = r->in_use_bytes;
    detail.requested_bytes = r->requested_bytes;
  }
  StatusDetail details;
  details.memory_limit = detail;
  return Status::ResourceExhausted("model '" + model_ + "': memory limit exceeded: limit " +
                                   std::to_string(detail.limit_bytes) + " bytes, in use " +
                                   std::to_string(detail.in_use_bytes) + " bytes, requested " +
                                   std::to_string(detail.requested_bytes) +
                                   " bytes (an allocation was refused while running task '" + task +
                                   "')")
      .WithDetail(std::move(details));
}

Status ModelRunner::CreateBackendFor(const ipc::LoadMessage& load, const ModelEntry& entry) {
  std::string kind = load.backend;
  if (kind.empty()) {
    MG_ASSIGN_OR_RETURN(kind, BackendKindFor(entry));
  }
  MG_ASSIGN_OR_RETURN(backend_, CreateBackend(kind));
  return Status::Ok();
}

void ModelRunner::ReplyError(const InferJob& job, const Status& error) {
  ipc::ResultMessage result;
  result.request_id = job.infer.request_id;
  result.model = model_;
  result.error = ipc::ErrorInfo::FromStatus(error);
  Reply(job, ipc::ToFrame(result));
}

void ModelRunner::RunUnload(const UnloadJob& job) {
  backend_.reset();  // a swap file goes with it
  mapped_bytes_.store(0);
  loaded_.store(false);
  swapped_.store(false);
  RemoveBudgets();
  if (cuda_index_ >= 0) ReleaseCudaBurst();  // what the model held goes back too
  spdlog::info("unloaded model '{}'", model_);
  context_->Send(ipc::ToFrame(ipc::UnloadedMessage{model_}, job.request_id));
}

}  // namespace modelgrid::worker

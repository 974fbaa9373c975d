// One model's thread in modelgrid-worker: load, infer (with the output_needed
// round trip) and unload.
#include "worker/model_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <optional>

#include "modelgrid/repository.h"
#include "modelgrid/torch/cuda_memory.h"

namespace modelgrid::worker {
namespace {

constexpr uint64_t kAlign = ipc::kRegionAlignment;

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

}  // namespace

ModelRunner::ModelRunner(std::string model, WorkerContext* context, RetireFn on_retire)
    : model_(std::move(model)), context_(context), on_retire_(std::move(on_retire)) {
  thread_ = std::thread([this] { Loop(); });
}

ModelRunner::~ModelRunner() {
  Stop();
  if (thread_.joinable()) thread_.join();
}

void ModelRunner::EnqueueLoad(ipc::LoadMessage load, uint64_t request_id) {
  Enqueue(LoadJob{std::move(load), request_id});
}

void ModelRunner::EnqueueInfer(ipc::InferMessage infer) { Enqueue(std::move(infer)); }

void ModelRunner::EnqueueUnload(uint64_t request_id) { Enqueue(UnloadJob{request_id}); }

void ModelRunner::Enqueue(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void ModelRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    jobs_.clear();
  }
  cv_.notify_one();
}

void ModelRunner::Loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (stop_) break;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    bool keep_serving = true;
    if (auto* load = std::get_if<LoadJob>(&job)) {
      keep_serving = RunLoad(*load);
    } else if (auto* infer = std::get_if<ipc::InferMessage>(&job)) {
      RunInfer(*infer);
    } else {
      RunUnload(std::get<UnloadJob>(job));
      keep_serving = false;
    }
    if (!keep_serving) break;
  }
  finished_.store(true);
}

bool ModelRunner::RunLoad(const LoadJob& job) {
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
        // The device's caching allocator is capped at the sum of the limits
        // of this worker's models there (cuda_memory.h).
        cuda_index_ = CudaIndex(load.device);
        cuda_limit_ = load.limit_bytes;
        cuda_request_ = load.request_bytes == 0 ? load.limit_bytes : load.request_bytes;
        status = cuda_index_ < 0
                     ? Status::InvalidArgument("device '" + load.device + "' is not cuda:N")
                     : context_->AddCudaBudget(cuda_index_, load.limit_bytes, cuda_request_);
        if (status.ok()) {
          cuda_budget_added_ = true;
          (void)ResetCudaPeak(cuda_index_);
          if (auto st = CudaStats(cuda_index_); st.ok()) before = st->allocated_bytes;
        } else {
          status = status.WithPrefix("model '" + model_ + "' on " + load.device);
        }
      } else {
        limit_bytes_ = load.limit_bytes;
        context_->AddLimit(limit_bytes_);
        limit_added_ = true;
        before = context_->Memory().current_bytes;
        context_->BeginPeakWindow();
      }
      if (status.ok()) status = backend_.Load(*entry, load.device, context_->options().threads);
      uint64_t after = 0, window_peak = 0;
      if (cuda_index_ >= 0) {
        if (auto st = CudaStats(cuda_index_); st.ok()) {
          after = st->allocated_bytes;
          window_peak = std::max(st->peak_allocated_bytes, after);
        }
      } else {
        after = context_->Memory().current_bytes;
        window_peak = std::max(context_->WindowPeakBytes(), after);
      }
      if (status.ok()) {
        loaded.current_bytes = after > before ? after - before : 0;
        loaded.peak_bytes = window_peak > before ? window_peak - before : 0;
        loaded.tasks = backend_.Tasks();
        loaded.inputs = backend_.Inputs("infer");
        loaded.outputs = backend_.Outputs();
      } else if (status.message().find("memory limit exceeded") != std::string::npos ||
                 IsCudaOutOfMemory(status.message())) {
        // LibTorch's loader reports the refused allocation as a load error.
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
    loaded_.store(true);
    spdlog::info("loaded model '{}' from {} on {}: {} bytes (peak {}), limit {}", model_, load.path,
                 load.device, loaded.current_bytes, loaded.peak_bytes,
                 load.limit_bytes == 0 ? std::string("none") : std::to_string(load.limit_bytes));
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
    if (const auto* infer = std::get_if<ipc::InferMessage>(&job)) {
      ReplyError(*infer,
                 Status::Unavailable("model '" + model_ +
                                     "' is not loaded: its load failed: " + error.message()));
    } else if (const auto* unload = std::get_if<UnloadJob>(&job)) {
      context_->Send(ipc::ToFrame(ipc::UnloadedMessage{model_}, unload->request_id));
    }
  }
}

void ModelRunner::RunInfer(const ipc::InferMessage& infer) {
  Result<std::vector<ipc::TensorRef>> outputs = Status::Internal("not run");
  try {
    outputs = Execute(infer);
  } catch (const std::bad_alloc&) {
    outputs = Status::ResourceExhausted("model '" + model_ + "': task '" + infer.task +
                                        "': out of memory in the worker");
  } catch (const std::exception& e) {
    outputs = Status::Internal("model '" + model_ + "': task '" + infer.task +
                               "' failed in the worker: " + e.what());
  }
  if (!outputs.ok()) {
    ReplyError(infer, outputs.status());
    return;
  }
  ipc::ResultMessage result;
  result.request_id = infer.request_id;
  result.model = model_;
  result.outputs = std::move(outputs).value();
  context_->Send(ipc::ToFrame(result));
}

Result<std::vector<ipc::TensorRef>> ModelRunner::Execute(const ipc::InferMessage& infer) {
  std::shared_ptr<const ipc::SharedMemory> arena = context_->arena();
  if (!arena) return Status::Unavailable(context_->Who() + ": no arena attached");

  // The model runs on views of the arena: the request bytes are not copied
  // in the worker (torch::from_blob aliases them). The frontend frees the
  // input regions only after this request's reply, so they stay put.
  std::vector<InferTensorView> inputs;
  inputs.reserve(infer.inputs.size());
  for (const ipc::TensorRef& ref : infer.inputs) {
    auto bytes = arena->Bytes(ref.region());
    if (!bytes.ok()) {
      return bytes.status().WithPrefix("model '" + model_ + "': input '" + ref.name + "'");
    }
    inputs.push_back(InferTensorView{
        ref.name, ref.datatype, ref.shape,
        std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size())});
  }
  const uint64_t refusals_before = context_->Refusals();
  auto run = backend_.Run(infer.task, std::span<const InferTensorView>(inputs), infer.params);
  if (cuda_index_ >= 0) {
    ReleaseCudaBurst();
    if (!run.ok() && (run.status().code() == StatusCode::kResourceExhausted ||
                      IsCudaOutOfMemory(run.status().message()))) {
      return CudaLimitError(run.status(), infer.task);
    }
  }
  if (!run.ok()) return LimitOrError(run.status(), infer.task, refusals_before);
  std::vector<InferTensor> all = std::move(run).value();
  MG_ASSIGN_OR_RETURN(std::vector<InferTensor> outputs,
                      SelectOutputs(std::move(all), infer.output_names, model_, infer.task));

  uint64_t needed = 0;
  const std::vector<uint64_t> offsets = LayOut(outputs, &needed);
  ipc::Region region = infer.output;
  if (needed > region.size) {
    context_->ExpectOutputRegion(infer.request_id);
    context_->Send(ipc::ToFrame(ipc::OutputNeededMessage{infer.request_id, model_, needed}));
    MG_ASSIGN_OR_RETURN(region, context_->WaitOutputRegion(
                                    infer.request_id, context_->options().output_region_timeout));
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

void ModelRunner::RemoveBudgets() {
  if (limit_added_) {
    context_->RemoveLimit(limit_bytes_);
    limit_added_ = false;
  }
  if (cuda_budget_added_) {
    context_->RemoveCudaBudget(cuda_index_, cuda_limit_, cuda_request_);
    cuda_budget_added_ = false;
  }
}

void ModelRunner::ReleaseCudaBurst() {
  const uint64_t keep = context_->cuda_budget(cuda_index_).request_sum;
  auto released = ReleaseCudaCache(cuda_index_, keep);
  if (released.ok() && *released > 0) {
    spdlog::debug("model '{}': gave {} cached bytes of cuda:{} back (above the requests' {})",
                  model_, *released, cuda_index_, keep);
  }
}

Status ModelRunner::CudaLimitError(const Status& error, const std::string& task) const {
  const WorkerContext::CudaBudget b = context_->cuda_budget(cuda_index_);
  std::string use = "unknown";
  if (auto st = CudaStats(cuda_index_); st.ok()) use = std::to_string(st->allocated_bytes);
  // PyTorch's text names the refused size ("Tried to allocate 20.00 MiB").
  std::string asked = "unknown";
  const std::string& text = error.message();
  if (size_t at = text.find("Tried to allocate "); at != std::string::npos) {
    const size_t from = at + 18;
    const size_t end = text.find_first_of(";(", from);
    asked = text.substr(from, end == std::string::npos ? std::string::npos : end - from);
    while (!asked.empty() && asked.back() == ' ') asked.pop_back();
  }
  const std::string cap = b.unlimited_models > 0 ? std::string("none") : std::to_string(b.limit_sum);
  return Status::ResourceExhausted("model '" + model_ + "': memory limit exceeded on cuda:" +
                                   std::to_string(cuda_index_) + ": limit " + cap +
                                   " bytes (the worker's cap on this device), in use " + use +
                                   " bytes, requested " + asked + " (task '" + task + "')");
}

Status ModelRunner::LimitOrError(const Status& error, const std::string& task,
                                 uint64_t refusals_before) const {
  if (error.code() != StatusCode::kInternal || context_->Refusals() == refusals_before) {
    return error;
  }
  // The backend recognises a refused allocation by the allocator's message
  // inside LibTorch's error text; a long TorchScript traceback can push it
  // out of the text the backend keeps. The allocator's refusal count rose
  // during the request, so report it as the limit it is.
  const std::optional<uint64_t> limit = context_->limit();
  return Status::ResourceExhausted("model '" + model_ + "': memory limit exceeded: limit " +
                                   (limit ? std::to_string(*limit) : std::string("(none)")) +
                                   " bytes (an allocation was refused while running task '" + task +
                                   "')");
}

void ModelRunner::ReplyError(const ipc::InferMessage& infer, const Status& error) {
  ipc::ResultMessage result;
  result.request_id = infer.request_id;
  result.model = model_;
  result.error = ipc::ErrorInfo::FromStatus(error);
  context_->Send(ipc::ToFrame(result));
}

void ModelRunner::RunUnload(const UnloadJob& job) {
  backend_ = TorchScriptBackend();
  loaded_.store(false);
  RemoveBudgets();
  if (cuda_index_ >= 0) ReleaseCudaBurst();  // what the model held goes back too
  spdlog::info("unloaded model '{}'", model_);
  context_->Send(ipc::ToFrame(ipc::UnloadedMessage{model_}, job.request_id));
}

}  // namespace modelgrid::worker

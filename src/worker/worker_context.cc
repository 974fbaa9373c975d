#include "worker/worker_context.h"

#include "modelgrid/torch/cuda_memory.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "modelgrid/ipc/messages.h"
#include "modelgrid/torch/counting_allocator.h"

namespace modelgrid::worker {

namespace {
// A reply that cannot be written within this long means the frontend stopped
// reading; it is dropped (the frontend's own timeout answers its caller).
constexpr std::chrono::milliseconds kSendTimeout{30'000};
}  // namespace

WorkerContext::WorkerContext(ipc::Channel* channel, WorkerServiceOptions options)
    : channel_(channel), options_(std::move(options)) {}

void WorkerContext::Send(const ipc::Frame& frame) {
  Status s = channel_->Send(frame, {}, kSendTimeout);
  if (!s.ok()) {
    spdlog::warn("cannot send a '{}' frame (request {}): {}",
                 ipc::ToMessageType(frame.type)
                     ? std::string(ipc::MessageTypeName(*ipc::ToMessageType(frame.type)))
                     : std::to_string(frame.type),
                 frame.request_id, s.ToString());
  }
}

void WorkerContext::SetArena(std::shared_ptr<const ipc::SharedMemory> arena) {
  std::lock_guard<std::mutex> lock(arena_mu_);
  arena_ = std::move(arena);
}

std::shared_ptr<const ipc::SharedMemory> WorkerContext::arena() const {
  std::lock_guard<std::mutex> lock(arena_mu_);
  return arena_;
}

void WorkerContext::AttachRegion(uint64_t id, std::shared_ptr<const ipc::SharedMemory> memory) {
  std::lock_guard<std::mutex> lock(arena_mu_);
  regions_[id] = std::move(memory);
}

void WorkerContext::DetachRegion(uint64_t id) {
  std::shared_ptr<const ipc::SharedMemory> gone;  // unmapped outside the lock
  std::lock_guard<std::mutex> lock(arena_mu_);
  auto it = regions_.find(id);
  if (it == regions_.end()) return;
  gone = std::move(it->second);
  regions_.erase(it);
}

std::shared_ptr<const ipc::SharedMemory> WorkerContext::Region(uint64_t id) const {
  std::lock_guard<std::mutex> lock(arena_mu_);
  auto it = regions_.find(id);
  return it == regions_.end() ? nullptr : it->second;
}

namespace {

// One model's share of a limit sum: 0 = unlimited.
void AddShare(uint64_t limit_bytes, uint64_t* sum, int* unlimited, int* limited) {
  if (limit_bytes == 0) {
    ++*unlimited;
  } else {
    ++*limited;
    *sum += limit_bytes;
  }
}

void RemoveShare(uint64_t limit_bytes, uint64_t* sum, int* unlimited, int* limited) {
  if (limit_bytes == 0) {
    *unlimited = std::max(0, *unlimited - 1);
  } else {
    *limited = std::max(0, *limited - 1);
    *sum -= std::min(*sum, limit_bytes);
  }
}

}  // namespace

void WorkerContext::ApplyLimitLocked() {
  CountingAllocator::Install().SetLimit(unlimited_models_ > 0 || limited_models_ == 0
                                            ? std::nullopt
                                            : std::optional<uint64_t>(limit_sum_));
}

void WorkerContext::AddLimit(uint64_t limit_bytes) {
  std::lock_guard<std::mutex> lock(limit_mu_);
  AddShare(limit_bytes, &limit_sum_, &unlimited_models_, &limited_models_);
  ApplyLimitLocked();
}

void WorkerContext::RemoveLimit(uint64_t limit_bytes) {
  std::lock_guard<std::mutex> lock(limit_mu_);
  RemoveShare(limit_bytes, &limit_sum_, &unlimited_models_, &limited_models_);
  ApplyLimitLocked();
}

void WorkerContext::ReplaceLimit(uint64_t from, uint64_t to) {
  std::lock_guard<std::mutex> lock(limit_mu_);
  RemoveShare(from, &limit_sum_, &unlimited_models_, &limited_models_);
  AddShare(to, &limit_sum_, &unlimited_models_, &limited_models_);
  ApplyLimitLocked();
}

namespace {
uint64_t CudaCap(const WorkerContext::CudaBudget& b) {
  return b.unlimited_models > 0 ? 0 : b.limit_sum;
}
}  // namespace

Status WorkerContext::AddCudaBudget(int index, uint64_t limit_bytes, uint64_t request_bytes) {
  std::lock_guard<std::mutex> lock(limit_mu_);
  CudaBudget next = cuda_budgets_[index];
  ++next.models;
  if (limit_bytes == 0) {
    ++next.unlimited_models;
  } else {
    next.limit_sum += limit_bytes;
  }
  next.request_sum += request_bytes;
  Status s = SetCudaLimit(index, CudaCap(next));
  if (!s.ok()) {
    if (cuda_budgets_[index].models == 0) cuda_budgets_.erase(index);
    return s;
  }
  cuda_budgets_[index] = next;
  return Status::Ok();
}

void WorkerContext::RemoveCudaBudget(int index, uint64_t limit_bytes, uint64_t request_bytes) {
  std::lock_guard<std::mutex> lock(limit_mu_);
  auto it = cuda_budgets_.find(index);
  if (it == cuda_budgets_.end()) return;
  CudaBudget& b = it->second;
  b.models = std::max(0, b.models - 1);
  if (limit_bytes == 0) {
    b.unlimited_models = std::max(0, b.unlimited_models - 1);
  } else {
    b.limit_sum -= std::min(b.limit_sum, limit_bytes);
  }
  b.request_sum -= std::min(b.request_sum, request_bytes);
  const uint64_t cap = b.models == 0 ? 0 : CudaCap(b);
  if (b.models == 0) cuda_budgets_.erase(it);
  Status s = SetCudaLimit(index, cap);
  if (!s.ok()) spdlog::warn("cuda:{}: cannot lower the allocator cap: {}", index, s.ToString());
}

Status WorkerContext::ReplaceCudaLimit(int index, uint64_t from, uint64_t to) {
  std::lock_guard<std::mutex> lock(limit_mu_);
  auto it = cuda_budgets_.find(index);
  if (it == cuda_budgets_.end()) {
    return Status::Internal("cuda:" + std::to_string(index) + " holds no model of this worker");
  }
  CudaBudget next = it->second;
  int limited = 0;  // not tracked per device: only the sum and the unlimited count matter
  RemoveShare(from, &next.limit_sum, &next.unlimited_models, &limited);
  AddShare(to, &next.limit_sum, &next.unlimited_models, &limited);
  MG_RETURN_IF_ERROR(SetCudaLimit(index, CudaCap(next)));
  it->second = next;
  return Status::Ok();
}

WorkerContext::CudaBudget WorkerContext::cuda_budget(int index) const {
  std::lock_guard<std::mutex> lock(limit_mu_);
  auto it = cuda_budgets_.find(index);
  return it == cuda_budgets_.end() ? CudaBudget{} : it->second;
}

std::vector<int> WorkerContext::CudaDevices() const {
  std::lock_guard<std::mutex> lock(limit_mu_);
  std::vector<int> out;
  for (const auto& [index, budget] : cuda_budgets_) out.push_back(index);
  return out;
}

std::optional<uint64_t> WorkerContext::limit() const {
  return CountingAllocator::Install().limit();
}

ProcessMemory WorkerContext::Memory() const {
  const CountingAllocator& alloc = CountingAllocator::Install();
  return {alloc.current_aligned_bytes(), alloc.peak_aligned_bytes()};
}

void WorkerContext::ExpectOutputRegion(uint64_t request_id) {
  std::lock_guard<std::mutex> lock(wait_mu_);
  waits_[request_id] = std::nullopt;
}

Result<ipc::Region> WorkerContext::WaitOutputRegion(uint64_t request_id,
                                                    std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(wait_mu_);
  const bool answered = wait_cv_.wait_for(lock, timeout, [&] {
    auto it = waits_.find(request_id);
    return waits_cancelled_ || it == waits_.end() || it->second.has_value();
  });
  auto it = waits_.find(request_id);
  std::optional<Result<ipc::Region>> got;
  if (it != waits_.end()) {
    got = std::move(it->second);
    waits_.erase(it);
  }
  if (got) return std::move(*got);
  if (!answered) {
    return Status::Unavailable(Who() + ": request " + std::to_string(request_id) +
                               ": no 'output_region' within " + std::to_string(timeout.count()) +
                               " ms");
  }
  return Status::Unavailable(Who() + ": request " + std::to_string(request_id) +
                             ": shutting down while waiting for 'output_region'");
}

bool WorkerContext::DeliverOutputRegion(uint64_t request_id, Result<ipc::Region> region) {
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    auto it = waits_.find(request_id);
    if (it == waits_.end() || it->second.has_value()) return false;
    it->second = std::move(region);
  }
  wait_cv_.notify_all();
  return true;
}

void WorkerContext::CancelOutputWaits() {
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    waits_cancelled_ = true;
  }
  wait_cv_.notify_all();
}

}  // namespace modelgrid::worker

// The counting CPU allocator: counters (CountingAllocator) and the c10
// allocator that feeds them (C10CountingAllocator).

#include "counting_allocator.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/alignment.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <limits>
#include <mutex>
#include <vector>

#include "modelgrid/bytes.h"

namespace modelgrid {

static_assert(CountingAllocator::kAlignment == c10::gAlignment,
              "the counting allocator aligns like c10's default CPU allocator");

// ---------------------------------------------------------------- counters

namespace {

void RaiseTo(std::atomic<uint64_t>& peak, uint64_t value) {
  uint64_t seen = peak.load(std::memory_order_relaxed);
  while (seen < value && !peak.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

// The calling thread's charge and refusal record.
thread_local CountingAllocator* t_charge = nullptr;
thread_local uint64_t t_refusals = 0;
thread_local std::optional<CountingAllocator::Refusal> t_last_refusal;

}  // namespace

bool CountingAllocator::Take(uint64_t bytes, Refusal* refusal) {
  const uint64_t aligned = RoundUp(bytes, kAlignment);
  const uint64_t limit = limit_.load(std::memory_order_relaxed);
  const uint64_t before = current_aligned_.fetch_add(aligned, std::memory_order_relaxed);
  if (limit != kNoLimit && before + aligned > limit) {
    current_aligned_.fetch_sub(aligned, std::memory_order_relaxed);
    *refusal = Refusal{limit, before, bytes, this};
    return false;
  }
  if (parent_ != nullptr && !parent_->Take(bytes, refusal)) {
    current_aligned_.fetch_sub(aligned, std::memory_order_relaxed);
    return false;
  }
  RaiseTo(peak_aligned_, before + aligned);
  RaiseTo(peak_, current_.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  allocations_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void CountingAllocator::NoteRefusal(const Refusal& refusal) {
  for (CountingAllocator* c = this; c != nullptr; c = c->parent_) {
    c->refusals_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(c->refusal_mu_);
    c->last_refusal_ = refusal;
  }
}

bool CountingAllocator::TryReserve(uint64_t bytes, Refusal* refusal) {
  Refusal r;
  if (Take(bytes, &r)) return true;
  NoteRefusal(r);
  ++t_refusals;
  t_last_refusal = r;
  if (refusal != nullptr) *refusal = r;
  return false;
}

Status CountingAllocator::Reserve(uint64_t bytes) {
  Refusal r;
  if (TryReserve(bytes, &r)) return Status::Ok();
  return Status::ResourceExhausted("memory limit exceeded: limit " + std::to_string(r.limit_bytes) +
                                   " bytes, in use " + std::to_string(r.in_use_bytes) +
                                   " bytes, requested " + std::to_string(r.requested_bytes) +
                                   " bytes");
}

void CountingAllocator::Release(uint64_t bytes) {
  for (CountingAllocator* c = this; c != nullptr; c = c->parent_) {
    c->current_.fetch_sub(bytes, std::memory_order_relaxed);
    c->current_aligned_.fetch_sub(RoundUp(bytes, kAlignment), std::memory_order_relaxed);
    c->frees_.fetch_add(1, std::memory_order_relaxed);
  }
}

std::optional<CountingAllocator::Refusal> CountingAllocator::last_refusal() const {
  std::lock_guard<std::mutex> lock(refusal_mu_);
  return last_refusal_;
}

void CountingAllocator::Reset() {
  for (auto* a :
       {&current_, &peak_, &current_aligned_, &peak_aligned_, &allocations_, &frees_, &refusals_}) {
    a->store(0, std::memory_order_relaxed);
  }
  limit_.store(kNoLimit, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(refusal_mu_);
  last_refusal_.reset();
}

CountingAllocator::ScopedCharge::ScopedCharge(CountingAllocator* counters) : previous_(t_charge) {
  t_charge = counters;
}

CountingAllocator::ScopedCharge::~ScopedCharge() { t_charge = previous_; }

CountingAllocator* CountingAllocator::ThreadCharge() { return t_charge; }

CountingAllocator* CountingAllocator::Charged() {
  return t_charge != nullptr ? t_charge : Installed();
}

uint64_t CountingAllocator::ThreadRefusals() { return t_refusals; }

std::optional<CountingAllocator::Refusal> CountingAllocator::LastThreadRefusal() {
  return t_last_refusal;
}

CountingAllocator::Stats CountingAllocator::stats() const {
  Stats s;
  s.current_bytes = current_.load(std::memory_order_relaxed);
  s.peak_bytes = peak_.load(std::memory_order_relaxed);
  s.current_aligned_bytes = current_aligned_.load(std::memory_order_relaxed);
  s.peak_aligned_bytes = peak_aligned_.load(std::memory_order_relaxed);
  s.allocations = allocations_.load(std::memory_order_relaxed);
  s.frees = frees_.load(std::memory_order_relaxed);
  s.refusals = refusals_.load(std::memory_order_relaxed);
  return s;
}

void CountingAllocator::ResetPeak() {
  peak_.store(current_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  peak_aligned_.store(current_aligned_.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void CountingAllocator::SetLimit(std::optional<uint64_t> limit_bytes) {
  limit_.store(limit_bytes.value_or(kNoLimit), std::memory_order_relaxed);
}

std::optional<uint64_t> CountingAllocator::limit() const {
  const uint64_t limit = limit_.load(std::memory_order_relaxed);
  if (limit == kNoLimit) return std::nullopt;
  return limit;
}

// ------------------------------------------------------------ c10 allocator

namespace {

constexpr uint64_t kTagMagic = 0x6d6f64656c677269ULL;  // "modelgri"

// Lives in the kAlignment bytes in front of the data.
struct BlockHeader {
  uint64_t tag;  // kTagMagic ^ data address
  uint64_t bytes;
  CountingAllocator* owner;
};
static_assert(sizeof(BlockHeader) <= CountingAllocator::kAlignment);

std::atomic<c10::DeleterFnPtr> g_fallback_deleter{&c10::free_cpu};
std::atomic<C10CountingAllocator::TraceHook> g_trace_hook{nullptr};

uint64_t TagFor(const void* data) { return kTagMagic ^ reinterpret_cast<uintptr_t>(data); }

BlockHeader* HeaderOf(void* data) {
  return reinterpret_cast<BlockHeader*>(static_cast<char*>(data) - CountingAllocator::kAlignment);
}

}  // namespace

c10::DataPtr C10CountingAllocator::Allocate(size_t nbytes) const {
  const c10::Device cpu(c10::DeviceType::CPU);
  if (nbytes == 0) return c10::DataPtr(nullptr, nullptr, &Delete, cpu);
  if (nbytes > std::numeric_limits<uint64_t>::max() / 2) {
    C10_THROW_ERROR(OutOfMemoryError, "memory request of " + std::to_string(nbytes) + " bytes is absurd");
  }
  // The calling thread's model counters when they are ours (a child of
  // counters_), else counters_ itself (CountingAllocator::ScopedCharge).
  CountingAllocator* owner = CountingAllocator::ThreadCharge();
  if (owner == nullptr || owner->parent() != counters_) owner = counters_;
  const Status reserved = owner->Reserve(nbytes);
  if (!reserved.ok()) C10_THROW_ERROR(OutOfMemoryError, reserved.message());
  const uint64_t total = CountingAllocator::kAlignment + RoundUp(nbytes, CountingAllocator::kAlignment);
  void* base = std::aligned_alloc(CountingAllocator::kAlignment, total);
  if (base == nullptr) {
    owner->Release(nbytes);
    C10_THROW_ERROR(OutOfMemoryError, "out of memory: the system refused " + std::to_string(nbytes) +
                                          " bytes (" + std::to_string(counters_->current_aligned_bytes()) +
                                          " bytes in use)");
  }
  void* data = static_cast<char*>(base) + CountingAllocator::kAlignment;
  *HeaderOf(data) = BlockHeader{TagFor(data), nbytes, owner};
  c10::profiledCPUMemoryReporter().New(data, nbytes);
  if (auto hook = g_trace_hook.load(std::memory_order_relaxed)) hook(true, nbytes, data);
  return c10::DataPtr(data, data, &Delete, cpu);
}

void C10CountingAllocator::Delete(void* data) {
  if (data == nullptr) return;
  BlockHeader* header = HeaderOf(data);
  if (header->tag != TagFor(data)) {
    g_fallback_deleter.load(std::memory_order_relaxed)(data);
    return;
  }
  if (auto hook = g_trace_hook.load(std::memory_order_relaxed)) hook(false, header->bytes, data);
  c10::profiledCPUMemoryReporter().Delete(data);
  header->owner->Release(header->bytes);
  header->tag = 0;
  std::free(header);
}

void C10CountingAllocator::SetFallbackDeleter(c10::DeleterFnPtr deleter) {
  g_fallback_deleter.store(deleter != nullptr ? deleter : &c10::free_cpu, std::memory_order_relaxed);
}

void C10CountingAllocator::SetTraceHook(TraceHook hook) { g_trace_hook.store(hook, std::memory_order_relaxed); }

// ------------------------------------------------------------ installation

namespace {

std::atomic<CountingAllocator*> g_installed{nullptr};

}  // namespace

CountingAllocator& CountingAllocator::Install() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Never destroyed: blocks may be freed during static destruction.
    static auto* counters = new CountingAllocator();
    static auto* adapter = new C10CountingAllocator(counters);
    c10::Allocator* previous = c10::GetAllocator(c10::DeviceType::CPU);
    if (previous != nullptr) C10CountingAllocator::SetFallbackDeleter(previous->raw_deleter());
    c10::SetAllocator(c10::DeviceType::CPU, adapter, std::numeric_limits<uint8_t>::max());
    g_installed.store(counters, std::memory_order_release);
  });
  return *g_installed.load(std::memory_order_acquire);
}

CountingAllocator* CountingAllocator::Installed() { return g_installed.load(std::memory_order_acquire); }

namespace {

std::mutex g_pool_mu;
std::vector<CountingAllocator*>* g_released = nullptr;  // guarded by g_pool_mu; never freed

}  // namespace

CountingAllocator* CountingAllocator::AcquireModelCounters() {
  CountingAllocator& process = Install();
  {
    std::lock_guard<std::mutex> lock(g_pool_mu);
    if (g_released != nullptr) {
      for (auto it = g_released->begin(); it != g_released->end(); ++it) {
        CountingAllocator* c = *it;
        // No live block names them: nothing can be freed into them any more.
        if (c->current_bytes() == 0 && c->current_aligned_bytes() == 0) {
          g_released->erase(it);
          c->Reset();
          return c;
        }
      }
    }
  }
  return new CountingAllocator(&process);  // never destroyed (see the header)
}

void CountingAllocator::ReleaseModelCounters(CountingAllocator* counters) {
  if (counters == nullptr) return;
  counters->SetLimit(std::nullopt);
  std::lock_guard<std::mutex> lock(g_pool_mu);
  if (g_released == nullptr) g_released = new std::vector<CountingAllocator*>();
  g_released->push_back(counters);
}

}  // namespace modelgrid

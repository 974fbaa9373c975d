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

}  // namespace

Status CountingAllocator::Reserve(uint64_t bytes) {
  const uint64_t aligned = RoundUp(bytes, kAlignment);
  const uint64_t limit = limit_.load(std::memory_order_relaxed);
  const uint64_t before = current_aligned_.fetch_add(aligned, std::memory_order_relaxed);
  if (limit != kNoLimit && before + aligned > limit) {
    current_aligned_.fetch_sub(aligned, std::memory_order_relaxed);
    refusals_.fetch_add(1, std::memory_order_relaxed);
    return Status::ResourceExhausted("memory limit exceeded: limit " + std::to_string(limit) +
                                     " bytes, in use " + std::to_string(before) +
                                     " bytes, requested " + std::to_string(bytes) + " bytes");
  }
  RaiseTo(peak_aligned_, before + aligned);
  RaiseTo(peak_, current_.fetch_add(bytes, std::memory_order_relaxed) + bytes);
  allocations_.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

void CountingAllocator::Release(uint64_t bytes) {
  current_.fetch_sub(bytes, std::memory_order_relaxed);
  current_aligned_.fetch_sub(RoundUp(bytes, kAlignment), std::memory_order_relaxed);
  frees_.fetch_add(1, std::memory_order_relaxed);
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
  const Status reserved = counters_->Reserve(nbytes);
  if (!reserved.ok()) C10_THROW_ERROR(OutOfMemoryError, reserved.message());
  const uint64_t total = CountingAllocator::kAlignment + RoundUp(nbytes, CountingAllocator::kAlignment);
  void* base = std::aligned_alloc(CountingAllocator::kAlignment, total);
  if (base == nullptr) {
    counters_->Release(nbytes);
    C10_THROW_ERROR(OutOfMemoryError, "out of memory: the system refused " + std::to_string(nbytes) +
                                          " bytes (" + std::to_string(counters_->current_aligned_bytes()) +
                                          " bytes in use)");
  }
  void* data = static_cast<char*>(base) + CountingAllocator::kAlignment;
  *HeaderOf(data) = BlockHeader{TagFor(data), nbytes, counters_};
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

}  // namespace modelgrid

#include "counting_allocator.h"

#include <c10/core/CPUAllocator.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <thread>
#include <vector>

#include "modelgrid/torch/counting_allocator.h"

namespace modelgrid {
namespace {

TEST(CountingAllocatorTest, CountersFollowReserveAndRelease) {
  CountingAllocator counters;
  ASSERT_TRUE(counters.Reserve(100).ok());
  ASSERT_TRUE(counters.Reserve(64).ok());
  auto s = counters.stats();
  EXPECT_EQ(s.current_bytes, 164u);
  EXPECT_EQ(s.current_aligned_bytes, 128u + 64u);
  counters.Release(100);
  s = counters.stats();
  EXPECT_EQ(s.current_bytes, 64u);
  EXPECT_EQ(s.peak_bytes, 164u);
  EXPECT_EQ(s.peak_aligned_bytes, 192u);
  counters.ResetPeak();
  EXPECT_EQ(counters.stats().peak_bytes, 64u);
  EXPECT_EQ(counters.stats().peak_aligned_bytes, 64u);
}

TEST(CountingAllocatorTest, LimitRefusesWithTheAgreedMessage) {
  CountingAllocator counters;
  counters.SetLimit(1000);
  ASSERT_TRUE(counters.Reserve(600).ok());
  Status s = counters.Reserve(500);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "memory limit exceeded: limit 1000 bytes, in use 640 bytes, requested 500 bytes");
  EXPECT_EQ(counters.stats().current_aligned_bytes, 640u);
  EXPECT_EQ(counters.stats().refusals, 1u);
  counters.SetLimit(std::nullopt);
  EXPECT_TRUE(counters.Reserve(500).ok());
}

TEST(CountingAllocatorTest, TensorsMoveCurrentAndPeakByTheirBytes) {
  CountingAllocator& counters = CountingAllocator::Install();
  ASSERT_EQ(CountingAllocator::Installed(), &counters);
  EXPECT_EQ(&CountingAllocator::Install(), &counters);  // idempotent
  const uint64_t base = counters.current_bytes();
  counters.ResetPeak();
  {
    at::Tensor a = torch::empty({1000}, torch::kFloat32);  // 4000 bytes
    EXPECT_EQ(counters.current_bytes(), base + 4000);
    EXPECT_EQ(counters.current_aligned_bytes() - base, 4032u);  // base is a multiple of 64 here
    {
      at::Tensor b = torch::empty({10, 10}, torch::kInt64);  // 800 bytes
      EXPECT_EQ(counters.current_bytes(), base + 4800);
      at::Tensor view = b.view({100});  // no new storage
      EXPECT_EQ(counters.current_bytes(), base + 4800);
    }
    EXPECT_EQ(counters.current_bytes(), base + 4000);
    EXPECT_EQ(counters.stats().peak_bytes, base + 4800);
  }
  EXPECT_EQ(counters.current_bytes(), base);
}

TEST(CountingAllocatorTest, LimitThrowsOutOfMemoryAndTheProcessGoesOn) {
  CountingAllocator& counters = CountingAllocator::Install();
  counters.SetLimit(counters.current_aligned_bytes() + (1u << 20));
  at::Tensor small = torch::zeros({1024}, torch::kFloat32);
  try {
    at::Tensor big = torch::zeros({1 << 20}, torch::kFloat32);  // 4 MiB > 1 MiB
    FAIL() << "no exception";
  } catch (const c10::OutOfMemoryError& e) {
    const std::string what = e.what_without_backtrace();
    EXPECT_NE(what.find("memory limit exceeded: limit "), std::string::npos) << what;
    EXPECT_NE(what.find("requested 4194304 bytes"), std::string::npos) << what;
  }
  counters.SetLimit(std::nullopt);
  at::Tensor big = torch::ones({1 << 20}, torch::kFloat32);  // works again
  EXPECT_EQ(big.sum().item<float>(), float(1 << 20));
}

TEST(CountingAllocatorTest, RawInterfaceRoundTrips) {
  CountingAllocator counters;
  C10CountingAllocator allocator(&counters);
  void* p = allocator.raw_allocate(1000);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
  EXPECT_EQ(counters.current_bytes(), 1000u);
  allocator.raw_deallocate(p);
  EXPECT_EQ(counters.current_bytes(), 0u);
  // Zero bytes: no block, nothing counted.
  c10::DataPtr empty = allocator.allocate(0);
  EXPECT_EQ(empty.get(), nullptr);
  EXPECT_EQ(counters.stats().allocations, 1u);
}

TEST(CountingAllocatorTest, ForeignPointersGoToTheFallbackDeleter) {
  // A block from c10's own CPU allocator freed through our raw deleter.
  void* foreign = c10::GetDefaultCPUAllocator()->raw_allocate(4096);
  C10CountingAllocator::Delete(foreign);  // must not crash nor count
  SUCCEED();
}

TEST(CountingAllocatorTest, ConcurrentAllocationIsCountedExactly) {
  CountingAllocator counters;
  C10CountingAllocator allocator(&counters);
  constexpr int kThreads = 8;
  constexpr int kRounds = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<c10::DataPtr> held;
      for (int i = 0; i < kRounds; ++i) {
        held.push_back(allocator.allocate(1 + (i * 37 + t) % 5000));
        if (held.size() > 16) held.erase(held.begin());
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto s = counters.stats();
  EXPECT_EQ(s.current_bytes, 0u);
  EXPECT_EQ(s.current_aligned_bytes, 0u);
  EXPECT_EQ(s.allocations, uint64_t(kThreads) * kRounds);
  EXPECT_EQ(s.frees, uint64_t(kThreads) * kRounds);
  EXPECT_GT(s.peak_bytes, 0u);
  EXPECT_LE(s.peak_aligned_bytes, uint64_t(kThreads) * 17 * 5056);
}

// ---- per-model counters ----

TEST(CountingAllocatorTest, AChildChargesItsParentAndEachAppliesItsLimit) {
  CountingAllocator parent;
  CountingAllocator child(&parent);
  ASSERT_TRUE(parent.Reserve(1000).ok());  // charged to no child
  ASSERT_TRUE(child.Reserve(100).ok());
  EXPECT_EQ(child.stats().current_aligned_bytes, 128u);
  EXPECT_EQ(parent.stats().current_aligned_bytes, 1024u + 128u);
  EXPECT_EQ(parent.stats().allocations, 2u);

  // The child's own limit refuses first; the record names the child.
  child.SetLimit(1000);
  Status s = child.Reserve(1000);
  EXPECT_EQ(s.message(),
            "memory limit exceeded: limit 1000 bytes, in use 128 bytes, requested 1000 bytes");
  auto r = child.last_refusal();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->by, &child);
  EXPECT_EQ(r->limit_bytes, 1000u);
  EXPECT_EQ(r->in_use_bytes, 128u);
  EXPECT_EQ(r->requested_bytes, 1000u);
  EXPECT_EQ(child.stats().refusals, 1u);
  EXPECT_EQ(parent.stats().refusals, 1u) << "a child's refusal counts in the parent too";

  // The parent's limit refuses what the child's allows: nothing changes in
  // either, and the record names the parent.
  child.SetLimit(std::nullopt);
  parent.SetLimit(2048);
  s = child.Reserve(1000);
  EXPECT_EQ(s.message(),
            "memory limit exceeded: limit 2048 bytes, in use 1152 bytes, requested 1000 bytes");
  r = child.last_refusal();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->by, &parent);
  EXPECT_EQ(child.stats().current_aligned_bytes, 128u);
  EXPECT_EQ(parent.stats().current_aligned_bytes, 1152u);
  EXPECT_EQ(child.stats().refusals, 2u);

  child.Release(100);
  EXPECT_EQ(child.current_bytes(), 0u);
  EXPECT_EQ(parent.current_bytes(), 1000u);
  EXPECT_EQ(parent.stats().frees, 1u);
}

TEST(CountingAllocatorTest, AThreadsChargeChoosesTheCountersAndFreesGoToTheOwner) {
  CountingAllocator& process = CountingAllocator::Install();
  CountingAllocator* a = CountingAllocator::AcquireModelCounters();
  CountingAllocator* b = CountingAllocator::AcquireModelCounters();
  ASSERT_NE(a, b);
  EXPECT_EQ(a->parent(), &process);
  EXPECT_EQ(CountingAllocator::ThreadCharge(), nullptr);
  EXPECT_EQ(CountingAllocator::Charged(), &process);
  const uint64_t process_before = process.current_bytes();
  at::Tensor ta, tb;
  {
    CountingAllocator::ScopedCharge charge_a(a);
    EXPECT_EQ(CountingAllocator::Charged(), a);
    ta = torch::empty({1000}, torch::kFloat32);  // 4000 bytes
    {
      CountingAllocator::ScopedCharge charge_b(b);  // nests
      tb = torch::empty({250}, torch::kFloat32);    // 1000 bytes
    }
    EXPECT_EQ(CountingAllocator::ThreadCharge(), a);
  }
  EXPECT_EQ(CountingAllocator::ThreadCharge(), nullptr);
  EXPECT_EQ(a->current_bytes(), 4000u);
  EXPECT_EQ(b->current_bytes(), 1000u);
  EXPECT_EQ(process.current_bytes(), process_before + 5000);
  // Another thread, with another charge, frees a's tensor: a gets it back.
  std::thread other([&] {
    CountingAllocator::ScopedCharge charge_b(b);
    ta.reset();
  });
  other.join();
  EXPECT_EQ(a->current_bytes(), 0u);
  EXPECT_EQ(b->current_bytes(), 1000u);
  tb.reset();
  EXPECT_EQ(b->current_bytes(), 0u);
  EXPECT_EQ(process.current_bytes(), process_before);
  EXPECT_EQ(a->stats().peak_bytes, 4000u);

  // Given back with no live block, they are reused, zeroed.
  a->SetLimit(10);
  CountingAllocator::ReleaseModelCounters(a);
  CountingAllocator* c = CountingAllocator::AcquireModelCounters();
  EXPECT_EQ(c, a);
  EXPECT_EQ(c->stats().peak_bytes, 0u);
  EXPECT_EQ(c->stats().allocations, 0u);
  EXPECT_FALSE(c->limit().has_value());
  // Given back with a live block, they are not.
  at::Tensor held;
  {
    CountingAllocator::ScopedCharge charge(b);
    held = torch::empty({16}, torch::kFloat32);
  }
  CountingAllocator::ReleaseModelCounters(b);
  CountingAllocator* d = CountingAllocator::AcquireModelCounters();
  EXPECT_NE(d, b);
  held.reset();
  EXPECT_EQ(b->current_bytes(), 0u);
  CountingAllocator::ReleaseModelCounters(c);
  CountingAllocator::ReleaseModelCounters(d);
}

// A refusal is known to the thread that asked without reading any text:
// its refusal count rises and its record holds the figures.
TEST(CountingAllocatorTest, TheAskingThreadKeepsARecordOfItsRefusals) {
  CountingAllocator::Install();
  CountingAllocator* model = CountingAllocator::AcquireModelCounters();
  const uint64_t before = CountingAllocator::ThreadRefusals();
  model->SetLimit(4096);
  {
    CountingAllocator::ScopedCharge charge(model);
    EXPECT_THROW(torch::empty({2048}, torch::kFloat32), c10::OutOfMemoryError);
  }
  EXPECT_EQ(CountingAllocator::ThreadRefusals(), before + 1);
  auto r = CountingAllocator::LastThreadRefusal();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->by, model);
  EXPECT_EQ(r->limit_bytes, 4096u);
  EXPECT_EQ(r->requested_bytes, 8192u);
  // Another thread's count did not move.
  uint64_t other_count = 99;
  std::thread([&] { other_count = CountingAllocator::ThreadRefusals(); }).join();
  EXPECT_EQ(other_count, 0u);
  CountingAllocator::ReleaseModelCounters(model);
}

}  // namespace
}  // namespace modelgrid

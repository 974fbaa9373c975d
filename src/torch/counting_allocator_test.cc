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

}  // namespace
}  // namespace modelgrid

// TensorArena and SharedMemory: creation, errors, shared mapping, sealing,
// bounds, and concurrent Allocate/Free.
#include "modelgrid/ipc/tensor_arena.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "modelgrid/ipc/shared_memory.h"

namespace modelgrid::ipc {
namespace {

TEST(TensorArenaTest, CapacityMustBeAPositiveMultipleOfTheAlignment) {
  EXPECT_EQ(TensorArena::Create("a", 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(TensorArena::Create("a", 100).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(TensorArena::Create("a", 128).ok());
}

TEST(TensorArenaTest, RegionsAreAlignedWritableAndDisjoint) {
  auto arena = TensorArena::Create("aligned", 64 * 1024);
  ASSERT_TRUE(arena.ok()) << arena.status().ToString();
  std::vector<Region> regions;
  for (uint64_t size : {1u, 100u, 4096u, 63u, 65u}) {
    auto r = (*arena)->Allocate(size, "t");
    ASSERT_TRUE(r.ok());
    auto bytes = (*arena)->Bytes(*r);
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(bytes->size(), size);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(bytes->data()) % kRegionAlignment, 0u);
    std::memset(bytes->data(), static_cast<int>(regions.size() + 1), bytes->size());
    regions.push_back(*r);
  }
  for (size_t i = 0; i < regions.size(); ++i) {
    auto bytes = (*arena)->Bytes(regions[i]);
    for (std::byte b : *bytes) ASSERT_EQ(static_cast<int>(b), static_cast<int>(i + 1));
  }
}

TEST(TensorArenaTest, ExhaustionNamesArenaRequestAndFreeBytes) {
  auto arena = TensorArena::Create("worker-3", 4096);
  ASSERT_TRUE(arena.ok());
  ASSERT_TRUE((*arena)->Allocate(4000, "request 6 input 'a'").ok());  // reserves 4032
  auto fail = (*arena)->Allocate(200, "request 7 input 'x'");
  ASSERT_FALSE(fail.ok());
  EXPECT_EQ(fail.status().code(), StatusCode::kResourceExhausted);
  const std::string m = fail.status().message();
  EXPECT_NE(m.find("arena 'worker-3'"), std::string::npos) << m;
  EXPECT_NE(m.find("request 7 input 'x'"), std::string::npos) << m;
  EXPECT_NE(m.find("64 bytes free of 4096"), std::string::npos) << m;
}

TEST(TensorArenaTest, CountsBytesInUseAndPeak) {
  auto arena = TensorArena::Create("counts", 8192);
  ASSERT_TRUE(arena.ok());
  TensorArena& a = **arena;
  auto x = a.Allocate(1000, "x");  // 1024
  auto y = a.Allocate(3000, "y");  // 3008
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_EQ(a.bytes_in_use(), 4032u);
  EXPECT_EQ(a.free_bytes(), 8192u - 4032);
  ASSERT_TRUE(a.Free(*y).ok());
  EXPECT_EQ(a.bytes_in_use(), 1024u);
  EXPECT_EQ(a.peak_bytes_in_use(), 4032u);
  EXPECT_EQ(a.Free(*y).code(), StatusCode::kInvalidArgument);
}

TEST(SharedMemoryTest, SecondMappingSharesTheBytes) {
  auto arena = TensorArena::Create("shared", 4096);
  ASSERT_TRUE(arena.ok());
  auto r = (*arena)->Allocate(16, "r");
  ASSERT_TRUE(r.ok());
  std::memcpy((*arena)->Bytes(*r)->data(), "frontend wrote", 15);

  auto other = SharedMemory::MapFromFd(UniqueFd(::dup((*arena)->fd())), 4096);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  auto seen = other->Bytes(*r);
  ASSERT_TRUE(seen.ok());
  EXPECT_STREQ(reinterpret_cast<const char*>(seen->data()), "frontend wrote");
  std::memcpy(seen->data(), "worker wrote!!", 15);
  EXPECT_STREQ(reinterpret_cast<const char*>((*arena)->Bytes(*r)->data()), "worker wrote!!");
}

TEST(SharedMemoryTest, MapFromFdChecksItsArguments) {
  auto memory = SharedMemory::Create("small", 4096);
  ASSERT_TRUE(memory.ok());
  auto too_big = SharedMemory::MapFromFd(UniqueFd(::dup(memory->fd())), 8192);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_big.status().message().find("4096"), std::string::npos);
  EXPECT_EQ(SharedMemory::MapFromFd(UniqueFd(), 4096).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SharedMemory::MapFromFd(UniqueFd(::dup(memory->fd())), 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(SharedMemory::Create("empty", 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(SharedMemoryTest, SizeIsSealedAgainstTheOtherProcess) {
  auto memory = SharedMemory::Create("sealed", 8192);
  ASSERT_TRUE(memory.ok());
  // A worker holding the fd cannot shrink the file under the frontend's mapping.
  EXPECT_NE(::ftruncate(memory->fd(), 4096), 0);
  EXPECT_NE(::ftruncate(memory->fd(), 16384), 0);
}

TEST(SharedMemoryTest, BytesRejectsRegionsOutsideTheMapping) {
  auto memory = SharedMemory::Create("bounds", 4096);
  ASSERT_TRUE(memory.ok());
  EXPECT_TRUE(memory->Bytes({4032, 64}).ok());
  EXPECT_TRUE(memory->Bytes({4096, 0}).ok());
  EXPECT_EQ(memory->Bytes({4032, 65}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(memory->Bytes({8192, 0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(memory->Bytes({64, UINT64_MAX}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(memory->Bytes({UINT64_MAX - 10, 20}).status().code(), StatusCode::kInvalidArgument);
}

TEST(TensorArenaTest, ConcurrentAllocateAndFreeNeverShareBytes) {
  auto arena = TensorArena::Create("threads", 1 << 20);
  ASSERT_TRUE(arena.ok());
  TensorArena& a = **arena;
  constexpr int kThreads = 4;
  constexpr int kIterations = 400;
  std::vector<int> failures(kThreads, 0);
  // Counts bytes of `r` that are not `fill` (a region that some other thread
  // was also given would show the other thread's fill).
  const auto foreign_bytes = [&a](const Region& r, char fill) {
    auto bytes = a.Bytes(r);
    if (!bytes.ok()) return 1;
    int n = 0;
    for (std::byte b : *bytes) n += static_cast<char>(b) != fill;
    return n;
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t + 1);
      std::vector<Region> mine;
      for (int i = 0; i < kIterations; ++i) {
        const uint64_t size = 1 + rng() % 8192;
        auto r = a.Allocate(size, "thread " + std::to_string(t));
        if (!r.ok()) {
          ++failures[t];
          continue;
        }
        std::memset(a.Bytes(*r)->data(), 'A' + t, size);
        mine.push_back(*r);
        // Free a random earlier region after checking nobody wrote into it.
        if (mine.size() > 4 || (rng() % 3 == 0)) {
          const size_t k = rng() % mine.size();
          failures[t] += foreign_bytes(mine[k], static_cast<char>('A' + t));
          failures[t] += !a.Free(mine[k]).ok();
          mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(k));
        }
      }
      for (const Region& r : mine) {
        failures[t] += foreign_bytes(r, static_cast<char>('A' + t));
        failures[t] += !a.Free(r).ok();
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  EXPECT_EQ(a.bytes_in_use(), 0u);
  EXPECT_TRUE(a.Allocate(1 << 20, "all of it").ok());
}

}  // namespace
}  // namespace modelgrid::ipc

// RegionAllocator: first fit, coalescing, errors, and a model-checked
// property over random Allocate/Free sequences.
#include "modelgrid/ipc/region_allocator.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <vector>

namespace modelgrid::ipc {
namespace {

TEST(RegionAllocatorTest, RegionsAreAlignedAndReserveWholeLines) {
  RegionAllocator a(1024);
  auto r1 = a.Allocate(1, "a");
  auto r2 = a.Allocate(64, "b");
  auto r3 = a.Allocate(0, "c");
  auto r4 = a.Allocate(65, "d");
  ASSERT_TRUE(r1.ok() && r2.ok() && r3.ok() && r4.ok());
  EXPECT_EQ(*r1, (Region{0, 1}));
  EXPECT_EQ(*r2, (Region{64, 64}));
  EXPECT_EQ(*r3, (Region{128, 0}));
  EXPECT_EQ(*r4, (Region{192, 65}));
  EXPECT_EQ(a.bytes_in_use(), 64u + 64 + 64 + 128);
  EXPECT_EQ(a.free_bytes(), 1024u - 320);
  EXPECT_EQ(a.live_regions(), 4u);
}

TEST(RegionAllocatorTest, FirstFitReusesTheLowestHole) {
  RegionAllocator a(1024);
  auto x = a.Allocate(64, "x");
  auto y = a.Allocate(128, "y");
  auto z = a.Allocate(64, "z");
  ASSERT_TRUE(x.ok() && y.ok() && z.ok());
  ASSERT_TRUE(a.Free(*y).ok());
  EXPECT_EQ(a.Allocate(64, "p")->offset, 64u);
  EXPECT_EQ(a.Allocate(64, "q")->offset, 128u);
  EXPECT_EQ(a.Allocate(64, "r")->offset, 256u);
}

TEST(RegionAllocatorTest, FreeCoalescesWithBothNeighbours) {
  RegionAllocator a(1024);
  std::vector<Region> r;
  for (int i = 0; i < 4; ++i) r.push_back(*a.Allocate(256, "quarter"));
  ASSERT_TRUE(a.Free(r[1]).ok());
  ASSERT_TRUE(a.Free(r[3]).ok());
  EXPECT_EQ(a.largest_free_block(), 256u);
  EXPECT_EQ(a.Allocate(512, "half").status().code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(a.Free(r[2]).ok());  // joins [256, 512) and [768, 1024)
  EXPECT_EQ(a.largest_free_block(), 768u);
  auto big = a.Allocate(768, "three quarters");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->offset, 256u);
}

TEST(RegionAllocatorTest, ExhaustionNamesThePurposeAndTheFreeBytes) {
  RegionAllocator a(4096);
  ASSERT_TRUE(a.Allocate(1000, "first").ok());  // reserves 1024
  auto held = a.Allocate(1024, "second");
  ASSERT_TRUE(a.Allocate(1024, "third").ok());
  ASSERT_TRUE(a.Free(*held).ok());  // 2048 free, in two blocks of 1024
  auto fail = a.Allocate(1500, "request 17 input 'x'");
  ASSERT_FALSE(fail.ok());
  EXPECT_EQ(fail.status().code(), StatusCode::kResourceExhausted);
  const std::string m = fail.status().message();
  EXPECT_NE(m.find("request 17 input 'x'"), std::string::npos) << m;
  EXPECT_NE(m.find("1500 bytes"), std::string::npos) << m;
  EXPECT_NE(m.find("2048 bytes free of 4096"), std::string::npos) << m;
  EXPECT_NE(m.find("largest free block 1024 bytes"), std::string::npos) << m;
}

TEST(RegionAllocatorTest, HugeRequestsFailWithoutOverflow) {
  RegionAllocator a(1024);
  EXPECT_EQ(a.Allocate(UINT64_MAX, "huge").status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(a.Allocate(UINT64_MAX - 10, "huge").status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(a.Allocate(1025, "just over").status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(a.bytes_in_use(), 0u);
  EXPECT_TRUE(a.Allocate(1024, "exact").ok());
}

TEST(RegionAllocatorTest, BadFreesAreRejectedAndChangeNothing) {
  RegionAllocator a(1024);
  auto r = a.Allocate(100, "r");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(a.Free(Region{64, 100}).code(), StatusCode::kInvalidArgument);  // no region there
  EXPECT_EQ(a.Free(Region{0, 99}).code(), StatusCode::kInvalidArgument);    // wrong size
  EXPECT_EQ(a.bytes_in_use(), 128u);
  ASSERT_TRUE(a.Free(*r).ok());
  EXPECT_EQ(a.Free(*r).code(), StatusCode::kInvalidArgument);  // double free
  EXPECT_EQ(a.bytes_in_use(), 0u);
  EXPECT_EQ(a.largest_free_block(), 1024u);
}

// ---- property: random sequences against an independent model ----

struct Live {
  Region region;
  uint64_t reserved;
};

// Free gaps between live regions (sorted by offset), computed from scratch.
std::vector<Region> Gaps(std::vector<Live> live, uint64_t capacity) {
  std::sort(live.begin(), live.end(),
            [](const Live& x, const Live& y) { return x.region.offset < y.region.offset; });
  std::vector<Region> gaps;
  uint64_t cursor = 0;
  for (const Live& l : live) {
    if (l.region.offset > cursor) gaps.push_back({cursor, l.region.offset - cursor});
    cursor = l.region.offset + l.reserved;
  }
  if (cursor < capacity) gaps.push_back({cursor, capacity - cursor});
  return gaps;
}

RC_GTEST_PROP(RegionAllocatorProperty, RandomSequencesKeepEveryInvariant, ()) {
  const uint64_t capacity = kRegionAlignment * *rc::gen::inRange<uint64_t>(1, 257);
  RegionAllocator a(capacity);
  std::vector<Live> live;
  const int steps = *rc::gen::inRange(1, 200);
  for (int step = 0; step < steps; ++step) {
    const bool allocate = live.empty() || *rc::gen::inRange(0, 100) < 60;
    if (allocate) {
      // Mostly small requests, sometimes up to (and past) the capacity.
      const uint64_t bytes = *rc::gen::weightedOneOf<uint64_t>(
          {{8, rc::gen::inRange<uint64_t>(0, 4 * kRegionAlignment)},
           {2, rc::gen::inRange<uint64_t>(0, capacity + kRegionAlignment + 1)}});
      const uint64_t need = ReservedBytes(bytes);
      // First fit, computed independently: the lowest gap that holds `need`.
      std::optional<uint64_t> expected;
      for (const Region& g : Gaps(live, capacity)) {
        if (g.size >= need) {
          expected = g.offset;
          break;
        }
      }
      auto r = a.Allocate(bytes, "step " + std::to_string(step));
      if (!expected) {
        RC_ASSERT(!r.ok());
        RC_ASSERT(r.status().code() == StatusCode::kResourceExhausted);
        continue;
      }
      RC_ASSERT(r.ok());
      RC_ASSERT(r->offset == *expected);
      RC_ASSERT(r->size == bytes);
      RC_ASSERT(r->offset % kRegionAlignment == 0);
      RC_ASSERT(r->offset + need <= capacity);
      for (const Live& l : live) {
        const bool disjoint =
            r->offset + need <= l.region.offset || l.region.offset + l.reserved <= r->offset;
        RC_ASSERT(disjoint);
      }
      live.push_back({*r, need});
    } else {
      const size_t i = *rc::gen::inRange<size_t>(0, live.size());
      RC_ASSERT(a.Free(live[i].region).ok());
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
    }
    uint64_t in_use = 0;
    for (const Live& l : live) in_use += l.reserved;
    RC_ASSERT(a.bytes_in_use() == in_use);
    RC_ASSERT(a.bytes_in_use() <= capacity);
    RC_ASSERT(a.live_regions() == live.size());
    uint64_t largest = 0;
    for (const Region& g : Gaps(live, capacity)) largest = std::max(largest, g.size);
    RC_ASSERT(a.largest_free_block() == largest);
  }
  // Free the rest in a random order: everything coalesces back into one block.
  std::mt19937 rng(*rc::gen::arbitrary<uint32_t>());
  std::shuffle(live.begin(), live.end(), rng);
  for (const Live& l : live) RC_ASSERT(a.Free(l.region).ok());
  RC_ASSERT(a.bytes_in_use() == 0u);
  RC_ASSERT(a.largest_free_block() == capacity);
  auto all = a.Allocate(capacity, "everything");
  RC_ASSERT(all.ok());
  RC_ASSERT(all->offset == 0u);
}

}  // namespace
}  // namespace modelgrid::ipc

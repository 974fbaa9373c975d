#include "estimate/allocator_model.h"

#include <gtest/gtest.h>

namespace modelgrid::estimate {
namespace {

TEST(AllocatorModelTest, CpuAlignment) {
  EXPECT_EQ(CpuAlignmentSlack({1, 64, 65, 0, 128}), 63u + 0 + 63 + 0 + 0);
  EXPECT_EQ(CpuAlignmentSlack({}), 0u);
}

TEST(AllocatorModelTest, CudaRounding) {
  EXPECT_EQ(CudaRoundedSize(1), 512u);
  EXPECT_EQ(CudaRoundedSize(512), 512u);
  EXPECT_EQ(CudaRoundedSize(513), 1024u);
  EXPECT_EQ(CudaSegmentSize(512), 2 * kMiB);
  EXPECT_EQ(CudaSegmentSize(kMiB), 2 * kMiB);
  EXPECT_EQ(CudaSegmentSize(kMiB + 512), 20 * kMiB);
  EXPECT_EQ(CudaSegmentSize(10 * kMiB - 512), 20 * kMiB);
  EXPECT_EQ(CudaSegmentSize(10 * kMiB), 10 * kMiB);
  EXPECT_EQ(CudaSegmentSize(10 * kMiB + 512), 12 * kMiB);
}

TEST(AllocatorModelTest, SmallTensorsShareTwoMiBSegments) {
  // 600 KiB each: three fit in one 2 MiB segment (1800 KiB), the fourth opens another.
  CudaAllocatorModel m;
  for (int i = 0; i < 4; ++i) m.Allocate(600 * kKiB);
  EXPECT_EQ(m.reserved_bytes(), 4 * kMiB);
  EXPECT_EQ(m.requested_bytes(), 2'457'600u);
  EXPECT_EQ(m.slack_bytes(), 4'194'304u - 2'457'600u);
}

TEST(AllocatorModelTest, MidSizeTensorsSplitTwentyMiBSegments) {
  CudaAllocatorModel m;
  for (int i = 0; i < 3; ++i) m.Allocate(5 * kMiB);
  EXPECT_EQ(m.reserved_bytes(), 20 * kMiB);
  m.Allocate(5 * kMiB);  // the last 5 MiB: rest 0, no split
  EXPECT_EQ(m.reserved_bytes(), 20 * kMiB);
  m.Allocate(5 * kMiB);
  EXPECT_EQ(m.reserved_bytes(), 40 * kMiB);
}

TEST(AllocatorModelTest, LargeTensorsRoundToTwoMiB) {
  CudaAllocatorModel m;
  m.Allocate(11 * kMiB);  // 12 MiB segment; the 1 MiB rest is not > 1 MiB: not split
  EXPECT_EQ(m.reserved_bytes(), 12 * kMiB);
  m.Allocate(kMiB + 512);  // cannot use it: a new 20 MiB segment
  EXPECT_EQ(m.reserved_bytes(), 32 * kMiB);
  EXPECT_EQ(CudaWeightSlack({11 * kMiB, kMiB + 512}), 32 * kMiB - 12 * kMiB - 512);
}

TEST(AllocatorModelTest, ActivationBound) {
  EXPECT_EQ(CudaActivationSlackBound(0), 0u);
  EXPECT_EQ(CudaActivationSlackBound(512 * kKiB), 2 * kMiB + (2 * kMiB - 512 * kKiB));
  EXPECT_EQ(CudaActivationSlackBound(3 * kMiB), 2 * kMiB + 20 * kMiB + kMiB);
}

}  // namespace
}  // namespace modelgrid::estimate

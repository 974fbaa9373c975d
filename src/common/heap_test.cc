// TuneHeapForTensors: tensor-sized blocks come from the heap, not mmap.
#include "modelgrid/heap.h"

#include <gtest/gtest.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <cstdlib>
#include <cstring>

namespace modelgrid {
namespace {

#if defined(__GLIBC__)
TEST(HeapTest, TensorSizedBlocksComeFromTheHeap) {
  TuneHeapForTensors();
  TuneHeapForTensors();  // a second call changes nothing
  // glibc's default would mmap a 4 MiB block (default threshold 128 KiB,
  // dynamic up to 32 MiB only after such a block is freed).
  const size_t mapped_before = mallinfo2().hblkhd;
  void* volatile block = std::malloc(4 << 20);  // volatile: the allocation is kept
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, 4 << 20);
  EXPECT_EQ(mallinfo2().hblkhd, mapped_before) << "a 4 MiB block was mmapped";
  std::free(block);
  // 40 MiB is past the 32 MiB threshold: mmapped as glibc always does.
  void* volatile large = std::malloc(40 << 20);
  ASSERT_NE(large, nullptr);
  EXPECT_GE(mallinfo2().hblkhd, mapped_before + (40u << 20));
  std::free(large);
}
#endif

}  // namespace
}  // namespace modelgrid

// The c10 side of the counting CPU allocator (public face:
// modelgrid/torch/counting_allocator.h). Only src/torch includes this.
#pragma once

#include <c10/core/Allocator.h>
#include <torch/version.h>

#include <cstdint>

#include "modelgrid/torch/counting_allocator.h"

namespace modelgrid {

// A c10::Allocator that hands out 64-byte aligned blocks and accounts for
// them in a CountingAllocator. Each block carries a 64-byte header in front
// of the data: a tag (a magic number mixed with the data address), the
// requested size and the owning CountingAllocator. The DataPtr's context is
// the data pointer itself, so c10's raw_allocate/raw_deallocate interface
// (used by oneDNN/ideep scratch buffers) works too; the deleter finds the
// size and owner in the header.
//
// A pointer that reaches the raw deleter without our tag (allocated through
// the raw interface of the allocator that was installed before ours) goes to
// that allocator's raw deleter.
//
// Thread-safe; instances must outlive every block they handed out.
class C10CountingAllocator final : public c10::Allocator {
 public:
  explicit C10CountingAllocator(CountingAllocator* counters) : counters_(counters) {}

  // Throws c10::OutOfMemoryError when the counters refuse the block (limit)
  // or the system has no memory left. LibTorch 2.3 made c10::Allocator's
  // allocate non-const and added the pure virtual copy_data
  // (c10/core/Allocator.h); both spellings are served.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t nbytes) override { return Allocate(nbytes); }
  void copy_data(void* dest, const void* src, size_t count) const override {
    default_copy_data(dest, src, count);
  }
#else
  c10::DataPtr allocate(size_t nbytes) const override { return Allocate(nbytes); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &Delete; }

  // Frees a block of ours (any C10CountingAllocator), or hands a foreign
  // pointer to the fallback deleter.
  static void Delete(void* data);

  // The deleter for foreign pointers (the previous allocator's raw deleter).
  static void SetFallbackDeleter(c10::DeleterFnPtr deleter);

  // Development aid: called after every accepted allocation (allocated=true)
  // and before every free, with the requested bytes. Null disables it.
  using TraceHook = void (*)(bool allocated, uint64_t bytes, const void* data);
  static void SetTraceHook(TraceHook hook);

 private:
  c10::DataPtr Allocate(size_t nbytes) const;

  CountingAllocator* counters_;
};

}  // namespace modelgrid

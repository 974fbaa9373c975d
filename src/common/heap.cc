// glibc's malloc tuned for tensor-sized blocks (heap.h).
#include "modelgrid/heap.h"

#include <cstdlib>  // defines __GLIBC__ on glibc
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace modelgrid {

void TuneHeapForTensors() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
    ::mallopt(M_TRIM_THRESHOLD, 128 << 20);
  });
#endif
}

}  // namespace modelgrid

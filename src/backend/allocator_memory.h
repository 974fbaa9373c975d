// Private to src/backend/: the process-level memory facts both backends
// report (the counting allocator's figures and limit on the CPU, resident
// memory, heap trimming), so that TorchScriptBackend and HuggingFaceBackend
// say the same thing the same way.
#pragma once

#include <cstdint>
#include <optional>

#include "modelgrid/backend/model_backend.h"

namespace modelgrid::backend_internal {

// The process's resident memory (VmRSS of /proc/self/status), bytes; 0 when
// it cannot be read.
uint64_t ResidentBytes();

// Returns the C heap's free pages to the system. glibc keeps freed blocks
// below its (dynamic, up to 32 MiB) mmap threshold in its arenas; the
// weights of a swapped-out model must really leave the process.
void TrimHeap();

// The process-wide counting allocator's figures (all zero before it is
// installed) and its limit (installing it first); see
// ModelBackend::MemoryStats / SetMemoryLimit / ResetPeakMemory.
BackendMemoryStats CpuMemoryStats();
Status SetCpuMemoryLimit(std::optional<uint64_t> limit_bytes);
void ResetCpuPeak();

}  // namespace modelgrid::backend_internal

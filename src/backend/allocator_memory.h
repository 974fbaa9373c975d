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

// Tunes glibc's malloc for tensor work, once per process (later calls do
// nothing): blocks under 32 MiB come from the heap (M_MMAP_THRESHOLD, glibc's
// largest) and up to 128 MiB of freed heap stays in the process
// (M_TRIM_THRESHOLD). By default glibc returns the heap's top to the kernel
// whenever more than twice its dynamic mmap threshold is free, so a model
// whose activations are a few hundred KiB gives them back after every call
// and takes a page fault on every page of them in the next one; on the
// 2-core dev VM (perf) small bert-base at batch 8 spent about a third of its
// samples in those faults and first writes (docs/benchmarks.md, "Hugging
// Face backend"). What stays is at most the
// activations of the model's largest call, which its reservation already
// counts; TrimHeap still returns everything (swap-out). Called by
// CreateBackend, so a worker, an in-process grid and the benches run alike.
void TuneHeapForTensors();

// The process-wide counting allocator's figures (all zero before it is
// installed) and its limit (installing it first); see
// ModelBackend::MemoryStats / SetMemoryLimit / ResetPeakMemory.
BackendMemoryStats CpuMemoryStats();
Status SetCpuMemoryLimit(std::optional<uint64_t> limit_bytes);
void ResetCpuPeak();

}  // namespace modelgrid::backend_internal

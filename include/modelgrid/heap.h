// The process's C heap, tuned for tensor-sized blocks.
#pragma once

namespace modelgrid {

// Tunes glibc's malloc for tensor work, once per process (later calls do
// nothing): blocks under 32 MiB come from the heap (M_MMAP_THRESHOLD, glibc's
// largest) and up to 128 MiB of freed heap stays in the process
// (M_TRIM_THRESHOLD). By default glibc returns the heap's top to the kernel
// whenever more than twice its dynamic mmap threshold is free, so a process
// that handles blocks of a few hundred KiB per call (a model's activations,
// a request body, a gRPC message) gives them back after every call and takes
// a page fault on every page of them in the next one. Measured on the
// 2-core dev VM: small bert-base at batch 8 spent about a third of its perf
// samples in those faults (docs/benchmarks.md, "Hugging Face backend");
// gRPC ModelInfer of a 602,112-byte input went from 481 to 435 µs p50
// (transport_bench, median of 3 alternating runs, 2026-12-05). What stays
// is at most the largest call's blocks; a process that must give memory
// back (a worker swapping a model out) calls malloc_trim. Called by
// CreateBackend (workers, in-process grids) and by `modelgrid serve` for
// its own process. Does nothing outside glibc.
void TuneHeapForTensors();

}  // namespace modelgrid

// The probe: loads a TorchScript model and runs one forward pass under the
// counting allocator, reporting weight and peak bytes. modelgrid-probe
// (probe_main.cc) is a thin command line over it, run one process per
// measurement so that measurements do not pollute each other. Declared
// without LibTorch headers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "modelgrid/datatype.h"
#include "modelgrid/status.h"

namespace modelgrid {

struct ProbeOptions {
  std::filesystem::path model_pt;
  std::vector<std::vector<int64_t>> shapes;  // one per input, batch included
  std::vector<DataType> types;               // same length as shapes
  std::string method = "forward";
  int threads = 0;     // intra-op threads; 0 leaves LibTorch's default
  int runs = 1;        // forward passes; the peak is over all of them
  std::string device = "cpu";
  // Development aid: when set, every allocation and free (loading and the
  // forward passes) is written there, one line each, with the aten op that
  // made it and the op's input shapes; "=== forward" marks the start of the
  // forward passes.
  std::filesystem::path trace_file;
};

struct ProbeReport {
  uint64_t weights_bytes = 0;       // aligned bytes live after loading the model
  uint64_t load_peak_bytes = 0;     // aligned peak while loading
  uint64_t peak_bytes = 0;          // aligned peak over load and forward
  uint64_t peak_forward_bytes = 0;  // aligned peak during forward, weights and inputs included
  uint64_t peak_forward_requested_bytes = 0;  // the same in requested (unaligned) bytes
  uint64_t input_bytes = 0;         // aligned bytes of the inputs
  double forward_ms = 0;            // wall time of the forward passes
  // On cuda:N the byte figures above are the CUDA caching allocator's
  // allocated bytes (c10 stats), and these are added:
  std::string device = "cpu";
  uint64_t peak_reserved_bytes = 0;   // the allocator's reserved peak (what the GPU sees)
  // NVML's bytes for this process on the device after the forward (context
  // included); 0 when NVML could not tell (no NVML, pid not listed, n/a).
  uint64_t nvml_process_bytes = 0;
  int threads = 0;                  // intra-op threads used
  std::string torch_version;

  // {"weights_bytes": ..., "peak_bytes": ..., "peak_forward_bytes": ..., "torch_version": ..., ...}
  std::string ToJson() const;
};

// Parses "8,3,224,224" or "8,3,224,224:FP32" (KServe datatype names) into a
// shape and a type (FP32 by default). Errors: kInvalidArgument naming the text.
Status ParseShapeSpec(const std::string& text, std::vector<int64_t>* shape, DataType* type);

// Installs the counting allocator (it must be the first LibTorch work of the
// process), loads the model and runs it: on the CPU, or on options.device
// "cuda:N" when the build has CUDA (cuda_memory.h; the figures then come
// from the CUDA caching allocator and NVML). Errors: kUnsupported for a
// CUDA device in a build without CUDA or any other device; kNotFound / kCorruption for
// the file, kInvalidArgument for bad options, kResourceExhausted or kInternal
// when the forward pass throws (the message names the model).
Result<ProbeReport> RunProbe(const ProbeOptions& options);

}  // namespace modelgrid

// Devices: what models are placed on. Discovered (the CPU; GPUs through NVML
// in a later step) or simulated for planning (`sim:NAME=CAPACITY`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid {

enum class DeviceKind {
  kCpu,        // host memory; models run on the CPU
  kCuda,       // an NVIDIA GPU
  kSimulated,  // a GPU-like device that exists only for planning and tests
};

// One device as the planner and the status endpoints see it.
struct Device {
  std::string id;            // "cpu", "cuda:0", "sim:a100#1"
  DeviceKind kind = DeviceKind::kCpu;
  std::string name;          // human name: "cpu", "a100", "NVIDIA H100 80GB HBM3"
  std::string uuid;          // GPU UUID from NVML; empty otherwise
  uint64_t total_bytes = 0;  // capacity
  uint64_t used_bytes = 0;   // already used by processes that are not ModelGrid's
  // Per-worker-process overhead on this device (CUDA context, library
  // handles; on the CPU the private memory of a worker process). Charged once
  // per worker process placed here (design.md, "Memory model").
  uint64_t context_bytes = 0;

  // True for devices that behave like GPUs for placement (kCuda, kSimulated).
  bool is_accelerator() const { return kind != DeviceKind::kCpu; }
};

// Default per-process context charge, in bytes, by device kind:
// kCpu 128 MiB (private memory of a LibTorch worker process), kCuda and
// kSimulated 512 MiB (a CUDA context costs 274–636 MiB per process, see
// ../shared/reference/gpu_runtime.md, "CUDA context per process").
uint64_t DefaultContextBytes(DeviceKind kind);

// Parses one device spec:
//   cpu                          the host, capacity from /proc/meminfo
//   cpu=CAP                      the host with an explicit capacity
//   sim:NAME=CAP[,context=C][,used=U]   a simulated GPU; CAP/C/U are byte
//                                quantities (ParseBytes), e.g. sim:a100=80GiB
//   cuda:N                       a GPU (needs NVML; not available yet)
// Simulated devices with the same NAME are numbered: the k-th becomes
// "sim:NAME#k". `ordinal` is that k.
// Errors: kInvalidArgument naming the spec and what was expected;
// kUnavailable for cuda:N when no GPU can be discovered.
Result<Device> ParseDeviceSpec(const std::string& spec, int ordinal = 0);

// Parses a list of specs, numbering repeated simulated names 0, 1, ...
Result<std::vector<Device>> ParseDeviceSpecs(const std::vector<std::string>& specs);

// The devices of this machine: the CPU (total = MemTotal, used = MemTotal −
// MemAvailable from /proc/meminfo). Errors: kInternal if /proc/meminfo
// cannot be read.
Result<std::vector<Device>> DiscoverDevices();

}  // namespace modelgrid

// Devices: what models are placed on. Discovered (the CPU from /proc/meminfo,
// GPUs through NVML: modelgrid/device/nvml.h) or simulated for planning
// (`sim:NAME=CAPACITY`).
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
  // per worker process placed here (docs/design.md, "Memory model").
  uint64_t context_bytes = 0;

  // True for devices that behave like GPUs for placement (kCuda, kSimulated).
  bool is_accelerator() const { return kind != DeviceKind::kCpu; }
};

// "cpu", "cuda" or "simulated".
const char* DeviceKindName(DeviceKind kind);

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
//   cuda:N                       the N-th discovered GPU (DiscoverDevicesDetailed:
//                                NVML, CUDA_VISIBLE_DEVICES applied)
// Simulated devices with the same NAME are numbered: the k-th becomes
// "sim:NAME#k". `ordinal` is that k.
// Errors: kInvalidArgument naming the spec and what was expected;
// kNotFound for cuda:N when there is no such GPU, naming N and how many GPUs
// were found, or why NVML could not be asked.
Result<Device> ParseDeviceSpec(const std::string& spec, int ordinal = 0);

// Parses a list of specs, numbering repeated simulated names 0, 1, ...
Result<std::vector<Device>> ParseDeviceSpecs(const std::vector<std::string>& specs);

// The host as a device: id "cpu", total = MemTotal, used = MemTotal −
// MemAvailable (/proc/meminfo), context = DefaultContextBytes(kCpu).
// Errors: kInternal if /proc/meminfo cannot be read.
Result<Device> DiscoverCpu();

// What discovery found, with the reasons behind what it left out.
struct DeviceDiscovery {
  // The CPU, then the visible GPUs as cuda:0..N-1 in CUDA's numbering:
  // Device{id "cuda:k", kind kCuda, name and uuid from NVML, total_bytes,
  // used_bytes = bytes unavailable at discovery (NVML total − free: other
  // processes' memory plus reserved), context_bytes = DefaultContextBytes(kCuda)}.
  std::vector<Device> devices;
  // OK when NVML was loaded and counted the GPUs (zero is fine); else why no
  // GPU was looked for (library missing, nvmlInit_v2 failed, ...).
  Status gpu_status;
  // One line per GPU left out (lost, unreadable) and per CUDA_VISIBLE_DEVICES
  // entry that ended the list.
  std::vector<std::string> warnings;
};

// Discovers the CPU and the GPUs without creating a CUDA context: loads NVML
// (DefaultNvmlLibrary(): libnvidia-ml.so.1 or $MODELGRID_NVML_LIBRARY),
// reads every GPU, applies CUDA_VISIBLE_DEVICES (SelectVisibleGpus in
// modelgrid/device/nvml.h) and numbers the visible GPUs that could be read
// cuda:0, cuda:1, ... in that order. A GPU NVML cannot read (e.g. "GPU is
// lost") is left out with a warning and takes no number. Logs nothing.
// Errors: only DiscoverCpu's; NVML's problems go to gpu_status / warnings.
Result<DeviceDiscovery> DiscoverDevicesDetailed();

// DiscoverDevicesDetailed()'s devices. Logs through spdlog's default logger
// one line saying why when NVML is unavailable (info when the default
// library is simply not installed, warn otherwise) and one warn line per
// discovery warning. Errors: as DiscoverCpu.
Result<std::vector<Device>> DiscoverDevices();

}  // namespace modelgrid

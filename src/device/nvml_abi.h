// The slice of NVML's C ABI that ModelGrid calls, written from the layouts in
// ../shared/reference/gpu_runtime.md ("NVML through dlopen"); no NVIDIA
// header is used. Shared by the dlopen wrapper (nvml.cc) and the fake NVML
// library the tests build (fake_nvml/). The static_asserts pin every size and
// offset to the reference, so a layout slip fails the build, not a GPU run.
#pragma once

#include <cstddef>
#include <cstdint>

namespace modelgrid::nvml_abi {

// nvmlReturn_t: an int-sized C enum. The codes ModelGrid tells apart.
using Return = int;
inline constexpr Return kSuccess = 0;
inline constexpr Return kErrorUninitialized = 1;
inline constexpr Return kErrorInvalidArgument = 2;
inline constexpr Return kErrorNotSupported = 3;
inline constexpr Return kErrorNotFound = 6;
inline constexpr Return kErrorInsufficientSize = 7;
inline constexpr Return kErrorDriverNotLoaded = 9;
inline constexpr Return kErrorLibraryNotFound = 12;
inline constexpr Return kErrorFunctionNotFound = 13;
inline constexpr Return kErrorGpuIsLost = 15;
inline constexpr Return kErrorArgumentVersionMismatch = 25;
inline constexpr Return kErrorUnknown = 999;

// Sentinel of a per-process byte count NVML could not read ("not available").
inline constexpr uint64_t kValueNotAvailable = 0xFFFFFFFFFFFFFFFFull;

// Buffer sizes for nvmlDeviceGetUUID / nvmlDeviceGetName /
// nvmlSystemGetDriverVersion (enough for every value NVML returns).
inline constexpr unsigned kStringBufferSize = 96;

// nvmlDevice_t: an opaque handle.
using DeviceHandle = struct DeviceOpaque*;

// nvmlMemory_t (nvmlDeviceGetMemoryInfo). `used` includes reserved memory.
struct Memory {
  uint64_t total;
  uint64_t free;
  uint64_t used;
};
static_assert(sizeof(Memory) == 24);

// nvmlMemory_v2_t (nvmlDeviceGetMemoryInfo_v2). `used` excludes `reserved`.
struct MemoryV2 {
  uint32_t version;  // must be kMemoryV2Version
  uint64_t total;
  uint64_t reserved;
  uint64_t free;
  uint64_t used;
};
static_assert(sizeof(MemoryV2) == 40);
static_assert(offsetof(MemoryV2, total) == 8 && offsetof(MemoryV2, reserved) == 16 &&
              offsetof(MemoryV2, free) == 24 && offsetof(MemoryV2, used) == 32);
// NVML's versioned-struct tag: the struct size | (version << 24).
inline constexpr uint32_t kMemoryV2Version = static_cast<uint32_t>(sizeof(MemoryV2)) | (2u << 24);

// nvmlProcessInfo_t as filled by the _v2 and _v3 process queries.
struct ProcessInfo {
  uint32_t pid;
  uint64_t used_gpu_memory;  // bytes, or kValueNotAvailable
  uint32_t gpu_instance_id;
  uint32_t compute_instance_id;
};
static_assert(sizeof(ProcessInfo) == 24);
static_assert(offsetof(ProcessInfo, used_gpu_memory) == 8 &&
              offsetof(ProcessInfo, gpu_instance_id) == 16 &&
              offsetof(ProcessInfo, compute_instance_id) == 20);

// nvmlUtilization_t: percentages over NVML's last sample period.
struct Utilization {
  uint32_t gpu;
  uint32_t memory;
};
static_assert(sizeof(Utilization) == 8);

// Function pointer types, one per symbol resolved with dlsym.
using InitFn = Return (*)();
using ShutdownFn = Return (*)();
using ErrorStringFn = const char* (*)(Return);
using DriverVersionFn = Return (*)(char*, unsigned);
using DeviceCountFn = Return (*)(unsigned*);
using HandleByIndexFn = Return (*)(unsigned, DeviceHandle*);
using StringFn = Return (*)(DeviceHandle, char*, unsigned);  // GetUUID, GetName
using MemoryFn = Return (*)(DeviceHandle, Memory*);
using MemoryV2Fn = Return (*)(DeviceHandle, MemoryV2*);
using ProcessesFn = Return (*)(DeviceHandle, unsigned*, ProcessInfo*);
using UtilizationFn = Return (*)(DeviceHandle, Utilization*);

}  // namespace modelgrid::nvml_abi

// NVML (NVIDIA's management library) reached through dlopen: what GPUs this
// machine has and how much memory each process holds on them, without
// creating a CUDA context and without linking NVIDIA's libraries
// (../shared/reference/gpu_runtime.md, "NVML through dlopen").
//
// The library is `libnvidia-ml.so.1` unless the environment variable
// MODELGRID_NVML_LIBRARY names another file: that is how the tests load the
// fake NVML (src/device/fake_nvml/, README.md). All memory figures are bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/device.h"
#include "modelgrid/status.h"

namespace modelgrid {

// The library DiscoverDevices() and Nvml::Open() load by default:
// $MODELGRID_NVML_LIBRARY when set and not empty, else "libnvidia-ml.so.1".
std::string DefaultNvmlLibrary();

// NVML's utilization sample: percentages (0–100) of the last sample period.
struct NvmlUtilization {
  uint32_t gpu_percent = 0;     // time a kernel was running
  uint32_t memory_percent = 0;  // time device memory was read or written
};

// One compute process on a GPU. NVML reports host PIDs (inside a container
// they differ from the container's own PIDs).
struct NvmlProcess {
  uint32_t pid = 0;
  // Device memory the process holds, in bytes; absent when NVML answers
  // "not available" (0xFFFFFFFFFFFFFFFF, e.g. without the permission to see
  // other users' processes). When NVML lists a PID more than once (MIG
  // instances), the known figures are summed.
  std::optional<uint64_t> used_bytes;
};

// What NVML says about one GPU.
struct NvmlGpu {
  uint32_t nvml_index = 0;  // NVML's index: PCI bus order
  std::string name;         // e.g. "NVIDIA H100 80GB HBM3"
  std::string uuid;         // "GPU-xxxxxxxx-xxxx-..."
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  // Bytes held by processes. From nvmlDeviceGetMemoryInfo_v2 it excludes
  // reserved_bytes; from the older nvmlDeviceGetMemoryInfo it includes them.
  uint64_t used_bytes = 0;
  // Driver/firmware-reserved bytes; known only through
  // nvmlDeviceGetMemoryInfo_v2 (absent when the library lacks it).
  std::optional<uint64_t> reserved_bytes;
  // Absent when the GPU does not support the query (NVML_ERROR_NOT_SUPPORTED).
  std::optional<NvmlUtilization> utilization;

  // Bytes nobody else can have: total − free (= used + reserved), whichever
  // memory call answered. This is what placement treats as used by others.
  uint64_t unavailable_bytes() const {
    return total_bytes > free_bytes ? total_bytes - free_bytes : 0;
  }
};

// A loaded and initialised NVML. Open() calls nvmlInit_v2; the destructor
// calls nvmlShutdown and unloads the library. Not copyable. The object holds
// only the resolved entry points, so its calls may come from several threads
// (NVML's own calls are thread-safe).
//
// Every NVML error becomes a Status whose message names the call and the GPU
// and carries nvmlErrorString's text and the code, e.g.
//   "nvmlDeviceGetMemoryInfo_v2(GPU 1): GPU is lost (NVML error 15)".
// Codes: kUnavailable (library missing, driver not loaded, GPU lost, no
// permission), kNotFound (no such GPU), kUnsupported (the call does not
// exist in this library or on this GPU), kInternal (anything else).
class Nvml {
 public:
  // Loads `library` (a file name for the dynamic loader, or a path) and
  // initialises NVML. Needs nvmlInit_v2, nvmlShutdown, nvmlErrorString,
  // nvmlDeviceGetCount_v2, nvmlDeviceGetHandleByIndex_v2, nvmlDeviceGetName,
  // nvmlDeviceGetUUID and one of nvmlDeviceGetMemoryInfo(_v2); the rest is
  // optional and its calls answer kUnsupported when missing.
  // Errors: kUnavailable naming the library and dlerror()'s text, the
  // missing function, or nvmlInit_v2's error.
  static Result<std::unique_ptr<Nvml>> Open(const std::string& library = DefaultNvmlLibrary());

  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  // The library this object loaded, as given to Open().
  const std::string& library() const { return library_; }

  // The driver version string, e.g. "580.65.06".
  Result<std::string> DriverVersion() const;

  // How many GPUs NVML sees (all of them: CUDA_VISIBLE_DEVICES does not
  // apply to NVML).
  Result<uint32_t> DeviceCount() const;

  // The UUID of the GPU at NVML index `index`, e.g. "GPU-5d3c...".
  Result<std::string> Uuid(uint32_t index) const;

  // Identity, memory and utilization of the GPU at NVML index `index`.
  // Memory comes from nvmlDeviceGetMemoryInfo_v2 when the library has it and
  // the GPU answers it, else from nvmlDeviceGetMemoryInfo.
  Result<NvmlGpu> Gpu(uint32_t index) const;

  // The compute processes on GPU `index`, sorted by PID, through
  // nvmlDeviceGetComputeRunningProcesses_v3 (falling back to _v2). Follows
  // NVML's size protocol: ask with an empty buffer, then retry with a larger
  // one while NVML answers NVML_ERROR_INSUFFICIENT_SIZE (processes may start
  // between two calls), at most kProcessQueryAttempts times.
  Result<std::vector<NvmlProcess>> Processes(uint32_t index) const;

  // Attempts of Processes() with a buffer before it gives up.
  static constexpr int kProcessQueryAttempts = 8;

 private:
  struct Api;
  Nvml(std::string library, void* handle, std::unique_ptr<Api> api);
  // "<call>(GPU i): <nvmlErrorString> (NVML error <code>)" with its StatusCode.
  Status Error(const char* call, int code, int gpu = -1) const;
  Result<void*> Handle(uint32_t index) const;

  std::string library_;
  void* dl_ = nullptr;
  std::unique_ptr<Api> api_;
};

// How CUDA_VISIBLE_DEVICES selects GPUs, resolved against what NVML sees.
struct VisibleGpus {
  // NVML indices in CUDA order: entry k becomes cuda:k.
  std::vector<uint32_t> nvml_indices;
  // Why entries were dropped (empty when the whole variable was used).
  std::vector<std::string> warnings;
};

// Applies CUDA_VISIBLE_DEVICES (`value`; std::nullopt = unset) to the GPUs
// NVML reports. `uuids[i]` is the UUID of NVML GPU i ("" when it could not be
// read). Rules, those of the CUDA runtime:
//   - unset: every GPU, in NVML (PCI bus) order;
//   - set (even to ""): only the listed GPUs, in the listed order;
//   - an entry is a decimal index or a UUID or unique UUID prefix starting
//     with "GPU-"; spaces around entries are ignored;
//   - the first entry that names no GPU (index out of range, unknown or
//     ambiguous UUID, a GPU listed twice, anything else such as "MIG-...")
//     ends the list: the GPUs before it stay visible, a warning names it.
// A decimal index means NVML's index. CUDA numbers GPUs fastest-first unless
// CUDA_DEVICE_ORDER=PCI_BUS_ID, so indices agree with CUDA only under that
// setting (or when all GPUs are alike); UUIDs are always unambiguous.
VisibleGpus SelectVisibleGpus(const std::optional<std::string>& value,
                              const std::vector<std::string>& uuids);

// Audit: the compute processes NVML sees on `device` (a discovered kCuda
// device, found again by its UUID) with their used bytes; compared with what
// each worker's allocator reports (docs/design.md, "Memory model").
// Errors: kInvalidArgument when `device` is not a CUDA device with a UUID;
// kUnavailable when NVML cannot be loaded; kNotFound when no GPU has that
// UUID any more; NVML's errors as Nvml::Processes reports them.
Result<std::vector<NvmlProcess>> AuditDeviceProcesses(
    const Device& device, const std::string& library = DefaultNvmlLibrary());

// The per-process overhead of one worker on `device` (a discovered kCuda
// device): NVML's used bytes for `pid` minus `allocator_reserved_bytes`, what
// the worker's caching allocator reserves there (the rest is the CUDA
// context, cuBLAS/cuDNN handles and workspaces). How ModelGrid measures the
// context instead of guessing it (reference/gpu_runtime.md, "CUDA context per
// process"); 0 when the allocator reserves more than NVML reports.
// Errors: AuditDeviceProcesses's; kNotFound when NVML does not list `pid`
// on the device; kUnavailable when NVML reports its bytes as not available.
Result<uint64_t> MeasureWorkerContext(const Device& device, uint32_t pid,
                                      uint64_t allocator_reserved_bytes,
                                      const std::string& library = DefaultNvmlLibrary());

}  // namespace modelgrid

// A fake libnvidia-ml for tests: the NVML C functions ModelGrid calls, with
// NVML's ABI (../nvml_abi.h, written from ../shared/reference/gpu_runtime.md),
// answering from a JSON file named by $MODELGRID_FAKE_NVML_FILE that is read
// again on every nvmlInit_v2. The file format is in ../README.md ("The fake
// NVML"). Built twice: modelgrid_fake_nvml exports everything;
// modelgrid_fake_nvml_old (FAKE_NVML_OLD) lacks nvmlDeviceGetMemoryInfo_v2 and
// nvmlDeviceGetComputeRunningProcesses_v3, like an old driver's library.

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "device/nvml_abi.h"

namespace abi = modelgrid::nvml_abi;

namespace {

struct FakeProcess {
  uint32_t pid = 0;
  uint64_t used = abi::kValueNotAvailable;
};

struct FakeDevice {
  std::string name, uuid;
  uint64_t total = 0, free = 0, used = 0, reserved = 0;
  int utilization_error = abi::kSuccess;  // "utilization": "n/a" -> NOT_SUPPORTED
  uint32_t utilization_gpu = 0, utilization_memory = 0;
  std::vector<FakeProcess> processes;
  bool lost_handle = false;  // "lost": "handle"
  bool lost_memory = false;  // "lost": "memory"
  int memory_v2_error = abi::kSuccess;
};

struct State {
  std::mutex mu;
  int init_depth = 0;  // nvmlInit_v2 calls not yet matched by nvmlShutdown
  std::string driver_version = "999.99.99";
  int count_error = abi::kSuccess;
  int insufficient_size_calls =
      0;  // process queries with a buffer still to answer INSUFFICIENT_SIZE
  std::vector<FakeDevice> devices;
  std::string load_error;                 // why the file could not be used (nvmlErrorString(999))
  std::map<std::string, unsigned> calls;  // function name -> calls since the library was loaded
};

State& S() {
  static State state;
  return state;
}

uint64_t Bytes(const nlohmann::json& j, const char* key) {
  if (!j.contains(key)) return 0;
  const auto& v = j.at(key);
  if (v.is_string() && v.get<std::string>() == "n/a") return abi::kValueNotAvailable;
  return v.get<uint64_t>();
}

FakeDevice ParseDevice(const nlohmann::json& j) {
  FakeDevice d;
  d.name = j.value("name", "Fake GPU");
  d.uuid = j.value("uuid", "");
  d.total = Bytes(j, "total");
  d.free = Bytes(j, "free");
  d.used = Bytes(j, "used");
  d.reserved = Bytes(j, "reserved");
  if (j.contains("utilization")) {
    const auto& u = j.at("utilization");
    if (u.is_string()) {
      d.utilization_error = abi::kErrorNotSupported;
    } else {
      d.utilization_gpu = u.value("gpu", 0u);
      d.utilization_memory = u.value("memory", 0u);
    }
  }
  for (const auto& p : j.value("processes", nlohmann::json::array())) {
    d.processes.push_back({p.at("pid").get<uint32_t>(), Bytes(p, "used_bytes")});
  }
  const std::string lost = j.value("lost", "");
  d.lost_handle = lost == "handle";
  d.lost_memory = lost == "memory";
  d.memory_v2_error = j.value("memory_v2_error", 0);
  return d;
}

// Reads $MODELGRID_FAKE_NVML_FILE into the state; returns NVML's code for init.
int Load(State& s) {
  s.devices.clear();
  s.count_error = abi::kSuccess;
  s.insufficient_size_calls = 0;
  s.load_error.clear();
  const char* path = std::getenv("MODELGRID_FAKE_NVML_FILE");
  if (!path || !*path) {
    s.load_error = "fake NVML: MODELGRID_FAKE_NVML_FILE is not set";
    return abi::kErrorUnknown;
  }
  std::ifstream in(path);
  if (!in) {
    s.load_error = std::string("fake NVML: cannot read ") + path;
    return abi::kErrorUnknown;
  }
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    if (int code = j.value("init_error", 0); code != 0) return code;
    s.driver_version = j.value("driver_version", "999.99.99");
    s.count_error = j.value("count_error", 0);
    s.insufficient_size_calls = j.value("insufficient_size_calls", 0);
    for (const auto& d : j.value("devices", nlohmann::json::array()))
      s.devices.push_back(ParseDevice(d));
  } catch (const std::exception& e) {
    s.devices.clear();
    s.load_error = std::string("fake NVML: ") + path + ": " + e.what();
    return abi::kErrorUnknown;
  }
  return abi::kSuccess;
}

// Copies `value` into an NVML string buffer.
int CopyString(const std::string& value, char* out, unsigned length) {
  if (!out) return abi::kErrorInvalidArgument;
  if (value.size() + 1 > length) return abi::kErrorInsufficientSize;
  std::memcpy(out, value.c_str(), value.size() + 1);
  return abi::kSuccess;
}

// The device behind a handle, or nullptr when the handle is not one of ours.
FakeDevice* Lookup(State& s, abi::DeviceHandle handle) {
  auto* d = reinterpret_cast<FakeDevice*>(handle);
  for (auto& device : s.devices) {
    if (&device == d) return d;
  }
  return nullptr;
}

// Common entry: counts the call, checks initialisation and the handle.
#define FAKE_ENTER(name)                  \
  State& s = S();                         \
  std::lock_guard<std::mutex> lock(s.mu); \
  ++s.calls[name];                        \
  if (s.init_depth == 0) return abi::kErrorUninitialized

#define FAKE_DEVICE(handle)          \
  FakeDevice* d = Lookup(s, handle); \
  if (!d) return abi::kErrorInvalidArgument

int Processes(abi::DeviceHandle handle, unsigned* count, abi::ProcessInfo* infos,
              const char* name) {
  FAKE_ENTER(name);
  FAKE_DEVICE(handle);
  if (!count) return abi::kErrorInvalidArgument;
  const unsigned n = static_cast<unsigned>(d->processes.size());
  if (infos && *count > 0 && s.insufficient_size_calls > 0) {
    // As if a process started since the caller sized its buffer.
    --s.insufficient_size_calls;
    *count = std::max(*count, n) + 1;
    return abi::kErrorInsufficientSize;
  }
  if (*count < n || (n > 0 && !infos)) {
    *count = n;
    return abi::kErrorInsufficientSize;
  }
  for (unsigned i = 0; i < n; ++i) {
    infos[i] =
        abi::ProcessInfo{d->processes[i].pid, d->processes[i].used, 0xFFFFFFFFu, 0xFFFFFFFFu};
  }
  *count = n;
  return abi::kSuccess;
}

}  // namespace

#define FAKE_EXPORT extern "C" __attribute__((visibility("default")))

FAKE_EXPORT int nvmlInit_v2() {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  ++s.calls["nvmlInit_v2"];
  const int code = Load(s);
  if (code == abi::kSuccess) ++s.init_depth;
  return code;
}

FAKE_EXPORT int nvmlShutdown() {
  FAKE_ENTER("nvmlShutdown");
  --s.init_depth;
  return abi::kSuccess;
}

FAKE_EXPORT const char* nvmlErrorString(int code) {
  switch (code) {
    case abi::kSuccess:
      return "Success";
    case abi::kErrorUninitialized:
      return "Uninitialized";
    case abi::kErrorInvalidArgument:
      return "Invalid Argument";
    case abi::kErrorNotSupported:
      return "Not Supported";
    case abi::kErrorNotFound:
      return "Not Found";
    case abi::kErrorInsufficientSize:
      return "Insufficient Size";
    case abi::kErrorDriverNotLoaded:
      return "Driver Not Loaded";
    case abi::kErrorLibraryNotFound:
      return "NVML Shared Library Not Found";
    case abi::kErrorFunctionNotFound:
      return "Function Not Found";
    case abi::kErrorGpuIsLost:
      return "GPU is lost";
    case abi::kErrorArgumentVersionMismatch:
      return "Argument Version Mismatch";
    case abi::kErrorUnknown: {
      State& s = S();
      std::lock_guard<std::mutex> lock(s.mu);
      static thread_local std::string text;
      text = s.load_error.empty() ? "Unknown Error" : s.load_error;
      return text.c_str();
    }
    default:
      return "Unknown Error (fake NVML)";
  }
}

FAKE_EXPORT int nvmlSystemGetDriverVersion(char* version, unsigned length) {
  FAKE_ENTER("nvmlSystemGetDriverVersion");
  return CopyString(s.driver_version, version, length);
}

FAKE_EXPORT int nvmlDeviceGetCount_v2(unsigned* count) {
  FAKE_ENTER("nvmlDeviceGetCount_v2");
  if (s.count_error != abi::kSuccess) return s.count_error;
  if (!count) return abi::kErrorInvalidArgument;
  *count = static_cast<unsigned>(s.devices.size());
  return abi::kSuccess;
}

FAKE_EXPORT int nvmlDeviceGetHandleByIndex_v2(unsigned index, abi::DeviceHandle* handle) {
  FAKE_ENTER("nvmlDeviceGetHandleByIndex_v2");
  if (!handle || index >= s.devices.size()) return abi::kErrorInvalidArgument;
  if (s.devices[index].lost_handle) return abi::kErrorGpuIsLost;
  *handle = reinterpret_cast<abi::DeviceHandle>(&s.devices[index]);
  return abi::kSuccess;
}

FAKE_EXPORT int nvmlDeviceGetName(abi::DeviceHandle handle, char* name, unsigned length) {
  FAKE_ENTER("nvmlDeviceGetName");
  FAKE_DEVICE(handle);
  return CopyString(d->name, name, length);
}

FAKE_EXPORT int nvmlDeviceGetUUID(abi::DeviceHandle handle, char* uuid, unsigned length) {
  FAKE_ENTER("nvmlDeviceGetUUID");
  FAKE_DEVICE(handle);
  return CopyString(d->uuid, uuid, length);
}

// The old call: `used` includes the reserved bytes.
FAKE_EXPORT int nvmlDeviceGetMemoryInfo(abi::DeviceHandle handle, abi::Memory* memory) {
  FAKE_ENTER("nvmlDeviceGetMemoryInfo");
  FAKE_DEVICE(handle);
  if (d->lost_memory) return abi::kErrorGpuIsLost;
  if (!memory) return abi::kErrorInvalidArgument;
  *memory = abi::Memory{d->total, d->free, d->used + d->reserved};
  return abi::kSuccess;
}

FAKE_EXPORT int nvmlDeviceGetUtilizationRates(abi::DeviceHandle handle,
                                              abi::Utilization* utilization) {
  FAKE_ENTER("nvmlDeviceGetUtilizationRates");
  FAKE_DEVICE(handle);
  if (d->utilization_error != abi::kSuccess) return d->utilization_error;
  if (!utilization) return abi::kErrorInvalidArgument;
  *utilization = abi::Utilization{d->utilization_gpu, d->utilization_memory};
  return abi::kSuccess;
}

FAKE_EXPORT int nvmlDeviceGetComputeRunningProcesses_v2(abi::DeviceHandle handle, unsigned* count,
                                                        abi::ProcessInfo* infos) {
  return Processes(handle, count, infos, "nvmlDeviceGetComputeRunningProcesses_v2");
}

#ifndef FAKE_NVML_OLD
FAKE_EXPORT int nvmlDeviceGetMemoryInfo_v2(abi::DeviceHandle handle, abi::MemoryV2* memory) {
  FAKE_ENTER("nvmlDeviceGetMemoryInfo_v2");
  FAKE_DEVICE(handle);
  if (d->lost_memory) return abi::kErrorGpuIsLost;
  if (d->memory_v2_error != abi::kSuccess) return d->memory_v2_error;
  if (!memory) return abi::kErrorInvalidArgument;
  if (memory->version != abi::kMemoryV2Version) return abi::kErrorArgumentVersionMismatch;
  memory->total = d->total;
  memory->reserved = d->reserved;
  memory->free = d->free;
  memory->used = d->used;
  return abi::kSuccess;
}

FAKE_EXPORT int nvmlDeviceGetComputeRunningProcesses_v3(abi::DeviceHandle handle, unsigned* count,
                                                        abi::ProcessInfo* infos) {
  return Processes(handle, count, infos, "nvmlDeviceGetComputeRunningProcesses_v3");
}
#endif

// Test hook, not part of NVML: how many times `function` was called since the
// library was loaded (nvmlInit_v2 included); "init_depth" gives the number of
// nvmlInit_v2 calls not yet matched by nvmlShutdown.
FAKE_EXPORT unsigned fakeNvmlCallCount(const char* function) {
  State& s = S();
  std::lock_guard<std::mutex> lock(s.mu);
  if (std::strcmp(function, "init_depth") == 0) return static_cast<unsigned>(s.init_depth);
  auto it = s.calls.find(function);
  return it == s.calls.end() ? 0 : it->second;
}

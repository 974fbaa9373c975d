// Nvml: NVML loaded with dlopen, its errors turned into Status values.

#include "modelgrid/device/nvml.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>

#include "device/nvml_abi.h"

namespace modelgrid {

namespace abi = nvml_abi;

// The resolved entry points; null where the library lacks the symbol.
struct Nvml::Api {
  abi::InitFn init = nullptr;
  abi::ShutdownFn shutdown = nullptr;
  abi::ErrorStringFn error_string = nullptr;
  abi::DriverVersionFn driver_version = nullptr;
  abi::DeviceCountFn device_count = nullptr;
  abi::HandleByIndexFn handle_by_index = nullptr;
  abi::StringFn name = nullptr;
  abi::StringFn uuid = nullptr;
  abi::MemoryFn memory = nullptr;
  abi::MemoryV2Fn memory_v2 = nullptr;
  abi::ProcessesFn processes_v3 = nullptr;
  abi::ProcessesFn processes_v2 = nullptr;
  abi::UtilizationFn utilization = nullptr;
};

namespace {

template <typename Fn>
void Resolve(void* dl, const char* symbol, Fn* fn) {
  *fn = reinterpret_cast<Fn>(::dlsym(dl, symbol));
}

StatusCode CodeFor(int nvml_code) {
  switch (nvml_code) {
    case abi::kErrorDriverNotLoaded:
    case abi::kErrorLibraryNotFound:
    case abi::kErrorGpuIsLost:
    case 4:  // NVML_ERROR_NO_PERMISSION
      return StatusCode::kUnavailable;
    case abi::kErrorNotFound:
    case 28:  // NVML_ERROR_GPU_NOT_FOUND
      return StatusCode::kNotFound;
    case abi::kErrorNotSupported:
    case abi::kErrorFunctionNotFound:
      return StatusCode::kUnsupported;
    default:
      return StatusCode::kInternal;
  }
}

// The newer call exists in the library but not in the driver or on this GPU:
// the older call may still answer.
bool ShouldFallBack(int code) {
  return code == abi::kErrorFunctionNotFound || code == abi::kErrorNotSupported ||
         code == abi::kErrorArgumentVersionMismatch;
}

// A NUL-terminated copy of an NVML string buffer.
std::string FromBuffer(const char* buffer, size_t size) {
  return std::string(buffer, strnlen(buffer, size));
}

}  // namespace

std::string DefaultNvmlLibrary() {
  const char* env = std::getenv("MODELGRID_NVML_LIBRARY");
  return env && *env ? env : "libnvidia-ml.so.1";
}

Result<std::unique_ptr<Nvml>> Nvml::Open(const std::string& library) {
  ::dlerror();
  void* dl = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    const char* why = ::dlerror();
    return Status::Unavailable("cannot load NVML library '" + library +
                               "': " + (why ? why : "unknown error"));
  }
  auto api = std::make_unique<Api>();
  Resolve(dl, "nvmlInit_v2", &api->init);
  Resolve(dl, "nvmlShutdown", &api->shutdown);
  Resolve(dl, "nvmlErrorString", &api->error_string);
  Resolve(dl, "nvmlSystemGetDriverVersion", &api->driver_version);
  Resolve(dl, "nvmlDeviceGetCount_v2", &api->device_count);
  Resolve(dl, "nvmlDeviceGetHandleByIndex_v2", &api->handle_by_index);
  Resolve(dl, "nvmlDeviceGetName", &api->name);
  Resolve(dl, "nvmlDeviceGetUUID", &api->uuid);
  Resolve(dl, "nvmlDeviceGetMemoryInfo", &api->memory);
  Resolve(dl, "nvmlDeviceGetMemoryInfo_v2", &api->memory_v2);
  Resolve(dl, "nvmlDeviceGetComputeRunningProcesses_v3", &api->processes_v3);
  Resolve(dl, "nvmlDeviceGetComputeRunningProcesses_v2", &api->processes_v2);
  Resolve(dl, "nvmlDeviceGetUtilizationRates", &api->utilization);
  const std::pair<const char*, bool> required[] = {
      {"nvmlInit_v2", api->init != nullptr},
      {"nvmlShutdown", api->shutdown != nullptr},
      {"nvmlErrorString", api->error_string != nullptr},
      {"nvmlDeviceGetCount_v2", api->device_count != nullptr},
      {"nvmlDeviceGetHandleByIndex_v2", api->handle_by_index != nullptr},
      {"nvmlDeviceGetName", api->name != nullptr},
      {"nvmlDeviceGetUUID", api->uuid != nullptr},
      {"nvmlDeviceGetMemoryInfo", api->memory != nullptr || api->memory_v2 != nullptr},
  };
  for (const auto& [symbol, present] : required) {
    if (!present) {
      ::dlclose(dl);
      return Status::Unavailable("NVML library '" + library + "' lacks " + symbol);
    }
  }
  const int code = api->init();
  if (code != abi::kSuccess) {
    const char* text = api->error_string(code);
    Status s(StatusCode::kUnavailable, "nvmlInit_v2 (" + library +
                                           "): " + (text ? text : "unknown error") +
                                           " (NVML error " + std::to_string(code) + ")");
    ::dlclose(dl);
    return s;
  }
  return std::unique_ptr<Nvml>(new Nvml(library, dl, std::move(api)));
}

Nvml::Nvml(std::string library, void* handle, std::unique_ptr<Api> api)
    : library_(std::move(library)), dl_(handle), api_(std::move(api)) {}

Nvml::~Nvml() {
  api_->shutdown();
  ::dlclose(dl_);
}

Status Nvml::Error(const char* call, int code, int gpu) const {
  const char* text = api_->error_string(code);
  std::string where = gpu >= 0 ? "(GPU " + std::to_string(gpu) + ")" : "";
  return Status(CodeFor(code), std::string(call) + where + ": " + (text ? text : "unknown error") +
                                   " (NVML error " + std::to_string(code) + ")");
}

Result<std::string> Nvml::DriverVersion() const {
  if (!api_->driver_version)
    return Status::Unsupported("NVML library '" + library_ + "' lacks nvmlSystemGetDriverVersion");
  char buffer[abi::kStringBufferSize] = {};
  const int code = api_->driver_version(buffer, sizeof(buffer));
  if (code != abi::kSuccess) return Error("nvmlSystemGetDriverVersion", code);
  return FromBuffer(buffer, sizeof(buffer));
}

Result<uint32_t> Nvml::DeviceCount() const {
  unsigned count = 0;
  const int code = api_->device_count(&count);
  if (code != abi::kSuccess) return Error("nvmlDeviceGetCount_v2", code);
  return static_cast<uint32_t>(count);
}

Result<void*> Nvml::Handle(uint32_t index) const {
  abi::DeviceHandle handle = nullptr;
  const int code = api_->handle_by_index(index, &handle);
  if (code != abi::kSuccess)
    return Error("nvmlDeviceGetHandleByIndex_v2", code, static_cast<int>(index));
  return static_cast<void*>(handle);
}

Result<std::string> Nvml::Uuid(uint32_t index) const {
  MG_ASSIGN_OR_RETURN(void* raw, Handle(index));
  char buffer[abi::kStringBufferSize] = {};
  const int code = api_->uuid(static_cast<abi::DeviceHandle>(raw), buffer, sizeof(buffer));
  if (code != abi::kSuccess) return Error("nvmlDeviceGetUUID", code, static_cast<int>(index));
  return FromBuffer(buffer, sizeof(buffer));
}

Result<NvmlGpu> Nvml::Gpu(uint32_t index) const {
  const int gpu = static_cast<int>(index);
  MG_ASSIGN_OR_RETURN(void* raw, Handle(index));
  auto handle = static_cast<abi::DeviceHandle>(raw);
  NvmlGpu out;
  out.nvml_index = index;
  char buffer[abi::kStringBufferSize] = {};
  int code = api_->name(handle, buffer, sizeof(buffer));
  if (code != abi::kSuccess) return Error("nvmlDeviceGetName", code, gpu);
  out.name = FromBuffer(buffer, sizeof(buffer));
  MG_ASSIGN_OR_RETURN(out.uuid, Uuid(index));

  bool have_memory = false;
  if (api_->memory_v2) {
    abi::MemoryV2 m{};
    m.version = abi::kMemoryV2Version;
    code = api_->memory_v2(handle, &m);
    if (code == abi::kSuccess) {
      out.total_bytes = m.total;
      out.free_bytes = m.free;
      out.used_bytes = m.used;
      out.reserved_bytes = m.reserved;
      have_memory = true;
    } else if (!ShouldFallBack(code) || !api_->memory) {
      return Error("nvmlDeviceGetMemoryInfo_v2", code, gpu);
    }
  }
  if (!have_memory) {
    abi::Memory m{};
    code = api_->memory(handle, &m);
    if (code != abi::kSuccess) return Error("nvmlDeviceGetMemoryInfo", code, gpu);
    out.total_bytes = m.total;
    out.free_bytes = m.free;
    out.used_bytes = m.used;
  }

  if (api_->utilization) {
    abi::Utilization u{};
    code = api_->utilization(handle, &u);
    if (code == abi::kSuccess) {
      out.utilization = NvmlUtilization{u.gpu, u.memory};
    } else if (code != abi::kErrorNotSupported) {
      return Error("nvmlDeviceGetUtilizationRates", code, gpu);
    }
  }
  return out;
}

namespace {

// One process query with NVML's size protocol: returns NVML's code and, on
// success, the entries in *infos.
int QueryProcesses(abi::ProcessesFn fn, abi::DeviceHandle handle,
                   std::vector<abi::ProcessInfo>* infos) {
  infos->clear();
  unsigned count = 0;
  int code = fn(handle, &count, nullptr);
  for (int attempt = 0;
       attempt < Nvml::kProcessQueryAttempts && code == abi::kErrorInsufficientSize; ++attempt) {
    // Headroom for processes that start between two calls.
    const unsigned capacity = count + 4;
    infos->assign(capacity, abi::ProcessInfo{});
    count = capacity;
    code = fn(handle, &count, infos->data());
    if (code == abi::kSuccess) infos->resize(std::min(count, capacity));
  }
  if (code != abi::kSuccess) infos->clear();
  return code;
}

}  // namespace

Result<std::vector<NvmlProcess>> Nvml::Processes(uint32_t index) const {
  const int gpu = static_cast<int>(index);
  MG_ASSIGN_OR_RETURN(void* raw, Handle(index));
  auto handle = static_cast<abi::DeviceHandle>(raw);
  if (!api_->processes_v3 && !api_->processes_v2) {
    return Status::Unsupported("NVML library '" + library_ +
                               "' lacks nvmlDeviceGetComputeRunningProcesses_v3 and _v2");
  }
  std::vector<abi::ProcessInfo> infos;
  const char* call = "nvmlDeviceGetComputeRunningProcesses_v3";
  int code = abi::kErrorFunctionNotFound;
  if (api_->processes_v3) code = QueryProcesses(api_->processes_v3, handle, &infos);
  if (code != abi::kSuccess && ShouldFallBack(code) && api_->processes_v2) {
    call = "nvmlDeviceGetComputeRunningProcesses_v2";
    code = QueryProcesses(api_->processes_v2, handle, &infos);
  }
  if (code != abi::kSuccess) {
    Status s = Error(call, code, gpu);
    if (code == abi::kErrorInsufficientSize) {
      s = Status(s.code(),
                 s.message() + " after " + std::to_string(kProcessQueryAttempts) + " attempts");
    }
    return s;
  }
  std::map<uint32_t, NvmlProcess> by_pid;
  for (const abi::ProcessInfo& info : infos) {
    NvmlProcess& p = by_pid[info.pid];
    p.pid = info.pid;
    if (info.used_gpu_memory == abi::kValueNotAvailable) continue;
    p.used_bytes = p.used_bytes.value_or(0) + info.used_gpu_memory;
  }
  std::vector<NvmlProcess> out;
  out.reserve(by_pid.size());
  for (auto& [pid, p] : by_pid) out.push_back(p);
  return out;
}

Result<std::vector<NvmlProcess>> AuditDeviceProcesses(const Device& device,
                                                      const std::string& library) {
  if (device.kind != DeviceKind::kCuda || device.uuid.empty()) {
    return Status::InvalidArgument("device '" + device.id +
                                   "' is not a discovered CUDA device with a UUID");
  }
  MG_ASSIGN_OR_RETURN(auto nvml, Nvml::Open(library));
  MG_ASSIGN_OR_RETURN(uint32_t count, nvml->DeviceCount());
  for (uint32_t i = 0; i < count; ++i) {
    auto uuid = nvml->Uuid(i);
    if (uuid.ok() && *uuid == device.uuid) return nvml->Processes(i);
  }
  return Status::NotFound("device '" + device.id + "': no GPU with UUID " + device.uuid +
                          " among the " + std::to_string(count) + " NVML sees");
}

Result<uint64_t> MeasureWorkerContext(const Device& device, uint32_t pid,
                                      uint64_t allocator_reserved_bytes,
                                      const std::string& library) {
  MG_ASSIGN_OR_RETURN(std::vector<NvmlProcess> processes, AuditDeviceProcesses(device, library));
  for (const NvmlProcess& p : processes) {
    if (p.pid != pid) continue;
    if (!p.used_bytes) {
      return Status::Unavailable("device '" + device.id + "': NVML reports the memory of pid " +
                                 std::to_string(pid) + " as not available");
    }
    return *p.used_bytes > allocator_reserved_bytes ? *p.used_bytes - allocator_reserved_bytes
                                                    : uint64_t{0};
  }
  return Status::NotFound("device '" + device.id + "': NVML lists no process " +
                          std::to_string(pid) + " (" + std::to_string(processes.size()) +
                          " compute process(es) there)");
}

}  // namespace modelgrid

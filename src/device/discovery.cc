// Device discovery: the CPU from /proc/meminfo, the GPUs through NVML.

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "modelgrid/bytes.h"
#include "modelgrid/device.h"
#include "modelgrid/device/nvml.h"

namespace modelgrid {

namespace {

constexpr const char* kDefaultNvml = "libnvidia-ml.so.1";

// Reads "Key:   12345 kB" lines of /proc/meminfo into bytes.
Result<uint64_t> MeminfoField(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    uint64_t kib = 0;
    fields >> kib;
    if (!fields) break;
    return kib * kKiB;
  }
  return Status::Internal("/proc/meminfo: field '" + key + "' not found");
}

std::optional<std::string> CudaVisibleDevices() {
  const char* value = std::getenv("CUDA_VISIBLE_DEVICES");
  if (!value) return std::nullopt;
  return std::string(value);
}

// Reads every GPU NVML sees, applies CUDA_VISIBLE_DEVICES and appends the
// visible, readable ones to `out` as cuda:0..N-1.
void AddGpus(const Nvml& nvml, uint32_t count, DeviceDiscovery* out) {
  std::vector<Result<NvmlGpu>> gpus;
  std::vector<std::string> uuids;
  for (uint32_t i = 0; i < count; ++i) {
    gpus.push_back(nvml.Gpu(i));
    if (gpus.back().ok()) {
      uuids.push_back(gpus.back()->uuid);
    } else {
      // The UUID may still be readable when, say, only the memory query fails.
      auto uuid = nvml.Uuid(i);
      uuids.push_back(uuid.ok() ? *uuid : "");
    }
  }
  VisibleGpus visible = SelectVisibleGpus(CudaVisibleDevices(), uuids);
  out->warnings.insert(out->warnings.end(), visible.warnings.begin(), visible.warnings.end());
  int next = 0;
  for (uint32_t index : visible.nvml_indices) {
    const Result<NvmlGpu>& gpu = gpus[index];
    if (!gpu.ok()) {
      out->warnings.push_back("GPU " + std::to_string(index) +
                              (uuids[index].empty() ? "" : " (" + uuids[index] + ")") +
                              " left out: " + gpu.status().message());
      continue;
    }
    Device d;
    d.id = "cuda:" + std::to_string(next++);
    d.kind = DeviceKind::kCuda;
    d.name = gpu->name;
    d.uuid = gpu->uuid;
    d.total_bytes = gpu->total_bytes;
    d.used_bytes = gpu->unavailable_bytes();
    d.context_bytes = DefaultContextBytes(DeviceKind::kCuda);
    out->devices.push_back(std::move(d));
  }
}

}  // namespace

Result<Device> DiscoverCpu() {
  std::ifstream in("/proc/meminfo");
  if (!in) return Status::Internal("cannot read /proc/meminfo to size the CPU device");
  std::ostringstream ss;
  ss << in.rdbuf();
  MG_ASSIGN_OR_RETURN(uint64_t total, MeminfoField(ss.str(), "MemTotal"));
  MG_ASSIGN_OR_RETURN(uint64_t available, MeminfoField(ss.str(), "MemAvailable"));
  Device cpu;
  cpu.id = "cpu";
  cpu.kind = DeviceKind::kCpu;
  cpu.name = "cpu";
  cpu.total_bytes = total;
  cpu.used_bytes = total > available ? total - available : 0;
  cpu.context_bytes = DefaultContextBytes(DeviceKind::kCpu);
  return cpu;
}

Result<DeviceDiscovery> DiscoverDevicesDetailed() {
  DeviceDiscovery out;
  MG_ASSIGN_OR_RETURN(Device cpu, DiscoverCpu());
  out.devices.push_back(std::move(cpu));
  auto nvml = Nvml::Open(DefaultNvmlLibrary());
  if (!nvml.ok()) {
    out.gpu_status = nvml.status();
    return out;
  }
  auto count = (*nvml)->DeviceCount();
  if (!count.ok()) {
    out.gpu_status = count.status();
    return out;
  }
  AddGpus(**nvml, *count, &out);
  return out;
}

Result<std::vector<Device>> DiscoverDevices() {
  MG_ASSIGN_OR_RETURN(DeviceDiscovery found, DiscoverDevicesDetailed());
  if (!found.gpu_status.ok()) {
    // No NVIDIA driver at the default place is the ordinary CPU-only machine.
    const bool not_installed = DefaultNvmlLibrary() == kDefaultNvml &&
                               found.gpu_status.message().rfind("cannot load NVML library", 0) == 0;
    spdlog::log(not_installed ? spdlog::level::info : spdlog::level::warn,
                "no GPU discovered, using the CPU only: {}", found.gpu_status.message());
  }
  for (const std::string& w : found.warnings) spdlog::warn("device discovery: {}", w);
  return std::move(found.devices);
}

}  // namespace modelgrid

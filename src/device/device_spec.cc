// Device specs given on the command line: cpu, cpu=CAP, sim:NAME=CAP[,k=v], cuda:N.

#include <algorithm>
#include <cstdlib>
#include <map>

#include "modelgrid/bytes.h"
#include "modelgrid/device.h"

namespace modelgrid {

namespace {

constexpr const char* kExpected =
    "expected cpu, cpu=CAPACITY, cuda:N or sim:NAME=CAPACITY[,context=BYTES][,used=BYTES], "
    "e.g. sim:a100=80GiB";

Status BadSpec(const std::string& spec, const std::string& why) {
  return Status::InvalidArgument("device spec '" + spec + "': " + why + " (" + kExpected + ")");
}

bool ValidName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Result<Device> ParseSimulated(const std::string& spec, int ordinal) {
  const std::string body = spec.substr(4);
  const size_t eq = body.find('=');
  if (eq == std::string::npos) return BadSpec(spec, "missing '=CAPACITY'");
  Device d;
  d.kind = DeviceKind::kSimulated;
  d.name = body.substr(0, eq);
  if (!ValidName(d.name)) return BadSpec(spec, "invalid name '" + d.name + "'");
  d.id = "sim:" + d.name + "#" + std::to_string(ordinal);
  d.context_bytes = DefaultContextBytes(DeviceKind::kSimulated);
  std::string rest = body.substr(eq + 1);
  std::string capacity = rest.substr(0, rest.find(','));
  auto cap = ParseBytes(capacity);
  if (!cap.ok()) return BadSpec(spec, cap.status().message());
  if (*cap == 0) return BadSpec(spec, "capacity must be > 0");
  d.total_bytes = *cap;
  size_t pos = rest.find(',');
  while (pos != std::string::npos) {
    const size_t next = rest.find(',', pos + 1);
    const std::string option = rest.substr(pos + 1, next == std::string::npos ? next : next - pos - 1);
    const size_t oeq = option.find('=');
    if (oeq == std::string::npos) return BadSpec(spec, "option '" + option + "' needs '=VALUE'");
    const std::string key = option.substr(0, oeq);
    auto value = ParseBytes(option.substr(oeq + 1));
    if (!value.ok()) return BadSpec(spec, "option '" + key + "': " + value.status().message());
    if (key == "context") {
      d.context_bytes = *value;
    } else if (key == "used") {
      d.used_bytes = *value;
    } else {
      return BadSpec(spec, "unknown option '" + key + "'");
    }
    pos = next;
  }
  if (d.used_bytes > d.total_bytes) return BadSpec(spec, "used exceeds capacity");
  return d;
}

// cuda:N through discovery (NVML, CUDA_VISIBLE_DEVICES applied).
Result<Device> FindGpu(const std::string& spec, const std::string& index) {
  MG_ASSIGN_OR_RETURN(DeviceDiscovery found, DiscoverDevicesDetailed());
  if (!found.gpu_status.ok()) {
    return Status::NotFound("device spec '" + spec + "': no GPU " + index +
                            ": NVML is unavailable (" + found.gpu_status.message() + ")");
  }
  const std::string id =
      "cuda:" + index.substr(std::min(index.find_first_not_of('0'), index.size() - 1));
  int gpus = 0;
  for (const Device& d : found.devices) {
    if (d.kind != DeviceKind::kCuda) continue;
    ++gpus;
    if (d.id == id) return d;
  }
  return Status::NotFound(
      "device spec '" + spec + "': no GPU " + index + ": " + std::to_string(gpus) +
      " GPU(s) found" +
      (gpus > 0 ? " (cuda:0..cuda:" + std::to_string(gpus - 1) + ")" : std::string()) +
      (std::getenv("CUDA_VISIBLE_DEVICES") ? " with CUDA_VISIBLE_DEVICES applied" : ""));
}

}  // namespace

uint64_t DefaultContextBytes(DeviceKind kind) {
  return kind == DeviceKind::kCpu ? 128 * kMiB : 512 * kMiB;
}

Result<Device> ParseDeviceSpec(const std::string& spec, int ordinal) {
  if (spec == "cpu" || spec.rfind("cpu=", 0) == 0) {
    MG_ASSIGN_OR_RETURN(Device cpu, DiscoverCpu());
    if (spec.size() > 3) {
      auto cap = ParseBytes(spec.substr(4));
      if (!cap.ok()) return BadSpec(spec, cap.status().message());
      if (*cap == 0) return BadSpec(spec, "capacity must be > 0");
      cpu.total_bytes = *cap;
      cpu.used_bytes = 0;
    }
    return cpu;
  }
  if (spec.rfind("sim:", 0) == 0) return ParseSimulated(spec, ordinal);
  if (spec.rfind("cuda:", 0) == 0) {
    const std::string index = spec.substr(5);
    if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos) {
      return BadSpec(spec, "the GPU index must be a number");
    }
    return FindGpu(spec, index);
  }
  return BadSpec(spec, "unknown device type");
}

Result<std::vector<Device>> ParseDeviceSpecs(const std::vector<std::string>& specs) {
  std::vector<Device> devices;
  std::map<std::string, int> seen;  // simulated name -> next ordinal
  for (const auto& spec : specs) {
    int ordinal = 0;
    if (spec.rfind("sim:", 0) == 0) {
      const std::string name = spec.substr(4, spec.find('=') - 4);
      ordinal = seen[name]++;
    }
    MG_ASSIGN_OR_RETURN(Device d, ParseDeviceSpec(spec, ordinal));
    for (const auto& other : devices) {
      if (other.id == d.id) return Status::InvalidArgument("device '" + d.id + "' given twice");
    }
    devices.push_back(std::move(d));
  }
  return devices;
}

const char* DeviceKindName(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::kCpu:
      return "cpu";
    case DeviceKind::kCuda:
      return "cuda";
    case DeviceKind::kSimulated:
      return "simulated";
  }
  return "cpu";
}

}  // namespace modelgrid

// DiscoverDevices: the devices of this machine (the CPU; GPUs through NVML later).

#include <fstream>
#include <sstream>
#include <string>

#include "modelgrid/bytes.h"
#include "modelgrid/device.h"

namespace modelgrid {

namespace {

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

}  // namespace

Result<std::vector<Device>> DiscoverDevices() {
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
  return std::vector<Device>{cpu};
}

}  // namespace modelgrid

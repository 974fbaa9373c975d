// Fuzz harness of the device spec parser (ParseDeviceSpec / ParseDeviceSpecs,
// modelgrid/device.h) and of ParseBytes (modelgrid/bytes.h), which reads
// their capacities. Input: device specs, one per line (as repeated --device
// flags); the whole input is also parsed as one spec and as one quantity.
// Properties: nothing throws; an error is kInvalidArgument (kNotFound for
// cuda:N without such a GPU) with a message; a parsed simulated device has
// an id "sim:NAME#k", a capacity > 0 and used <= capacity; a parsed list has
// unique ids.
#include <set>
#include <string>
#include <vector>

#include "fuzz/fuzz_target.h"
#include "modelgrid/bytes.h"
#include "modelgrid/device.h"

namespace modelgrid::fuzz {

namespace {

bool AllowedError(const Status& s) {
  return !s.message().empty() &&
         (s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound);
}

std::string CheckDevice(const Device& d) {
  if (d.kind == DeviceKind::kSimulated) {
    if (d.id.rfind("sim:" + d.name + "#", 0) != 0) return "simulated device with id '" + d.id + "'";
    if (d.total_bytes == 0) return "simulated device '" + d.id + "' with capacity 0";
    if (d.used_bytes > d.total_bytes) return "device '" + d.id + "' uses more than its capacity";
  }
  if (d.kind == DeviceKind::kCpu && d.id != "cpu") return "a CPU device with id '" + d.id + "'";
  return "";
}

}  // namespace

std::string CheckDeviceSpec(std::string_view input) {
  const std::string text(input);
  std::vector<std::string> specs;
  size_t start = 0;
  while (specs.size() < 64) {
    const size_t nl = text.find('\n', start);
    specs.push_back(text.substr(start, nl == std::string::npos ? nl : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  const Result<std::vector<Device>> list = ParseDeviceSpecs(specs);
  if (!list.ok()) {
    if (!AllowedError(list.status())) return "ParseDeviceSpecs returned " + Describe(list.status());
  } else {
    std::set<std::string> ids;
    for (const Device& d : *list) {
      if (!ids.insert(d.id).second) return "ParseDeviceSpecs gave device '" + d.id + "' twice";
      if (std::string broken = CheckDevice(d); !broken.empty()) return broken;
    }
  }
  const Result<Device> one = ParseDeviceSpec(text, 3);
  if (!one.ok()) {
    if (!AllowedError(one.status())) return "ParseDeviceSpec returned " + Describe(one.status());
  } else if (std::string broken = CheckDevice(*one); !broken.empty()) {
    return broken;
  }
  const Result<uint64_t> bytes = ParseBytes(text);
  if (!bytes.ok() && (bytes.status().code() != StatusCode::kInvalidArgument ||
                      bytes.status().message().empty())) {
    return "ParseBytes returned " + Describe(bytes.status());
  }
  return "";
}

}  // namespace modelgrid::fuzz

MODELGRID_FUZZ_TARGET(modelgrid::fuzz::CheckDeviceSpec)

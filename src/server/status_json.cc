// JSON views of grid statuses (status_json.h).
#include "server/status_json.h"

#include "modelgrid/estimate_json.h"

#include <charconv>

#include "modelgrid/kserve/metadata.h"

namespace modelgrid::server {

namespace {

using nlohmann::json;

json CountAndNs(uint64_t count, uint64_t microseconds) {
  return {{"count", count}, {"ns", microseconds * 1000}};
}

const DeviceStatus* FindDevice(const std::vector<DeviceStatus>& devices, const std::string& id) {
  for (const DeviceStatus& d : devices) {
    if (d.device.id == id) return &d;
  }
  return nullptr;
}

}  // namespace

int64_t DeviceOrdinal(const std::string& device_id) {
  const size_t sep = device_id.find_last_of(":#");
  if (sep == std::string::npos) return 0;
  int64_t ordinal = 0;
  const char* first = device_id.data() + sep + 1;
  const char* last = device_id.data() + device_id.size();
  auto [end, ec] = std::from_chars(first, last, ordinal);
  return (ec == std::errc() && end == last) ? ordinal : 0;
}

const char* RepositoryStateName(ModelState state) {
  switch (state) {
    case ModelState::kReady:
      return "READY";
    case ModelState::kLoading:
    case ModelState::kRestarting:
    case ModelState::kSwappingIn:
      return "LOADING";
    case ModelState::kSwappingOut:
      return "UNLOADING";
    case ModelState::kAdded:
    case ModelState::kUnplaced:
    case ModelState::kFailed:
    case ModelState::kUnloaded:
    case ModelState::kStandby:
    case ModelState::kSwapped:
      return "UNAVAILABLE";
  }
  return "UNAVAILABLE";
}

json ModelMetadataView(const ModelStatus& status) {
  std::vector<std::string> versions;
  if (!status.version.empty()) versions.push_back(status.version);
  return ModelMetadataJson(status.name, versions, kPlatform, status.inputs, status.outputs,
                           status.max_batch_size);
}

std::string MetadataUnavailableReason(const ModelStatus& status) {
  const bool never_loaded = status.inputs.empty() && status.outputs.empty();
  if (!never_loaded ||
      (status.state != ModelState::kFailed && status.state != ModelState::kUnplaced)) {
    return "";
  }
  std::string why =
      "model '" + status.name + "' has no metadata: it is " + ModelStateName(status.state);
  if (!status.reason.empty()) why += ": " + status.reason;
  return why;
}

json RepositoryIndexEntry(const ModelStatus& status) {
  return {{"name", status.name},
          {"version", status.version},
          {"state", RepositoryStateName(status.state)},
          {"reason", status.reason},
          {"modelgrid_state", ModelStateName(status.state)}};
}

json EstimateView(const MemoryEstimate& e) { return EstimateToJson(e); }

json ModelView(const ModelStatus& s) {
  return {{"name", s.name},
          {"type", s.type},
          {"version", s.version},
          {"state", ModelStateName(s.state)},
          {"reason", s.reason},
          {"device", s.device},
          {"estimate", s.estimate ? EstimateView(*s.estimate) : json(nullptr)},
          {"request_bytes", s.request_bytes},
          {"limit_bytes", s.limit_bytes},
          {"current_bytes", s.current_bytes},
          {"peak_bytes", s.peak_bytes},
          {"worker_pid", s.worker_pid},
          {"context_bytes", s.context_bytes},
          {"context_measured", s.context_measured},
          {"restarts", s.restarts},
          {"priority", s.priority},
          {"resolver", ResolverName(s.resolver)},
          {"load", LoadPolicyName(s.load)},
          {"pinned", s.pinned},
          {"borrowed_bytes", s.borrowed_bytes},
          {"swapped_bytes", s.swapped_bytes},
          {"swaps_out", s.swaps_out},
          {"swaps_in", s.swaps_in},
          {"swap_out_us", s.swap_out_us},
          {"swap_in_us", s.swap_in_us},
          {"evictions", s.evictions},
          {"reloads", s.reloads},
          {"collisions", s.collisions},
          {"max_batch_size", s.max_batch_size},
          {"tasks", s.tasks}};
}

json DeviceView(const DeviceStatus& s) {
  return {{"id", s.device.id},
          {"name", s.device.name},
          {"kind", DeviceKindName(s.device.kind)},
          {"uuid", s.device.uuid},
          {"total_bytes", s.device.total_bytes},
          {"used_bytes", s.used_bytes},
          {"free_bytes", s.free_bytes},
          {"reserved_bytes", s.reserved_bytes},
          {"capacity_bytes", s.capacity_bytes},
          {"borrowed_bytes", s.borrowed_bytes},
          {"swapped_bytes", s.swapped_bytes},
          {"buffer_bytes", s.buffer_bytes},
          {"context_bytes", s.device.context_bytes},
          {"context_measured", s.context_measured},
          {"workers", s.workers},
          {"models", s.models}};
}

json MemoryUsageView(const ModelStatus& status, const std::vector<DeviceStatus>& devices) {
  json usage = json::array();
  if (status.device.empty()) return usage;
  const DeviceStatus* device = FindDevice(devices, status.device);
  const bool gpu = device != nullptr && device->device.is_accelerator();
  usage.push_back({{"type", gpu ? "GPU" : "CPU"},
                   {"id", DeviceOrdinal(status.device)},
                   {"byte_size", status.current_bytes}});
  return usage;
}

json ModelStatsView(const ModelStatus& status, const ModelCounters& c,
                    const std::vector<DeviceStatus>& devices) {
  json inference_stats = {{"success", CountAndNs(c.success, c.request_us)},
                          {"fail", CountAndNs(c.failure, 0)},
                          {"queue", CountAndNs(c.success, c.queue_us)},
                          {"compute_input", CountAndNs(c.success, 0)},
                          {"compute_infer", CountAndNs(c.success, c.compute_us)},
                          {"compute_output", CountAndNs(c.success, 0)}};
  return {{"name", status.name},
          {"version", status.version},
          {"last_inference", 0},
          {"inference_count", c.inferences},
          {"execution_count", c.executions},
          {"inference_stats", inference_stats},
          {"batch_stats", json::array()},
          {"memory_usage", MemoryUsageView(status, devices)}};
}

}  // namespace modelgrid::server

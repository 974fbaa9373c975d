// JSON views of grid statuses (status_json.h).
#include "server/status_json.h"

#include "kserve/json_text.h"
#include "modelgrid/estimate_json.h"

namespace modelgrid::server {

namespace {

using nlohmann::json;

// Names reach here from paths and config files: bad bytes are replaced so
// that dumping never throws.
std::string Utf8(std::string_view s) { return kserve_internal::ToValidUtf8(s); }

}  // namespace

json MetadataJson(const ModelMetadata& m) {
  auto list = [](const std::vector<TensorMetadata>& tensors) {
    json out = json::array();
    for (const TensorMetadata& t : tensors) {
      out.push_back({{"name", Utf8(t.name)},
                     {"datatype", std::string(DataTypeName(t.datatype))},
                     {"shape", t.shape}});
    }
    return out;
  };
  json body = json::object();
  body["name"] = Utf8(m.name);
  if (!m.versions.empty()) {
    json v = json::array();
    for (const std::string& s : m.versions) v.push_back(Utf8(s));
    body["versions"] = v;
  }
  body["platform"] = m.platform;
  body["inputs"] = list(m.inputs);
  body["outputs"] = list(m.outputs);
  return body;
}

json RepositoryEntryJson(const RepositoryEntry& e) {
  return {{"name", e.name},
          {"version", e.version},
          {"state", e.state},
          {"reason", e.reason},
          {"modelgrid_state", ModelStateName(e.modelgrid_state)}};
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

json StatisticsJson(const ModelStatistics& s) {
  auto duration = [](const StatisticDuration& d) { return json{{"count", d.count}, {"ns", d.ns}}; };
  json usage = json::array();
  for (const MemoryUsage& u : s.memory_usage) {
    usage.push_back({{"type", u.type}, {"id", u.id}, {"byte_size", u.byte_size}});
  }
  return {{"name", s.name},
          {"version", s.version},
          {"last_inference", s.last_inference_ms},
          {"inference_count", s.inference_count},
          {"execution_count", s.execution_count},
          {"inference_stats",
           {{"success", duration(s.success)},
            {"fail", duration(s.fail)},
            {"queue", duration(s.queue)},
            {"compute_input", duration(s.compute_input)},
            {"compute_infer", duration(s.compute_infer)},
            {"compute_output", duration(s.compute_output)}}},
          {"batch_stats", json::array()},
          {"memory_usage", usage}};
}

}  // namespace modelgrid::server

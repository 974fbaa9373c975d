// FormatMetrics: the Prometheus text format of the grid (metrics.h), and the
// GET /metrics route.
#include "server/metrics.h"

#include <cstdint>
#include <sstream>

#include "server/routes.h"

namespace modelgrid::server {

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Writes one family: HELP, TYPE, then a sample per call of `add`.
class Family {
 public:
  Family(std::ostringstream* out, const std::string& name, const char* type, const char* help)
      : out_(out), name_(name) {
    *out_ << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << ' ' << type << '\n';
  }
  void Sample(const Labels& labels, uint64_t value) {
    *out_ << name_;
    if (!labels.empty()) {
      *out_ << '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        *out_ << (i ? "," : "") << labels[i].first << "=\"" << EscapeLabelValue(labels[i].second)
              << '"';
      }
      *out_ << '}';
    }
    *out_ << ' ' << value << '\n';
  }

 private:
  std::ostringstream* out_;
  std::string name_;
};

// A per-model family of one value taken from each model.
// A family with one sample per model, its value read by `value`. Triton's
// families are labelled with the model and its version ("" when none),
// ModelGrid's with the model alone.
struct PerModelFamily {
  const char* name;
  const char* type;
  const char* help;
  uint64_t (*value)(const ModelMetrics&);
};

constexpr PerModelFamily kTritonFamilies[] = {
    {"nv_inference_request_success", "counter", "Inference requests that succeeded.",
     [](const ModelMetrics& m) { return m.counters.success; }},
    {"nv_inference_request_failure", "counter",
     "Inference requests that failed (errors and timeouts).",
     [](const ModelMetrics& m) { return m.counters.failure; }},
    {"nv_inference_count", "counter", "Inferences performed (a batch of n rows counts n).",
     [](const ModelMetrics& m) { return m.counters.inferences; }},
    {"nv_inference_exec_count", "counter", "Batches executed.",
     [](const ModelMetrics& m) { return m.counters.executions; }},
    {"nv_inference_request_duration_us", "counter",
     "Cumulative end-to-end time of requests in the grid, microseconds.",
     [](const ModelMetrics& m) { return m.counters.request_us; }},
    {"nv_inference_queue_duration_us", "counter",
     "Cumulative time requests spent queued, microseconds.",
     [](const ModelMetrics& m) { return m.counters.queue_us; }},
    {"nv_inference_compute_infer_duration_us", "counter",
     "Cumulative time spent executing the model, microseconds.",
     [](const ModelMetrics& m) { return m.counters.compute_us; }},
    {"nv_inference_pending_request_count", "gauge", "Requests waiting in the queue now.",
     [](const ModelMetrics& m) { return m.counters.queued; }},
};

constexpr PerModelFamily kModelFamilies[] = {
    {"modelgrid_model_ready", "gauge", "1 when the model serves, else 0.",
     [](const ModelMetrics& m) -> uint64_t { return m.status.state == ModelState::kReady ? 1 : 0; }},
    {"modelgrid_model_restarts_total", "counter", "Restarts of the model's worker by the watchdog.",
     [](const ModelMetrics& m) { return static_cast<uint64_t>(m.status.restarts); }},
    {"modelgrid_model_rejected_total", "counter",
     "Requests refused because the queue was full (HTTP 503).",
     [](const ModelMetrics& m) { return m.counters.rejected; }},
    {"modelgrid_model_timed_out_total", "counter", "Requests whose deadline passed in the queue.",
     [](const ModelMetrics& m) { return m.counters.timed_out; }},
};

}  // namespace

std::string FormatMetrics(const std::vector<ModelMetrics>& models,
                          const std::vector<DeviceStatus>& devices,
                          const std::vector<SwapEvent>& swaps) {
  std::ostringstream out;
  // Triton's names where the meaning is the same (docs/design.md, "Interfaces").
  for (const PerModelFamily& spec : kTritonFamilies) {
    Family f(&out, spec.name, spec.type, spec.help);
    for (const ModelMetrics& m : models) {
      f.Sample({{"model", m.status.name}, {"version", m.status.version}}, spec.value(m));
    }
  }
  // What only ModelGrid knows.
  for (const PerModelFamily& spec : kModelFamilies) {
    Family f(&out, spec.name, spec.type, spec.help);
    for (const ModelMetrics& m : models) f.Sample({{"model", m.status.name}}, spec.value(m));
  }
  {
    Family f(&out, "modelgrid_model_memory_bytes", "gauge",
             "Model memory: placement request, enforced limit, measured current and peak bytes.");
    for (const ModelMetrics& m : models) {
      const ModelStatus& s = m.status;
      f.Sample({{"model", s.name}, {"kind", "request"}}, s.request_bytes);
      f.Sample({{"model", s.name}, {"kind", "limit"}}, s.limit_bytes);
      f.Sample({{"model", s.name}, {"kind", "current"}}, s.current_bytes);
      f.Sample({{"model", s.name}, {"kind", "peak"}}, s.peak_bytes);
      f.Sample({{"model", s.name}, {"kind", "borrowed"}}, s.borrowed_bytes);
      f.Sample({{"model", s.name}, {"kind", "swapped"}}, s.swapped_bytes);
    }
  }
  {
    Family f(&out, "modelgrid_model_state", "gauge",
             "1 for the model's lifecycle state (added, loading, ready, restarting, unplaced, "
             "failed, unloaded, standby, swapping_out, swapped, swapping_in).");
    for (const ModelMetrics& m : models) {
      f.Sample({{"model", m.status.name}, {"state", ModelStateName(m.status.state)}}, 1);
    }
  }
  {
    Family f(&out, "modelgrid_model_collisions_total", "counter",
             "Memory collisions settled for the model's requests, by resolver (wait, priority, "
             "swap; evict for on-demand loads) and outcome (granted, reclaimed, timed_out).");
    for (const ModelMetrics& m : models) {
      for (const auto& [key, n] : m.status.collisions) {
        const size_t slash = key.find('/');
        f.Sample({{"model", m.status.name},
                  {"resolver", key.substr(0, slash)},
                  {"outcome", slash == std::string::npos ? "" : key.substr(slash + 1)}},
                 n);
      }
    }
  }
  {
    Family f(&out, "modelgrid_model_swaps_total", "counter",
             "Swaps of the model's weights to the host tier (out) and back (in).");
    for (const ModelMetrics& m : models) {
      f.Sample({{"model", m.status.name}, {"direction", "out"}}, m.status.swaps_out);
      f.Sample({{"model", m.status.name}, {"direction", "in"}}, m.status.swaps_in);
    }
  }
  {
    Family f(&out, "modelgrid_model_evictions_total", "counter",
             "Times the model was unloaded to make room (it went back to standby).");
    for (const ModelMetrics& m : models) f.Sample({{"model", m.status.name}}, m.status.evictions);
  }
  {
    // A histogram of swap durations in microseconds, per direction, over the
    // grid's recent swaps (Grid::SwapEvents).
    constexpr uint64_t kBounds[] = {100, 1'000, 10'000, 100'000, 1'000'000, 10'000'000};
    Family f(&out, "modelgrid_swap_duration_us", "histogram",
             "Duration of swaps (out: to the host tier; in: back, including reloads), "
             "microseconds.");
    for (const char* direction : {"out", "in"}) {
      uint64_t count = 0, sum = 0;
      uint64_t buckets[std::size(kBounds)] = {};
      for (const SwapEvent& e : swaps) {
        const bool in = e.direction == "in" || e.direction == "reload";
        if ((std::string(direction) == "in") != in || e.direction == "evict") continue;
        ++count;
        sum += e.duration_us;
        for (size_t i = 0; i < std::size(kBounds); ++i) {
          if (e.duration_us <= kBounds[i]) ++buckets[i];
        }
      }
      for (size_t i = 0; i < std::size(kBounds); ++i) {
        out << "modelgrid_swap_duration_us_bucket{direction=\"" << direction << "\",le=\""
            << kBounds[i] << "\"} " << buckets[i] << '\n';
      }
      out << "modelgrid_swap_duration_us_bucket{direction=\"" << direction
          << "\",le=\"+Inf\"} " << count << '\n';
      out << "modelgrid_swap_duration_us_sum{direction=\"" << direction << "\"} " << sum << '\n';
      out << "modelgrid_swap_duration_us_count{direction=\"" << direction << "\"} " << count
          << '\n';
    }
    (void)f;
  }
  {
    Family f(&out, "modelgrid_model_context_bytes", "gauge",
             "Per-process overhead charged for the model's worker; measured=true when taken "
             "from NVML, else the configured default.");
    for (const ModelMetrics& m : models) {
      f.Sample({{"model", m.status.name}, {"measured", m.status.context_measured ? "true" : "false"}},
               m.status.context_bytes);
    }
  }
  {
    Family f(&out, "modelgrid_device_memory_bytes", "gauge",
             "Device memory: total, used (others + our measured), free for placement, reserved "
             "by placed instances and their workers, buffer kept free.");
    for (const DeviceStatus& d : devices) {
      f.Sample({{"device", d.device.id}, {"kind", "total"}}, d.device.total_bytes);
      f.Sample({{"device", d.device.id}, {"kind", "used"}}, d.used_bytes);
      f.Sample({{"device", d.device.id}, {"kind", "free"}}, d.free_bytes);
      f.Sample({{"device", d.device.id}, {"kind", "reserved"}}, d.reserved_bytes);
      f.Sample({{"device", d.device.id}, {"kind", "buffer"}}, d.buffer_bytes);
      f.Sample({{"device", d.device.id}, {"kind", "capacity"}}, d.capacity_bytes);
      f.Sample({{"device", d.device.id}, {"kind", "borrowed"}}, d.borrowed_bytes);
      f.Sample({{"device", d.device.id}, {"kind", "swapped"}}, d.swapped_bytes);
    }
  }
  {
    Family f(&out, "modelgrid_device_context_bytes", "gauge",
             "Per-worker context charge on the device; measured=true once taken from NVML.");
    for (const DeviceStatus& d : devices) {
      f.Sample({{"device", d.device.id}, {"measured", d.context_measured ? "true" : "false"}},
               d.device.context_bytes);
    }
  }
  {
    Family f(&out, "modelgrid_device_workers", "gauge", "Worker processes on the device.");
    for (const DeviceStatus& d : devices) {
      f.Sample({{"device", d.device.id}}, static_cast<uint64_t>(d.workers));
    }
  }
  return out.str();
}

std::vector<Route> MetricsRoutes(InferenceService* service) {
  Grid* grid = service->grid();
  return {{"GET", "/metrics", [grid](const HttpRequest&) {
             std::vector<ModelMetrics> models;
             for (const ModelStatus& s : grid->Models()) {
               ModelMetrics m;
               m.status = s;
               if (auto c = grid->Counters(s.name); c.ok()) m.counters = *c;
               models.push_back(std::move(m));
             }
             HttpReply reply;
             reply.status = 200;
             reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
             reply.body = FormatMetrics(models, grid->Devices(), grid->SwapEvents());
             return reply;
           }}};
}

}  // namespace modelgrid::server

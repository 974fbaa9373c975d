// InferenceService (modelgrid/service/inference_service.h): health,
// metadata, repository, statistics, shared memory and the admin token. The
// inference path is in service_infer.cc, the Triton configuration in
// model_config_json.cc.
#include "modelgrid/service/inference_service.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "modelgrid/kserve/metadata.h"
#include "service/tracer.h"

namespace modelgrid {

namespace {

std::vector<TensorMetadata> TensorList(const std::vector<TensorSpec>& specs,
                                       int64_t max_batch_size) {
  std::vector<TensorMetadata> out;
  for (const TensorSpec& spec : specs) {
    out.push_back({spec.name, spec.datatype, MetadataShape(spec, max_batch_size)});
  }
  return out;
}

// Constant-time comparison: the time taken does not depend on where the
// strings first differ.
bool SameSecret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

}  // namespace

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

int64_t DeviceOrdinal(const std::string& device_id) {
  const size_t sep = device_id.find_last_of(":#");
  if (sep == std::string::npos) return 0;
  int64_t ordinal = 0;
  const char* first = device_id.data() + sep + 1;
  const char* last = device_id.data() + device_id.size();
  auto [end, ec] = std::from_chars(first, last, ordinal);
  return (ec == std::errc() && end == last) ? ordinal : 0;
}

ModelMetadata MetadataOf(const ModelStatus& status) {
  ModelMetadata m;
  m.name = status.name;
  if (!status.version.empty()) m.versions.push_back(status.version);
  m.platform = "pytorch_torchscript";
  m.inputs = TensorList(status.inputs, status.max_batch_size);
  m.outputs = TensorList(status.outputs, status.max_batch_size);
  return m;
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

ModelStatistics StatisticsOf(const ModelStatus& m, const ModelCounters& c,
                             const std::vector<DeviceStatus>& devices) {
  ModelStatistics s;
  s.name = m.name;
  s.version = m.version;
  s.last_inference_ms = c.last_inference_ms;
  s.inference_count = c.inferences;
  s.execution_count = c.executions;
  s.success = {c.success, c.request_us * 1000};
  s.fail = {c.failure, 0};
  s.queue = {c.success, c.queue_us * 1000};
  s.compute_input = {c.success, 0};
  s.compute_infer = {c.success, c.compute_us * 1000};
  s.compute_output = {c.success, 0};
  if (!m.device.empty()) {
    bool gpu = false;
    for (const DeviceStatus& d : devices) {
      if (d.device.id == m.device) gpu = d.device.is_accelerator();
    }
    s.memory_usage.push_back({gpu ? "GPU" : "CPU", DeviceOrdinal(m.device), m.current_bytes});
  }
  return s;
}

InferenceService::InferenceService(Grid* grid, ServiceOptions options)
    : grid_(grid),
      options_(std::move(options)),
      tracer_(std::make_unique<service::Tracer>(service::TraceSettings{}, options_.trace_format)) {
  if (options_.server_version.empty()) options_.server_version = MODELGRID_VERSION;
}

InferenceService::~InferenceService() = default;

Readiness InferenceService::ServerReady() const {
  if (grid_->Ready()) return {true, ""};
  std::string waiting, failing;
  for (const ModelStatus& m : grid_->Models()) {
    if (m.state == ModelState::kFailed || m.state == ModelState::kUnplaced) {
      failing += (failing.empty() ? "" : "; ") + m.name + " (" + ModelStateName(m.state) +
                 (m.reason.empty() ? "" : ": " + m.reason) + ")";
      continue;
    }
    if (m.device.empty() || m.state == ModelState::kReady) continue;
    waiting += (waiting.empty() ? "" : ", ") + m.name + " (" + ModelStateName(m.state) + ")";
  }
  std::string why = "server not ready";
  if (!waiting.empty()) why += ": waiting for " + waiting;
  if (!failing.empty()) why += (waiting.empty() ? ": " : "; ") + std::string("not serving ") + failing;
  return {false, why};
}

ServerMetadata InferenceService::Metadata() const {
  ServerMetadata m{options_.server_name,
                   options_.server_version,
                   {"binary_tensor_data", "classification", "model_configuration",
                    "model_repository", "statistics", "system_shared_memory", "trace"}};
  if (options_.log_control != nullptr) m.extensions.push_back("logging");
  m.extensions.push_back("modelgrid");
  return m;
}

Result<ModelStatus> InferenceService::FindModel(const std::string& model,
                                                const std::string& version) const {
  MG_ASSIGN_OR_RETURN(ModelStatus status, grid_->Model(model));
  if (version.empty() || version == status.version) return status;
  // Another version of a model that serves several (Grid::AddModel).
  auto other = grid_->Model(VersionedModelName(model, version));
  if (other.ok() && other->version == version) return *other;
  std::string served;
  for (const ModelStatus& m : VersionsOf(model)) {
    served += (served.empty() ? "" : ", ") + std::string("'") + m.version + "'";
  }
  return Status::NotFound("model '" + model + "' has no version '" + version + "'" +
                          (status.version.empty() ? std::string(" (it has no version folder)")
                                                  : " (serving versions " + served + ")"));
}

std::vector<ModelStatus> InferenceService::VersionsOf(const std::string& model) const {
  std::vector<ModelStatus> out;
  for (ModelStatus& m : grid_->Models()) {
    if (m.name == model || (!m.version.empty() && m.name == VersionedModelName(model, m.version))) {
      out.push_back(std::move(m));
    }
  }
  return out;
}

std::string InferenceService::PublicName(const ModelStatus& status) const {
  const std::string suffix = "@" + status.version;
  if (!status.version.empty() && status.name.size() > suffix.size() &&
      status.name.compare(status.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    const std::string base = status.name.substr(0, status.name.size() - suffix.size());
    if (grid_->Model(base).ok()) return base;
  }
  return status.name;
}

Result<Readiness> InferenceService::ModelReady(const std::string& model,
                                               const std::string& version) const {
  MG_ASSIGN_OR_RETURN(ModelStatus status, FindModel(model, version));
  if (status.state == ModelState::kReady) return Readiness{true, ""};
  std::string why = "model '" + PublicName(status) + "' version '" + status.version + "' is " +
                    ModelStateName(status.state);
  if (!status.reason.empty()) why += ": " + status.reason;
  return Readiness{false, why};
}

Result<ModelMetadata> InferenceService::Metadata(const std::string& model,
                                                 const std::string& version) const {
  MG_ASSIGN_OR_RETURN(ModelStatus status, FindModel(model, version));
  if (std::string why = MetadataUnavailableReason(status); !why.empty()) {
    return Status::Unavailable(why);
  }
  // A model on standby has not loaded yet: its configuration declares its
  // tensors (config.pbtxt / config.yaml), which is what a client needs.
  if (status.inputs.empty() && status.outputs.empty()) {
    MG_ASSIGN_OR_RETURN(ModelEntry entry, grid_->Entry(status.name));
    status.inputs = entry.config.inputs;
    status.outputs = entry.config.outputs;
    status.max_batch_size = entry.config.max_batch_size;
  }
  ModelMetadata m = MetadataOf(status);
  m.name = model;
  m.versions.clear();
  for (const ModelStatus& v : VersionsOf(model)) {
    if (!v.version.empty()) m.versions.push_back(v.version);
  }
  std::sort(m.versions.begin(), m.versions.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;  // numeric folders
  });
  return m;
}

std::vector<RepositoryEntry> InferenceService::RepositoryIndex(bool ready_only) const {
  std::vector<RepositoryEntry> out;
  for (const ModelStatus& m : grid_->Models()) {
    if (ready_only && m.state != ModelState::kReady) continue;
    out.push_back({PublicName(m), m.version, RepositoryStateName(m.state), m.reason, m.state});
  }
  return out;
}

Status InferenceService::LoadModel(const std::string& model, std::string_view token) {
  MG_RETURN_IF_ERROR(Authorize(token, "loading model '" + model + "'"));
  MG_RETURN_IF_ERROR(grid_->Load(model));
  for (const ModelStatus& v : VersionsOf(model)) {
    if (v.name != model) MG_RETURN_IF_ERROR(grid_->Load(v.name));
  }
  return Status::Ok();
}

Status InferenceService::UnloadModel(const std::string& model, std::string_view token) {
  MG_RETURN_IF_ERROR(Authorize(token, "unloading model '" + model + "'"));
  // Every version (Triton unloads a model as a whole).
  const std::vector<ModelStatus> versions = VersionsOf(model);
  MG_RETURN_IF_ERROR(grid_->Unload(model));
  for (const ModelStatus& v : versions) {
    if (v.name == model) continue;
    // A version that is not loaded (failed, on standby) has nothing to unload.
    const Status s = grid_->Unload(v.name);
    if (!s.ok() && s.code() != StatusCode::kInvalidArgument) return s;
  }
  return Status::Ok();
}

Result<std::vector<ModelStatistics>> InferenceService::Statistics(const std::string& model,
                                                                  const std::string& version,
                                                                  bool refresh) {
  if (refresh) grid_->RefreshMemory();
  std::vector<ModelStatus> models;
  if (!model.empty() && !version.empty()) {
    MG_ASSIGN_OR_RETURN(ModelStatus status, FindModel(model, version));
    models.push_back(std::move(status));
  } else if (!model.empty()) {  // every version of it, as Triton
    MG_RETURN_IF_ERROR(grid_->Model(model).status());
    models = VersionsOf(model);
  } else {
    models = grid_->Models();
  }
  const std::vector<DeviceStatus> devices = grid_->Devices();
  std::vector<ModelStatistics> out;
  for (const ModelStatus& m : models) {
    auto counters = grid_->Counters(m.name);
    // A model unloaded between the two calls has no counters any more: zeros.
    out.push_back(StatisticsOf(m, counters.ok() ? *counters : ModelCounters{}, devices));
    out.back().name = PublicName(m);
  }
  return out;
}

Result<std::vector<ipc::SharedMemoryRegion>> InferenceService::SharedMemoryStatus(
    const std::string& name) const {
  if (name.empty()) return grid_->SharedMemoryRegions();
  MG_ASSIGN_OR_RETURN(ipc::SharedMemoryRegion region, grid_->SharedMemoryRegion(name));
  return std::vector<ipc::SharedMemoryRegion>{region};
}

Status InferenceService::RegisterSharedMemory(const std::string& name, const std::string& key,
                                              uint64_t offset, uint64_t byte_size,
                                              std::string_view token) {
  MG_RETURN_IF_ERROR(Authorize(token, "registering shared memory region '" + name + "'"));
  const std::string& prefix = options_.shm_key_prefix;
  if (key.compare(0, prefix.size(), prefix) != 0) {
    return Status::PermissionDenied("shared memory region '" + name + "': key '" + key +
                                    "' does not start with the allowed prefix '" + prefix +
                                    "' (modelgrid serve --shm-key-prefix)");
  }
  return grid_->RegisterSharedMemory(name, key, offset, byte_size);
}

Status InferenceService::UnregisterSharedMemory(const std::string& name, std::string_view token) {
  MG_RETURN_IF_ERROR(Authorize(token, name.empty()
                                          ? std::string("unregistering every shared memory region")
                                          : "unregistering shared memory region '" + name + "'"));
  return grid_->UnregisterSharedMemory(name);
}

Status InferenceService::Authorize(std::string_view token, std::string_view what) const {
  if (options_.admin_token.empty() || SameSecret(token, options_.admin_token)) return Status::Ok();
  return Status::PermissionDenied(
      std::string(what) + " needs the admin token (" +
      (token.empty() ? "none was presented" : "the one presented is wrong") +
      "): send 'Authorization: Bearer <token>' (HTTP) or 'authorization' metadata (gRPC)");
}

std::string BearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size()) return "";
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return "";
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  return std::string(token);
}

}  // namespace modelgrid

// Triton's system shared memory extension (docs/protocol/
// extension_shared_memory.md in triton-inference-server/server) over the
// grid's registry (Grid::RegisterSharedMemory, modelgrid/ipc/shm_registry.h):
//   GET  /v2/systemsharedmemory/status                     every region
//   GET  /v2/systemsharedmemory/region/{name}/status       that one region
//   POST /v2/systemsharedmemory/region/{name}/register     {"key", "offset"?, "byte_size"}
//   POST /v2/systemsharedmemory/region/{name}/unregister
//   POST /v2/systemsharedmemory/unregister                 every region
// A status is a JSON array of {"name", "key", "offset", "byte_size"}; the
// other routes answer 200 with {}. Register and unregister are management
// calls (the admin token, the allowed key prefix: InferenceService). Infer
// requests then name a region in an input's or requested output's
// parameters.
#include <cstdint>
#include <string>

#include "server/routes.h"

namespace modelgrid::server {

namespace {

using nlohmann::json;

constexpr const char* kRegionPath = "/v2/systemsharedmemory/region/([^/]+)";

// The body of a register request, decoded.
struct RegisterBody {
  std::string key;
  uint64_t offset = 0;
  uint64_t byte_size = 0;
};

// The status entry of one region: {"name", "key", "offset", "byte_size"}.
json RegionJson(const ipc::SharedMemoryRegion& region) {
  return {{"name", region.name},
          {"key", region.key},
          {"offset", region.offset},
          {"byte_size", region.byte_size}};
}

// Reads the non-negative integer field `field` of `body` into `*out`; an
// absent field leaves `*out` as it is unless `required`. Errors:
// kInvalidArgument "<who>: \"<field>\" must be a non-negative integer, got
// <value>" or "<who>: missing \"<field>\"".
Status UnsignedField(const json& body, const char* field, bool required, const std::string& who,
                     uint64_t* out) {
  const auto it = body.find(field);
  if (it == body.end()) {
    if (!required) return Status::Ok();
    return Status::InvalidArgument(who + ": missing \"" + field + "\"");
  }
  if (!it->is_number_unsigned()) {
    return Status::InvalidArgument(who + ": \"" + field +
                                   "\" must be a non-negative integer, got " +
                                   it->dump(-1, ' ', false, json::error_handler_t::replace));
  }
  *out = it->get<uint64_t>();
  return Status::Ok();
}

// Decodes a register body {"key": string, "offset": uint (default 0),
// "byte_size": uint} for region `name`. Errors: kInvalidArgument for
// malformed JSON, a body that is not an object, or a missing or mistyped
// field (the message names the region and the field).
Result<RegisterBody> ParseRegisterBody(const std::string& name, const std::string& text) {
  MG_ASSIGN_OR_RETURN(json body, ParseJsonObjectBody(text));
  const std::string who = "shared memory region '" + name + "'";
  RegisterBody parsed;
  const auto key = body.find("key");
  if (key == body.end()) return Status::InvalidArgument(who + ": missing \"key\"");
  if (!key->is_string()) return Status::InvalidArgument(who + ": \"key\" must be a string");
  parsed.key = key->get<std::string>();
  MG_RETURN_IF_ERROR(UnsignedField(body, "offset", /*required=*/false, who, &parsed.offset));
  MG_RETURN_IF_ERROR(UnsignedField(body, "byte_size", /*required=*/true, who, &parsed.byte_size));
  return parsed;
}

// POST .../region/{name}/register: 200 {} once registered. Errors: 400 for
// a bad body, an already registered name or sizes past the object; 404 for
// an unknown key (SharedMemoryRegistry::Register).
HttpReply Register(InferenceService* service, const HttpRequest& req) {
  const std::string& name = req.Capture(0);
  auto body = ParseRegisterBody(name, req.body);
  if (!body.ok()) return ErrorReply(body.status());
  if (Status s = service->RegisterSharedMemory(name, body->key, body->offset, body->byte_size,
                                               RequestToken(req));
      !s.ok()) {
    return ErrorReply(s);
  }
  return JsonReply(200, json::object());
}

// POST .../region/{name}/unregister (`name` set) or
// /v2/systemsharedmemory/unregister (every region, `name` ""): 200 {}.
// Errors: 404 for an unknown name.
HttpReply Unregister(InferenceService* service, const HttpRequest& req, const std::string& name) {
  if (Status s = service->UnregisterSharedMemory(name, RequestToken(req)); !s.ok()) {
    return ErrorReply(s);
  }
  return JsonReply(200, json::object());
}

// GET /v2/systemsharedmemory/status: 200 with every region (by name).
HttpReply AllStatus(const InferenceService& service) {
  json list = json::array();
  auto regions = service.SharedMemoryStatus("");  // kept: the loop must not see a temporary's insides
  if (!regions.ok()) return ErrorReply(regions.status());
  for (const ipc::SharedMemoryRegion& r : *regions) list.push_back(RegionJson(r));
  return JsonReply(200, list);
}

// GET .../region/{name}/status: 200 with a one-entry array. Errors: 404
// for an unknown name.
HttpReply RegionStatus(const InferenceService& service, const HttpRequest& req) {
  auto regions = service.SharedMemoryStatus(req.Capture(0));
  if (!regions.ok()) return ErrorReply(regions.status());
  return JsonReply(200, json::array({RegionJson(regions->at(0))}));
}

}  // namespace

std::vector<Route> SharedMemoryRoutes(InferenceService* service) {
  const std::string region = kRegionPath;
  return {
      {"GET", "/v2/systemsharedmemory/status",
       [service](const HttpRequest&) { return AllStatus(*service); }},
      {"GET", region + "/status",
       [service](const HttpRequest& r) { return RegionStatus(*service, r); }},
      {"POST", region + "/register",
       [service](const HttpRequest& r) { return Register(service, r); }},
      {"POST", region + "/unregister",
       [service](const HttpRequest& r) { return Unregister(service, r, r.Capture(0)); }},
      {"POST", "/v2/systemsharedmemory/unregister",
       [service](const HttpRequest& r) { return Unregister(service, r, ""); }},
  };
}

}  // namespace modelgrid::server

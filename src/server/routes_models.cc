// GET /v2/models/{m}[/versions/{v}] (metadata) and .../ready.
#include <string>

#include "server/routes.h"
#include "server/status_json.h"

namespace modelgrid::server {

namespace {

HttpReply Metadata(const Grid& grid, const HttpRequest& req) {
  auto status = FindModelVersion(grid, req.Capture(0), req.Capture(1));
  if (!status.ok()) return ErrorReply(status.status());
  // A model that never loaded has no inputs or outputs to show: say why.
  if (std::string why = MetadataUnavailableReason(*status); !why.empty()) {
    return ErrorReply(503, why);
  }
  return JsonReply(200, ModelMetadataView(*status));
}

HttpReply Ready(const Grid& grid, const HttpRequest& req) {
  auto status = FindModelVersion(grid, req.Capture(0), req.Capture(1));
  if (!status.ok()) return ErrorReply(status.status());
  if (status->state == ModelState::kReady) {
    return JsonReply(200, {{"name", status->name}, {"ready", true}});
  }
  std::string why = "model '" + status->name + "' is " + ModelStateName(status->state);
  if (!status->reason.empty()) why += ": " + status->reason;
  return JsonReply(503, {{"name", status->name}, {"ready", false}, {"error", why}});
}

}  // namespace

std::vector<Route> ModelRoutes(Grid* grid) {
  const std::string model = kModelPath;
  return {
      {"GET", model, [grid](const HttpRequest& r) { return Metadata(*grid, r); }},
      {"GET", model + "/ready", [grid](const HttpRequest& r) { return Ready(*grid, r); }},
  };
}

}  // namespace modelgrid::server

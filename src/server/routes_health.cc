// GET /v2/health/live, /v2/health/ready and /v2 (server metadata).
#include <string>

#include "modelgrid/kserve/metadata.h"
#include "server/routes.h"

namespace modelgrid::server {

namespace {

// Why the grid is not ready: the placed models that are not serving.
std::string NotReadyReason(const Grid& grid) {
  std::string waiting;
  for (const ModelStatus& m : grid.Models()) {
    if (m.device.empty() || m.state == ModelState::kReady) continue;
    waiting += (waiting.empty() ? "" : ", ") + m.name + " (" + ModelStateName(m.state) + ")";
  }
  return waiting.empty() ? "server not ready" : "server not ready: waiting for " + waiting;
}

}  // namespace

std::vector<Route> HealthRoutes(Grid* grid) {
  return {
      {"GET", "/v2/health/live",
       [](const HttpRequest&) {
         return JsonReply(200, {{"live", true}});
       }},
      {"GET", "/v2/health/ready",
       [grid](const HttpRequest&) {
         if (grid->Ready()) return JsonReply(200, {{"ready", true}});
         return JsonReply(503, {{"ready", false}, {"error", NotReadyReason(*grid)}});
       }},
      {"GET", "/v2",
       [](const HttpRequest&) {
         return JsonReply(
             200, ServerMetadataJson("modelgrid", MODELGRID_VERSION,
                                     {"binary_tensor_data", "model_repository", "statistics",
                                      "system_shared_memory", "modelgrid"}));
       }},
  };
}

}  // namespace modelgrid::server

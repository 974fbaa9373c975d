// GET /v2/health/live, /v2/health/ready and /v2 (server metadata).
#include <string>

#include "modelgrid/kserve/metadata.h"
#include "server/routes.h"

namespace modelgrid::server {

namespace {

// Why the grid is not ready: the placed models that are not serving yet,
// and (strict readiness) the models that failed or fit nowhere, with why.
std::string NotReadyReason(const Grid& grid) {
  std::string waiting, failing;
  for (const ModelStatus& m : grid.Models()) {
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
  return why;
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

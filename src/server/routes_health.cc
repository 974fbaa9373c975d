// GET /v2/health/live, /v2/health/ready and /v2 (server metadata), over
// the InferenceService.
#include <string>

#include "server/routes.h"

namespace modelgrid::server {

std::vector<Route> HealthRoutes(InferenceService* service) {
  return {
      {"GET", "/v2/health/live",
       [service](const HttpRequest&) { return JsonReply(200, {{"live", service->Live()}}); }},
      {"GET", "/v2/health/ready",
       [service](const HttpRequest&) {
         const Readiness r = service->ServerReady();
         if (r.ready) return JsonReply(200, {{"ready", true}});
         return JsonReply(503, {{"ready", false}, {"error", r.reason}});
       }},
      {"GET", "/v2",
       [service](const HttpRequest&) {
         const ServerMetadata m = service->Metadata();
         return JsonReply(200,
                          {{"name", m.name}, {"version", m.version}, {"extensions", m.extensions}});
       }},
  };
}

}  // namespace modelgrid::server

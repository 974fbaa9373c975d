// GET /v2/models/{m}[/versions/{v}] (metadata), .../ready and .../config,
// over the InferenceService.
#include "server/routes.h"
#include "server/status_json.h"

namespace modelgrid::server {

std::vector<Route> ModelRoutes(InferenceService* service) {
  const std::string model = kModelPath;
  return {
      {"GET", model,
       [service](const HttpRequest& r) {
         auto m = service->Metadata(r.Capture(0), r.Capture(1));
         if (!m.ok()) return ErrorReply(m.status());
         return JsonReply(200, MetadataJson(*m));
       }},
      {"GET", model + "/ready",
       [service](const HttpRequest& r) {
         auto ready = service->ModelReady(r.Capture(0), r.Capture(1));
         if (!ready.ok()) return ErrorReply(ready.status());
         if (ready->ready) return JsonReply(200, {{"name", r.Capture(0)}, {"ready", true}});
         return JsonReply(503, {{"name", r.Capture(0)}, {"ready", false}, {"error", ready->reason}});
       }},
  };
}

std::vector<Route> ConfigRoutes(InferenceService* service) {
  return {{"GET", std::string(kModelPath) + "/config", [service](const HttpRequest& r) {
             auto config = service->Config(r.Capture(0), r.Capture(1));
             if (!config.ok()) return ErrorReply(config.status());
             return JsonReply(200, *config);
           }}};
}

}  // namespace modelgrid::server

// Triton's logging extension over the InferenceService: GET /v2/logging
// (the settings in force) and POST /v2/logging (changes those named in the
// body and answers them all; needs the admin token). What may change and
// why the rest may not: InferenceService::UpdateLogSettings.
#include "server/routes.h"

namespace modelgrid::server {

std::vector<Route> LoggingRoutes(InferenceService* service) {
  return {
      {"GET", "/v2/logging",
       [service](const HttpRequest&) {
         auto settings = service->GetLogSettings();
         if (!settings.ok()) return ErrorReply(settings.status());
         return JsonReply(200, *settings);
       }},
      {"POST", "/v2/logging",
       [service](const HttpRequest& r) {
         auto body = ParseJsonObjectBody(r.body);
         if (!body.ok()) return ErrorReply(body.status());
         auto settings = service->UpdateLogSettings(*body, RequestToken(r));
         if (!settings.ok()) return ErrorReply(settings.status());
         return JsonReply(200, *settings);
       }},
  };
}

}  // namespace modelgrid::server

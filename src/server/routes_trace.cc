// Triton's trace extension over the InferenceService: GET and POST
// /v2/trace/setting (the global settings) and
// /v2/models/{m}/trace/setting (a model's, over the global ones). POST
// needs the admin token (it names a file the server writes); its body is
// the settings to change, each a string or an array of strings, null to
// clear a model's own setting. The sampling and the records:
// src/service/tracer.h.
#include "server/routes.h"

namespace modelgrid::server {

namespace {

HttpReply GetSettings(InferenceService* service, const std::string& model) {
  auto settings = service->GetTraceSettings(model);
  if (!settings.ok()) return ErrorReply(settings.status());
  return JsonReply(200, *settings);
}

HttpReply PostSettings(InferenceService* service, const HttpRequest& req,
                       const std::string& model) {
  auto body = ParseJsonObjectBody(req.body);
  if (!body.ok()) return ErrorReply(body.status());
  auto settings = service->UpdateTraceSettings(model, *body, RequestToken(req));
  if (!settings.ok()) return ErrorReply(settings.status());
  return JsonReply(200, *settings);
}

}  // namespace

std::vector<Route> TraceRoutes(InferenceService* service) {
  const std::string model_path = "/v2/models/([^/]+)/trace/setting";
  return {
      {"GET", "/v2/trace/setting",
       [service](const HttpRequest&) { return GetSettings(service, ""); }},
      {"POST", "/v2/trace/setting",
       [service](const HttpRequest& r) { return PostSettings(service, r, ""); }},
      {"GET", model_path,
       [service](const HttpRequest& r) { return GetSettings(service, r.Capture(0)); }},
      {"POST", model_path,
       [service](const HttpRequest& r) { return PostSettings(service, r, r.Capture(0)); }},
  };
}

}  // namespace modelgrid::server

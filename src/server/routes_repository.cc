// Triton's model repository extension over the InferenceService:
// POST /v2/repository/index, /v2/repository/models/{m}/load and
// /v2/repository/models/{m}/unload (the last two behind the admin token).
#include "server/routes.h"
#include "server/status_json.h"

namespace modelgrid::server {

namespace {

using nlohmann::json;

// Body {"ready": bool?}: with ready true, only the models that serve.
HttpReply Index(const InferenceService& service, const HttpRequest& req) {
  auto body = ParseJsonObjectBody(req.body);
  if (!body.ok()) return ErrorReply(body.status());
  bool ready_only = false;
  if (body->contains("ready")) {
    if (!(*body)["ready"].is_boolean()) {
      return ErrorReply(Status::InvalidArgument("\"ready\" must be a boolean"));
    }
    ready_only = (*body)["ready"].get<bool>();
  }
  json index = json::array();
  for (const RepositoryEntry& e : service.RepositoryIndex(ready_only)) {
    index.push_back(RepositoryEntryJson(e));
  }
  return JsonReply(200, index);
}

// Triton's load parameters (a config override, model files) change what is
// loaded; ModelGrid loads what the repository holds, so it refuses them
// rather than ignoring them.
Status CheckLoadBody(const HttpRequest& req) {
  MG_ASSIGN_OR_RETURN(json body, ParseJsonObjectBody(req.body));
  if (body.contains("parameters")) {
    const json& params = body["parameters"];
    if (!params.is_object()) return Status::InvalidArgument("\"parameters\" must be an object");
    if (!params.empty()) {
      return Status::Unsupported("load parameters are not supported (got '" + params.begin().key() +
                                 "'): ModelGrid loads the model as the repository holds it");
    }
  }
  return Status::Ok();
}

// The model's ModelGrid view after a load or unload.
HttpReply ModelAnswer(const InferenceService& service, const std::string& model) {
  auto status = service.grid()->Model(model);
  if (!status.ok()) return ErrorReply(status.status());
  return JsonReply(200, ModelView(*status));
}

HttpReply Load(InferenceService* service, const HttpRequest& req) {
  const std::string& model = req.Capture(0);
  if (Status s = CheckLoadBody(req); !s.ok()) return ErrorReply(s);
  if (Status s = service->LoadModel(model, RequestToken(req)); !s.ok()) return ErrorReply(s);
  return ModelAnswer(*service, model);
}

// Body {"parameters": {"unload_dependents": bool}?} (Triton); no model
// depends on another here, so the parameters are read for validity only.
HttpReply Unload(InferenceService* service, const HttpRequest& req) {
  const std::string& model = req.Capture(0);
  auto body = ParseJsonObjectBody(req.body);
  if (!body.ok()) return ErrorReply(body.status());
  if (Status s = service->UnloadModel(model, RequestToken(req)); !s.ok()) return ErrorReply(s);
  return ModelAnswer(*service, model);
}

}  // namespace

std::vector<Route> RepositoryRoutes(InferenceService* service) {
  return {
      {"POST", "/v2/repository/index",
       [service](const HttpRequest& r) { return Index(*service, r); }},
      {"POST", "/v2/repository/models/([^/]+)/load",
       [service](const HttpRequest& r) { return Load(service, r); }},
      {"POST", "/v2/repository/models/([^/]+)/unload",
       [service](const HttpRequest& r) { return Unload(service, r); }},
  };
}

}  // namespace modelgrid::server

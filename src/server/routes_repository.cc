// Triton's model repository extension: POST /v2/repository/index,
// /v2/repository/models/{m}/load and /v2/repository/models/{m}/unload.
#include <string>

#include "server/routes.h"
#include "server/status_json.h"

namespace modelgrid::server {

namespace {

using nlohmann::json;

// Body {"ready": bool?}: with ready true, only the models that serve.
HttpReply Index(const Grid& grid, const HttpRequest& req) {
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
  for (const ModelStatus& m : grid.Models()) {
    if (ready_only && m.state != ModelState::kReady) continue;
    index.push_back(RepositoryIndexEntry(m));
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

HttpReply Load(Grid* grid, const HttpRequest& req) {
  const std::string& model = req.Capture(0);
  if (Status s = CheckLoadBody(req); !s.ok()) return ErrorReply(s);
  if (Status s = grid->Load(model); !s.ok()) return ErrorReply(s);
  auto status = grid->Model(model);
  if (!status.ok()) return ErrorReply(status.status());
  return JsonReply(200, ModelView(*status));
}

// Body {"parameters": {"unload_dependents": bool}?} (Triton); no model
// depends on another here, so the parameters are read for validity only.
HttpReply Unload(Grid* grid, const HttpRequest& req) {
  const std::string& model = req.Capture(0);
  auto body = ParseJsonObjectBody(req.body);
  if (!body.ok()) return ErrorReply(body.status());
  if (Status s = grid->Unload(model); !s.ok()) return ErrorReply(s);
  auto status = grid->Model(model);
  if (!status.ok()) return ErrorReply(status.status());
  return JsonReply(200, ModelView(*status));
}

}  // namespace

std::vector<Route> RepositoryRoutes(Grid* grid) {
  return {
      {"POST", "/v2/repository/index", [grid](const HttpRequest& r) { return Index(*grid, r); }},
      {"POST", "/v2/repository/models/([^/]+)/load",
       [grid](const HttpRequest& r) { return Load(grid, r); }},
      {"POST", "/v2/repository/models/([^/]+)/unload",
       [grid](const HttpRequest& r) { return Unload(grid, r); }},
  };
}

}  // namespace modelgrid::server

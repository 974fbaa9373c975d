// ModelGrid's own routes: GET /v2/modelgrid/devices and /v2/modelgrid/models
// (placement and memory at a glance; ?refresh=1 asks the workers for fresh
// memory figures first), and reconfiguration while serving:
// POST /v2/modelgrid/models/{m}/config, POST /v2/modelgrid/strategy,
// GET /v2/modelgrid/changes (docs/design.md, "Memory model").
#include <limits>

#include "modelgrid/bytes.h"
#include "server/routes.h"
#include "server/status_json.h"

namespace modelgrid::server {

namespace {

using nlohmann::json;

HttpReply Devices(Grid* grid, const HttpRequest& req) {
  if (req.QueryFlag("refresh")) grid->RefreshMemory();
  json list = json::array();
  for (const DeviceStatus& d : grid->Devices()) list.push_back(DeviceView(d));
  return JsonReply(200, {{"devices", list}});
}

HttpReply Models(Grid* grid, const HttpRequest& req) {
  if (req.QueryFlag("refresh")) grid->RefreshMemory();
  json list = json::array();
  for (const ModelStatus& m : grid->Models()) list.push_back(ModelView(m));
  return JsonReply(200, {{"models", list}});
}

// A byte figure: an integer, or a quantity string such as "2GiB".
Result<uint64_t> BytesField(const json& v, const std::string& who) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_string()) {
    auto b = ParseBytes(v.get<std::string>());
    if (!b.ok()) return b.status().WithPrefix(who);
    return b;
  }
  return Status::InvalidArgument(who + ": expected a non-negative integer or a quantity "
                                 "such as \"2GiB\", got " + v.dump());
}

// Decodes {"request", "limit", "priority", "resolver", "load", "pinned"}
// (every field optional, nothing else allowed).
Result<ModelUpdate> DecodeUpdate(const std::string& body, const std::string& model) {
  MG_ASSIGN_OR_RETURN(json j, ParseJsonObjectBody(body));
  const std::string who = "model '" + model + "' config";
  ModelUpdate u;
  for (const auto& [key, v] : j.items()) {
    const std::string field = who + ": field '" + key + "'";
    if (key == "request" || key == "limit") {
      MG_ASSIGN_OR_RETURN(uint64_t bytes, BytesField(v, field));
      (key == "request" ? u.request_bytes : u.limit_bytes) = bytes;
    } else if (key == "priority") {
      const bool in_range =
          v.is_number_integer() &&
          (v.is_number_unsigned()
               ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int>::max())
               : v.get<int64_t>() >= std::numeric_limits<int>::min() &&
                     v.get<int64_t>() <= std::numeric_limits<int>::max());
      if (!in_range) {
        return Status::InvalidArgument(field + ": expected an integer in int range, got " +
                                       v.dump(-1, ' ', false, json::error_handler_t::replace));
      }
      u.priority = static_cast<int>(v.get<int64_t>());
    } else if (key == "resolver") {
      if (!v.is_string()) return Status::InvalidArgument(field + ": expected a string");
      auto r = ParseResolver(v.get<std::string>());
      if (!r.ok()) return r.status().WithPrefix(field);
      u.resolver = *r;
    } else if (key == "load") {
      if (!v.is_string()) return Status::InvalidArgument(field + ": expected a string");
      auto p = ParseLoadPolicy(v.get<std::string>());
      if (!p.ok()) return p.status().WithPrefix(field);
      u.load = *p;
    } else if (key == "pinned") {
      if (!v.is_boolean()) return Status::InvalidArgument(field + ": expected true or false");
      u.pinned = v.get<bool>();
    } else {
      return Status::InvalidArgument(who + ": unknown field '" + key +
                                     "' (fields: request, limit, priority, resolver, load, "
                                     "pinned)");
    }
  }
  return u;
}

HttpReply Reconfigure(Grid* grid, const HttpRequest& req) {
  const std::string& model = req.Capture(0);
  auto update = DecodeUpdate(req.body, model);
  if (!update.ok()) return ErrorReply(update.status());
  if (Status s = grid->Reconfigure(model, *update); !s.ok()) return ErrorReply(s);
  auto status = grid->Model(model);
  if (!status.ok()) return ErrorReply(status.status());
  return JsonReply(200, ModelView(*status));
}

HttpReply SetStrategy(Grid* grid, const HttpRequest& req) {
  auto body = ParseJsonObjectBody(req.body);
  if (!body.ok()) return ErrorReply(body.status());
  const auto it = body->find("strategy");
  if (it == body->end() || !it->is_string() || body->size() != 1) {
    return ErrorReply(400, "expected {\"strategy\": \"<name>\"} and nothing else");
  }
  auto strategy = ParseStrategy(it->get<std::string>());
  if (!strategy.ok()) return ErrorReply(strategy.status());
  grid->SetStrategy(*strategy);
  return JsonReply(200, {{"strategy", StrategyName(grid->strategy())}});
}

HttpReply Changes(Grid* grid) {
  return JsonReply(200, {{"strategy", StrategyName(grid->strategy())},
                         {"changes", grid->ChangeLog()}});
}

}  // namespace

std::vector<Route> ModelGridRoutes(InferenceService* service) {
  Grid* grid = service->grid();
  return {
      {"GET", "/v2/modelgrid/devices", [grid](const HttpRequest& r) { return Devices(grid, r); }},
      {"GET", "/v2/modelgrid/models", [grid](const HttpRequest& r) { return Models(grid, r); }},
      {"GET", "/v2/modelgrid/changes", [grid](const HttpRequest&) { return Changes(grid); }},
      {"POST", "/v2/modelgrid/strategy",
       [service, grid](const HttpRequest& r) {
         if (Status s = service->Authorize(RequestToken(r), "changing the strategy"); !s.ok()) {
           return ErrorReply(s);
         }
         return SetStrategy(grid, r);
       }},
      {"POST", "/v2/modelgrid/models/([^/]+)/config",
       [service, grid](const HttpRequest& r) {
         if (Status s = service->Authorize(RequestToken(r),
                                           "reconfiguring model '" + r.Capture(0) + "'");
             !s.ok()) {
           return ErrorReply(s);
         }
         return Reconfigure(grid, r);
       }},
  };
}

}  // namespace modelgrid::server

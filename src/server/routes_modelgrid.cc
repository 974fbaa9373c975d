// ModelGrid's own routes: GET /v2/modelgrid/devices and /v2/modelgrid/models
// (placement and memory at a glance). Query ?refresh=1 asks the workers for
// fresh memory figures first.
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

}  // namespace

std::vector<Route> ModelGridRoutes(Grid* grid) {
  return {
      {"GET", "/v2/modelgrid/devices", [grid](const HttpRequest& r) { return Devices(grid, r); }},
      {"GET", "/v2/modelgrid/models", [grid](const HttpRequest& r) { return Models(grid, r); }},
  };
}

}  // namespace modelgrid::server

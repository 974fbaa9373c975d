// Triton's statistics extension: GET /v2/models/stats (every model) and
// /v2/models/{m}[/versions/{v}]/stats, with memory_usage from the measured
// bytes. Query ?refresh=1 asks the workers for fresh memory figures first.
#include <string>

#include "server/routes.h"
#include "server/status_json.h"

namespace modelgrid::server {

namespace {

using nlohmann::json;

HttpReply Stats(Grid* grid, const HttpRequest& req, bool one_model) {
  if (req.QueryFlag("refresh")) grid->RefreshMemory();
  std::vector<ModelStatus> models;
  if (one_model) {
    auto status = FindModelVersion(*grid, req.Capture(0), req.Capture(1));
    if (!status.ok()) return ErrorReply(status.status());
    models.push_back(std::move(*status));
  } else {
    models = grid->Models();
  }
  const std::vector<DeviceStatus> devices = grid->Devices();
  json list = json::array();
  for (const ModelStatus& m : models) {
    auto counters = grid->Counters(m.name);
    // A model unloaded between the two calls has no counters any more: zeros.
    list.push_back(ModelStatsView(m, counters.ok() ? *counters : ModelCounters{}, devices));
  }
  return JsonReply(200, {{"model_stats", list}});
}

}  // namespace

std::vector<Route> StatsRoutes(Grid* grid) {
  return {
      {"GET", "/v2/models/stats",
       [grid](const HttpRequest& r) { return Stats(grid, r, /*one_model=*/false); }},
      {"GET", std::string(kModelPath) + "/stats",
       [grid](const HttpRequest& r) { return Stats(grid, r, /*one_model=*/true); }},
  };
}

}  // namespace modelgrid::server

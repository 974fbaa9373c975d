// Triton's statistics extension over the InferenceService: GET
// /v2/models/stats (every model) and /v2/models/{m}[/versions/{v}]/stats,
// with memory_usage from the measured bytes. Query ?refresh=1 asks the
// workers for fresh memory figures first.
#include "server/routes.h"
#include "server/status_json.h"

namespace modelgrid::server {

namespace {

HttpReply Stats(InferenceService* service, const HttpRequest& req, bool one_model) {
  auto stats = service->Statistics(one_model ? req.Capture(0) : "",
                                   one_model ? req.Capture(1) : "", req.QueryFlag("refresh"));
  if (!stats.ok()) return ErrorReply(stats.status());
  nlohmann::json list = nlohmann::json::array();
  for (const ModelStatistics& s : *stats) list.push_back(StatisticsJson(s));
  return JsonReply(200, {{"model_stats", list}});
}

}  // namespace

std::vector<Route> StatsRoutes(InferenceService* service) {
  return {
      {"GET", "/v2/models/stats",
       [service](const HttpRequest& r) { return Stats(service, r, /*one_model=*/false); }},
      {"GET", std::string(kModelPath) + "/stats",
       [service](const HttpRequest& r) { return Stats(service, r, /*one_model=*/true); }},
  };
}

}  // namespace modelgrid::server

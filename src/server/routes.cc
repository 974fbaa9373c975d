// The route table and the admin token of a request (routes.h).
#include "server/routes.h"

namespace modelgrid::server {

std::string RequestToken(const HttpRequest& req) {
  auto header = req.Header("Authorization");
  return header ? BearerToken(*header) : "";
}

std::vector<Route> AllRoutes(InferenceService* service) {
  std::vector<Route> all;
  // Literal paths first: /v2/models/stats must not be read as model "stats".
  for (auto group :
       {HealthRoutes(service), StatsRoutes(service), ModelGridRoutes(service),
        MetricsRoutes(service), RepositoryRoutes(service), SharedMemoryRoutes(service),
        TraceRoutes(service), LoggingRoutes(service), InferRoutes(service), GenerateRoutes(service),
        ConfigRoutes(service), ModelRoutes(service), OpenAiRoutes(service)}) {
    for (Route& r : group) all.push_back(std::move(r));
  }
  return all;
}

}  // namespace modelgrid::server

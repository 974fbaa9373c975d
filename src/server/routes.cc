// The route table and the admin token of a request (routes.h).
#include "server/routes.h"

namespace modelgrid::server {

std::string_view RouteLiteralPrefix(std::string_view pattern) {
  // A '|' outside any group and class: the other branch may start with anything.
  int depth = 0;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      ++i;
    } else if (in_class) {
      in_class = c != ']';
    } else if (c == '[') {
      in_class = true;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (c == '|' && depth == 0) {
      return {};
    }
  }
  constexpr std::string_view kMeta = "\\^$.|?*+()[]{}";
  size_t n = 0;
  while (n < pattern.size() && kMeta.find(pattern[n]) == std::string_view::npos) ++n;
  if (n > 0 && n < pattern.size() &&
      (pattern[n] == '?' || pattern[n] == '*' || pattern[n] == '{')) {
    --n;  // the last literal may be absent
  }
  return pattern.substr(0, n);
}

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

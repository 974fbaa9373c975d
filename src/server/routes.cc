// The route table and the model/version lookup shared by the routes (routes.h).
#include "server/routes.h"

namespace modelgrid::server {

Result<ModelStatus> FindModelVersion(const Grid& grid, const std::string& model,
                                     const std::string& version) {
  MG_ASSIGN_OR_RETURN(ModelStatus status, grid.Model(model));
  if (!version.empty() && version != status.version) {
    return Status::NotFound("model '" + model + "' has no version '" + version + "'" +
                            (status.version.empty()
                                 ? std::string(" (it has no version folder)")
                                 : " (serving version '" + status.version + "')"));
  }
  return status;
}

std::vector<Route> AllRoutes(Grid* grid) {
  std::vector<Route> all;
  // Literal paths first: /v2/models/stats must not be read as model "stats".
  for (auto group :
       {HealthRoutes(grid), StatsRoutes(grid), ModelGridRoutes(grid), MetricsRoutes(grid),
        RepositoryRoutes(grid), SharedMemoryRoutes(grid), InferRoutes(grid), ModelRoutes(grid)}) {
    for (Route& r : group) all.push_back(std::move(r));
  }
  return all;
}

}  // namespace modelgrid::server

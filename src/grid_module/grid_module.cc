// AddModule: a loaded torch::jit::Module saved into a grid-owned model
// folder, then added like a repository folder.
#include "modelgrid/grid_module.h"

#include <filesystem>
#include <fstream>

namespace modelgrid {
namespace {

Status WriteText(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::Internal("cannot write " + file.string());
  return Status::Ok();
}

Status SaveModel(const std::filesystem::path& folder, const ModuleSpec& spec) {
  for (const auto& [task, method] : spec.config.tasks) {
    if (!spec.module.find_method(method)) {
      return Status::InvalidArgument("model '" + spec.name + "': config task '" + task +
                                     "' names method '" + method +
                                     "', which the module does not have");
    }
  }
  std::error_code ec;
  std::filesystem::create_directory(folder / "1", ec);
  if (ec) return Status::Internal("cannot make " + (folder / "1").string() + ": " + ec.message());
  const std::filesystem::path file = folder / "1" / "model.pt";
  try {
    spec.module.save(file.string());
  } catch (const std::exception& e) {
    return Status::Internal("model '" + spec.name + "': cannot save the module to " +
                            file.string() + ": " + e.what());
  }
  return WriteText(folder / "config.yaml", ModelConfigToYaml(spec.config));
}

}  // namespace

Status AddModule(Grid& grid, const ModuleSpec& spec) {
  MG_ASSIGN_OR_RETURN(std::filesystem::path folder, grid.NewModelFolder(spec.name));
  Status s = SaveModel(folder, spec);
  if (s.ok()) {
    ModelSpec model;
    model.name = spec.name;
    model.path = folder;
    model.memory_request = spec.memory_request;
    model.memory_limit = spec.memory_limit;
    s = grid.AddModel(model);
  }
  if (!s.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(folder, ec);
  }
  return s;
}

}  // namespace modelgrid

// Adding a model to a Grid from a TorchScript module loaded in this process
// (issue 3 §6: "add a model (name, path or loaded module, ...)"), the C++
// counterpart of the seed's `grid.add_model(name, model=<module>)`.
//
// The module is saved with torch::jit::Module::save into a folder the grid
// keeps (Grid::NewModelFolder) as <folder>/1/model.pt, next to a config.yaml
// written from `config` (ModelConfigToYaml); the model is then added with
// Grid::AddModel. From there it is a model like any other: the estimator
// reads the saved archive, the planner places it, and a worker (isolation
// `model` or `device`) or the grid itself (`none`) loads the saved file.
// The caller's module is not shared with the worker: later changes to it
// are not seen by the grid.
//
// This header includes LibTorch (torch/script.h); link modelgrid_grid_module.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <optional>
#include <string>

#include "modelgrid/grid.h"
#include "modelgrid/repository.h"
#include "modelgrid/status.h"

namespace modelgrid {

// A loaded module to add, with what its config.yaml would say.
struct ModuleSpec {
  std::string name;                // the model's name (required; a folder name)
  torch::jit::Module module;       // scripted or traced; saved as it is now
  ModelConfig config;              // inputs, outputs, max_batch_size, tasks, batching, ...
  std::optional<uint64_t> memory_request;  // bytes; overrides config and the estimate
  std::optional<uint64_t> memory_limit;    // bytes; default: the request
};

// Saves `spec.module` and its config into a new folder of `grid` and adds it
// as model `spec.name` (not loaded: call Grid::LoadAll or Grid::Load).
// Errors: NewModelFolder's (a name that cannot name a folder, a name
// already added); kInternal naming the file when saving fails (LibTorch's
// message, e.g. a module holding a non-serializable attribute);
// kInvalidArgument when config.tasks names a method the module lacks, or
// AddModel's errors (memory overrides). On an error nothing is added and
// the folder is removed.
Status AddModule(Grid& grid, const ModuleSpec& spec);

}  // namespace modelgrid

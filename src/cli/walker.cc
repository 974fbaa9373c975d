#include "cli/commands.h"
#include "modelgrid/torch/graph_walk.h"

namespace modelgrid::cli {

std::unique_ptr<GraphWalker> MakeWalker() { return std::make_unique<TorchScriptGraphWalker>(); }

}  // namespace modelgrid::cli

#include <filesystem>

namespace modelgrid::cli {

std::string SelfPath(const char* argv0) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(argv0) : self.string();
}

}  // namespace modelgrid::cli

// modelgrid: the command-line front of the library.

#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"ModelGrid: predict, pack and serve many PyTorch / Hugging Face models on few GPUs"};
  app.set_version_flag("--version", std::string("modelgrid ") + MODELGRID_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  modelgrid::cli::AddEstimateCommand(app, &exit_code);
  modelgrid::cli::AddPlanCommand(app, &exit_code);
  CLI11_PARSE(app, argc, argv);
  return exit_code;
}

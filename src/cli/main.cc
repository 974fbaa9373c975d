// modelgrid: the command-line front of the library.

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <memory>

#include "cli/commands.h"

int main(int argc, char** argv) {
  // Log lines go to stderr: stdout carries tables and --json output.
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "modelgrid", std::make_shared<spdlog::sinks::stderr_sink_mt>()));
  CLI::App app{"ModelGrid: predict, pack and serve many PyTorch / Hugging Face models on few GPUs"};
  app.set_version_flag("--version", std::string("modelgrid ") + MODELGRID_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  modelgrid::cli::AddEstimateCommand(app, &exit_code);
  modelgrid::cli::AddPlanCommand(app, &exit_code);
  modelgrid::cli::AddServeCommand(app, &exit_code);
  modelgrid::cli::AddStatusCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    // `serve` promises exit code 2 for bad flags (scripts tell it from a failed start).
    return code != 0 && app.got_subcommand("serve") ? 2 : code;
  }
  return exit_code;
}

// The subcommands of the `modelgrid` executable. Each registers itself on the
// CLI11 app; its callback stores the process exit code in `*exit_code`.
// Thin layers: all the work is done by the library (include/modelgrid/).
#pragma once

#include <CLI/CLI.hpp>

#include <memory>

#include "modelgrid/estimate.h"

namespace modelgrid::cli {

// `modelgrid estimate PATH... [--batch N] [--seq N] [--device cpu|cuda] [--margin F] [--json]`
void AddEstimateCommand(CLI::App& app, int* exit_code);

// `modelgrid plan --repository DIR [--device SPEC]... [--strategy S] [--isolation I] ...`
void AddPlanCommand(CLI::App& app, int* exit_code);

// `modelgrid serve --repository DIR [--config modelgrid.yaml] [--device SPEC]... [--http-port N] ...`:
// loads the repository and serves it over KServe v2 HTTP until SIGTERM/SIGINT
// (exit 0); exit 2 for bad flags or config, 1 when startup fails.
void AddServeCommand(CLI::App& app, int* exit_code);

// `modelgrid status [--url http://127.0.0.1:8000] [--json]`: a running
// server's devices (reservations, contexts, workers) and models (state,
// memory, worker); when none answers, this machine's discovered devices.
// Exit 0 either way; 2 for a malformed --url; 1 when neither works.
void AddStatusCommand(CLI::App& app, int* exit_code);

// The absolute path of this executable (/proc/self/exe), else `argv0`;
// sibling executables (modelgrid-probe) are found next to it.
std::string SelfPath(const char* argv0);

// The graph walker the commands use (LibTorch's TorchScript walk).
std::unique_ptr<GraphWalker> MakeWalker();

}  // namespace modelgrid::cli

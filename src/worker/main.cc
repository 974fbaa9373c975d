// modelgrid-worker: one worker process (README.md). Started by the frontend's
// WorkerClient with a connected socket as descriptor --fd; not meant to be
// run by hand.
//
//   modelgrid-worker --fd N --name NAME [--threads T] [--spin-us S]
//
// Exit codes: 0 after `shutdown` or when the frontend went away; 1 when the
// control stream failed (corrupt or a socket error); 2 for bad arguments.
#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "worker/worker_service.h"

int main(int argc, char** argv) {
  CLI::App app{"modelgrid-worker: runs models for a ModelGrid frontend over a socket"};
  int fd = -1;
  modelgrid::worker::WorkerServiceOptions options;
  app.add_option("--fd", fd, "connected AF_UNIX stream socket inherited from the frontend")
      ->required()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--name", options.name, "the worker's name, for logs and errors")->required();
  app.add_option("--threads", options.threads, "LibTorch intra-op threads; 0 = LibTorch's default")
      ->check(CLI::NonNegativeNumber);
  int64_t spin_us = 0;
  app.add_option("--spin-us", spin_us,
                 "microseconds a model's thread polls for its next request before sleeping")
      ->check(CLI::Range(int64_t{0}, int64_t{1'000'000}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  options.spin = std::chrono::microseconds(spin_us);
  if (::fcntl(fd, F_GETFD) < 0) {
    std::fprintf(stderr, "modelgrid-worker: --fd %d is not an open descriptor\n", fd);
    return 2;
  }

  // The frontend decides when a worker stops; Ctrl-C in a terminal reaches
  // the whole process group, so SIGINT is ignored. SIGTERM keeps its default
  // (the process ends). A write to a closed socket must be an error, not a
  // signal.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);

  auto logger =
      std::make_shared<spdlog::logger>("worker", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e [worker " + options.name + " " +
                      std::to_string(::getpid()) + "] %l: %v");
  spdlog::set_default_logger(logger);

  modelgrid::Status s = modelgrid::worker::RunWorker(modelgrid::ipc::UniqueFd(fd), options);
  if (!s.ok()) {
    spdlog::error("stopping: {}", s.ToString());
    return 1;
  }
  spdlog::info("exiting");
  return 0;
}

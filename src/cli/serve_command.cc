// `modelgrid serve`: load a repository onto the devices and serve it over
// KServe v2 HTTP until SIGTERM or SIGINT.
//
// Exit codes: 0 after a signal-initiated shutdown; 2 for bad flags or a bad
// config file; 1 when startup fails (devices, repository, listening port).

#include <fcntl.h>
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "cli/serve_config.h"
#include "cli/serve_logging.h"
#include "cli/table.h"
#include "modelgrid/bytes.h"
#include "modelgrid/grid.h"
#include "modelgrid/grpc/grpc_server.h"
#include "modelgrid/heap.h"
#include "modelgrid/server/http_server.h"
#include "modelgrid/service/inference_service.h"
#include "service/trace_settings.h"

namespace modelgrid::cli {

namespace {

constexpr int kExitBadUsage = 2;
constexpr int kExitStartup = 1;

// Flags as given; each overrides the config file when present on the command line.
struct ServeFlags {
  std::string config;
  ServeConfig values;
  std::string max_body_bytes;
  std::string http_max_header_bytes;
  std::string buffer;
  std::string arena;
  std::string swap_space;
  std::string log_max_file_bytes;
  // Triton's trace settings at start (flags only; the trace extension
  // changes them at run time): --trace-file, --trace-level, --trace-rate,
  // --trace-count, --trace-log-frequency.
  std::map<std::string, std::string> trace;
  // --trace-format: how trace records are written (not a trace setting of
  // the protocol; fixed for the server's life).
  std::string trace_format = "jsonl";
  std::map<std::string, CLI::Option*> options;  // flag name -> option, to ask count()
  bool Given(const std::string& name) const { return options.at(name)->count() > 0; }
};

// Waits for SIGTERM and SIGINT on a dedicated thread. Blocking the signals
// in every thread and calling sigwait is not enough here: libraries start
// threads before main() (OpenBLAS's pool, with an empty signal mask), and a
// process-directed signal may land on one of them. So the handler, on
// whatever thread it runs, only write()s the signal number to a pipe
// (async-signal-safe), and the waiting thread reads it. The threads created
// from here on block the signals (they inherit the mask) so that blocking
// calls in them are not interrupted; the waiting thread unblocks them.
class SignalWaiter {
 public:
  SignalWaiter() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) {
      read_fd_ = fds[0];
      write_fd_.store(fds[1]);
      ::fcntl(fds[1], F_SETFL, O_NONBLOCK);
    }
    struct sigaction action {};
    action.sa_handler = &SignalWaiter::OnSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(SIGTERM, &action, nullptr);
    ::sigaction(SIGINT, &action, nullptr);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([this, set] {
      ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
      Loop();
    });
  }
  ~SignalWaiter() {
    const char wake = 0;  // not a signal number: ends Loop
    if (write_fd_.load() >= 0) (void)!::write(write_fd_.load(), &wake, 1);
    thread_.join();
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGINT, SIG_DFL);
    const int w = write_fd_.exchange(-1);
    if (w >= 0) ::close(w);
    if (read_fd_ >= 0) ::close(read_fd_);
  }
  // Runs `on_stop` on the first signal, or now when one already came.
  void OnStop(std::function<void()> on_stop) {
    std::lock_guard lock(mu_);
    on_stop_ = std::move(on_stop);
    if (stopped_ && on_stop_) on_stop_();
  }
  bool stopped() const { return stopped_.load(); }

 private:
  static void OnSignal(int sig) {
    const int saved_errno = errno;
    const char byte = static_cast<char>(sig);
    const int fd = write_fd_.load();
    if (fd >= 0) (void)!::write(fd, &byte, 1);
    errno = saved_errno;
  }

  void Loop() {
    for (;;) {
      char byte = 0;
      const ssize_t n = ::read(read_fd_, &byte, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || byte == 0) return;
      const char* name = byte == SIGINT ? "SIGINT" : "SIGTERM";
      std::lock_guard lock(mu_);
      if (stopped_) {
        std::fprintf(stderr, "second %s: exiting now\n", name);
        std::_Exit(kExitStartup);
      }
      std::fprintf(stderr, "%s: stopping (in-flight requests finish)\n", name);
      stopped_ = true;
      if (on_stop_) on_stop_();
    }
  }

  static inline std::atomic<int> write_fd_{-1};  // read by the signal handler
  int read_fd_ = -1;
  std::mutex mu_;
  std::function<void()> on_stop_;
  std::atomic<bool> stopped_{false};
  std::thread thread_;
};

// Config file, then flags. Errors are usage errors (exit 2).
Result<ServeConfig> ResolveConfig(const ServeFlags& flags) {
  ServeConfig c;
  if (!flags.config.empty()) MG_RETURN_IF_ERROR(ApplyServeConfigFile(flags.config, &c));
  const ServeConfig& f = flags.values;
  if (flags.Given("--repository")) c.repository = f.repository;
  if (flags.Given("--device")) c.devices = f.devices;
  if (flags.Given("--strategy")) c.strategy = f.strategy;
  if (flags.Given("--isolation")) c.isolation = f.isolation;
  if (flags.Given("--host")) c.host = f.host;
  if (flags.Given("--http-port")) c.http_port = f.http_port;
  if (flags.Given("--grpc-port")) c.grpc_port = f.grpc_port;
  if (flags.Given("--admin-token")) c.admin_token = f.admin_token;
  if (flags.Given("--shm-key-prefix")) c.shm_key_prefix = f.shm_key_prefix;
  if (flags.Given("--log-file")) c.log_file = f.log_file;
  if (flags.Given("--log-format")) c.log_format = f.log_format;
  if (flags.Given("--log-max-files")) c.log_max_files = f.log_max_files;
  if (flags.Given("--access-log")) c.access_log = f.access_log;
  if (flags.Given("--log-max-file-bytes")) {
    auto bytes = ParseBytes(flags.log_max_file_bytes);
    if (!bytes.ok()) return bytes.status().WithPrefix("--log-max-file-bytes");
    c.log_max_file_bytes = *bytes;
  }
  if (flags.Given("--worker-threads")) c.worker_threads = f.worker_threads;
  if (flags.Given("--spin-us")) c.spin_us = f.spin_us;
  if (flags.Given("--max-cpu-models")) c.max_cpu_models = f.max_cpu_models;
  if (flags.Given("--max-body-bytes")) {
    MG_ASSIGN_OR_RETURN(c.max_body_bytes, ParseBytes(flags.max_body_bytes));
    if (c.max_body_bytes == 0)
      return Status::InvalidArgument("--max-body-bytes must be at least 1");
  }
  if (flags.Given("--buffer")) {
    MG_ASSIGN_OR_RETURN(c.buffer_bytes, ParseBytes(flags.buffer));
  }
  if (flags.Given("--arena")) {
    auto bytes = ParseBytes(flags.arena);
    if (!bytes.ok()) return bytes.status().WithPrefix("--arena");
    if (*bytes < (uint64_t{1} << 20)) return Status::InvalidArgument("--arena must be at least 1MiB");
    c.arena_bytes = *bytes;
  }
  if (flags.Given("--swap-dir")) c.swap_dir = f.swap_dir;
  if (flags.Given("--swap-space")) {
    auto bytes = ParseBytes(flags.swap_space);
    if (!bytes.ok()) return bytes.status().WithPrefix("--swap-space");
    c.swap_space_bytes = *bytes;
  }
  if (flags.Given("--load")) c.load = f.load;
  if (flags.Given("--min-residency-ms")) c.min_residency_ms = f.min_residency_ms;
  if (flags.Given("--strict-readiness")) c.strict_readiness = f.strict_readiness;
  if (flags.Given("--http-max-header-bytes")) {
    auto bytes = ParseBytes(flags.http_max_header_bytes);
    if (!bytes.ok()) return bytes.status().WithPrefix("--http-max-header-bytes");
    if (*bytes < 1024 || *bytes > 65536) {
      return Status::InvalidArgument("--http-max-header-bytes " + flags.http_max_header_bytes +
                                     " is not in 1KiB..64KiB");
    }
    c.http_max_header_bytes = *bytes;
  }
  for (const auto& [flag, field] :
       std::initializer_list<std::pair<const char*, std::optional<int> ServeConfig::*>>{
           {"--http-max-headers", &ServeConfig::http_max_headers},
           {"--http-max-connections", &ServeConfig::http_max_connections},
           {"--http-max-connections-per-client", &ServeConfig::http_max_connections_per_client},
           {"--http-backlog", &ServeConfig::http_backlog},
           {"--http-threads", &ServeConfig::http_threads},
           {"--http-io-threads", &ServeConfig::http_io_threads}}) {
    if (flags.Given(flag)) c.*field = f.*field;
  }
  for (const auto& [flag, field] :
       std::initializer_list<std::pair<const char*, std::optional<double> ServeConfig::*>>{
           {"--http-header-timeout", &ServeConfig::http_header_timeout_s},
           {"--http-body-timeout", &ServeConfig::http_body_timeout_s},
           {"--http-idle-timeout", &ServeConfig::http_idle_timeout_s}}) {
    if (flags.Given(flag)) c.*field = f.*field;
  }
  if (c.repository.empty()) {
    return Status::InvalidArgument(
        "no model repository: give --repository or 'repository' in --config");
  }
  if (!std::filesystem::is_directory(c.repository)) {
    return Status::InvalidArgument("model repository '" + c.repository + "' is not a directory");
  }
  return c;
}

Result<GridOptions> MakeGridOptions(const ServeConfig& c, GraphWalker* walker) {
  GridOptions o;
  MG_ASSIGN_OR_RETURN(o.strategy, ParseStrategy(c.strategy));
  MG_ASSIGN_OR_RETURN(o.isolation, ParseIsolation(c.isolation));
  o.buffer_bytes = c.buffer_bytes;
  o.arena_bytes = c.arena_bytes;
  o.max_cpu_models = c.max_cpu_models;
  o.devices = c.devices;
  o.worker_threads = c.worker_threads;
  o.spin = std::chrono::microseconds(c.spin_us);
  o.swap_dir = c.swap_dir;
  o.swap_space_bytes = c.swap_space_bytes;
  MG_ASSIGN_OR_RETURN(o.default_load, ParseLoadPolicy(c.load));
  if (o.default_load == LoadPolicy::kDefault) {
    return Status::InvalidArgument("--load must be eager or on_demand, not '" + c.load + "'");
  }
  o.min_residency = std::chrono::milliseconds(c.min_residency_ms);
  o.strict_readiness = c.strict_readiness;
  o.walker = walker;
  return o;
}

// The HTTP limits given in the config file or as flags; the others keep
// HttpServerOptions' defaults.
void ApplyHttpLimits(const ServeConfig& c, HttpServerOptions* o) {
  auto ms = [](double seconds) {
    return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000 + 0.5));
  };
  if (c.http_max_header_bytes) o->max_header_bytes = *c.http_max_header_bytes;
  if (c.http_max_headers) o->max_headers = *c.http_max_headers;
  if (c.http_header_timeout_s) o->header_timeout = ms(*c.http_header_timeout_s);
  if (c.http_body_timeout_s) o->body_timeout = ms(*c.http_body_timeout_s);
  if (c.http_idle_timeout_s) o->idle_timeout = ms(*c.http_idle_timeout_s);
  if (c.http_max_connections) o->max_connections = *c.http_max_connections;
  if (c.http_max_connections_per_client) {
    o->max_connections_per_client = *c.http_max_connections_per_client;
  }
  if (c.http_backlog) o->backlog = *c.http_backlog;
  if (c.http_threads) o->threads = *c.http_threads;
  if (c.http_io_threads) o->io_threads = *c.http_io_threads;
}

std::mutex print_mu;  // startup lines come from several loading threads

// "ready    digits on cpu (request 1.20 MiB, limit 1.20 MiB, worker pid 123)".
void PrintModelLine(const ModelStatus& m) {
  std::string line;
  if (m.state == ModelState::kReady) {
    line = fmt::format(
        "ready    {} on {} (request {}, limit {}, {})", m.name, m.device,
        FormatBytes(m.request_bytes), FormatBytes(m.limit_bytes),
        m.worker_pid > 0 ? fmt::format("worker pid {}", m.worker_pid) : std::string("in-process"));
  } else {
    line = fmt::format("{:<8} {}: {}", ModelStateName(m.state), m.name,
                       m.reason.empty() ? std::string("-") : m.reason);
  }
  std::lock_guard lock(print_mu);
  std::cout << line << std::endl;
}

// Per device: total, reserved, free, buffer, workers and models.
void PrintDevices(const Grid& grid, std::ostream& out) {
  Table table({"DEVICE", "TOTAL", "RESERVED", "FREE", "BUFFER", "WORKERS", "MODELS"},
              {1, 2, 3, 4, 5});
  for (const DeviceStatus& d : grid.Devices()) {
    std::string names;
    for (const auto& m : d.models) names += (names.empty() ? "" : ", ") + m;
    table.AddRow({d.device.id, FormatBytes(d.device.total_bytes), FormatBytes(d.reserved_bytes),
                  FormatBytes(d.free_bytes), FormatBytes(d.buffer_bytes), std::to_string(d.workers),
                  names.empty() ? "-" : names});
  }
  table.Print(out);
  out << "\n";
}

// The plan, before the workers start: each placed instance, then the devices.
void PrintPlan(const Grid& grid, const Plan& plan) {
  std::ostringstream out;
  out << fmt::format("Plan: strategy {}, isolation {}: {} instance(s) placed, {} unplaced\n",
                     StrategyName(plan.strategy), IsolationName(plan.isolation),
                     plan.placed.size(), plan.unplaced.size());
  Table placed({"MODEL", "REPLICA", "DEVICE", "REQUEST"}, {1, 3});
  for (const Assignment& a : plan.placed) {
    placed.AddRow({a.model, std::to_string(a.replica), a.device, FormatBytes(a.request_bytes)});
  }
  for (const Unplaced& u : plan.unplaced) {
    placed.AddRow({u.model, std::to_string(u.replica), "-", "unplaced: " + u.reason});
  }
  placed.Print(out);
  out << "\n";
  PrintDevices(grid, out);
  out << "Loading...\n";
  std::lock_guard lock(print_mu);
  std::cout << out.str() << std::flush;
}

// The --trace-* flags given, as the trace extension's settings (the
// setting names without "trace_" for log_frequency), checked.
Result<nlohmann::json> TraceFlags(const ServeFlags& flags) {
  nlohmann::json settings = nlohmann::json::object();
  for (const auto& [name, value] : flags.trace) {
    if (!flags.Given(name)) continue;
    const std::string setting =
        name == "--trace-log-frequency" ? "log_frequency" : "trace_" + name.substr(8);
    settings[setting] = value;
  }
  auto parsed = service::ParseTraceUpdate(settings);
  if (!parsed.ok()) return parsed.status();
  return settings;
}

int Serve(const ServeFlags& flags) {
  SignalWaiter signals;  // first: threads created from here on block the signals
  // Request bodies and gRPC messages of a few hundred KiB stay in the heap
  // between requests rather than being mapped and faulted in each time.
  TuneHeapForTensors();
  auto config = ResolveConfig(flags);
  if (!config.ok()) {
    std::cerr << "error: " << config.status().message() << "\n";
    return kExitBadUsage;
  }
  auto trace = TraceFlags(flags);
  if (!trace.ok()) {
    std::cerr << "error: " << trace.status().message() << "\n";
    return kExitBadUsage;
  }
  LogSettings logging;
  logging.file = config->log_file;
  logging.format = config->log_format;
  logging.max_file_bytes = config->log_max_file_bytes;
  logging.max_files = config->log_max_files;
  logging.access_log = config->access_log;
  if (Status s = ConfigureServeLogging(logging); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return s.code() == StatusCode::kInvalidArgument ? kExitBadUsage : kExitStartup;
  }
  auto walker = MakeWalker();
  auto options = MakeGridOptions(*config, walker.get());
  if (!options.ok()) {
    std::cerr << "error: " << options.status().message() << "\n";
    return kExitBadUsage;
  }
  ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up must not kill the server

  auto grid = Grid::Create(*options);
  if (!grid.ok()) {
    std::cerr << "error: " << grid.status().message() << "\n";
    return kExitStartup;
  }
  if (Status s = (*grid)->AddRepository(config->repository); !s.ok()) {
    std::cerr << "error: " << s.message() << "\n";
    return kExitStartup;
  }
  auto plan = (*grid)->LoadAll(PrintModelLine,
                               [&](const Plan& p) { PrintPlan(**grid, p); });
  if (!plan.ok()) {
    std::cerr << "error: " << plan.status().message() << "\n";
    return kExitStartup;
  }
  std::cout << "\nAfter loading:\n";
  PrintDevices(**grid, std::cout);
  std::cout << std::flush;
  if (signals.stopped()) {
    (*grid)->Shutdown();
    return 0;
  }

  HttpServerOptions http;
  http.host = config->host;
  http.port = config->http_port;
  http.max_body_bytes = config->max_body_bytes;
  ApplyHttpLimits(*config, &http);
  http.access_log = MakeAccessLog(logging);
  const std::unique_ptr<LogControl> log_control = MakeServeLogControl(logging);
  ServiceOptions service_options;
  service_options.admin_token = config->admin_token;
  service_options.shm_key_prefix = config->shm_key_prefix;
  service_options.log_control = log_control.get();
  service_options.trace_format =
      flags.trace_format == "triton" ? TraceFormat::kTriton : TraceFormat::kJsonLines;
  InferenceService service(grid->get(), service_options);
  if (!trace->empty()) {
    auto traced = service.UpdateTraceSettings("", *trace, config->admin_token);
    if (!traced.ok()) {
      std::cerr << "error: " << traced.status().message() << "\n";
      (*grid)->Shutdown();
      return kExitBadUsage;
    }
  }
  HttpServer server(&service, http);
  auto port = server.Bind();
  if (!port.ok()) {
    std::cerr << "error: " << port.status().message() << "\n";
    (*grid)->Shutdown();
    return kExitStartup;
  }
  // gRPC on its own threads; printed before the HTTP line, which tells
  // scripts and tests that the server is up.
  std::unique_ptr<GrpcServer> grpc;
  if (config->grpc_port >= 0) {
    GrpcServerOptions go;
    go.host = config->host;
    go.port = config->grpc_port;
    go.max_message_bytes = config->max_body_bytes;
    grpc = std::make_unique<GrpcServer>(&service, go);
    auto grpc_port = grpc->Start();
    if (!grpc_port.ok()) {
      std::cerr << "error: " << grpc_port.status().message() << "\n";
      (*grid)->Shutdown();
      return kExitStartup;
    }
    std::cout << "serving gRPC on " << config->host << ":" << *grpc_port << std::endl;
  }
  std::cout << "serving on http://" << config->host << ":" << *port << std::endl;
  signals.OnStop([&server] { server.Stop(); });
  const Status run = server.Run();
  signals.OnStop({});
  if (grpc) grpc->Stop();
  (*grid)->Shutdown();
  if (!run.ok()) {
    std::cerr << "error: " << run.message() << "\n";
    return kExitStartup;
  }
  std::cerr << "stopped\n";
  return 0;
}

}  // namespace

void AddServeCommand(CLI::App& app, int* exit_code) {
  auto flags = std::make_shared<ServeFlags>();
  ServeConfig& v = flags->values;
  CLI::App* cmd =
      app.add_subcommand("serve", "Load a model repository and serve it over KServe v2 HTTP and gRPC");
  auto& o = flags->options;
  cmd->add_option("--config", flags->config,
                  "Server config file (modelgrid.yaml); flags override it");
  o["--repository"] = cmd->add_option("--repository", v.repository, "Model repository folder");
  o["--device"] =
      cmd->add_option("--device", v.devices,
                      "Device spec, repeatable: cpu, cpu=CAP, sim:NAME=CAP[,context=B][,used=B] "
                      "(default: the devices of this machine)");
  o["--strategy"] =
      cmd->add_option("--strategy", v.strategy,
                      "fill-first | balance | memory-optimized | latency-sensitive | optimal");
  o["--isolation"] = cmd->add_option(
      "--isolation", v.isolation,
      "model (a worker per model) | device (a worker per device) | none (in-process)");
  o["--host"] = cmd->add_option("--host", v.host, "Address to listen on (default 127.0.0.1)");
  o["--http-port"] =
      cmd->add_option("--http-port", v.http_port, "HTTP port; 0 picks a free one (default 8000)")
          ->check(CLI::Range(0, 65535));
  o["--grpc-port"] = cmd->add_option("--grpc-port", v.grpc_port,
                                     "KServe v2 gRPC port; 0 picks a free one, -1 serves no "
                                     "gRPC (default 8001)")
                         ->check(CLI::Range(-1, 65535));
  o["--admin-token"] = cmd->add_option(
      "--admin-token", v.admin_token,
      "Token that management calls (load/unload, shared-memory register, reconfiguration) "
      "must present as 'Authorization: Bearer <token>' (default: none needed)");
  o["--shm-key-prefix"] = cmd->add_option(
      "--shm-key-prefix", v.shm_key_prefix,
      "Only shared-memory keys starting with this can be registered (default /modelgrid_; "
      "\"\" = any)");
  o["--log-file"] = cmd->add_option("--log-file", v.log_file,
                                    "Also log to this file, rotated by size (default: stderr only)");
  o["--log-format"] = cmd->add_option("--log-format", v.log_format,
                                      "text | json (one JSON object per line; default text)");
  o["--log-max-file-bytes"] = cmd->add_option("--log-max-file-bytes", flags->log_max_file_bytes,
                                              "A log file past this rotates, e.g. 64MiB (default)");
  o["--log-max-files"] = cmd->add_option("--log-max-files", v.log_max_files,
                                         "Rotated log files kept (default 5)")
                             ->check(CLI::Range(1, 1000));
  o["--access-log"] = cmd->add_option("--access-log", v.access_log,
                                      "One log line per HTTP answer: true | false (default false)");
  for (const auto& [name, help] : std::vector<std::pair<std::string, std::string>>{
           {"--trace-file",
            "Trace records go to this file, as --trace-format says (Triton's trace "
            "extension; default: none)"},
           {"--trace-level", "OFF | TIMESTAMPS (default OFF)"},
           {"--trace-rate", "Trace every N-th inference request (default 1000)"},
           {"--trace-count", "Traces to take, -1 = no limit (default -1)"},
           {"--trace-log-frequency",
            "Trace records kept before a write; 0 = each at once, or with --trace-format "
            "triton all at the end (default 0)"}}) {
    o[name] = cmd->add_option(name, flags->trace[name], help);
  }
  o["--trace-format"] =
      cmd->add_option("--trace-format", flags->trace_format,
                      "jsonl: one JSON object per line in the trace file (default); triton: "
                      "Triton's JSON arrays, every --trace-log-frequency records to "
                      "FILE.0, FILE.1, ... (0: all records to FILE at the end)")
          ->check(CLI::IsMember({"jsonl", "triton"}));
  o["--max-body-bytes"] = cmd->add_option("--max-body-bytes", flags->max_body_bytes,
                                          "Largest request body, e.g. 64MiB (default)");
  o["--worker-threads"] = cmd->add_option("--worker-threads", v.worker_threads,
                                          "LibTorch threads per worker (0: cores / workers)")
                              ->check(CLI::Range(0, 4096));
  o["--spin-us"] = cmd->add_option("--spin-us", v.spin_us,
                                   "Microseconds a request to a worker polls before sleeping "
                                   "(default 50; 0 = always sleep)")
                       ->check(CLI::Range(int64_t{0}, int64_t{1'000'000}));
  o["--buffer"] =
      cmd->add_option("--buffer", flags->buffer, "Bytes kept free on every GPU, e.g. 1GiB");
  o["--arena"] = cmd->add_option(
      "--arena", flags->arena,
      "Shared-memory tensor arena per worker, e.g. 1GiB (default 256MiB): the largest "
      "request's inputs plus outputs must fit");
  o["--swap-dir"] = cmd->add_option(
      "--swap-dir", v.swap_dir,
      "Folder for swapped-out CPU weights (default: a private folder under the temp dir)");
  o["--swap-space"] = cmd->add_option(
      "--swap-space", flags->swap_space,
      "Bytes the host swap tier may hold, e.g. 8GiB (default 0: no swap; evictions unload)");
  o["--load"] = cmd->add_option("--load", v.load,
                                "eager | on_demand: when models without `load:` in their "
                                "config.yaml are loaded (default eager)");
  o["--min-residency-ms"] =
      cmd->add_option("--min-residency-ms", v.min_residency_ms,
                      "Never evict or swap out an instance loaded more recently (default 5000)")
          ->check(CLI::Range(int64_t{0}, int64_t{86'400'000}));
  o["--strict-readiness"] = cmd->add_option(
      "--strict-readiness", v.strict_readiness,
      "true | false: /v2/health/ready waits for every model (default true, as Triton); false: "
      "failed and unplaced models do not hold it back");
  o["--max-cpu-models"] =
      cmd->add_option("--max-cpu-models", v.max_cpu_models,
                      "Most instances placed on the CPU when GPUs exist (-1: no bound)")
          ->check(CLI::Range(-1, 1 << 20));
  // HTTP limits against hostile clients (HttpServerOptions, http_server.h).
  o["--http-max-header-bytes"] = cmd->add_option(
      "--http-max-header-bytes", flags->http_max_header_bytes,
      "Largest request line + headers, 1KiB..64KiB; more is 431 (default 32KiB)");
  o["--http-max-headers"] =
      cmd->add_option("--http-max-headers", v.http_max_headers,
                      "Most header fields per request; more is 431 (default 100)")
          ->check(CLI::Range(1, 10'000));
  o["--http-header-timeout"] =
      cmd->add_option("--http-header-timeout", v.http_header_timeout_s,
                      "Seconds a request's line and headers may take to arrive; then 408 and "
                      "close (default 10)")
          ->check(CLI::Range(0.001, 86'400.0));
  o["--http-body-timeout"] =
      cmd->add_option("--http-body-timeout", v.http_body_timeout_s,
                      "Seconds a request body may take after its headers; then 408 and close "
                      "(default 60)")
          ->check(CLI::Range(0.001, 86'400.0));
  o["--http-idle-timeout"] =
      cmd->add_option("--http-idle-timeout", v.http_idle_timeout_s,
                      "Seconds a connection may stay silent (keep-alive, stalled body or "
                      "answer) before it is closed; whole seconds (default 30)")
          ->check(CLI::Range(0.001, 86'400.0));
  o["--http-max-connections"] =
      cmd->add_option("--http-max-connections", v.http_max_connections,
                      "Most open connections; more are answered 503 and closed (default 1024)")
          ->check(CLI::Range(1, 1'000'000));
  o["--http-max-connections-per-client"] =
      cmd->add_option("--http-max-connections-per-client", v.http_max_connections_per_client,
                      "Most open connections per client IP address; 0 = no limit (default 256)")
          ->check(CLI::Range(0, 1'000'000));
  o["--http-backlog"] = cmd->add_option("--http-backlog", v.http_backlog,
                                        "Listen backlog (default 1024)")
                            ->check(CLI::Range(1, 1'000'000));
  o["--http-threads"] =
      cmd->add_option("--http-threads", v.http_threads,
                      "Threads running route handlers (0: 2 x cores, at least 8)")
          ->check(CLI::Range(0, 4096));
  o["--http-io-threads"] =
      cmd->add_option("--http-io-threads", v.http_io_threads,
                      "Connection event threads (0: cores / 4, 1..4)")
          ->check(CLI::Range(0, 64));
  cmd->callback([flags, exit_code] { *exit_code = Serve(*flags); });
}

}  // namespace modelgrid::cli

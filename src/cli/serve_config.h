// The server configuration of `modelgrid serve` (docs/design.md, "Configuration":
// modelgrid.yaml). The same fields as the command's flags; flags override
// the file. Every field has a default; an unknown field is an error naming
// the field and the file.
//
// clang-format off
// YAML schema (all optional; snake_case):
//
//   repository: models/         # relative paths are relative to the file's folder
//   devices: [cpu, "sim:a100=80GiB"]
//   strategy: memory-optimized  # fill-first | balance | memory-optimized |
//                               # latency-sensitive | optimal
//   isolation: model            # model | device | none
//   host: 127.0.0.1
//   http_port: 8000             # 0 = pick a free port
//   grpc_port: 8001             # KServe v2 gRPC; 0 = pick a free port; -1 = no gRPC server
//   admin_token: ""             # management calls need it when set (Authorization: Bearer)
//   log_file: /var/log/modelgrid.log  # also log here, rotated by size (default: stderr only)
//   log_format: text            # text | json (one JSON object per line)
//   log_max_file_bytes: 64MiB   # a log file past this rotates
//   log_max_files: 5            # rotated files kept (FILE.1 .. FILE.N)
//   access_log: false           # one line per HTTP answer (logger "access")
//   shm_key_prefix: /modelgrid_ # shared-memory keys clients may register ("" = any)
//   max_body_bytes: 64MiB       # integer bytes or a quantity (modelgrid/bytes.h)
//   worker_threads: 0           # LibTorch threads per worker; 0 = cores / workers
//   spin_us: 50                 # microseconds a request polls before sleeping
//                               # (GridOptions::spin); 0 = always sleep
//   buffer: 1GiB                # kept free on every accelerator
//   arena: 256MiB               # shared-memory tensor arena per worker: a request's
//                               # inputs and outputs pass through it (GridOptions::arena_bytes)
//   max_cpu_models: -1          # CPU fallback bound; -1 = none
//   swap_dir: /var/tmp/mg-swap  # host tier for swapped CPU weights (default: a private temp folder)
//   swap_space: 8GiB            # bytes the host tier may hold; 0 = no swap (evictions unload)
//   load: eager                 # eager | on_demand: models whose config.yaml says no `load:`
//   min_residency_ms: 5000      # never evict or swap out an instance loaded more recently
//   strict_readiness: true      # /v2/health/ready waits for every model (false: failed
//                               # and unplaced models do not hold it back)
//   # HTTP limits against hostile clients (HttpServerOptions in
//   # modelgrid/server/http_server.h; absent = its default, shown here):
//   http_max_header_bytes: 32KiB        # request line + headers; more is 431 (1KiB..64KiB)
//   http_max_headers: 100               # header fields per request; more is 431
//   http_header_timeout: 10             # seconds for a request's line and headers (408)
//   http_body_timeout: 60               # seconds for a request body after its headers (408)
//   http_idle_timeout: 30               # seconds a silent connection stays open
//   http_max_connections: 1024          # open connections in all; more are 503 and closed
//   http_max_connections_per_client: 256  # per client IP address; 0 = no limit
//   http_backlog: 1024                  # listen backlog
//   http_threads: 0                     # route handler threads; 0 = 2 x cores, at least 8
//   http_io_threads: 0                  # connection event threads; 0 = cores / 4, 1..4
// clang-format on
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::cli {

struct ServeConfig {
  std::string repository;
  std::vector<std::string> devices;  // device specs; empty = the machine's devices
  std::string strategy = "memory-optimized";
  std::string isolation = "model";
  std::string host = "127.0.0.1";
  int http_port = 8000;
  int grpc_port = 8001;                  // -1 = no gRPC server
  std::string admin_token;               // ServiceOptions::admin_token
  std::string log_file;                  // LogSettings (serve_logging.h)
  std::string log_format = "text";
  uint64_t log_max_file_bytes = uint64_t{64} << 20;
  int log_max_files = 5;
  bool access_log = false;
  std::string shm_key_prefix = "/modelgrid_";  // ServiceOptions::shm_key_prefix
  uint64_t max_body_bytes = uint64_t{64} << 20;
  int worker_threads = 0;
  int64_t spin_us = 50;  // GridOptions::spin in microseconds
  uint64_t buffer_bytes = 0;
  uint64_t arena_bytes = uint64_t{256} << 20;  // GridOptions::arena_bytes
  int max_cpu_models = -1;
  std::string swap_dir;          // "" = a private folder under the temp dir
  uint64_t swap_space_bytes = 0;  // 0 = no swapping
  std::string load = "eager";    // the default load policy: eager | on_demand
  int64_t min_residency_ms = 5'000;
  bool strict_readiness = true;  // GridOptions::strict_readiness
  // HTTP limits; nullopt = HttpServerOptions' default (serve_config.h's schema).
  std::optional<uint64_t> http_max_header_bytes;
  std::optional<int> http_max_headers;
  std::optional<double> http_header_timeout_s;  // seconds
  std::optional<double> http_body_timeout_s;    // seconds
  std::optional<double> http_idle_timeout_s;    // seconds
  std::optional<int> http_max_connections;
  std::optional<int> http_max_connections_per_client;
  std::optional<int> http_backlog;
  std::optional<int> http_threads;
  std::optional<int> http_io_threads;
};

// Applies the fields present in `yaml_text` to `config` (absent fields keep
// their value). `file` names the file in errors; a relative `repository` is
// resolved against `base_dir`. Errors: kInvalidArgument "FILE: ..." naming
// the field for an unknown field, a wrong type or a bad value (port outside
// 0..65535, negative threads, max_cpu_models below -1, a bad byte quantity, an
// HTTP limit outside its range (http_max_header_bytes 1KiB..64KiB, timeouts
// 0.001..86400 s, counts at least 1),
// an unknown strategy, isolation or load policy), or the YAML syntax error with its line.
Status ApplyServeConfigYaml(const std::string& yaml_text, const std::string& file,
                            const std::filesystem::path& base_dir, ServeConfig* config);

// Reads `file` and applies it (ApplyServeConfigYaml, relative paths against
// the file's folder). Errors: kNotFound when the file cannot be read; the
// parse errors above.
Status ApplyServeConfigFile(const std::filesystem::path& file, ServeConfig* config);

}  // namespace modelgrid::cli

// `modelgrid status`: what a running `modelgrid serve` holds (devices with
// their reservations and workers, models with state, memory and worker), read
// from its /v2/modelgrid endpoints; when no server answers, the devices this
// machine has (NVML discovery), so GPUs show even before anything serves.

#include <fmt/format.h>
#include <httplib.h>

#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>

#include "cli/commands.h"
#include "cli/table.h"
#include "modelgrid/bytes.h"
#include "modelgrid/device.h"

namespace modelgrid::cli {

namespace {

using nlohmann::json;

struct StatusArgs {
  std::string url = "http://127.0.0.1:8000";
  int timeout_ms = 2000;
  bool json = false;
};

std::string Bytes(const json& v) {
  return v.is_number_unsigned() ? FormatBytes(v.get<uint64_t>()) : std::string("-");
}

// GET `path` from the server; the parsed JSON, or why not.
Result<json> Fetch(httplib::Client& client, const std::string& path) {
  auto res = client.Get(path);
  if (!res) return Status::Unavailable("GET " + path + ": " + httplib::to_string(res.error()) + " error");
  if (res->status != 200) {
    return Status::Unavailable(fmt::format("GET {} answered {}: {}", path, res->status, res->body));
  }
  json j = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::Internal("GET " + path + ": the answer is not JSON");
  return j;
}

void PrintServer(const std::string& url, const json& devices, const json& models) {
  std::cout << "Server " << url << "\n\n";
  Table d({"DEVICE", "NAME", "TOTAL", "USED", "FREE", "RESERVED", "BORROWED", "SWAPPED",
           "CONTEXT", "WORKERS", "MODELS"},
          {2, 3, 4, 5, 6, 7, 8, 9});
  for (const json& x : devices) {
    std::string names;
    for (const json& m : x.value("models", json::array())) {
      names += (names.empty() ? "" : ", ") + m.get<std::string>();
    }
    d.AddRow({x.value("id", ""), x.value("name", ""), Bytes(x["total_bytes"]), Bytes(x["used_bytes"]),
              Bytes(x["free_bytes"]), Bytes(x["reserved_bytes"]), Bytes(x.value("borrowed_bytes", json(0))),
              Bytes(x.value("swapped_bytes", json(0))),
              Bytes(x["context_bytes"]) + (x.value("context_measured", false) ? " (measured)" : ""),
              std::to_string(x.value("workers", 0)), names.empty() ? "-" : names});
  }
  d.Print(std::cout);
  std::cout << "\n";
  Table m({"MODEL", "STATE", "DEVICE", "REQUEST", "LIMIT", "CURRENT", "PEAK", "BORROWED",
           "SWAPPED", "PID", "RESTARTS"},
          {3, 4, 5, 6, 7, 8, 9, 10});
  for (const json& x : models) {
    std::string state = x.value("state", "");
    if (!x.value("reason", std::string()).empty()) state += ": " + x["reason"].get<std::string>();
    m.AddRow({x.value("name", ""), state, x.value("device", std::string()).empty() ? "-" : x["device"].get<std::string>(),
              Bytes(x["request_bytes"]), Bytes(x["limit_bytes"]), Bytes(x["current_bytes"]),
              Bytes(x["peak_bytes"]), Bytes(x.value("borrowed_bytes", json(0))),
              Bytes(x.value("swapped_bytes", json(0))),
              x.value("worker_pid", 0) > 0 ? std::to_string(x["worker_pid"].get<int64_t>()) : "-",
              std::to_string(x.value("restarts", 0))});
  }
  m.Print(std::cout);
}

json LocalDevicesJson(const std::vector<Device>& devices) {
  json list = json::array();
  for (const Device& d : devices) {
    list.push_back({{"id", d.id},
                    {"name", d.name},
                    {"kind", DeviceKindName(d.kind)},
                    {"uuid", d.uuid},
                    {"total_bytes", d.total_bytes},
                    {"used_bytes", d.used_bytes},
                    {"context_bytes", d.context_bytes}});
  }
  return list;
}

int Run(const StatusArgs& args) {
  static const std::regex kUrl(R"((http://)?([^/:]+)(:([0-9]{1,5}))?/?)");
  std::smatch parts;
  if (!std::regex_match(args.url, parts, kUrl)) {
    std::cerr << "error: --url '" << args.url << "': expected http://HOST[:PORT]\n";
    return 2;
  }
  const std::string host = parts[2];
  const int port = parts[4].matched ? std::stoi(parts[4]) : 80;
  httplib::Client client(host, port);
  const auto timeout = std::chrono::milliseconds(args.timeout_ms);
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  auto devices = Fetch(client, "/v2/modelgrid/devices?refresh=1");
  Result<json> models = devices.ok() ? Fetch(client, "/v2/modelgrid/models") : devices.status();
  if (devices.ok() && models.ok()) {
    const json d = (*devices)["devices"], m = (*models)["models"];
    if (args.json) {
      std::cout << json{{"server", args.url}, {"devices", d}, {"models", m}}.dump(2) << "\n";
    } else {
      PrintServer(args.url, d, m);
    }
    return 0;
  }
  const Status why = devices.ok() ? models.status() : devices.status();
  auto local = DiscoverDevicesDetailed();
  if (!local.ok()) {
    std::cerr << "error: no server at " << args.url << " (" << why.message()
              << ") and device discovery failed: " << local.status().message() << "\n";
    return 1;
  }
  if (args.json) {
    std::cout << json{{"server", nullptr},
                      {"server_error", why.message()},
                      {"devices", LocalDevicesJson(local->devices)}}
                     .dump(2)
              << "\n";
    return 0;
  }
  std::cout << "No server at " << args.url << " (" << why.message()
            << "); the devices of this machine:\n\n";
  Table t({"DEVICE", "NAME", "UUID", "TOTAL", "USED BY OTHERS", "CONTEXT"}, {3, 4, 5});
  for (const Device& d : local->devices) {
    t.AddRow({d.id, d.name, d.uuid.empty() ? "-" : d.uuid, FormatBytes(d.total_bytes),
              FormatBytes(d.used_bytes), FormatBytes(d.context_bytes)});
  }
  t.Print(std::cout);
  for (const std::string& w : local->warnings) std::cout << "warning: " << w << "\n";
  if (!local->gpu_status.ok()) std::cout << "GPUs: " << local->gpu_status.message() << "\n";
  return 0;
}

}  // namespace

void AddStatusCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<StatusArgs>();
  CLI::App* cmd = app.add_subcommand(
      "status", "Devices and models of a running server; without one, this machine's devices");
  cmd->add_option("--url", args->url, "The server (default http://127.0.0.1:8000)");
  cmd->add_option("--timeout-ms", args->timeout_ms, "Connection and read timeout")
      ->check(CLI::Range(1, 600'000));
  cmd->add_flag("--json", args->json, "Machine-readable output");
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

}  // namespace modelgrid::cli

// Logging of `modelgrid serve` (serve_logging.h) over spdlog's sinks.
#include "cli/serve_logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

namespace modelgrid::cli {

namespace {

using nlohmann::json;

// One JSON object per line: {"time", "level", "logger", "msg"} plus, for
// the access log, the record's fields (put there by MakeAccessLog as the
// message: a JSON object text that is merged in, not quoted).
class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const auto since = msg.time.time_since_epoch();
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(since - secs);
    const std::time_t t = static_cast<std::time_t>(secs.count());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[40];
    const size_t n = std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(stamp + n, sizeof(stamp) - n, ".%06lldZ", static_cast<long long>(micros.count()));
    json line = {{"time", stamp},
                 {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                                       spdlog::level::to_string_view(msg.level).size())},
                 {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())}};
    const std::string text(msg.payload.data(), msg.payload.size());
    if (line["logger"] == "access" && !text.empty() && text.front() == '{') {
      json fields = json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (fields.is_object()) {
        line.update(fields);
      } else {
        line["msg"] = text;
      }
    } else {
      line["msg"] = text;
    }
    const std::string out = line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLineFormatter>();
  }
};

std::vector<spdlog::sink_ptr> g_sinks;  // the sinks of the default logger, shared by "access"

}  // namespace

Status ConfigureServeLogging(const LogSettings& s) {
  if (s.format != "text" && s.format != "json") {
    return Status::InvalidArgument("--log-format must be text or json, got '" + s.format + "'");
  }
  if (s.max_files < 1) return Status::InvalidArgument("--log-max-files must be at least 1");
  if (s.max_file_bytes < 4096) {
    return Status::InvalidArgument("--log-max-file-bytes must be at least 4096 bytes");
  }
  std::vector<spdlog::sink_ptr> sinks = {std::make_shared<spdlog::sinks::stderr_sink_mt>()};
  if (!s.file.empty()) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          s.file, static_cast<size_t>(s.max_file_bytes), static_cast<size_t>(s.max_files)));
    } catch (const spdlog::spdlog_ex& e) {
      return Status::Unavailable("cannot open log file '" + s.file + "': " + e.what());
    }
  }
  for (auto& sink : sinks) {
    if (s.format == "json") {
      sink->set_formatter(std::make_unique<JsonLineFormatter>());
    } else {
      sink->set_formatter(
          std::make_unique<spdlog::pattern_formatter>("[%Y-%m-%d %H:%M:%S.%e] [%n] [%l] %v"));
    }
  }
  g_sinks = sinks;
  auto logger = std::make_shared<spdlog::logger>("modelgrid", sinks.begin(), sinks.end());
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return Status::Ok();
}

std::function<void(const AccessRecord&)> MakeAccessLog(const LogSettings& s) {
  if (!s.access_log) return nullptr;
  std::vector<spdlog::sink_ptr> sinks = g_sinks;
  if (sinks.empty()) sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>("access", sinks.begin(), sinks.end());
  logger->flush_on(spdlog::level::info);
  const bool as_json = s.format == "json";
  return [logger, as_json](const AccessRecord& r) {
    if (as_json) {
      const json fields = {{"remote", r.remote_address}, {"method", r.method},
                           {"path", r.path},             {"status", r.status},
                           {"request_bytes", r.request_body_bytes},
                           {"response_bytes", r.response_bytes},
                           {"duration_us", r.duration_us}};
      logger->info("{}", fields.dump(-1, ' ', false, json::error_handler_t::replace));
    } else {
      logger->info("{} \"{} {}\" {} {} {} {}us", r.remote_address, r.method, r.path, r.status,
                   r.request_body_bytes, r.response_bytes, r.duration_us);
    }
  };
}

}  // namespace modelgrid::cli

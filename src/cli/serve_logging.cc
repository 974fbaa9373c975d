// Logging of `modelgrid serve` (serve_logging.h) over spdlog's sinks.
#include "cli/serve_logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
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

std::unique_ptr<spdlog::formatter> MakeFormatter(bool json_lines) {
  if (json_lines) return std::make_unique<JsonLineFormatter>();
  return std::make_unique<spdlog::pattern_formatter>("[%Y-%m-%d %H:%M:%S.%e] [%n] [%l] %v");
}

// In front of the default logger's sinks: lets through the levels Triton's
// logging extension turned on (ServerLogSettings), each switch on its own
// (spdlog's loggers only know a threshold). Thread-safe: the switches are
// atomics, the sinks behind lock themselves.
class LevelFilterSink final : public spdlog::sinks::sink {
 public:
  explicit LevelFilterSink(std::vector<spdlog::sink_ptr> outputs) : outputs_(std::move(outputs)) {}

  void log(const spdlog::details::log_msg& msg) override {
    if (!Passes(msg.level)) return;
    for (auto& sink : outputs_) {
      if (sink->should_log(msg.level)) sink->log(msg);
    }
  }
  void flush() override {
    for (auto& sink : outputs_) sink->flush();
  }
  void set_pattern(const std::string& pattern) override {
    for (auto& sink : outputs_) sink->set_pattern(pattern);
  }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    for (auto& sink : outputs_) sink->set_formatter(formatter->clone());
  }

  std::atomic<bool> info{true}, warning{true}, error{true};
  std::atomic<uint32_t> verbose_level{0};

 private:
  bool Passes(spdlog::level::level_enum level) const {
    switch (level) {
      case spdlog::level::trace:
        return verbose_level.load() >= 2;
      case spdlog::level::debug:
        return verbose_level.load() >= 1;
      case spdlog::level::info:
        return info.load();
      case spdlog::level::warn:
        return warning.load();
      case spdlog::level::err:
      case spdlog::level::critical:
        return error.load();
      default:
        return false;
    }
  }

  std::vector<spdlog::sink_ptr> outputs_;
};

std::vector<spdlog::sink_ptr> g_sinks;  // the sinks of the default logger, shared by "access"
std::shared_ptr<LevelFilterSink> g_filter;  // in front of g_sinks for the default logger
std::shared_ptr<spdlog::logger> g_logger;   // the default logger
std::atomic<bool> g_json{false};            // lines are JSON objects (--log-format, log_format)

// ServeLogControl's object.
class SpdlogLogControl final : public LogControl {
 public:
  explicit SpdlogLogControl(const LogSettings& s) {
    current_.file = s.file;
    current_.format = s.format;
  }

  ServerLogSettings Current() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return current_;
  }

  Status Apply(const ServerLogSettings& next) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (next.file != current_.file) {
      return Status::InvalidArgument("log_file: cannot be changed at run time");
    }
    if (next.format != "text" && next.format != "json") {
      return Status::InvalidArgument("log_format: must be text or json, got '" + next.format + "'");
    }
    if (g_filter) {
      g_filter->info = next.info;
      g_filter->warning = next.warning;
      g_filter->error = next.error;
      g_filter->verbose_level = next.verbose_level;
    }
    if (g_logger) {
      g_logger->set_level(next.verbose_level >= 2   ? spdlog::level::trace
                          : next.verbose_level == 1 ? spdlog::level::debug
                                                    : spdlog::level::info);
    }
    if (next.format != current_.format) {
      for (auto& sink : g_sinks) sink->set_formatter(MakeFormatter(next.format == "json"));
      g_json = next.format == "json";
    }
    current_ = next;
    return Status::Ok();
  }

 private:
  mutable std::mutex mu_;
  ServerLogSettings current_;
};

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
  for (auto& sink : sinks) sink->set_formatter(MakeFormatter(s.format == "json"));
  g_sinks = sinks;
  g_json = s.format == "json";
  g_filter = std::make_shared<LevelFilterSink>(sinks);
  g_logger = std::make_shared<spdlog::logger>("modelgrid", g_filter);
  g_logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(g_logger);
  return Status::Ok();
}

std::function<void(const AccessRecord&)> MakeAccessLog(const LogSettings& s) {
  if (!s.access_log) return nullptr;
  std::vector<spdlog::sink_ptr> sinks = g_sinks;
  if (sinks.empty()) sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>("access", sinks.begin(), sinks.end());
  logger->flush_on(spdlog::level::info);
  return [logger](const AccessRecord& r) {
    if (g_json) {
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

std::unique_ptr<LogControl> MakeServeLogControl(const LogSettings& settings) {
  return std::make_unique<SpdlogLogControl>(settings);
}

}  // namespace modelgrid::cli

// Triton's logging extension over the server's LogControl
// (InferenceService::GetLogSettings / UpdateLogSettings, log_control.h):
// a client's settings read and checked here, so that HTTP and gRPC refuse
// the same things with the same words.
#include <limits>
#include <string>

#include "modelgrid/service/inference_service.h"

namespace modelgrid {

namespace {

using nlohmann::json;

constexpr const char* kKnown =
    "log_file, log_info, log_warning, log_error, log_verbose_level, log_format";

bool Known(const std::string& name) {
  for (const char* k :
       {"log_file", "log_info", "log_warning", "log_error", "log_verbose_level", "log_format"}) {
    if (name == k) return true;
  }
  return false;
}

json LogSettingsJson(const ServerLogSettings& s) {
  return {{"log_file", s.file},
          {"log_info", s.info},
          {"log_warning", s.warning},
          {"log_error", s.error},
          {"log_verbose_level", s.verbose_level},
          {"log_format", s.format}};
}

Status WrongType(const std::string& name, const char* expected, const json& got) {
  return Status::InvalidArgument(name + ": expected " + expected + ", got " +
                                 std::string(got.type_name()) + " " +
                                 got.dump(-1, ' ', false, json::error_handler_t::replace));
}

// The protocol document spells two settings in the plural; Triton's server
// and clients use the singular.
std::string CanonicalName(const std::string& name) {
  if (name == "log_warnings") return "log_warning";
  if (name == "log_errors") return "log_error";
  return name;
}

// Reads one setting into `next`. Errors name the setting.
Status ReadLogSetting(const std::string& name, const json& v, ServerLogSettings* next) {
  if (name == "log_info" || name == "log_warning" || name == "log_error") {
    if (!v.is_boolean()) return WrongType(name, "a boolean", v);
    bool& field = name == "log_info"      ? next->info
                  : name == "log_warning" ? next->warning
                                          : next->error;
    field = v.get<bool>();
    return Status::Ok();
  }
  if (name == "log_verbose_level") {
    const bool fits = v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
    if (!fits || v.get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
      return WrongType(name, "an integer in [0, 4294967295]", v);
    }
    next->verbose_level = static_cast<uint32_t>(v.get<uint64_t>());
    return Status::Ok();
  }
  if (!v.is_string()) return WrongType(name, "a string", v);
  const std::string text = v.get<std::string>();
  if (name == "log_format") {
    if (text == "text" || text == "default") {
      next->format = "text";
    } else if (text == "json") {
      next->format = "json";
    } else {
      return Status::InvalidArgument("log_format: '" + text +
                                     "' is not offered (text or json; Triton's 'default' is "
                                     "text, its ISO8601 layout is not offered)");
    }
    return Status::Ok();
  }
  // log_file
  if (text != next->file) {
    return Status::InvalidArgument(
        "log_file: cannot be changed at run time (the server logs to '" + next->file +
        "' as --log-file set it; a file named by a client would let it make the server append "
        "to any file the server may write)");
  }
  return Status::Ok();
}

}  // namespace

Result<json> InferenceService::GetLogSettings() const {
  if (options_.log_control == nullptr) {
    return Status::Unsupported("the logging extension is not served by this server");
  }
  return LogSettingsJson(options_.log_control->Current());
}

Result<json> InferenceService::UpdateLogSettings(const json& settings, std::string_view token) {
  MG_RETURN_IF_ERROR(Authorize(token, "changing the log settings"));
  if (options_.log_control == nullptr) {
    return Status::Unsupported("the logging extension is not served by this server");
  }
  if (!settings.is_object()) {
    return Status::InvalidArgument("log settings must be a JSON object, got " +
                                   std::string(settings.type_name()));
  }
  std::string unknown;
  for (const auto& [name, value] : settings.items()) {
    const std::string canonical = CanonicalName(name);
    if (!Known(canonical)) {
      unknown += (unknown.empty() ? "'" : ", '") + name + "'";
    }
  }
  if (!unknown.empty()) {
    return Status::InvalidArgument("unknown log setting(s) " + unknown + " (known: " + kKnown +
                                   ")");
  }
  ServerLogSettings next = options_.log_control->Current();
  for (const auto& [name, value] : settings.items()) {
    MG_RETURN_IF_ERROR(ReadLogSetting(CanonicalName(name), value, &next));
  }
  MG_RETURN_IF_ERROR(options_.log_control->Apply(next));
  return LogSettingsJson(options_.log_control->Current());
}

}  // namespace modelgrid

// Trace settings as values and the reading of an update (trace_settings.h).
#include "service/trace_settings.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace modelgrid::service {

namespace {

using nlohmann::json;

// The value of `setting` as a list of strings: a string or an integer is
// one, an array of strings is each. Errors name the setting and the type.
Result<std::vector<std::string>> ValueList(const std::string& setting, const json& value) {
  if (value.is_string()) return std::vector<std::string>{value.get<std::string>()};
  if (value.is_number_integer()) return std::vector<std::string>{value.dump()};
  if (value.is_array()) {
    std::vector<std::string> out;
    for (const json& item : value) {
      if (!item.is_string()) {
        return Status::InvalidArgument(setting +
                                       ": expected an array of strings, got an element of type " +
                                       std::string(item.type_name()));
      }
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  return Status::InvalidArgument(setting +
                                 ": expected a string, an array of strings or null, got " +
                                 std::string(value.type_name()));
}

// `text` as an integer in [min, INT64_MAX]; errors name the setting.
Result<int64_t> ParseInteger(const std::string& setting, const std::string& text, int64_t min) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (text.empty() || ec != std::errc() || ptr != end || v < min) {
    return Status::InvalidArgument(setting + ": expected an integer >= " + std::to_string(min) +
                                   ", got '" + text + "'");
  }
  return v;
}

Result<TraceLevel> ParseLevels(const std::vector<std::string>& values) {
  bool off = false, timestamps = false;
  for (std::string v : values) {
    std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::toupper(c); });
    if (v == "OFF") {
      off = true;
    } else if (v == "TIMESTAMPS") {
      timestamps = true;
    } else if (v == "TENSORS") {
      return Status::InvalidArgument(
          "trace_level: TENSORS is not offered (ModelGrid traces TIMESTAMPS only: it does not "
          "copy a request's tensors into the trace file)");
    } else {
      return Status::InvalidArgument("trace_level: unknown level '" + v +
                                     "' (known: OFF, TIMESTAMPS)");
    }
  }
  if (off && timestamps) {
    return Status::InvalidArgument("trace_level: OFF cannot be combined with TIMESTAMPS");
  }
  return timestamps ? TraceLevel::kTimestamps : TraceLevel::kOff;
}

// Reads one setting's values into `set`.
Status ReadSetting(const std::string& name, const std::vector<std::string>& values,
                   TraceOverrides* set) {
  if (name == "trace_level") {
    MG_ASSIGN_OR_RETURN(set->level, ParseLevels(values));
    return Status::Ok();
  }
  if (values.size() != 1) {
    return Status::InvalidArgument(name + ": takes one value, got " +
                                   std::to_string(values.size()));
  }
  const std::string& v = values.front();
  if (name == "trace_file") {
    set->file = v;
  } else if (name == "trace_rate") {
    MG_ASSIGN_OR_RETURN(const int64_t rate, ParseInteger(name, v, 1));
    set->rate = static_cast<uint64_t>(rate);
  } else if (name == "trace_count") {
    MG_ASSIGN_OR_RETURN(set->count, ParseInteger(name, v, -1));
  } else {  // log_frequency
    MG_ASSIGN_OR_RETURN(const int64_t frequency, ParseInteger(name, v, 0));
    set->log_frequency = static_cast<uint64_t>(frequency);
  }
  return Status::Ok();
}

bool Known(const std::string& name) {
  return std::any_of(std::begin(kTraceSettingNames), std::end(kTraceSettingNames),
                     [&](const char* k) { return name == k; });
}

}  // namespace

TraceSettings TraceOverrides::Over(const TraceSettings& global) const {
  TraceSettings s = global;
  if (file) s.file = *file;
  if (level) s.level = *level;
  if (rate) s.rate = *rate;
  if (count) s.count = *count;
  if (log_frequency) s.log_frequency = *log_frequency;
  return s;
}

Result<TraceUpdate> ParseTraceUpdate(const json& body) {
  if (!body.is_object()) {
    return Status::InvalidArgument("trace settings must be a JSON object, got " +
                                   std::string(body.type_name()));
  }
  std::string unknown;
  for (const auto& [name, value] : body.items()) {
    if (!Known(name)) unknown += (unknown.empty() ? "'" : ", '") + name + "'";
  }
  if (!unknown.empty()) {
    return Status::InvalidArgument(
        "unknown trace setting(s) " + unknown +
        " (known: trace_file, trace_level, trace_rate, trace_count, log_frequency)");
  }
  TraceUpdate update;
  for (const auto& [name, value] : body.items()) {
    if (value.is_null() || (value.is_array() && value.empty())) {
      update.cleared.push_back(name);
      continue;
    }
    MG_ASSIGN_OR_RETURN(const std::vector<std::string> values, ValueList(name, value));
    MG_RETURN_IF_ERROR(ReadSetting(name, values, &update.set));
  }
  return update;
}

json TraceSettingsJson(const TraceSettings& s) {
  return {{"trace_file", s.file},
          {"trace_level", json::array({TraceLevelName(s.level)})},
          {"trace_rate", std::to_string(s.rate)},
          {"trace_count", std::to_string(s.count)},
          {"log_frequency", std::to_string(s.log_frequency)}};
}

const char* TraceLevelName(TraceLevel level) {
  return level == TraceLevel::kTimestamps ? "TIMESTAMPS" : "OFF";
}

}  // namespace modelgrid::service

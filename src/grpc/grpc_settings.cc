// Trace and log settings between gRPC messages and JSON (grpc_settings.h).
#include "grpc/grpc_settings.h"

namespace modelgrid::grpc_internal {

using nlohmann::json;

json TraceSettingsJson(const inference::TraceSettingRequest& request) {
  json out = json::object();
  for (const auto& [name, value] : request.settings()) {
    if (value.value().empty()) {
      out[name] = nullptr;
      continue;
    }
    json list = json::array();
    for (const std::string& v : value.value()) list.push_back(v);
    out[name] = std::move(list);
  }
  return out;
}

void EncodeTraceSettings(const json& settings, inference::TraceSettingResponse* out) {
  for (const auto& [name, value] : settings.items()) {
    auto& entry = (*out->mutable_settings())[name];
    if (value.is_array()) {
      for (const json& v : value) entry.add_value(v.is_string() ? v.get<std::string>() : v.dump());
    } else {
      entry.add_value(value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
}

json LogSettingsJson(const inference::LogSettingsRequest& request) {
  using Value = inference::LogSettingsRequest::SettingValue;
  json out = json::object();
  for (const auto& [name, value] : request.settings()) {
    switch (value.parameter_choice_case()) {
      case Value::kBoolParam:
        out[name] = value.bool_param();
        break;
      case Value::kUint32Param:
        out[name] = value.uint32_param();
        break;
      case Value::kStringParam:
        out[name] = value.string_param();
        break;
      default:
        out[name] = nullptr;
        break;
    }
  }
  return out;
}

void EncodeLogSettings(const json& settings, inference::LogSettingsResponse* out) {
  for (const auto& [name, value] : settings.items()) {
    auto& entry = (*out->mutable_settings())[name];
    if (value.is_boolean()) {
      entry.set_bool_param(value.get<bool>());
    } else if (value.is_number_unsigned() ||
               (value.is_number_integer() && value.get<int64_t>() >= 0)) {
      entry.set_uint32_param(static_cast<uint32_t>(value.get<uint64_t>()));
    } else if (value.is_string()) {
      entry.set_string_param(value.get<std::string>());
    } else {
      entry.set_string_param(value.dump());
    }
  }
}

}  // namespace modelgrid::grpc_internal

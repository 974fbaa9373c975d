// Request parameters -> InferCall (infer_call.h).
#include "service/infer_call.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <optional>
#include <string>

namespace modelgrid::service {

namespace {

using nlohmann::json;

std::string Shown(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

Status WrongType(const std::string& name, const std::string& expected, const json& value) {
  return Status::InvalidArgument("parameter '" + name + "' must be " + expected + ", got " +
                                 Shown(value));
}

Result<int> Priority(const json& value) {
  const bool integer = value.is_number_integer();
  if (!integer) return WrongType("priority", "an integer", value);
  if (value.is_number_unsigned()) {
    if (value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max())) {
      return WrongType("priority", "an integer in int range", value);
    }
    return static_cast<int>(value.get<uint64_t>());
  }
  const int64_t v = value.get<int64_t>();
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
    return WrongType("priority", "an integer in int range", value);
  }
  return static_cast<int>(v);
}

// Microseconds -> milliseconds rounded up; nullopt for 0 (the model's default).
Result<std::optional<std::chrono::milliseconds>> Timeout(const json& value) {
  if (!value.is_number_integer() || (!value.is_number_unsigned() && value.get<int64_t>() < 0)) {
    return WrongType("timeout", "a non-negative integer (microseconds)", value);
  }
  const uint64_t us = value.get<uint64_t>();
  if (us == 0) return std::optional<std::chrono::milliseconds>();
  const uint64_t ms = us / 1000 + (us % 1000 != 0 ? 1 : 0);
  constexpr uint64_t kMaxMs = uint64_t{1} << 40;  // ~35 years: keeps deadline arithmetic finite
  return std::optional<std::chrono::milliseconds>(
      std::chrono::milliseconds(static_cast<int64_t>(std::min(ms, kMaxMs))));
}

}  // namespace

Result<InferCall> MakeInferCall(InferRequest request) {
  InferCall call;
  call.id = request.id;
  call.inputs = std::move(request.inputs);
  call.params = json::object();
  if (!request.parameters.is_object()) return call;
  for (auto it = request.parameters.begin(); it != request.parameters.end(); ++it) {
    const std::string& key = it.key();
    const json& value = it.value();
    if (key == "task") {
      if (!value.is_string() || value.get<std::string>().empty()) {
        return WrongType("task", "a non-empty string", value);
      }
      call.task = value.get<std::string>();
    } else if (key == "priority") {
      MG_ASSIGN_OR_RETURN(call.priority, Priority(value));
    } else if (key == "timeout") {
      MG_ASSIGN_OR_RETURN(call.timeout, Timeout(value));
    } else if (key != "binary_data_output") {
      call.params[key] = value;
    }
  }
  return call;
}

}  // namespace modelgrid::service

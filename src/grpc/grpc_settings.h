// Triton's trace and logging extensions between their gRPC messages
// (TraceSettingRequest/Response, LogSettingsRequest/Response of
// kserve_grpc.proto) and the JSON objects the service reads and answers
// (InferenceService::UpdateTraceSettings, UpdateLogSettings), so that both
// transports hand the service the same values. Pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include "kserve_grpc.pb.h"

namespace modelgrid::grpc_internal {

// The request's settings as {"name": ["v", ...]}; a setting given no value
// is null (it clears a model's own setting).
nlohmann::json TraceSettingsJson(const inference::TraceSettingRequest& request);
// The service's answer ({"name": "v" | ["v", ...]}) into the response: each
// value as a list of strings.
void EncodeTraceSettings(const nlohmann::json& settings, inference::TraceSettingResponse* out);

// The request's settings as {"name": bool | uint32 | string}; a value
// without a choice is null (refused by the service as the wrong type).
nlohmann::json LogSettingsJson(const inference::LogSettingsRequest& request);
// The service's answer into the response: booleans as bool_param,
// non-negative integers as uint32_param, strings as string_param.
void EncodeLogSettings(const nlohmann::json& settings, inference::LogSettingsResponse* out);

}  // namespace modelgrid::grpc_internal

// Triton's trace extension over the service's Tracer
// (InferenceService::GetTraceSettings / UpdateTraceSettings; the sampling
// and the records are in tracer.h, the inference path calls it in
// service_infer.cc).
#include "modelgrid/service/inference_service.h"
#include "service/trace_settings.h"
#include "service/tracer.h"

namespace modelgrid {

Result<nlohmann::json> InferenceService::GetTraceSettings(const std::string& model) const {
  if (!model.empty()) MG_RETURN_IF_ERROR(FindModel(model, "").status());
  return service::TraceSettingsJson(tracer_->Settings(model));
}

Result<nlohmann::json> InferenceService::UpdateTraceSettings(const std::string& model,
                                                             const nlohmann::json& settings,
                                                             std::string_view token) {
  MG_RETURN_IF_ERROR(
      Authorize(token, model.empty() ? std::string("changing the trace settings")
                                     : "changing the trace settings of model '" + model + "'"));
  if (!model.empty()) MG_RETURN_IF_ERROR(FindModel(model, "").status());
  MG_ASSIGN_OR_RETURN(const service::TraceUpdate update, service::ParseTraceUpdate(settings));
  MG_ASSIGN_OR_RETURN(const service::TraceSettings now, tracer_->Update(model, update));
  return service::TraceSettingsJson(now);
}

}  // namespace modelgrid

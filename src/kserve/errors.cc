// KServe v2 error mapping (modelgrid/kserve/errors.h).
#include "modelgrid/kserve/errors.h"

#include "kserve/json_text.h"

namespace modelgrid {

int HttpStatusFromCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kCorruption:
    case StatusCode::kAlreadyExists:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kUnsupported:
      return 501;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kResourceExhausted:
      return 507;
    case StatusCode::kInternal:
      return 500;
    case StatusCode::kPermissionDenied:
      return 403;
  }
  return 500;
}

std::string ErrorBody(std::string_view message) {
  std::string body = "{\"error\":";
  kserve_internal::AppendJsonString(&body, message, /*lossy=*/true);
  body.push_back('}');
  return body;
}

std::string ErrorBody(const Status& status) { return ErrorBody(status.message()); }

}  // namespace modelgrid

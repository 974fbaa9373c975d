// How a failed call looks on the KServe v2 HTTP wire (reference/kserve_v2.md,
// "Errors"): an HTTP status chosen from the Status code, and the body
// {"error": "<message>"}. Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "modelgrid/status.h"

namespace modelgrid {

// The HTTP status for `code`, following Triton's mapping plus ModelGrid's 507:
// kOk 200; kInvalidArgument, kCorruption, kAlreadyExists 400; kNotFound 404;
// kUnsupported 501; kUnavailable 503; kResourceExhausted 507; kInternal 500; kPermissionDenied 403.
int HttpStatusFromCode(StatusCode code);

// The JSON error body {"error":"<message>"} for `message`. Bytes of the
// message that are not UTF-8 are replaced by U+FFFD so the body is always
// valid JSON.
std::string ErrorBody(std::string_view message);

// ErrorBody(status.message()).
std::string ErrorBody(const Status& status);

}  // namespace modelgrid

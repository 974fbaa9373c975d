// Internal: ValidateTensorData without the "<kind> '<name>': " prefix, for
// callers that add their own.
#pragma once

#include "modelgrid/kserve/tensor.h"
#include "modelgrid/status.h"

namespace modelgrid::kserve_internal {

// The checks of ValidateTensorData (tensor.h); messages carry no prefix.
Status CheckTensorPayload(const InferTensorView& tensor);

}  // namespace modelgrid::kserve_internal

// From a decoded KServe v2 infer request to the grid's InferCall: the task
// selection and scheduling parameters travel in the request's "parameters"
// object (src/server/README.md, "Request parameters"). Pure, thread-safe,
// no HTTP library.
#pragma once

#include "modelgrid/service/inference_service.h"

#include "modelgrid/grid.h"
#include "modelgrid/kserve/infer_codec.h"

namespace modelgrid::service {

// Builds the call from `request` (its inputs are moved out):
//   "task"      string, default "infer" (e.g. "encode", "generate", a custom task);
//   "priority"  integer in int range, higher runs first (default 0);
//   "timeout"   integer microseconds >= 0, as Triton's parameter; rounded up
//               to whole milliseconds; 0 or absent = the model's default;
//   every other parameter except "binary_data_output" (a codec option) goes
//   to InferCall::params for the task (generate's max_new_tokens, ...).
// The request id is copied. Errors: kInvalidArgument naming the parameter
// and the expected type, e.g. "parameter 'priority' must be an integer, got \"high\"".
Result<InferCall> MakeInferCall(InferRequest request);

// A generation's rows as the generate task's outputs: text_output BYTES
// [B], generated_ids INT64 [B,N] (rows shorter than N padded with -1),
// finish_reason BYTES [B], prompt_tokens INT64 [B] (service_generate.cc).
std::vector<InferTensor> GenerationTensors(const GenerateResponse& response);

}  // namespace modelgrid::service

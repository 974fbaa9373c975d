// Batching helpers for the scheduler's dynamic batching: requests' input
// tensors joined along dim 0 into one batch, and a batch's outputs cut back
// into per-request outputs. Pure functions over InferTensor bytes (no
// LibTorch), in modelgrid_backend_batching.
//
// Layout facts used (modelgrid/kserve/tensor.h): data is row-major, so the
// rows of dim 0 are consecutive byte ranges; BYTES elements are
// length-prefixed and self-delimiting, so their rows are consecutive too.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "modelgrid/kserve/tensor.h"
#include "modelgrid/status.h"

namespace modelgrid {

// One batch made of several requests' inputs.
struct ConcatenatedBatch {
  // One tensor per input name, in the first request's order: the requests'
  // tensors joined along dim 0 (shape[0] = sum of batch_sizes); parameters
  // are empty.
  std::vector<InferTensor> inputs;
  // Each request's batch size (its tensors' shape[0]), in request order.
  std::vector<int64_t> batch_sizes;
};

// Joins `requests` (each a list of named input tensors) along dim 0.
// Every request must hold the same input names (each once, any order), and
// for each name the same datatype and the same dims after the first; every
// tensor of one request must share shape[0] (its batch size, >= 0). Data
// must be well formed (ValidateTensorData).
// Errors: kInvalidArgument naming the request index and input, with
// expected vs got (empty request list, missing/extra/duplicate input, rank 0,
// datatype or non-batch dims differing, batch sizes differing within a
// request, malformed data, or a total batch past INT64_MAX).
Result<ConcatenatedBatch> ConcatBatch(const std::vector<std::vector<InferTensor>>& requests);

// Cuts each tensor of `outputs` along dim 0 into consecutive pieces of
// `batch_sizes` rows: result[r] holds request r's slice of every output,
// in `outputs` order, with the output's name, datatype and parameters.
// Errors: kInvalidArgument naming the output when its rank is 0, its
// shape[0] differs from the sum of batch_sizes, a batch size is negative,
// or its data is malformed.
Result<std::vector<std::vector<InferTensor>>> SplitBatch(const std::vector<InferTensor>& outputs,
                                                         std::span<const int64_t> batch_sizes);

}  // namespace modelgrid

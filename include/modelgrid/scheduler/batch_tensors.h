// Merging the input tensors of several requests into one batch and splitting
// a batch's outputs back per request (docs/design.md, "scheduler": dynamic
// batching). Pure functions over InferTensor's raw bytes (kserve/tensor.h):
// row-major data, so concatenating along dimension 0 is concatenating the
// parts' bytes; BYTES tensors hold 4-byte-length-prefixed elements back to
// back, so the same holds for them, but splitting one must walk the elements.
// Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "modelgrid/kserve/tensor.h"
#include "modelgrid/status.h"

namespace modelgrid {

// The batch size of a request: the common dimension 0 of all its inputs.
// nullopt when the request cannot take part in a batch: no inputs, an input
// of rank 0, inputs whose dimension 0 differ, a dimension 0 below 1, or two
// inputs with the same name.
std::optional<int64_t> RequestBatchSize(std::span<const InferTensor> inputs);

// Concatenates `parts` along dimension 0 into one tensor named and typed as
// parts[0] (whose `parameters` it keeps). Every part must have the same name,
// datatype, rank >= 1 and dimensions 1.. as parts[0], and well-formed data
// (ValidateTensorData). Errors: kInvalidArgument naming the tensor and the
// part index when a part differs or its data is malformed, or when `parts`
// is empty.
Result<InferTensor> ConcatBatch(std::span<const InferTensor* const> parts);

// Splits `tensor` along dimension 0 into pieces of `batch_sizes[i]` rows
// each (in order); the sizes must sum to tensor.shape[0]. Each piece keeps
// the name, datatype, dimensions 1.. and parameters of `tensor`. Errors:
// kInvalidArgument naming the tensor when it has rank 0, its dimension 0 is
// not the sum of `batch_sizes` (the message gives both), a batch size is
// negative, or its data is malformed for its shape.
Result<std::vector<InferTensor>> SplitBatch(const InferTensor& tensor,
                                            std::span<const int64_t> batch_sizes);

// The checks of SplitBatch without the split: `tensor` has rank >= 1, no
// batch size is negative, its dimension 0 is the sum of `batch_sizes`, and
// its data is well-formed. What the scheduler calls on a batch of one
// request, whose outputs it then passes on whole (no copy).
// Errors: as SplitBatch.
Status CheckBatchOutput(const InferTensor& tensor, std::span<const int64_t> batch_sizes);

}  // namespace modelgrid

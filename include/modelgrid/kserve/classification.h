// Triton's classification extension (Triton
// docs/protocol/extension_classification.md; src/kserve/README.md,
// "Classification"): a requested output whose parameters carry
// "classification": k is returned, instead of its scores, as a BYTES tensor
// of the k highest-scoring classes, each element the text
// "<score>:<index>" or "<score>:<index>:<label>".
//
// HTTP: {"outputs": [{"name": "probs", "parameters": {"classification": 3}}]}
// gRPC: InferRequestedOutputTensor.parameters["classification"].int64_param
// (RequestedClassCount expects the gRPC server to have put it into
// RequestedOutput::parameters as a JSON integer).
//
// Pure functions, no state: thread-safe. Errors are Status values whose
// message names the output.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "modelgrid/kserve/infer_codec.h"
#include "modelgrid/kserve/tensor.h"
#include "modelgrid/status.h"

namespace modelgrid {

// The requested-output parameter that asks for classification (Triton's
// name), and an alias accepted for it.
inline constexpr std::string_view kClassificationParameter = "classification";
inline constexpr std::string_view kClassCountParameter = "class_count";

// The number of classes `output` asks for: the value of its
// "classification" parameter, or of "class_count" (an alias), or nullopt
// when it has neither (the output is sent as the model produced it).
// The value must be a JSON integer >= 1 (a gRPC int64_param / uint64_param
// becomes one). Triton reads "classification": 0 as "no classification";
// here 0 is refused, as a request for zero classes is surely a mistake.
// Errors: kInvalidArgument naming the output and what was given:
//   "output 'probs': classification must be an integer >= 1, got 0"
//   (likewise for -2, 2.5, 3.0, "3", true, null; the message names the
//   parameter used, "class_count" for the alias),
//   "output 'probs': both \"classification\" and \"class_count\" are given;
//   use one".
Result<std::optional<uint64_t>> RequestedClassCount(const RequestedOutput& output);

// Replaces the scores tensor `scores` by its top-`k` classification, as
// Triton's classification extension does:
//  - The classes of a row are its elements in row-major order, indexed from
//    0: with `batched` (the model has a batch dimension) each index of the
//    first dimension is a row and the classes are the remaining dimensions
//    flattened (shape [B, d1, d2, ...] -> B rows of d1*d2*... classes);
//    without it the whole tensor is one row.
//  - Per row, the min(k, classes) highest scores, compared in the scores'
//    own datatype (INT64 / UINT64 exactly, not through double), highest
//    first. Ties go to the lower class index (Triton's std::sort leaves
//    their order unspecified). NaN ranks below every number, -infinity
//    included (Triton's comparison is undefined there); NaNs among
//    themselves by index. k larger than the number of classes is clamped
//    to it, as Triton does (its documentation says the count dimension
//    equals k, its code clamps).
//  - Result: name and parameters of `scores`, datatype BYTES, shape
//    [B, min(k, classes)] with `batched`, [min(k, classes)] without; element
//    (row r, rank j) is "<score>:<index>" or, when `labels` has a non-empty
//    entry at that index, "<score>:<index>:<label>" (`labels` is indexed by
//    class index; a shorter list or an empty entry gives no label part).
//  - <score> is written as Triton writes it (std::to_string of the value):
//    integers in decimal ("7", "-3", "18446744073709551615"); FP32 / FP64
//    with exactly six decimals, as printf's "%f" ("3.300000", "-0.000000",
//    "100000000000000000000.000000"), NaN as "nan" or "-nan", infinities as
//    "inf" / "-inf"; FP16 and BF16 (which Triton refuses) converted exactly
//    to float, then the same. The text never depends on the C locale.
//  - Empty rows (a zero class dimension) give a [B, 0] tensor; B = 0 gives
//    [0, min(k, classes)].
// Errors:
//   kInvalidArgument "output 'probs': classification needs k >= 1, got 0";
//   kInvalidArgument "output 'probs': classification (k=3) needs numeric
//     scores, got datatype BYTES" (likewise BOOL);
//   kInvalidArgument "output 'probs': classification (k=3) of a batched
//     output needs scores of shape [batch, ...], got []";
//   kInternal "output 'probs': data has 8 bytes but shape [3] FP32 needs 12
//     bytes" (scores that do not match their shape: ValidateTensorData;
//     the model produced a malformed tensor);
//   kInvalidArgument when an element would pass 2^32-1 bytes (a label that
//     long); kResourceExhausted when the working memory (a row's scores
//     and indices) cannot be allocated.
Result<InferTensor> ClassifyOutput(const InferTensor& scores, uint64_t k, bool batched,
                                   std::span<const std::string> labels = {});

}  // namespace modelgrid

// Internal: tensor element bytes <-> the JSON "data" array.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>

#include "modelgrid/datatype.h"
#include "modelgrid/kserve/tensor.h"
#include "modelgrid/status.h"

namespace modelgrid::kserve_internal {

// Converts a tensor's "data" value (an array nested to any depth, read
// row-major; a lone scalar counts as one element) into element bytes of
// `type` (tensor.h layout). `count` is ElementCount(shape). A non-finite
// number_float (ParseInferJson's NaN / Infinity / -Infinity) becomes the
// float type's quiet NaN or infinity (FP32 0x7FC00000, FP64
// 0x7FF8000000000000, FP16 0x7E00, BF16 0x7FC0; infinities keep their
// sign); for any other type it is an error ("element 0 is NaN, INT32 needs
// an integer").
// Errors: kInvalidArgument without a tensor prefix (the caller adds it):
// "shape [2,3] needs 6 elements, got 5", "value 300 out of range for UINT8
// (element 2)", "value 2.5 is not an integer as INT32 needs (element 0)",
// "element 1 is \"a\", BOOL needs true or false", ...
Result<std::string> JsonDataToBytes(const nlohmann::json& data, DataType type,
                                    std::span<const int64_t> shape, uint64_t count);

// Appends tensor.data (already validated with ValidateTensorData) as a flat
// JSON array; float NaN / infinities are written as NaN, Infinity and
// -Infinity (AppendFloat). Errors: kInvalidArgument "element N of BYTES is not UTF-8 text
// (byte K); JSON cannot carry it, use binary data".
Status AppendJsonData(std::string* out, const InferTensor& tensor);

}  // namespace modelgrid::kserve_internal

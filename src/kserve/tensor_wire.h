// Internal: the tensor lists of request and response bodies ("inputs" /
// "outputs"), in JSON or with Triton's binary data extension.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/kserve/infer_codec.h"
#include "modelgrid/kserve/tensor.h"
#include "modelgrid/status.h"

namespace modelgrid::kserve_internal {

// The bytes after the JSON header of a body, and how many tensors used.
struct BinaryPart {
  bool present = false;  // the body had Inference-Header-Content-Length
  std::string_view bytes;
  size_t used = 0;
  // DecodeOptions::body_owner: holds `bytes`; large fixed-size tensors
  // refer to them instead of copying.
  std::shared_ptr<const std::string> owner;
};

// Splits `body` at `json_header_length` (when given) and parses the JSON
// part (ParseInferJson: NaN, Infinity and -Infinity are accepted in tensor
// "data"), which must be an object. Errors: kInvalidArgument for a header length
// past the body, malformed JSON, or a JSON value that is not an object.
Result<nlohmann::json> ParseBody(std::string_view body, std::optional<size_t> json_header_length,
                                 BinaryPart* binary);

// Decodes the array `list` of tensor objects; `kind` ("input" / "output")
// names them in messages. Binary tensors take their bytes from `binary` in
// order. An input (kind "input") whose parameters name
// "shared_memory_region" is decoded without data, its parameters kept (the
// grid resolves them). Errors: kInvalidArgument naming the tensor (also for
// "data" or binary_data_size next to shared_memory_region); kUnsupported
// for a shared-memory output.
Result<std::vector<InferTensor>> DecodeTensors(const nlohmann::json& list, std::string_view kind,
                                               BinaryPart* binary, const DecodeOptions& options);

// Errors unless the tensors used every byte of `binary`.
Status CheckBinaryUsed(const BinaryPart& binary);

// Appends the JSON object of `tensor` to `json_out`: name, datatype, shape,
// parameters (when not empty) and data, or, when `binary`, parameters with
// binary_data_size and the data appended to `binary_out`. `tensor` must have
// passed ValidateTensorData. Errors: as AppendJsonData, prefixed with
// "<kind> '<name>'".
Status AppendTensor(std::string* json_out, std::string* binary_out, const InferTensor& tensor,
                    bool binary, std::string_view kind);

// Returns the string at `key` of `object`, "" when absent. Errors:
// kInvalidArgument "<where>\"<key>\" must be a string".
Result<std::string> OptionalString(const nlohmann::json& object, const char* key);

// Returns the object at `key` of `object`, an empty object when absent.
// Errors: kInvalidArgument "\"<key>\" must be a JSON object".
Result<nlohmann::json> OptionalObject(const nlohmann::json& object, const char* key,
                                      std::string_view where);

}  // namespace modelgrid::kserve_internal

// The KServe v2 / Open Inference Protocol inference wire format over HTTP:
// JSON request and response bodies, with Triton's binary data extension
// (reference/kserve_v2.md, "Infer request / response"; Triton
// docs/protocol/extension_binary_data.md). No HTTP library here: the server
// hands over the body and the Inference-Header-Content-Length header, and
// gets back the body and that header's value.
//
// Request JSON:
//   {"id"?: string, "parameters"?: {...},
//    "inputs": [{"name", "shape": [int], "datatype", "parameters"?: {...},
//                "data"?: nested or flat array, row-major}],
//    "outputs"?: [{"name", "parameters"?: {"binary_data"?: bool, ...}}]}
// Response JSON:
//   {"model_name", "model_version"?, "id"?, "parameters"?: {...},
//    "outputs": [{"name", "shape", "datatype", "parameters"?, "data"?}]}
//
// JSON element values per datatype: BOOL as true/false; UINT*/INT* as JSON
// integers within the type's range; FP16/BF16/FP32/FP64 as JSON numbers
// (rounded to nearest even into the type; a finite number that rounds past
// the type's largest value is an error). NaN and infinities are written as
// the tokens NaN, Infinity and -Infinity, as Triton's HTTP server and
// Python's json module do (not strict JSON), and read back from those tokens
// inside a tensor's "data" only (src/kserve/README.md, "Non-finite
// values"); null is not a number. BYTES as JSON strings (UTF-8 text; other
// bytes need binary data).
//
// Binary data: when Inference-Header-Content-Length is N, the first N body
// bytes are the JSON and the rest are the raw tensor bytes (layout of
// tensor.h) of every tensor whose parameters carry "binary_data_size", in the
// order the tensors appear in the JSON, back to back.
//
// All functions are pure and thread-safe. Every error is a Status (no
// exception escapes) whose message names the tensor and the problem.
#pragma once

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/kserve/tensor.h"
#include "modelgrid/status.h"

namespace modelgrid {

// One entry of the request's "outputs" list: an output the client wants.
struct RequestedOutput {
  std::string name;
  // Send this output as binary data ("parameters": {"binary_data": true}).
  bool binary_data = false;
  // The entry's other parameters ("binary_data" removed); never null.
  nlohmann::json parameters = nlohmann::json::object();

  bool operator==(const RequestedOutput&) const = default;
};

// A decoded inference request.
struct InferRequest {
  std::string id;  // "" when the request has no id
  // The request's "parameters" object (never null), kept as sent.
  nlohmann::json parameters = nlohmann::json::object();
  // Triton's request parameter "binary_data_output": send every output not
  // listed in `outputs` as binary data. Decoded from `parameters`.
  bool binary_data_output = false;
  std::vector<InferTensor> inputs;       // in request order, names unique
  std::vector<RequestedOutput> outputs;  // empty: the client wants every output

  bool operator==(const InferRequest&) const = default;
};

// A decoded inference response (what a client reads back).
struct InferResponse {
  std::string model_name;
  std::string model_version;  // "" when absent
  std::string id;             // "" when absent
  nlohmann::json parameters = nlohmann::json::object();
  std::vector<InferTensor> outputs;

  bool operator==(const InferResponse&) const = default;
};

// A body to send plus, when it carries binary data, the value of the
// Inference-Header-Content-Length header (the JSON part's size in bytes).
struct EncodedBody {
  std::string body;
  std::optional<size_t> json_header_length;
};

// Limits applied while decoding.
struct DecodeOptions {
  // The most elements one tensor may declare (see kMaxTensorElements).
  uint64_t max_tensor_elements = kMaxTensorElements;
  // When set, the decoded body must lie within *body_owner, and the binary
  // data (Inference-Header-Content-Length) of a fixed-size input of at
  // least kBorrowMinBytes is not copied: the input refers to its bytes in
  // the body (InferTensor::shared, a SharedTensorBytes without a region),
  // which it keeps alive. Such a SharedTensorBytes has no region
  // (region_id 0, fd -1, empty region name: `keep` holds the body); a worker
  // gets a copy of the bytes in its arena, as for InferTensor::data.
  std::shared_ptr<const std::string> body_owner;
};

// Inputs of binary data smaller than this are copied even with
// DecodeOptions::body_owner (bytes; a copy of a few KiB costs less than the
// shared reference).
inline constexpr uint64_t kBorrowMinBytes = 64 << 10;

// Decodes an infer request body. `json_header_length` is the value of the
// Inference-Header-Content-Length header when the request has one: the JSON
// is then body[0, N) and body[N, end) holds the binary tensor data, which
// must be used exactly (no bytes missing or left over). Without it the whole
// body is JSON and no input may use binary_data_size.
// Each input carries either "data" or "parameters.binary_data_size", whose
// size must match shape x datatype (for BYTES: exactly ElementCount
// well-formed elements). Element counts must equal the product of the shape.
// Inputs in system shared memory (Triton's extension): an input with
// neither "data" nor binary_data_size whose "parameters" contain
// "shared_memory_region" is decoded with empty `data` and its parameters
// kept as given ("shared_memory_region", "shared_memory_byte_size",
// "shared_memory_offset"); the grid checks and resolves them (InferCall in
// modelgrid/grid.h), and the byte count is checked against the shape there.
// Errors: kInvalidArgument with a message such as
//   "malformed JSON at byte 17: ..." (0-based offset where parsing failed),
//   "input 'x': shape [2,3] needs 6 elements, got 5",
//   "input 'x': value 300 out of range for UINT8 (element 2)",
//   "input 'x': binary_data_size 24 but shape [2,2] FP32 needs 16 bytes",
//   "input 'x': has both \"data\" and shared_memory_region" (or
//   "has both binary_data_size and shared_memory_region").
// A requested output's shared-memory parameters are kept in its
// `parameters` (the service writes that output into the region).
Result<InferRequest> DecodeInferRequest(std::string_view body,
                                        std::optional<size_t> json_header_length,
                                        const DecodeOptions& options = {});

// Encodes `request` as a request body (the client side; used by tests and
// benchmarks). With `binary_inputs`, every input's data goes to the binary
// part and json_header_length is set; otherwise all data is JSON.
// Errors: kInvalidArgument when an input's data does not match its shape
// (ValidateTensorData) or JSON cannot carry it (BYTES elements that are not
// UTF-8 text). Float NaN / infinities are written as NaN / Infinity /
// -Infinity.
Result<EncodedBody> EncodeInferRequest(const InferRequest& request, bool binary_inputs);

// Encodes an infer response. `outputs` are the tensors the model produced.
// When `requested_outputs` is empty every output is sent, in `outputs` order;
// otherwise exactly the requested ones, in the requested order. An output is
// sent as binary data when its RequestedOutput says binary_data, or, for
// outputs without an entry, when `binary_data_output` is true (Triton's
// request parameter); binary outputs get parameters.binary_data_size and the
// result's json_header_length is set. An output with no data whose
// parameters carry "shared_memory_region" (written into the client's
// region by the service) is sent with its parameters and no data. Empty
// `model_version` / `id` are left out of the JSON.
// Errors: kInvalidArgument when a requested output is not among `outputs`
// ("requested output 'y' is not an output of model 'm'") or a JSON output
// cannot be written as JSON (BYTES that are not UTF-8 are an error naming
// the output and element; float NaN / infinities are written as NaN /
// Infinity / -Infinity); kInternal when an
// output's data does not match its shape and datatype (a backend bug).
Result<EncodedBody> EncodeInferResponse(std::string_view model_name, std::string_view model_version,
                                        std::string_view id,
                                        const std::vector<InferTensor>& outputs,
                                        const std::vector<RequestedOutput>& requested_outputs,
                                        bool binary_data_output = false);

// Decodes an infer response body (the client side; used by tests and
// benchmarks), with the same rules and errors as DecodeInferRequest applied
// to "outputs" (messages say "output 'y'"); the NaN / Infinity / -Infinity
// tokens EncodeInferResponse writes decode to the same values.
Result<InferResponse> DecodeInferResponse(std::string_view body,
                                          std::optional<size_t> json_header_length,
                                          const DecodeOptions& options = {});

}  // namespace modelgrid

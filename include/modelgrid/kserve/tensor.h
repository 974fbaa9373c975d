// The tensor value that the KServe v2 codec reads and writes, shared by the
// HTTP and gRPC servers (reference/kserve_v2.md, "Infer request / response").
//
// Data layout (the same as gRPC's raw_input_contents / raw_output_contents and
// Triton's binary data extension): row-major, little-endian element bytes.
// BYTES tensors hold each element as a 4-byte little-endian unsigned length
// followed by that many bytes, elements back to back (Triton's serialization).
// BOOL elements are one byte each, 0 or 1.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/datatype.h"
#include "modelgrid/status.h"

namespace modelgrid {

// The most elements one tensor may declare: 2^40. A shape past this is
// rejected by the codec before any memory is reserved for it (the server's
// body-size limit is the real guard; this one stops absurd shapes early).
inline constexpr uint64_t kMaxTensorElements = uint64_t{1} << 40;

// The bytes of an input tensor that lie in a registered system shared-memory
// region (Triton's system shared memory extension,
// docs/protocol/extension_shared_memory.md) instead of in InferTensor::data:
// the client wrote them there, and they reach the model without a copy
// (a worker maps the same region). Made by SharedMemoryRegistry::Slice
// (modelgrid/ipc/shm_registry.h); immutable.
struct SharedTensorBytes {
  std::string region;                // the name the region was registered under
  uint64_t region_id = 0;            // unique per registration (workers cache mappings by it)
  int fd = -1;                       // the region's descriptor, open while `keep` lives
  uint64_t map_bytes = 0;            // bytes of the file a worker maps (from offset 0)
  uint64_t offset = 0;               // of `bytes` from the start of the file
  std::string_view bytes;            // the mapped bytes of the tensor
  std::shared_ptr<const void> keep;  // holds the mapping and the descriptor
};

// One named input or output tensor of an inference request or response.
// A plain value type: copyable, movable, thread-compatible.
struct InferTensor {
  std::string name;
  DataType datatype = DataType::kFP32;
  // Dimensions, outermost first; every one >= 0. An empty shape is a scalar
  // (one element).
  std::vector<int64_t> shape;
  // The element bytes as described at the top of this file. std::string is
  // used as a byte buffer so that an HTTP body or a protobuf `bytes` field
  // can be moved in without a copy.
  std::string data;
  // The tensor's "parameters" JSON object (may be empty, never null). The
  // codec removes the transport-only "binary_data_size" when decoding and
  // adds it when encoding binary data.
  nlohmann::json parameters = nlohmann::json::object();
  // Set for an input whose bytes are in a registered shared-memory region;
  // `data` is then empty. Read the bytes with TensorBytes().
  std::shared_ptr<const SharedTensorBytes> shared = nullptr;

  bool operator==(const InferTensor&) const = default;
};

// The element bytes of `tensor`: those in shared memory when it has them,
// else `data`.
inline std::string_view TensorBytes(const InferTensor& tensor) {
  return tensor.shared ? tensor.shared->bytes : std::string_view(tensor.data);
}

// A read-only view of one tensor whose bytes live elsewhere: in an
// InferTensor, or in a worker's shared-memory arena (src/worker/), so that a
// model can run on request bytes where they already are, without a copy.
// Every field is a view: the owner of the name, shape and bytes keeps them
// alive and unchanged while the view is used. The layout of `data` is the
// one described at the top of this file.
struct InferTensorView {
  std::string_view name;
  DataType datatype = DataType::kFP32;
  std::span<const int64_t> shape;  // outermost first; empty = scalar
  std::string_view data;           // the element bytes
};

// A view of `tensor` (valid while `tensor` lives and is not modified).
InferTensorView ViewOf(const InferTensor& tensor);

// The number of elements of `shape` (the product of its dimensions; 1 for an
// empty shape). Errors: kInvalidArgument when a dimension is negative or the
// product overflows uint64_t; the message shows the shape.
Result<uint64_t> ElementCount(std::span<const int64_t> shape);

// The byte size of a tensor of fixed-size `type` and `shape`:
// ElementCount(shape) * DataTypeSize(type). Errors: kInvalidArgument for
// kBytes (variable size), a bad shape (as ElementCount) or an overflowing
// product.
Result<uint64_t> ExpectedByteSize(DataType type, std::span<const int64_t> shape);

// Formats a shape for messages: "[2,3]", "[]".
std::string FormatShape(std::span<const int64_t> shape);

// Appends one BYTES element (4-byte little-endian length, then the bytes) to
// `data`. Elements longer than 2^32 - 1 bytes cannot be represented; the
// caller must not pass them (asserts in debug builds).
void AppendBytesElement(std::string* data, std::string_view element);

// Splits serialized BYTES data into its elements (views into `data`).
// Errors: kInvalidArgument when a length prefix is cut short or a length runs
// past the end of `data`; the message gives the element index and offsets.
Result<std::vector<std::string_view>> SplitBytesElements(std::string_view data);

// Checks that `tensor.data` is a well-formed payload for its datatype and
// shape: the shape is valid and holds at most kMaxTensorElements elements;
// fixed-size types have exactly ElementCount * DataTypeSize bytes; BOOL
// bytes are 0 or 1; BYTES data splits into exactly ElementCount elements
// with nothing left over. This is what the gRPC server calls on a
// raw_input_contents entry. Errors: kInvalidArgument whose message starts
// with "<kind> '<name>': " (kind is e.g. "input" or "output") and gives the
// expected and actual sizes.
Status ValidateTensorData(const InferTensor& tensor, std::string_view kind = "input");
// The same checks on a view.
Status ValidateTensorData(const InferTensorView& tensor, std::string_view kind = "input");

}  // namespace modelgrid

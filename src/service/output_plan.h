// The parts of the inference path (service_infer.cc) that read Triton's
// per-tensor parameters: shared-memory inputs and outputs, and the
// classification extension. Internal to the service component; declared
// here so that the tests reach them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "modelgrid/grid.h"
#include "modelgrid/kserve/infer_codec.h"

namespace modelgrid::service {

// A tensor's place in a registered system shared-memory region (Triton's
// parameters shared_memory_region, shared_memory_byte_size,
// shared_memory_offset).
struct SharedMemoryRef {
  std::string region;
  uint64_t offset = 0;     // bytes from the region's start
  uint64_t byte_size = 0;  // bytes the client set aside
};

// What to do with one requested output once the model has produced it.
struct OutputPlan {
  std::string name;
  std::optional<SharedMemoryRef> shared;  // write it into this region
  uint64_t classification = 0;            // > 0: Triton's top-k strings instead
};

// Resolves every input of a call to `model` that names a region: sets
// InferTensor::shared (Grid::SharedMemorySlice) and removes the three
// parameters. Errors: kInvalidArgument for data next to a region, a
// parameter of the wrong type or a range outside the region; kNotFound for
// an unknown region. Every message names the model and input.
Status ResolveSharedInputs(const Grid& grid, const std::string& model,
                           std::vector<InferTensor>* inputs);

// Reads each requested output's shared-memory and classification
// parameters into a plan (removing the shared-memory ones, which are the
// service's, not the model's). Errors: kInvalidArgument naming the model
// and output for a mistyped parameter, or binary_data next to a region.
Result<std::vector<OutputPlan>> PlanOutputs(const std::string& model,
                                            std::vector<RequestedOutput>* requested);

// Keeps exactly the planned outputs of `*outputs`, in plan order, applying
// each plan: classification (Classify), then the copy into shared memory
// (the tensor then keeps its name, datatype and shape, has no data, and
// carries the region's parameters with the bytes written). No plans: the
// outputs stay as they are. Errors: kInvalidArgument for an output the
// model does not have or one larger than its region's byte size;
// Grid::WriteSharedMemory's.
Status FinishOutputs(const Grid& grid, const std::string& model,
                     const std::vector<OutputPlan>& plans, std::vector<InferTensor>* outputs);

// The requested top-k of `output`'s parameter "classification" (Triton's
// name; the alias "class_count" is read too: RequestedClassCount), 0 when
// absent; the parameter is removed. Errors: kInvalidArgument naming `who`
// and the value.
Result<uint64_t> ReadClassification(RequestedOutput& output, const std::string& who);

// Triton's classification of `scores` (top `k` per batch row as BYTES
// "score:index[:label]"), labels from the model's label_filename
// (ModelEntry::labels). Errors: those of ClassifyOutput
// (modelgrid/kserve/classification.h).
Result<InferTensor> Classify(const Grid& grid, const std::string& model, const InferTensor& scores,
                             uint64_t k);

}  // namespace modelgrid::service

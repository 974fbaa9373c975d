// The TorchScript graph walk: GraphWalker (modelgrid/estimate.h) for
// TorchScript files, implemented with LibTorch in src/torch/graph_walk.cc.
// Declared without LibTorch headers.
//
// What it does: loads the module on the CPU (weights are read, nothing is
// run on inputs), takes the method's graph, applies the passes LibTorch's
// graph executor applies before the first run (inlining, constant
// propagation, common subexpressions, peephole), then interprets the graph
// abstractly: every value's shape, strides and dtype from the input shapes
// (src/torch/shape_rules*.cc), liveness (a value dies after its last use;
// views share storage with their base; in-place ops allocate nothing), and
// the allocations and frees in execution order, including the scratch
// buffers of the CPU kernels, replayed against a model of the device
// allocator (src/torch/memory_sim.h) to find the peak.
//
// Thread-safety: Walk may be called from several threads on different
// walkers; it loads a module per call.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "modelgrid/estimate.h"

namespace modelgrid {

struct GraphWalkOptions {
  std::string method = "forward";
  // Intra-op threads the model will run with; some CPU kernels pick their
  // algorithm (and scratch) by it. 0: LibTorch's current setting.
  int threads = 0;
  // Development aid: when set, one line per node (op, output shapes, bytes
  // live) and every simulated allocation are written there.
  std::filesystem::path trace_file;
};

// Facts about a TorchScript module's tensors, read by loading it.
struct ModuleSummary {
  uint64_t parameters = 0;        // parameter elements (shared ones once)
  uint64_t parameter_bytes = 0;   // their bytes
  uint64_t buffer_bytes = 0;      // registered buffers' bytes
  // Every distinct storage the module holds (parameters, buffers, tensor
  // attributes, the methods' tensor constants), each rounded to 64 bytes.
  uint64_t tensor_storage_bytes = 0;
  uint64_t debug_record_bytes = 0;    // debug records LibTorch keeps after loading, each rounded to 64 bytes
  // What loading leaves allocated: the two above.
  uint64_t storage_bytes() const { return tensor_storage_bytes + debug_record_bytes; }
};

// Loads `model_pt` on the CPU and sums its parameters and buffers.
// Errors: kNotFound for a missing file, kCorruption for an unloadable one.
Result<ModuleSummary> SummarizeModule(const std::filesystem::path& model_pt);

class TorchScriptGraphWalker : public GraphWalker {
 public:
  explicit TorchScriptGraphWalker(GraphWalkOptions options = {}) : options_(std::move(options)) {}

  // GraphWalker. Profile figures are allocator blocks (CPU: each tensor
  // rounded up to 64 bytes; CUDA: to 512 bytes; caching-allocator segments
  // and cuBLAS workspaces are not included: the estimator adds them).
  // peak_activation_bytes includes the inputs and the outputs;
  // peak_workspace_bytes the kernels' scratch alive at that peak.
  // weight_bytes: what loading leaves allocated (every storage the module
  // holds, and the archive's debug records LibTorch keeps), 64-byte blocks. Errors: kNotFound for a missing file,
  // kCorruption for an archive LibTorch cannot load, kInvalidArgument for
  // shapes that do not match the method, kUnsupported naming the op where
  // the walk cannot continue.
  Result<Profile> Walk(const std::filesystem::path& model_pt, const std::vector<std::vector<int64_t>>& input_shapes,
                       const std::vector<DataType>& input_types, DeviceKind device) override;

 private:
  GraphWalkOptions options_;
};

}  // namespace modelgrid

// Shape and memory rules of the graph walk: for each op, the outputs'
// shapes, dtypes and storages from the inputs', and the allocations the op
// makes on the way (workspaces), in the order it makes them.
//
// Where a rule's allocations come from: measured with the counting
// allocator (modelgrid-probe --trace) on LibTorch 1.13 CPU and checked
// against ATen's source; each rule says what it models. Files:
//   shape_rules.cc        element-wise, reductions, factories, joins, scalars,
//                         the table and ApplyRule;
//   shape_rules_views.cc  views, identities, tensor facts, containers;
//   shape_rules_conv.cc   convolution and its CPU kernels' scratch;
//   shape_rules_nn.cc     other ops with kernel scratch (matmul, norms,
//                         pooling, upsampling, RNNs, attention);
//   walk_types.cc         the helpers declared here and in walk_types.h.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/device.h"
#include "modelgrid/status.h"
#include "walk_types.h"

namespace modelgrid {

// Facts about the machine that decide which kernel (and scratch) an op uses.
struct KernelFacts {
  int threads = 1;           // at::get_num_threads()
  bool mkldnn = true;        // oneDNN usable for fp32 convolutions
  int64_t mkldnn_block = 16; // channel block of oneDNN's blocked layouts (16 with AVX-512, else 8)
};

// What a rule may do besides computing shapes. Allocations happen in call
// order, as the op would make them.
class OpContext {
 public:
  virtual ~OpContext() = default;
  // A fresh contiguous output tensor, allocated now.
  virtual TensorMeta NewTensor(std::vector<int64_t> sizes, c10::ScalarType dtype) = 0;
  // A fresh output tensor with the given strides (same storage size rule).
  virtual TensorMeta NewStridedTensor(std::vector<int64_t> sizes, std::vector<int64_t> strides,
                                      c10::ScalarType dtype) = 0;
  // Scratch memory freed inside the op.
  virtual int Temp(uint64_t bytes, const char* what) = 0;
  virtual void FreeTemp(int id) = 0;
  // A note for humans (guessed shapes, unmodelled kernels).
  virtual void Note(const std::string& note) = 0;
  virtual DeviceKind device() const = 0;
  virtual const KernelFacts& facts() const = 0;
};

// The inputs of one node with access by schema argument name.
class RuleArgs {
 public:
  RuleArgs(const torch::jit::Node* node, const std::vector<AbsValue>& in) : node_(node), in_(in) {}
  const torch::jit::Node* node() const { return node_; }
  size_t size() const { return in_.size(); }
  const AbsValue& operator[](size_t i) const { return in_[i]; }
  // The input named `name` in the node's schema, or null.
  const AbsValue* Named(std::string_view name) const;
  // The i-th input if it is a tensor, else null.
  const TensorMeta* TensorAt(size_t i) const {
    return i < in_.size() && in_[i].is_tensor() ? &in_[i].t : nullptr;
  }

 private:
  const torch::jit::Node* node_;
  const std::vector<AbsValue>& in_;
};

// Computes the outputs of `node` (one AbsValue per node output) from its
// inputs. Ops without a rule whose outputs are tensors get the shape and
// dtype of their first tensor input, with a note naming the op.
// Errors: kUnsupported naming the op when the outputs cannot be found.
Status ApplyRule(const RuleArgs& args, OpContext& ctx, std::vector<AbsValue>* out);

// ---- shared helpers of the rule files

using RuleFn = Status (*)(const RuleArgs& args, OpContext& ctx, std::vector<AbsValue>* out);
// Register the rules of shape_rules_views.cc / shape_rules_nn.cc into
// `table` (op name → rule).
void RegisterViewRules(std::vector<std::pair<const char*, RuleFn>>* table);
void RegisterNnRules(std::vector<std::pair<const char*, RuleFn>>* table);  // calls RegisterConvRules
void RegisterConvRules(std::vector<std::pair<const char*, RuleFn>>* table);

// Strides of a fresh element-wise output as TensorIterator lays it out from
// its operands (dimensions ordered by the operands' strides, then dense).
std::vector<int64_t> OutputStrides(const std::vector<int64_t>& sizes, const std::vector<const TensorMeta*>& operands);
// A fresh output laid out that way.
AbsValue NewLike(OpContext& ctx, const std::vector<int64_t>& sizes, c10::ScalarType dtype,
                 const std::vector<const TensorMeta*>& operands);
AbsValue NewLike(OpContext& ctx, const std::vector<int64_t>& sizes, c10::ScalarType dtype, const TensorMeta* like);

// Element size of a dtype in bytes.
uint64_t ElementSize(c10::ScalarType dtype);
// Normalises a possibly negative dimension index; nullopt when out of range.
std::optional<int64_t> WrapDim(int64_t dim, int64_t rank);
// Reshape semantics: a view of `t` when its strides allow, else a fresh copy.
TensorMeta ReshapeOrCopy(const TensorMeta& t, std::vector<int64_t> sizes, OpContext& ctx, bool* copied = nullptr);
// Replaces one -1 in `sizes` by what makes numel match.
Status InferSize(int64_t numel, std::vector<int64_t>* sizes, const std::string& op);
// Status for a rule that met an input it cannot read.
Status BadInput(const RuleArgs& args, const std::string& what);

}  // namespace modelgrid

// Values of the abstract interpretation behind the graph walk
// (src/torch/graph_walk.cc): tensors as shape/stride/dtype/storage, scalars
// and module objects as constants, lists and tuples of those.
#pragma once

#include <ATen/core/ivalue.h>
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace modelgrid {

// A tensor known by its layout only. `storage` is a MemorySim id.
struct TensorMeta {
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
  c10::ScalarType dtype = c10::kFloat;
  int storage = -1;
  // Known value of a 0-dim tensor (sizes computed through tensors in traced graphs).
  std::optional<double> value;

  int64_t dim() const { return static_cast<int64_t>(sizes.size()); }
  int64_t numel() const;
  uint64_t nbytes() const;  // numel × element size
  bool is_contiguous() const;
};

struct AbsValue {
  enum class Kind { kUnknown, kConst, kTensor, kList, kTuple };
  Kind kind = Kind::kUnknown;
  c10::IValue c;                // kConst: None, int, float, bool, string, device, object, int list...
  TensorMeta t;                 // kTensor
  std::vector<AbsValue> elems;  // kList, kTuple

  static AbsValue Unknown() { return {}; }
  static AbsValue Const(c10::IValue v) {
    AbsValue a;
    a.kind = Kind::kConst;
    a.c = std::move(v);
    return a;
  }
  static AbsValue Tensor(TensorMeta m) {
    AbsValue a;
    a.kind = Kind::kTensor;
    a.t = std::move(m);
    return a;
  }
  static AbsValue List(std::vector<AbsValue> e, Kind kind = Kind::kList) {
    AbsValue a;
    a.kind = kind;
    a.elems = std::move(e);
    return a;
  }

  bool is_tensor() const { return kind == Kind::kTensor; }
  bool is_none() const { return kind == Kind::kConst && c.isNone(); }
  // Every storage this value keeps alive (a list of tensors keeps them all).
  void CollectStorages(std::vector<int>* out) const;
  std::string Describe() const;  // for notes and traces, e.g. "Float[8, 3, 224, 224]"
};

// Conversions that succeed only when the value is known.
std::optional<int64_t> AsInt(const AbsValue& v);
std::optional<double> AsDouble(const AbsValue& v);
std::optional<bool> AsBool(const AbsValue& v);
std::optional<std::vector<int64_t>> AsIntList(const AbsValue& v);

// Contiguous strides for `sizes`.
std::vector<int64_t> ContiguousStrides(const std::vector<int64_t>& sizes);
// The strides that view (sizes, strides) as `new_sizes` without copying, or
// nullopt when only a copy can give that shape (the rule of Tensor::view).
std::optional<std::vector<int64_t>> ViewStrides(const std::vector<int64_t>& sizes,
                                                const std::vector<int64_t>& strides,
                                                const std::vector<int64_t>& new_sizes);
// Broadcast of two shapes; nullopt when they do not broadcast.
std::optional<std::vector<int64_t>> BroadcastShapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

}  // namespace modelgrid

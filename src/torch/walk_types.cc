// Helpers of the walk's abstract values (walk_types.h) and of the shape
// rules (shape_rules.h): layouts, views, broadcasting, argument access.

#include <ATen/core/function_schema.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>

#include "shape_rules.h"
#include "walk_types.h"

namespace modelgrid {

// ------------------------------------------------------------ value helpers

int64_t TensorMeta::numel() const {
  int64_t n = 1;
  for (int64_t s : sizes) n *= s;
  return n;
}

uint64_t TensorMeta::nbytes() const { return static_cast<uint64_t>(numel()) * ElementSize(dtype); }

bool TensorMeta::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (sizes[d] == 0) return true;
    if (sizes[d] == 1) continue;
    if (strides[d] != expected) return false;
    expected *= sizes[d];
  }
  return true;
}

void AbsValue::CollectStorages(std::vector<int>* out) const {
  if (kind == Kind::kTensor && t.storage >= 0) out->push_back(t.storage);
  for (const AbsValue& e : elems) e.CollectStorages(out);
}

std::string AbsValue::Describe() const {
  switch (kind) {
    case Kind::kUnknown: return "?";
    case Kind::kConst: {
      if (c.isObject()) return "object";
      std::ostringstream ss;
      ss << c;
      std::string s = ss.str();
      if (s.size() > 40) {
        s.resize(40);
        s += "...";
      }
      return s;
    }
    case Kind::kTensor: {
      std::string s = std::string(c10::toString(t.dtype)) + "[";
      for (size_t i = 0; i < t.sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(t.sizes[i]);
      return s + "]";
    }
    case Kind::kList:
    case Kind::kTuple: {
      std::string s = kind == Kind::kList ? "[" : "(";
      for (size_t i = 0; i < elems.size(); ++i) s += (i ? ", " : "") + elems[i].Describe();
      return s + (kind == Kind::kList ? "]" : ")");
    }
  }
  return "?";
}

std::optional<int64_t> AsInt(const AbsValue& v) {
  if (v.kind == AbsValue::Kind::kConst) {
    if (v.c.isInt()) return v.c.toInt();
    if (v.c.isBool()) return v.c.toBool() ? 1 : 0;
    if (v.c.isDouble()) {
      const double d = v.c.toDouble();
      if (std::isfinite(d) && d == std::floor(d)) return static_cast<int64_t>(d);
    }
  }
  if (v.kind == AbsValue::Kind::kTensor && v.t.value && v.t.numel() == 1) return static_cast<int64_t>(*v.t.value);
  return std::nullopt;
}

std::optional<double> AsDouble(const AbsValue& v) {
  if (v.kind == AbsValue::Kind::kConst) {
    if (v.c.isDouble()) return v.c.toDouble();
    if (v.c.isInt()) return static_cast<double>(v.c.toInt());
    if (v.c.isBool()) return v.c.toBool() ? 1.0 : 0.0;
  }
  if (v.kind == AbsValue::Kind::kTensor && v.t.value && v.t.numel() == 1) return *v.t.value;
  return std::nullopt;
}

std::optional<bool> AsBool(const AbsValue& v) {
  if (v.kind == AbsValue::Kind::kConst && v.c.isBool()) return v.c.toBool();
  if (auto i = AsInt(v)) return *i != 0;
  return std::nullopt;
}

std::optional<std::vector<int64_t>> AsIntList(const AbsValue& v) {
  if (v.kind == AbsValue::Kind::kConst) {
    if (v.c.isIntList()) return v.c.toIntVector();
    if (v.c.isInt()) return std::vector<int64_t>{v.c.toInt()};
    return std::nullopt;
  }
  if (v.kind == AbsValue::Kind::kList || v.kind == AbsValue::Kind::kTuple) {
    std::vector<int64_t> out;
    for (const AbsValue& e : v.elems) {
      auto i = AsInt(e);
      if (!i) return std::nullopt;
      out.push_back(*i);
    }
    return out;
  }
  return std::nullopt;
}

std::vector<int64_t> ContiguousStrides(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> strides(sizes.size(), 1);
  int64_t acc = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    strides[d] = acc;
    acc *= std::max<int64_t>(sizes[d], 1);
  }
  return strides;
}

std::optional<std::vector<int64_t>> ViewStrides(const std::vector<int64_t>& sizes,
                                                const std::vector<int64_t>& strides,
                                                const std::vector<int64_t>& new_sizes) {
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  if (numel == 0 || sizes.empty()) return ContiguousStrides(new_sizes);
  std::vector<int64_t> out(new_sizes.size(), 1);
  // Walk the old dimensions from the innermost, grouping runs that are
  // contiguous with each other ("chunks"); the new dimensions that cover a
  // chunk must multiply to its size exactly.
  int64_t view_d = static_cast<int64_t>(new_sizes.size()) - 1;
  int64_t chunk_stride = strides.back();
  int64_t chunk_numel = 1;
  int64_t view_numel = 1;
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 1; d >= 0; --d) {
    chunk_numel *= sizes[d];
    const bool chunk_ends = d == 0 || (sizes[d - 1] != 1 && strides[d - 1] != chunk_numel * chunk_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < chunk_numel || new_sizes[view_d] == 1)) {
      out[view_d] = view_numel * chunk_stride;
      view_numel *= new_sizes[view_d];
      --view_d;
    }
    if (view_numel != chunk_numel) return std::nullopt;
    if (d > 0) {
      chunk_stride = strides[d - 1];
      chunk_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

std::optional<std::vector<int64_t>> BroadcastShapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  const size_t n = std::max(a.size(), b.size());
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t x = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t y = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (x != y && x != 1 && y != 1) return std::nullopt;
    out[i] = x == 1 ? y : x;
  }
  return out;
}

uint64_t ElementSize(c10::ScalarType dtype) {
  if (dtype == c10::ScalarType::Undefined) return 4;
  return c10::elementSize(dtype);
}

std::optional<int64_t> WrapDim(int64_t dim, int64_t rank) {
  const int64_t r = std::max<int64_t>(rank, 1);
  if (dim < -r || dim >= r) return std::nullopt;
  return dim < 0 ? dim + r : dim;
}

Status InferSize(int64_t numel, std::vector<int64_t>* sizes, const std::string& op) {
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < sizes->size(); ++i) {
    if ((*sizes)[i] == -1) {
      if (infer >= 0) return Status::Unsupported(op + ": more than one -1 in a shape");
      infer = static_cast<int>(i);
    } else {
      known *= (*sizes)[i];
    }
  }
  if (infer >= 0) {
    if (known == 0) return Status::Unsupported(op + ": cannot infer -1 next to a zero size");
    (*sizes)[infer] = numel / known;
    known *= (*sizes)[infer];
  }
  if (known != numel) {
    return Status::Unsupported(op + ": shape does not match " + std::to_string(numel) + " elements");
  }
  return Status::Ok();
}

TensorMeta ReshapeOrCopy(const TensorMeta& t, std::vector<int64_t> sizes, OpContext& ctx, bool* copied) {
  if (auto strides = ViewStrides(t.sizes, t.strides, sizes)) {
    TensorMeta v = t;
    v.sizes = std::move(sizes);
    v.strides = std::move(*strides);
    if (copied) *copied = false;
    return v;
  }
  if (copied) *copied = true;
  TensorMeta c = ctx.NewTensor(std::move(sizes), t.dtype);
  c.value = t.value;
  return c;
}

Status BadInput(const RuleArgs& args, const std::string& what) {
  return Status::Unsupported(std::string(args.node()->kind().toQualString()) + ": " + what);
}

const AbsValue* RuleArgs::Named(std::string_view name) const {
  const c10::FunctionSchema* schema = node_->maybeSchema();
  if (schema == nullptr) return nullptr;
  const auto& arguments = schema->arguments();
  for (size_t i = 0; i < arguments.size() && i < in_.size(); ++i) {
    if (arguments[i].name() == name) return &in_[i];
  }
  return nullptr;
}

}  // namespace modelgrid

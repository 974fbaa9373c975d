// Shape rules of the graph walk: views, element-wise ops, reductions,
// factories, lists and scalars. Ops with scratch memory (convolution,
// matmul, normalisation, pooling, attention) are in shape_rules_nn.cc.
//
// Memory facts used here (LibTorch 1.13 CPU, measured with modelgrid-probe
// --trace):
//   - views (view/reshape when the strides allow, permute, transpose, expand,
//     slice, select, unsqueeze, squeeze, split, detach, contiguous of a
//     contiguous tensor, to() without a change, dropout in eval) allocate
//     nothing and share their base's storage;
//   - in-place ops (names ending in '_') allocate nothing;
//   - every other op allocates its outputs, numel × element size each;
//   - element-wise outputs keep the memory layout of a dense input of the
//     same shape (TensorIterator), which decides whether a later reshape
//     copies.

#include "shape_rules.h"

#include <ATen/core/function_schema.h>
#include <c10/util/irange.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

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
      return s.size() > 40 ? s.substr(0, 40) + "..." : s;
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

namespace {

// ------------------------------------------------------------ dtype helpers

enum class Category { kBool = 0, kInt = 1, kFloat = 2, kComplex = 3 };

Category CategoryOf(c10::ScalarType t) {
  if (t == c10::kBool) return Category::kBool;
  if (c10::isComplexType(t)) return Category::kComplex;
  if (c10::isFloatingType(t)) return Category::kFloat;
  return Category::kInt;
}

// torch.result_type: dimensioned tensors first, then 0-dim tensors, then
// Python scalars, each taking part only when of a higher category.
c10::ScalarType ResultType(const std::vector<const AbsValue*>& operands) {
  std::optional<c10::ScalarType> dimmed, zero_dim, scalar;
  for (const AbsValue* v : operands) {
    if (v == nullptr) continue;
    if (v->is_tensor()) {
      auto& slot = v->t.dim() > 0 ? dimmed : zero_dim;
      slot = slot ? c10::promoteTypes(*slot, v->t.dtype) : v->t.dtype;
    } else if (v->kind == AbsValue::Kind::kConst) {
      c10::ScalarType st;
      if (v->c.isDouble()) st = c10::kDouble;
      else if (v->c.isInt()) st = c10::kLong;
      else if (v->c.isBool()) st = c10::kBool;
      else continue;
      scalar = scalar ? c10::promoteTypes(*scalar, st) : st;
    }
  }
  c10::ScalarType result = dimmed ? *dimmed : (zero_dim ? *zero_dim : (scalar ? *scalar : c10::kFloat));
  if (dimmed && zero_dim && CategoryOf(*zero_dim) > CategoryOf(result)) result = *zero_dim;
  if (scalar && (dimmed || zero_dim) && CategoryOf(*scalar) > CategoryOf(result)) {
    // A Python float meets integer tensors: the default dtype.
    result = CategoryOf(*scalar) == Category::kFloat ? c10::kFloat : c10::kLong;
  }
  if (!dimmed && !zero_dim && scalar && *scalar == c10::kDouble) result = c10::kDouble;
  return result;
}

std::optional<c10::ScalarType> AsDtype(const AbsValue* v) {
  if (v == nullptr || v->is_none()) return std::nullopt;
  if (auto i = AsInt(*v)) return static_cast<c10::ScalarType>(*i);
  return std::nullopt;
}

// Strides of a fresh element-wise output: the layout of `like` when it is a
// dense tensor of the same shape, else contiguous.
std::vector<int64_t> OutputStrides(const std::vector<int64_t>& sizes, const TensorMeta* like) {
  if (like == nullptr || like->sizes != sizes || like->is_contiguous()) return ContiguousStrides(sizes);
  const int64_t n = static_cast<int64_t>(sizes.size());
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return like->strides[a] > like->strides[b]; });
  // Dense: the strides sorted this way must be those of a contiguous layout.
  std::vector<int64_t> out(n);
  int64_t acc = 1;
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t d = order[i];
    if (sizes[d] != 1 && like->strides[d] != acc) return ContiguousStrides(sizes);
    out[d] = acc;
    acc *= std::max<int64_t>(sizes[d], 1);
  }
  return out;
}

AbsValue NewLike(OpContext& ctx, const std::vector<int64_t>& sizes, c10::ScalarType dtype, const TensorMeta* like) {
  return AbsValue::Tensor(ctx.NewStridedTensor(sizes, OutputStrides(sizes, like), dtype));
}

AbsValue Alias(const TensorMeta& t) { return AbsValue::Tensor(t); }

std::string OpName(const RuleArgs& a) { return a.node()->kind().toQualString(); }

// ------------------------------------------------------------ element-wise

std::optional<double> ScalarArith(const std::string& op, double x, double y, bool integral) {
  if (op == "aten::add") return x + y;
  if (op == "aten::sub") return x - y;
  if (op == "aten::rsub") return y - x;
  if (op == "aten::mul") return x * y;
  if (op == "aten::div") return y == 0 ? std::nullopt : std::optional<double>(integral ? x / y : x / y);
  if (op == "aten::floor_divide") return y == 0 ? std::nullopt : std::optional<double>(std::floor(x / y));
  if (op == "aten::remainder") return y == 0 ? std::nullopt : std::optional<double>(x - std::floor(x / y) * y);
  return std::nullopt;
}

// Binary and ternary element-wise ops, comparison ops and in-place forms.
Status ElementwiseRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const bool inplace = op.back() == '_' && op != "aten::__and__";
  const bool comparison = op == "aten::eq" || op == "aten::ne" || op == "aten::lt" || op == "aten::gt" ||
                          op == "aten::le" || op == "aten::ge" || op == "aten::logical_and" ||
                          op == "aten::logical_or" || op == "aten::logical_xor" || op == "aten::isnan";
  std::vector<const AbsValue*> operands;
  const AbsValue* first_tensor = nullptr;
  std::vector<int64_t> shape;
  bool any_tensor = false;
  size_t limit = a.size();
  if (op == "aten::add" || op == "aten::sub" || op == "aten::add_" || op == "aten::sub_" || op == "aten::rsub") {
    limit = std::min<size_t>(limit, 2);  // the third input is alpha
  }
  if (op == "aten::div" || op == "aten::div_") limit = std::min<size_t>(limit, 2);  // rounding_mode
  if (op == "aten::masked_fill" || op == "aten::masked_fill_") limit = 1;  // self decides the shape
  for (size_t i = 0; i < limit; ++i) {
    const AbsValue& v = a[i];
    if (v.is_tensor()) {
      any_tensor = true;
      if (first_tensor == nullptr) first_tensor = &v;
      auto b = BroadcastShapes(shape, v.t.sizes);
      if (!b) return BadInput(a, "operands do not broadcast");
      shape = *b;
    }
    if (op == "aten::where" && i == 0) continue;  // the condition does not take part in the dtype
    operands.push_back(&v);
  }
  if (op == "aten::where") {  // the condition broadcasts too
    if (a.TensorAt(0)) shape = BroadcastShapes(shape, a[0].t.sizes).value_or(shape);
  }
  if (!any_tensor) return BadInput(a, "no tensor operand");
  if (inplace) {
    out->push_back(a[0]);
    return Status::Ok();
  }
  c10::ScalarType dtype = comparison ? c10::kBool : ResultType(operands);
  if (op == "aten::div" && !comparison && CategoryOf(dtype) != Category::kFloat) {
    const AbsValue* mode = a.Named("rounding_mode");
    if (mode == nullptr || mode->is_none()) dtype = c10::kFloat;
  }
  if (op == "aten::masked_fill") dtype = a[0].t.dtype;
  // Largest dense operand of the output's shape decides the layout.
  const TensorMeta* like = nullptr;
  for (size_t i = 0; i < limit; ++i) {
    if (a.TensorAt(i) && a[i].t.sizes == shape) {
      like = &a[i].t;
      break;
    }
  }
  AbsValue result = NewLike(ctx, shape, dtype, like);
  // Sizes computed through 0-dim tensors (traced graphs) keep their value.
  if (shape.empty() && a.size() >= 2) {
    auto x = AsDouble(a[0]);
    auto y = AsDouble(a[1]);
    if (x && y) result.t.value = ScalarArith(op, *x, *y, CategoryOf(dtype) != Category::kFloat);
  }
  out->push_back(std::move(result));
  return Status::Ok();
}

// Unary element-wise ops (and their in-place forms).
Status UnaryRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  if (op.back() == '_') {
    out->push_back(a[0]);
    return Status::Ok();
  }
  c10::ScalarType dtype = x->dtype;
  if (op == "aten::logical_not" || op == "aten::isinf" || op == "aten::isfinite" || op == "aten::signbit") {
    dtype = c10::kBool;
  } else if (CategoryOf(dtype) != Category::kFloat &&
             (op == "aten::sigmoid" || op == "aten::tanh" || op == "aten::exp" || op == "aten::log" ||
              op == "aten::sqrt" || op == "aten::rsqrt" || op == "aten::erf" || op == "aten::sin" ||
              op == "aten::cos" || op == "aten::reciprocal" || op == "aten::gelu")) {
    dtype = c10::kFloat;
  }
  AbsValue r = NewLike(ctx, x->sizes, dtype, x);
  if (x->value && x->numel() == 1 && op == "aten::neg") r.t.value = -*x->value;
  out->push_back(std::move(r));
  return Status::Ok();
}

// ------------------------------------------------------------ views

Status ViewRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  std::optional<std::vector<int64_t>> sizes;
  if (op == "aten::view_as" || op == "aten::reshape_as") {
    if (!a.TensorAt(1)) return BadInput(a, "other is not a tensor");
    sizes = a[1].t.sizes;
  } else {
    sizes = a.size() > 1 ? AsIntList(a[1]) : std::nullopt;
  }
  if (!sizes) return BadInput(a, "shape is not known");
  MG_RETURN_IF_ERROR(InferSize(x->numel(), &*sizes, op));
  out->push_back(AbsValue::Tensor(ReshapeOrCopy(*x, *sizes, ctx)));
  return Status::Ok();
}

Status FlattenRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  if (x->dim() == 0) {
    out->push_back(AbsValue::Tensor(ReshapeOrCopy(*x, {1}, ctx)));
    return Status::Ok();
  }
  auto start = WrapDim(a.size() > 1 ? AsInt(a[1]).value_or(0) : 0, x->dim());
  auto end = WrapDim(a.size() > 2 ? AsInt(a[2]).value_or(-1) : -1, x->dim());
  if (!start || !end || *start > *end) return BadInput(a, "bad dimensions");
  if (*start == *end) {
    out->push_back(a[0]);
    return Status::Ok();
  }
  std::vector<int64_t> sizes(x->sizes.begin(), x->sizes.begin() + *start);
  int64_t merged = 1;
  for (int64_t d = *start; d <= *end; ++d) merged *= x->sizes[d];
  sizes.push_back(merged);
  sizes.insert(sizes.end(), x->sizes.begin() + *end + 1, x->sizes.end());
  out->push_back(AbsValue::Tensor(ReshapeOrCopy(*x, sizes, ctx)));
  return Status::Ok();
}

Status PermuteRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  const int64_t n = x->dim();
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  if (op == "aten::permute") {
    auto dims = a.size() > 1 ? AsIntList(a[1]) : std::nullopt;
    if (!dims || static_cast<int64_t>(dims->size()) != n) return BadInput(a, "dims not known");
    for (int64_t i = 0; i < n; ++i) {
      auto d = WrapDim((*dims)[i], n);
      if (!d) return BadInput(a, "bad dim");
      perm[i] = *d;
    }
  } else if (op == "aten::transpose" || op == "aten::swapaxes" || op == "aten::swapdims") {
    auto d0 = a.size() > 1 ? AsInt(a[1]) : std::nullopt;
    auto d1 = a.size() > 2 ? AsInt(a[2]) : std::nullopt;
    if (!d0 || !d1) return BadInput(a, "dims not known");
    auto w0 = WrapDim(*d0, n), w1 = WrapDim(*d1, n);
    if (!w0 || !w1) return BadInput(a, "bad dim");
    if (n > 0) std::swap(perm[*w0], perm[*w1]);
  } else {  // t, numpy_T, mT
    if (op == "aten::mT") {
      if (n >= 2) std::swap(perm[n - 1], perm[n - 2]);
    } else {
      std::reverse(perm.begin(), perm.end());
    }
  }
  TensorMeta v = *x;
  for (int64_t i = 0; i < n; ++i) {
    v.sizes[i] = x->sizes[perm[i]];
    v.strides[i] = x->strides[perm[i]];
  }
  out->push_back(AbsValue::Tensor(std::move(v)));
  return Status::Ok();
}

Status ExpandRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  std::optional<std::vector<int64_t>> sizes;
  if (op == "aten::expand_as") {
    if (a.TensorAt(1)) sizes = a[1].t.sizes;
  } else if (a.size() > 1) {
    sizes = AsIntList(a[1]);
  }
  if (!sizes || sizes->size() < x->sizes.size()) return BadInput(a, "size not known");
  const size_t lead = sizes->size() - x->sizes.size();
  TensorMeta v = *x;
  v.sizes = *sizes;
  v.strides.assign(sizes->size(), 0);
  for (size_t i = 0; i < sizes->size(); ++i) {
    if (i < lead) continue;
    const int64_t old = x->sizes[i - lead];
    if ((*sizes)[i] == -1) v.sizes[i] = old;
    v.strides[i] = (old == 1 && v.sizes[i] != 1) ? 0 : x->strides[i - lead];
  }
  out->push_back(AbsValue::Tensor(std::move(v)));
  return Status::Ok();
}

Status SliceRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  const int64_t n = x->dim();
  TensorMeta v = *x;
  v.value.reset();
  if (op == "aten::select") {
    auto dim = a.size() > 1 ? AsInt(a[1]) : std::nullopt;
    auto d = dim ? WrapDim(*dim, n) : std::nullopt;
    if (!d || n == 0) return BadInput(a, "dim not known");
    v.sizes.erase(v.sizes.begin() + *d);
    v.strides.erase(v.strides.begin() + *d);
  } else if (op == "aten::narrow") {
    auto dim = a.size() > 1 ? AsInt(a[1]) : std::nullopt;
    auto len = a.size() > 3 ? AsInt(a[3]) : std::nullopt;
    auto d = dim ? WrapDim(*dim, n) : std::nullopt;
    if (!d || !len) return BadInput(a, "dim or length not known");
    v.sizes[*d] = *len;
  } else {  // slice(self, dim=0, start=None, end=None, step=1)
    const int64_t dim = a.size() > 1 ? AsInt(a[1]).value_or(0) : 0;
    auto d = WrapDim(dim, n);
    if (!d || n == 0) return BadInput(a, "dim not known");
    const int64_t size = x->sizes[*d];
    int64_t start = a.size() > 2 && !a[2].is_none() ? AsInt(a[2]).value_or(0) : 0;
    int64_t end = a.size() > 3 && !a[3].is_none() ? AsInt(a[3]).value_or(size) : size;
    const int64_t step = a.size() > 4 ? std::max<int64_t>(AsInt(a[4]).value_or(1), 1) : 1;
    if (start < 0) start += size;
    if (end < 0) end += size;
    start = std::clamp<int64_t>(start, 0, size);
    end = std::clamp<int64_t>(end, start, size);
    v.sizes[*d] = (end - start + step - 1) / step;
    v.strides[*d] = x->strides[*d] * step;
  }
  out->push_back(AbsValue::Tensor(std::move(v)));
  return Status::Ok();
}

Status SqueezeRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  TensorMeta v = *x;
  if (op == "aten::unsqueeze" || op == "aten::unsqueeze_") {
    auto dim = a.size() > 1 ? AsInt(a[1]) : std::nullopt;
    auto d = dim ? WrapDim(*dim, x->dim() + 1) : std::nullopt;
    if (!d) return BadInput(a, "dim not known");
    const int64_t stride = *d < x->dim() ? x->sizes[*d] * x->strides[*d] : 1;
    v.sizes.insert(v.sizes.begin() + *d, 1);
    v.strides.insert(v.strides.begin() + *d, stride);
  } else if (a.size() > 1 && !a[1].is_none()) {
    auto dim = AsInt(a[1]);
    auto d = dim ? WrapDim(*dim, x->dim()) : std::nullopt;
    if (!d) return BadInput(a, "dim not known");
    if (x->dim() > 0 && x->sizes[*d] == 1) {
      v.sizes.erase(v.sizes.begin() + *d);
      v.strides.erase(v.strides.begin() + *d);
    }
  } else {
    v.sizes.clear();
    v.strides.clear();
    for (int64_t d = 0; d < x->dim(); ++d) {
      if (x->sizes[d] == 1) continue;
      v.sizes.push_back(x->sizes[d]);
      v.strides.push_back(x->strides[d]);
    }
  }
  out->push_back(AbsValue::Tensor(std::move(v)));
  return Status::Ok();
}

Status SplitRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  const int64_t dim_arg = a.size() > 2 ? AsInt(a[2]).value_or(0) : 0;
  auto d = WrapDim(op == "aten::unbind" ? (a.size() > 1 ? AsInt(a[1]).value_or(0) : 0) : dim_arg, x->dim());
  if (!d || x->dim() == 0) return BadInput(a, "dim not known");
  const int64_t size = x->sizes[*d];
  std::vector<int64_t> pieces;
  if (op == "aten::unbind") {
    pieces.assign(size, 1);
  } else if (op == "aten::chunk") {
    auto chunks = a.size() > 1 ? AsInt(a[1]) : std::nullopt;
    if (!chunks || *chunks <= 0) return BadInput(a, "chunks not known");
    const int64_t each = (size + *chunks - 1) / *chunks;
    for (int64_t left = size; left > 0; left -= each) pieces.push_back(std::min(each, left));
  } else if (auto list = a.size() > 1 && (a[1].kind == AbsValue::Kind::kList || (a[1].kind == AbsValue::Kind::kConst &&
                                                                               a[1].c.isIntList()))
                             ? AsIntList(a[1])
                             : std::nullopt) {
    pieces = *list;  // split_with_sizes
  } else {
    auto each = a.size() > 1 ? AsInt(a[1]) : std::nullopt;
    if (!each || *each <= 0) return BadInput(a, "split size not known");
    for (int64_t left = size; left > 0; left -= *each) pieces.push_back(std::min(*each, left));
  }
  std::vector<AbsValue> views;
  for (int64_t p : pieces) {
    TensorMeta v = *x;
    v.value.reset();
    if (op == "aten::unbind") {
      v.sizes.erase(v.sizes.begin() + *d);
      v.strides.erase(v.strides.begin() + *d);
    } else {
      v.sizes[*d] = p;
    }
    views.push_back(AbsValue::Tensor(std::move(v)));
  }
  out->push_back(AbsValue::List(std::move(views)));
  return Status::Ok();
}

// Ops that return their input (or a view of all of it) in inference.
Status IdentityRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  if (!a.TensorAt(0)) return BadInput(a, "input is not a tensor");
  out->push_back(a[0]);
  return Status::Ok();
}

Status DropoutRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  if (!a.TensorAt(0)) return BadInput(a, "input is not a tensor");
  auto train = a.size() > 2 ? AsBool(a[2]) : std::nullopt;
  if (train.value_or(false)) {
    ctx.Note(OpName(a) + " in training mode: counted as a copy");
    out->push_back(NewLike(ctx, a[0].t.sizes, a[0].t.dtype, &a[0].t));
    return Status::Ok();
  }
  out->push_back(a[0]);
  return Status::Ok();
}

Status ContiguousRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  if (x->is_contiguous()) {
    out->push_back(a[0]);
  } else {
    out->push_back(AbsValue::Tensor(ctx.NewTensor(x->sizes, x->dtype)));
  }
  return Status::Ok();
}

Status CloneRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  AbsValue r = NewLike(ctx, x->sizes, x->dtype, x);
  r.t.value = x->value;
  out->push_back(std::move(r));
  return Status::Ok();
}

// aten::to in its overloads: a copy only when the dtype changes (or copy=True).
Status ToRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  c10::ScalarType dtype = x->dtype;
  if (const AbsValue* d = a.Named("dtype"); auto st = AsDtype(d)) dtype = *st;
  if (const AbsValue* other = a.Named("other"); other && other->is_tensor()) dtype = other->t.dtype;
  const AbsValue* copy = a.Named("copy");
  const bool force = copy && AsBool(*copy).value_or(false);
  if (dtype == x->dtype && !force) {
    out->push_back(a[0]);
    return Status::Ok();
  }
  AbsValue r = NewLike(ctx, x->sizes, dtype, x);
  r.t.value = x->value;
  out->push_back(std::move(r));
  return Status::Ok();
}

Status TypeAsRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  const TensorMeta* other = a.TensorAt(1);
  if (x == nullptr || other == nullptr) return BadInput(a, "inputs are not tensors");
  if (x->dtype == other->dtype) {
    out->push_back(a[0]);
  } else {
    out->push_back(NewLike(ctx, x->sizes, other->dtype, x));
  }
  return Status::Ok();
}

// ------------------------------------------------------------ reductions

Status ReduceRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  const AbsValue* dim_v = a.Named("dim");
  const AbsValue* keep_v = a.Named("keepdim");
  const bool keepdim = keep_v ? AsBool(*keep_v).value_or(false) : false;
  std::vector<int64_t> dims;
  if (dim_v && !dim_v->is_none()) {
    auto list = AsIntList(*dim_v);
    if (!list) return BadInput(a, "dim not known");
    dims = *list;
  }
  std::vector<bool> reduce(x->dim(), dims.empty());
  for (int64_t d : dims) {
    auto w = WrapDim(d, x->dim());
    if (!w) return BadInput(a, "bad dim");
    if (x->dim() > 0) reduce[*w] = true;
  }
  std::vector<int64_t> sizes;
  for (int64_t d = 0; d < x->dim(); ++d) {
    if (!reduce[d]) sizes.push_back(x->sizes[d]);
    else if (keepdim) sizes.push_back(1);
  }
  c10::ScalarType dtype = x->dtype;
  if (auto st = AsDtype(a.Named("dtype"))) dtype = *st;
  if ((op == "aten::sum" || op == "aten::prod") && CategoryOf(dtype) <= Category::kInt && !a.Named("dtype")) {
    dtype = c10::kLong;
  }
  if (op == "aten::argmax" || op == "aten::argmin") dtype = c10::kLong;
  if (op == "aten::any" || op == "aten::all") dtype = c10::kBool;
  out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, dtype)));
  // max.dim / min.dim / sort-like: a second output with indices.
  for (size_t i = 1; i < a.node()->outputs().size(); ++i) {
    out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, c10::kLong)));
  }
  return Status::Ok();
}

Status SoftmaxRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  c10::ScalarType dtype = x->dtype;
  if (auto st = AsDtype(a.Named("dtype"))) dtype = *st;
  // softmax with a dtype casts first (a copy), then computes in place? No:
  // _softmax writes a fresh output; a cast adds one more tensor.
  if (dtype != x->dtype) {
    int tmp = ctx.Temp(static_cast<uint64_t>(x->numel()) * ElementSize(dtype), "softmax cast");
    out->push_back(AbsValue::Tensor(ctx.NewTensor(x->sizes, dtype)));
    ctx.FreeTemp(tmp);
    return Status::Ok();
  }
  out->push_back(NewLike(ctx, x->sizes, dtype, x));
  return Status::Ok();
}

// ------------------------------------------------------------ factories

std::optional<std::vector<int64_t>> SizeArg(const RuleArgs& a) {
  if (const AbsValue* s = a.Named("size")) return AsIntList(*s);
  return a.size() > 0 ? AsIntList(a[0]) : std::nullopt;
}

Status FactoryRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  std::vector<int64_t> sizes;
  c10::ScalarType dtype = c10::kFloat;
  const bool like = op.size() > 5 && op.compare(op.size() - 5, 5, "_like") == 0;
  const bool from_self = op.rfind("aten::new_", 0) == 0;
  if (like) {
    const TensorMeta* x = a.TensorAt(0);
    if (x == nullptr) return BadInput(a, "input is not a tensor");
    sizes = x->sizes;
    dtype = x->dtype;
  } else {
    if (from_self) {
      const TensorMeta* x = a.TensorAt(0);
      if (x == nullptr) return BadInput(a, "self is not a tensor");
      dtype = x->dtype;
    }
    auto s = SizeArg(a);
    if (!s) return BadInput(a, "size not known");
    sizes = *s;
    if (op == "aten::full" || op == "aten::new_full") {
      const AbsValue* fill = a.Named("fill_value");
      if (fill && fill->kind == AbsValue::Kind::kConst && !from_self) {
        if (fill->c.isInt()) dtype = c10::kLong;
        if (fill->c.isBool()) dtype = c10::kBool;
      }
    }
  }
  if (auto st = AsDtype(a.Named("dtype"))) dtype = *st;
  AbsValue r = AbsValue::Tensor(ctx.NewTensor(sizes, dtype));
  if (r.t.numel() == 1) {
    if (op.find("zeros") != std::string::npos) r.t.value = 0.0;
    if (op.find("ones") != std::string::npos) r.t.value = 1.0;
  }
  out->push_back(std::move(r));
  return Status::Ok();
}

Status ArangeRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  // arange(end, ...), arange.start(start, end, ...), arange.start_step(start, end, step, ...)
  const AbsValue* start_v = a.Named("start");
  const AbsValue* end_v = a.Named("end");
  const AbsValue* step_v = a.Named("step");
  if (end_v == nullptr) return BadInput(a, "end not known");
  auto start = start_v ? AsDouble(*start_v) : std::optional<double>(0.0);
  auto end = AsDouble(*end_v);
  auto step = step_v ? AsDouble(*step_v) : std::optional<double>(1.0);
  if (!start || !end || !step || *step == 0) return BadInput(a, "bounds not known");
  const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((*end - *start) / *step)));
  bool integral = true;
  for (const AbsValue* v : {start_v, end_v, step_v}) {
    if (v && v->kind == AbsValue::Kind::kConst && v->c.isDouble()) integral = false;
    if (v && v->is_tensor() && CategoryOf(v->t.dtype) == Category::kFloat) integral = false;
  }
  c10::ScalarType dtype = integral ? c10::kLong : c10::kFloat;
  if (auto st = AsDtype(a.Named("dtype"))) dtype = *st;
  out->push_back(AbsValue::Tensor(ctx.NewTensor({n}, dtype)));
  return Status::Ok();
}

Status ScalarTensorRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  // prim::NumToTensor, aten::scalar_tensor, aten::tensor of a number.
  const std::string op = OpName(a);
  auto v = a.size() > 0 ? AsDouble(a[0]) : std::nullopt;
  c10::ScalarType dtype = c10::kDouble;
  if (a.size() > 0 && a[0].kind == AbsValue::Kind::kConst && (a[0].c.isInt() || a[0].c.isBool())) dtype = c10::kLong;
  if (a.size() > 0 && a[0].kind == AbsValue::Kind::kUnknown) dtype = c10::kLong;
  if (op != "prim::NumToTensor" && dtype == c10::kDouble) dtype = c10::kFloat;
  if (auto st = AsDtype(a.Named("dtype"))) dtype = *st;
  std::vector<int64_t> sizes;
  if (op == "aten::tensor" && a.size() > 0 && (a[0].kind == AbsValue::Kind::kList ||
                                               (a[0].kind == AbsValue::Kind::kConst && a[0].c.isList()))) {
    auto list = AsIntList(a[0]);
    sizes = {list ? static_cast<int64_t>(list->size()) : 1};
    v.reset();
  }
  AbsValue r = AbsValue::Tensor(ctx.NewTensor(sizes, dtype));
  r.t.value = v;
  out->push_back(std::move(r));
  return Status::Ok();
}

// ------------------------------------------------------------ joins and copies

Status CatRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  if (a.size() == 0 || (a[0].kind != AbsValue::Kind::kList && a[0].kind != AbsValue::Kind::kTuple)) {
    return BadInput(a, "tensors not known");
  }
  const int64_t dim = a.size() > 1 ? AsInt(a[1]).value_or(0) : 0;
  std::vector<const TensorMeta*> parts;
  for (const AbsValue& e : a[0].elems) {
    if (!e.is_tensor()) return BadInput(a, "a list element is not a tensor");
    if (op == "aten::cat" && e.t.dim() == 1 && e.t.sizes[0] == 0) continue;  // legacy empty tensors
    parts.push_back(&e.t);
  }
  if (parts.empty()) return BadInput(a, "no tensors");
  std::vector<int64_t> sizes = parts[0]->sizes;
  c10::ScalarType dtype = parts[0]->dtype;
  if (op == "aten::stack") {
    auto d = WrapDim(dim, static_cast<int64_t>(sizes.size()) + 1);
    if (!d) return BadInput(a, "bad dim");
    sizes.insert(sizes.begin() + *d, static_cast<int64_t>(parts.size()));
  } else {
    auto d = WrapDim(dim, static_cast<int64_t>(sizes.size()));
    if (!d || sizes.empty()) return BadInput(a, "bad dim");
    sizes[*d] = 0;
    for (const TensorMeta* p : parts) {
      if (p->dim() != static_cast<int64_t>(sizes.size())) return BadInput(a, "ranks differ");
      sizes[*d] += p->sizes[*d];
    }
  }
  for (const TensorMeta* p : parts) dtype = c10::promoteTypes(dtype, p->dtype);
  out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, dtype)));
  return Status::Ok();
}

Status EmbeddingRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  // embedding(weight, indices, ...): an index_select of rows.
  const TensorMeta* w = a.TensorAt(0);
  const TensorMeta* idx = a.TensorAt(1);
  if (w == nullptr || idx == nullptr || w->dim() != 2) return BadInput(a, "weight or indices not known");
  std::vector<int64_t> sizes = idx->sizes;
  sizes.push_back(w->sizes[1]);
  out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, w->dtype)));
  return Status::Ok();
}

Status IndexSelectRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  const TensorMeta* idx = a.TensorAt(2);
  auto dim = a.size() > 1 ? AsInt(a[1]) : std::nullopt;
  auto d = dim && x ? WrapDim(*dim, x->dim()) : std::nullopt;
  if (!x || !idx || !d) return BadInput(a, "inputs not known");
  std::vector<int64_t> sizes = x->sizes;
  if (!sizes.empty()) sizes[*d] = idx->numel();
  out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, x->dtype)));
  return Status::Ok();
}

Status GatherRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  const TensorMeta* idx = a.TensorAt(2);
  if (!x || !idx) return BadInput(a, "inputs not known");
  out->push_back(AbsValue::Tensor(ctx.NewTensor(idx->sizes, x->dtype)));
  return Status::Ok();
}

Status RepeatRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  auto reps = a.size() > 1 ? AsIntList(a[1]) : std::nullopt;
  if (!x || !reps || reps->size() < x->sizes.size()) return BadInput(a, "repeats not known");
  std::vector<int64_t> sizes(*reps);
  const size_t lead = reps->size() - x->sizes.size();
  for (size_t i = lead; i < sizes.size(); ++i) sizes[i] *= x->sizes[i - lead];
  out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, x->dtype)));
  return Status::Ok();
}

Status PadRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  auto pad = a.size() > 1 ? AsIntList(a[1]) : std::nullopt;
  if (!x || !pad || pad->size() % 2 != 0 || pad->size() / 2 > x->sizes.size()) return BadInput(a, "pad not known");
  std::vector<int64_t> sizes = x->sizes;
  for (size_t i = 0; i < pad->size() / 2; ++i) {
    sizes[sizes.size() - 1 - i] += (*pad)[2 * i] + (*pad)[2 * i + 1];
  }
  out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, x->dtype)));
  return Status::Ok();
}

// ------------------------------------------------------------ tensor facts

Status SizeRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  if (a.size() > 1) {
    auto dim = AsInt(a[1]);
    auto d = dim ? WrapDim(*dim, x->dim()) : std::nullopt;
    if (!d || x->dim() == 0) return BadInput(a, "dim not known");
    out->push_back(AbsValue::Const(x->sizes[*d]));
  } else {
    out->push_back(AbsValue::Const(c10::IValue(x->sizes)));
  }
  return Status::Ok();
}

Status TensorFactRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) return BadInput(a, "input is not a tensor");
  if (op == "aten::dim") out->push_back(AbsValue::Const(x->dim()));
  else if (op == "aten::numel") out->push_back(AbsValue::Const(x->numel()));
  else if (op == "aten::len") out->push_back(AbsValue::Const(x->dim() > 0 ? x->sizes[0] : 0));
  else if (op == "prim::device") out->push_back(AbsValue::Const(c10::Device(c10::kCPU)));
  else if (op == "prim::dtype") out->push_back(AbsValue::Const(static_cast<int64_t>(x->dtype)));
  else if (op == "prim::is_cuda") out->push_back(AbsValue::Const(false));
  else if (op == "aten::is_floating_point") out->push_back(AbsValue::Const(c10::isFloatingType(x->dtype)));
  else out->push_back(AbsValue::Unknown());
  return Status::Ok();
}

// aten::Int / Float / ScalarImplicit / Bool / item of a tensor with a known value.
Status ItemRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr) {
    out->push_back(a.size() > 0 ? a[0] : AbsValue::Unknown());  // already a number
    return Status::Ok();
  }
  if (!x->value) {
    out->push_back(AbsValue::Unknown());
    return Status::Ok();
  }
  const double v = *x->value;
  if (op == "aten::Int") out->push_back(AbsValue::Const(static_cast<int64_t>(v)));
  else if (op == "aten::Bool") out->push_back(AbsValue::Const(v != 0));
  else if (op == "aten::Float") out->push_back(AbsValue::Const(v));
  else if (CategoryOf(x->dtype) == Category::kFloat) out->push_back(AbsValue::Const(v));
  else out->push_back(AbsValue::Const(static_cast<int64_t>(v)));
  return Status::Ok();
}

// ------------------------------------------------------------ containers

Status ListConstructRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  std::vector<AbsValue> e;
  for (size_t i = 0; i < a.size(); ++i) e.push_back(a[i]);
  const bool tuple = a.node()->kind() == c10::prim::TupleConstruct;
  out->push_back(AbsValue::List(std::move(e), tuple ? AbsValue::Kind::kTuple : AbsValue::Kind::kList));
  return Status::Ok();
}

Status UnpackRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  const size_t n = a.node()->outputs().size();
  if (a.size() == 1 && (a[0].kind == AbsValue::Kind::kList || a[0].kind == AbsValue::Kind::kTuple) &&
      a[0].elems.size() == n) {
    for (const AbsValue& e : a[0].elems) out->push_back(e);
    return Status::Ok();
  }
  if (a.size() == 1 && a[0].kind == AbsValue::Kind::kConst && a[0].c.isList()) {
    auto list = a[0].c.toListRef();
    if (list.size() == n) {
      for (const auto& v : list) out->push_back(AbsValue::Const(v));
      return Status::Ok();
    }
  }
  return BadInput(a, "cannot unpack " + (a.size() ? a[0].Describe() : std::string("nothing")));
}

Status GetItemRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  // aten::__getitem__(list, index), prim::TupleIndex(tuple, index)
  if (a.size() == 2 && (a[0].kind == AbsValue::Kind::kList || a[0].kind == AbsValue::Kind::kTuple)) {
    if (auto i = AsInt(a[1])) {
      int64_t idx = *i < 0 ? *i + static_cast<int64_t>(a[0].elems.size()) : *i;
      if (idx >= 0 && idx < static_cast<int64_t>(a[0].elems.size())) {
        out->push_back(a[0].elems[idx]);
        return Status::Ok();
      }
    }
  }
  return BadInput(a, "cannot index " + (a.size() ? a[0].Describe() : std::string("nothing")));
}

Status ListLenRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  if (a.size() == 1 && (a[0].kind == AbsValue::Kind::kList || a[0].kind == AbsValue::Kind::kTuple)) {
    out->push_back(AbsValue::Const(static_cast<int64_t>(a[0].elems.size())));
    return Status::Ok();
  }
  return TensorFactRule(a, ctx, out);
}

// ------------------------------------------------------------ the table

const std::unordered_map<std::string, RuleFn>& RuleTable() {
  static const auto* table = [] {
    auto* t = new std::unordered_map<std::string, RuleFn>();
    for (const char* op :
         {"aten::add", "aten::sub", "aten::mul", "aten::div", "aten::floor_divide", "aten::remainder", "aten::pow",
          "aten::rsub", "aten::maximum", "aten::minimum", "aten::fmod", "aten::atan2", "aten::where",
          "aten::masked_fill", "aten::eq", "aten::ne", "aten::lt", "aten::gt", "aten::le", "aten::ge",
          "aten::logical_and", "aten::logical_or", "aten::logical_xor", "aten::bitwise_and", "aten::bitwise_or",
          "aten::__and__", "aten::__or__", "aten::true_divide", "aten::multiply", "aten::divide",
          "aten::subtract", "aten::lerp", "aten::add_", "aten::sub_", "aten::mul_", "aten::div_",
          "aten::masked_fill_", "aten::pow_", "aten::floor_divide_", "aten::copy_", "aten::fill_",
          "aten::zero_", "aten::index_put_", "aten::clamp_min_", "aten::clamp_max_"}) {
      (*t)[op] = &ElementwiseRule;
    }
    for (const char* op :
         {"aten::relu", "aten::relu_", "aten::gelu", "aten::gelu_", "aten::tanh", "aten::tanh_", "aten::sigmoid",
          "aten::sigmoid_", "aten::silu", "aten::silu_", "aten::hardswish", "aten::hardswish_",
          "aten::hardsigmoid", "aten::hardsigmoid_", "aten::hardtanh", "aten::hardtanh_", "aten::relu6",
          "aten::relu6_", "aten::leaky_relu", "aten::leaky_relu_", "aten::elu", "aten::elu_", "aten::selu",
          "aten::mish", "aten::softplus", "aten::exp", "aten::log", "aten::sqrt", "aten::rsqrt", "aten::neg",
          "aten::abs", "aten::erf", "aten::sin", "aten::cos", "aten::reciprocal", "aten::logical_not",
          "aten::sign", "aten::floor", "aten::ceil", "aten::round", "aten::clamp", "aten::clamp_",
          "aten::clamp_min", "aten::clamp_max", "aten::clip", "aten::square", "aten::tril", "aten::triu",
          "aten::tril_", "aten::triu_", "aten::cumsum", "aten::flip", "aten::roll", "aten::isinf",
          "aten::isnan", "aten::isfinite", "aten::bitwise_not", "aten::exp_", "aten::neg_", "aten::sqrt_",
          "aten::log_softmax_", "aten::nan_to_num", "aten::glu"}) {
      (*t)[op] = &UnaryRule;
    }
    for (const char* op : {"aten::view", "aten::reshape", "aten::_reshape_alias", "aten::view_as",
                           "aten::reshape_as", "aten::_unsafe_view"}) {
      (*t)[op] = &ViewRule;
    }
    (*t)["aten::flatten"] = &FlattenRule;
    for (const char* op : {"aten::permute", "aten::transpose", "aten::t", "aten::numpy_T", "aten::mT",
                           "aten::swapaxes", "aten::swapdims"}) {
      (*t)[op] = &PermuteRule;
    }
    (*t)["aten::expand"] = &ExpandRule;
    (*t)["aten::expand_as"] = &ExpandRule;
    (*t)["aten::slice"] = &SliceRule;
    (*t)["aten::select"] = &SliceRule;
    (*t)["aten::narrow"] = &SliceRule;
    (*t)["aten::unsqueeze"] = &SqueezeRule;
    (*t)["aten::unsqueeze_"] = &SqueezeRule;
    (*t)["aten::squeeze"] = &SqueezeRule;
    for (const char* op : {"aten::split", "aten::split_with_sizes", "aten::chunk", "aten::unbind",
                           "aten::unsafe_split", "aten::unsafe_chunk"}) {
      (*t)[op] = &SplitRule;
    }
    for (const char* op : {"aten::detach", "aten::alias", "aten::detach_", "aten::requires_grad_",
                           "aten::resolve_conj", "aten::resolve_neg", "aten::positive", "prim::unchecked_cast",
                           "aten::lift", "aten::lift_fresh", "aten::align_to", "aten::refine_names"}) {
      (*t)[op] = &IdentityRule;
    }
    for (const char* op : {"aten::dropout", "aten::dropout_", "aten::feature_dropout", "aten::feature_dropout_",
                           "aten::alpha_dropout", "aten::alpha_dropout_", "aten::feature_alpha_dropout"}) {
      (*t)[op] = &DropoutRule;
    }
    (*t)["aten::contiguous"] = &ContiguousRule;
    (*t)["aten::clone"] = &CloneRule;
    (*t)["aten::to"] = &ToRule;
    (*t)["aten::type_as"] = &TypeAsRule;
    for (const char* op : {"aten::mean", "aten::sum", "aten::amax", "aten::amin", "aten::max", "aten::min",
                           "aten::argmax", "aten::argmin", "aten::std", "aten::var", "aten::norm",
                           "aten::logsumexp", "aten::prod", "aten::any", "aten::all"}) {
      (*t)[op] = &ReduceRule;
    }
    (*t)["aten::softmax"] = &SoftmaxRule;
    (*t)["aten::log_softmax"] = &SoftmaxRule;
    (*t)["aten::_softmax"] = &SoftmaxRule;
    for (const char* op : {"aten::ones", "aten::zeros", "aten::empty", "aten::full", "aten::rand", "aten::randn",
                           "aten::ones_like", "aten::zeros_like", "aten::empty_like", "aten::full_like",
                           "aten::rand_like", "aten::randn_like", "aten::new_zeros", "aten::new_ones",
                           "aten::new_empty", "aten::new_full"}) {
      (*t)[op] = &FactoryRule;
    }
    (*t)["aten::arange"] = &ArangeRule;
    (*t)["prim::NumToTensor"] = &ScalarTensorRule;
    (*t)["aten::scalar_tensor"] = &ScalarTensorRule;
    (*t)["aten::tensor"] = &ScalarTensorRule;
    (*t)["aten::cat"] = &CatRule;
    (*t)["aten::concat"] = &CatRule;
    (*t)["aten::stack"] = &CatRule;
    (*t)["aten::embedding"] = &EmbeddingRule;
    (*t)["aten::index_select"] = &IndexSelectRule;
    (*t)["aten::gather"] = &GatherRule;
    (*t)["aten::repeat"] = &RepeatRule;
    (*t)["aten::constant_pad_nd"] = &PadRule;
    (*t)["aten::pad"] = &PadRule;
    (*t)["aten::size"] = &SizeRule;
    for (const char* op : {"aten::dim", "aten::numel", "prim::device", "prim::dtype", "prim::is_cuda",
                           "aten::is_floating_point"}) {
      (*t)[op] = &TensorFactRule;
    }
    (*t)["aten::len"] = &ListLenRule;
    for (const char* op : {"aten::Int", "aten::Float", "aten::Bool", "aten::ScalarImplicit", "aten::item",
                           "aten::IntImplicit", "aten::FloatImplicit"}) {
      (*t)[op] = &ItemRule;
    }
    (*t)["prim::ListConstruct"] = &ListConstructRule;
    (*t)["prim::TupleConstruct"] = &ListConstructRule;
    (*t)["prim::ListUnpack"] = &UnpackRule;
    (*t)["prim::TupleUnpack"] = &UnpackRule;
    (*t)["aten::__getitem__"] = &GetItemRule;
    (*t)["prim::TupleIndex"] = &GetItemRule;
    std::vector<std::pair<const char*, RuleFn>> nn;
    RegisterNnRules(&nn);
    for (auto& [op, fn] : nn) (*t)[op] = fn;
    return t;
  }();
  return *table;
}

bool HasTensorType(const torch::jit::Value* v) {
  const c10::TypePtr& type = v->type();
  if (type->kind() == c10::TypeKind::TensorType) return true;
  for (const c10::TypePtr& contained : type->containedTypes()) {
    if (contained->kind() == c10::TypeKind::TensorType) return true;
  }
  return false;
}

// Runs a scalar op (ints, floats, bools, strings, lists of those) on its
// known inputs with LibTorch's own operator: no tensors are involved.
std::optional<std::vector<AbsValue>> RunScalarOp(const RuleArgs& a) {
  const torch::jit::Node* node = a.node();
  for (const torch::jit::Value* v : node->inputs()) {
    if (HasTensorType(v)) return std::nullopt;
  }
  for (const torch::jit::Value* v : node->outputs()) {
    if (HasTensorType(v)) return std::nullopt;
  }
  if (node->maybeOperator() == nullptr) return std::nullopt;
  torch::jit::Stack stack;
  for (size_t i = 0; i < a.size(); ++i) {
    const AbsValue& v = a[i];
    if (v.kind == AbsValue::Kind::kConst) {
      if (v.c.isObject()) return std::nullopt;
      stack.push_back(v.c);
    } else if (v.kind == AbsValue::Kind::kList) {
      auto ints = AsIntList(v);
      if (!ints) return std::nullopt;
      stack.emplace_back(*ints);
    } else {
      return std::nullopt;
    }
  }
  try {
    torch::jit::Operation op = node->getOperation();
    op(stack);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (stack.size() != node->outputs().size()) return std::nullopt;
  std::vector<AbsValue> out;
  for (auto& v : stack) out.push_back(AbsValue::Const(std::move(v)));
  return out;
}

}  // namespace

Status ApplyRule(const RuleArgs& args, OpContext& ctx, std::vector<AbsValue>* out) {
  const torch::jit::Node* node = args.node();
  const std::string op = node->kind().toQualString();
  const auto& table = RuleTable();
  if (auto it = table.find(op); it != table.end()) {
    Status s = it->second(args, ctx, out);
    if (s.ok() && out->size() == node->outputs().size()) return s;
    if (!s.ok() && s.code() != StatusCode::kUnsupported) return s;
    out->clear();
    // Fall through: maybe a scalar overload of the same name (aten::add.int).
  }
  if (auto scalars = RunScalarOp(args)) {
    *out = std::move(*scalars);
    return Status::Ok();
  }
  // Unknown op: outputs shaped like the first tensor input.
  const TensorMeta* first = nullptr;
  for (size_t i = 0; i < args.size() && first == nullptr; ++i) first = args.TensorAt(i);
  bool any_tensor_output = false;
  for (const torch::jit::Value* v : node->outputs()) any_tensor_output |= HasTensorType(v);
  if (any_tensor_output && first == nullptr) {
    return Status::Unsupported("no shape rule for " + op + " and no tensor input to guess from");
  }
  if (any_tensor_output) {
    ctx.Note("no shape rule for " + op + ": assumed its outputs are shaped like its first tensor input " +
             AbsValue::Tensor(*first).Describe());
  }
  for (const torch::jit::Value* v : node->outputs()) {
    if (v->type()->kind() == c10::TypeKind::TensorType) {
      out->push_back(AbsValue::Tensor(ctx.NewTensor(first->sizes, first->dtype)));
    } else {
      out->push_back(AbsValue::Unknown());
    }
  }
  return Status::Ok();
}

}  // namespace modelgrid

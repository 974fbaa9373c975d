// Shape rules of the graph walk: element-wise ops, reductions, factories,
// joins and copies, scalars; the rule table and ApplyRule. Views and
// containers: shape_rules_views.cc; ops with scratch memory (convolution,
// matmul, normalisation, pooling, attention): shape_rules_nn.cc.
//
// Memory facts used here (LibTorch 1.13 CPU, measured with modelgrid-probe
// --trace):
//   - views (view/reshape when the strides allow, permute, transpose, expand,
//     slice, select, unsqueeze, squeeze, split, detach, contiguous of a
//     contiguous tensor, to() without a change, dropout in eval) allocate
//     nothing and share their base's storage;
//   - in-place ops (names ending in '_') allocate nothing;
//   - every other op allocates its outputs, numel × element size each;
//   - element-wise outputs are laid out like their operands (TensorIterator's
//     stride ordering), which decides whether a later reshape copies.

#include "shape_rules.h"

#include <ATen/core/function_schema.h>
#include <c10/util/irange.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace modelgrid {

// Strides of a fresh element-wise output, as TensorIterator lays it out:
// dimensions ordered by the operands' strides (the first operand that is
// not ambiguous decides; broadcast dimensions are ambiguous), then dense in
// that order. Contiguous operands give a contiguous output; a permuted or
// sliced one gives an output permuted the same way, which decides whether a
// later reshape copies.
std::vector<int64_t> OutputStrides(const std::vector<int64_t>& sizes, const std::vector<const TensorMeta*>& operands) {
  const int64_t n = static_cast<int64_t>(sizes.size());
  // Each operand's strides against the output shape (0 where broadcast).
  std::vector<std::vector<int64_t>> strides;
  for (const TensorMeta* t : operands) {
    if (t == nullptr || t->dim() > n) continue;
    std::vector<int64_t> st(n, 0);
    const int64_t lead = n - t->dim();
    for (int64_t d = 0; d < t->dim(); ++d) {
      st[lead + d] = (t->sizes[d] == 1 && sizes[lead + d] != 1) ? 0 : t->strides[d];
    }
    strides.push_back(std::move(st));
  }
  if (strides.empty()) return ContiguousStrides(sizes);
  // perm[0] is the innermost dimension.
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = n - 1 - i;
  auto should_swap = [&](int64_t d0, int64_t d1) {
    for (const auto& st : strides) {
      const int64_t s0 = st[d0], s1 = st[d1];
      if (s0 == 0 || s1 == 0) continue;
      if (s0 != s1) return s0 > s1 ? 1 : -1;
      if (sizes[d0] > sizes[d1]) return 1;
    }
    return 0;
  };
  for (int64_t i = 1; i < n; ++i) {
    int64_t d1 = i;
    for (int64_t d0 = i - 1; d0 >= 0; --d0) {
      const int cmp = should_swap(perm[d0], perm[d1]);
      if (cmp > 0) {
        std::swap(perm[d0], perm[d1]);
        d1 = d0;
      } else if (cmp < 0) {
        break;
      }
    }
  }
  std::vector<int64_t> out(n);
  int64_t acc = 1;
  for (int64_t i = 0; i < n; ++i) {
    out[perm[i]] = acc;
    acc *= std::max<int64_t>(sizes[perm[i]], 1);
  }
  return out;
}

AbsValue NewLike(OpContext& ctx, const std::vector<int64_t>& sizes, c10::ScalarType dtype,
                 const std::vector<const TensorMeta*>& operands) {
  return AbsValue::Tensor(ctx.NewStridedTensor(sizes, OutputStrides(sizes, operands), dtype));
}
AbsValue NewLike(OpContext& ctx, const std::vector<int64_t>& sizes, c10::ScalarType dtype, const TensorMeta* like) {
  return NewLike(ctx, sizes, dtype, std::vector<const TensorMeta*>{like});
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
  // The tensor operands decide the output's layout (TensorIterator).
  std::vector<const TensorMeta*> like;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a.TensorAt(i) && (i < limit || op == "aten::masked_fill")) like.push_back(&a[i].t);
  }
  // A Python number operand (not add/sub's alpha) is wrapped into a 0-dim
  // double (or int64) tensor, and cast to the result type when that differs,
  // while the op runs: small blocks (measured "+8 +4 ... -4 -8" around a
  // float op's output, "+8 ... -8" for int64).
  std::vector<int> scalar_temps;
  if (ctx.device() == DeviceKind::kCpu && op != "aten::where" && op != "aten::masked_fill") {
    for (size_t i = 0; i < limit; ++i) {
      if (a[i].kind == AbsValue::Kind::kConst && (a[i].c.isDouble() || a[i].c.isInt()) && limit >= 2) {
        scalar_temps.push_back(ctx.Temp(8, "wrapped scalar"));
        const c10::ScalarType wrapped = a[i].c.isDouble() ? c10::kDouble : c10::kLong;
        if (wrapped != dtype && !comparison) {
          scalar_temps.push_back(ctx.Temp(ElementSize(dtype), "wrapped scalar cast"));
        }
        break;
      }
    }
  }
  AbsValue result = NewLike(ctx, shape, dtype, like);
  for (auto it = scalar_temps.rbegin(); it != scalar_temps.rend(); ++it) ctx.FreeTemp(*it);
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

// aten::index(self, indices): advanced indexing with integer index tensors
// (None for the dimensions taken whole). A fresh output: the index shapes
// broadcast, in place of the indexed dimensions when those are adjacent,
// else in front. Boolean masks have a data-dependent size: not supported.
Status IndexRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  if (x == nullptr || a.size() < 2 || (a[1].kind != AbsValue::Kind::kList && a[1].kind != AbsValue::Kind::kTuple)) {
    return BadInput(a, "self or indices not known");
  }
  std::vector<int64_t> index_shape;
  std::vector<int64_t> indexed;
  const auto& idx = a[1].elems;
  for (size_t i = 0; i < idx.size(); ++i) {
    if (idx[i].is_none()) continue;
    if (!idx[i].is_tensor()) return BadInput(a, "an index is not a tensor");
    if (idx[i].t.dtype == c10::kBool || idx[i].t.dtype == c10::kByte) {
      return BadInput(a, "boolean mask indexing has a data-dependent size");
    }
    auto b = BroadcastShapes(index_shape, idx[i].t.sizes);
    if (!b) return BadInput(a, "index shapes do not broadcast");
    index_shape = *b;
    indexed.push_back(static_cast<int64_t>(i));
  }
  if (indexed.empty() || static_cast<int64_t>(idx.size()) > x->dim()) return BadInput(a, "no index tensor");
  const bool adjacent = indexed.back() - indexed.front() + 1 == static_cast<int64_t>(indexed.size());
  std::vector<int64_t> sizes;
  if (adjacent) {
    sizes.assign(x->sizes.begin(), x->sizes.begin() + indexed.front());
    sizes.insert(sizes.end(), index_shape.begin(), index_shape.end());
    sizes.insert(sizes.end(), x->sizes.begin() + indexed.back() + 1, x->sizes.end());
  } else {
    sizes = index_shape;
    for (int64_t d = 0; d < x->dim(); ++d) {
      if (std::find(indexed.begin(), indexed.end(), d) == indexed.end()) sizes.push_back(x->sizes[d]);
    }
  }
  out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, x->dtype)));
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
  // softmax works on a contiguous input: a copy when it is not.
  const int copy = x->is_contiguous() ? -1 : ctx.Temp(x->nbytes(), "softmax contiguous input");
  out->push_back(AbsValue::Tensor(ctx.NewTensor(x->sizes, dtype)));
  if (copy >= 0) ctx.FreeTemp(copy);
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

// ------------------------------------------------------------ scalars

// aten::Int / Float / ScalarImplicit / Bool / item of a tensor with a known value.
Status ItemRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  std::optional<double> known;
  bool integral = true;
  if (x == nullptr) {  // a number already: convert it
    known = a.size() > 0 ? AsDouble(a[0]) : std::nullopt;
    integral = a.size() > 0 && a[0].kind == AbsValue::Kind::kConst && !a[0].c.isDouble();
  } else {
    known = x->value;
    integral = CategoryOf(x->dtype) != Category::kFloat;
  }
  if (!known) {
    out->push_back(AbsValue::Unknown());
    return Status::Ok();
  }
  const double v = *known;
  if (op == "aten::Int") out->push_back(AbsValue::Const(static_cast<int64_t>(v)));
  else if (op == "aten::Bool") out->push_back(AbsValue::Const(v != 0));
  else if (op == "aten::Float") out->push_back(AbsValue::Const(v));
  else if (!integral) out->push_back(AbsValue::Const(v));
  else out->push_back(AbsValue::Const(static_cast<int64_t>(v)));
  return Status::Ok();
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
          "aten::nan_to_num"}) {
      (*t)[op] = &UnaryRule;
    }
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
    (*t)["aten::index"] = &IndexRule;
    (*t)["aten::repeat"] = &RepeatRule;
    (*t)["aten::constant_pad_nd"] = &PadRule;
    (*t)["aten::pad"] = &PadRule;
    for (const char* op : {"aten::Int", "aten::Float", "aten::Bool", "aten::ScalarImplicit", "aten::item",
                           "aten::IntImplicit", "aten::FloatImplicit"}) {
      (*t)[op] = &ItemRule;
    }
    std::vector<std::pair<const char*, RuleFn>> more;
    RegisterViewRules(&more);
    RegisterNnRules(&more);
    for (auto& [op, fn] : more) (*t)[op] = fn;
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

// The IValue of a fully known non-tensor value (lists of one element type).
std::optional<c10::IValue> ToConstIValue(const AbsValue& v) {
  if (v.kind == AbsValue::Kind::kConst) return v.c;
  if (v.kind == AbsValue::Kind::kTuple) {
    std::vector<c10::IValue> elems;
    for (const AbsValue& e : v.elems) {
      auto c = ToConstIValue(e);
      if (!c) return std::nullopt;
      elems.push_back(std::move(*c));
    }
    return c10::IValue(c10::ivalue::Tuple::create(std::move(elems)));
  }
  if (v.kind != AbsValue::Kind::kList) return std::nullopt;
  bool all_bool = true, all_int = true, all_double = true, all_string = true;
  for (const AbsValue& e : v.elems) {
    if (e.kind != AbsValue::Kind::kConst) return std::nullopt;
    all_bool &= e.c.isBool();
    all_int &= e.c.isInt();
    all_double &= e.c.isDouble();
    all_string &= e.c.isString();
  }
  if (v.elems.empty() || all_int) {
    std::vector<int64_t> out;
    for (const AbsValue& e : v.elems) out.push_back(e.c.toInt());
    return c10::IValue(out);
  }
  if (all_bool) {
    c10::List<bool> out;
    for (const AbsValue& e : v.elems) out.push_back(e.c.toBool());
    return c10::IValue(out);
  }
  if (all_double) {
    std::vector<double> out;
    for (const AbsValue& e : v.elems) out.push_back(e.c.toDouble());
    return c10::IValue(out);
  }
  if (all_string) {
    c10::List<std::string> out;
    for (const AbsValue& e : v.elems) out.push_back(e.c.toStringRef());
    return c10::IValue(out);
  }
  return std::nullopt;
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
    auto v = ToConstIValue(a[i]);
    if (!v || v->isObject()) return std::nullopt;
    stack.push_back(std::move(*v));
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

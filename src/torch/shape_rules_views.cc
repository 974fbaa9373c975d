// Shape rules that allocate nothing: views (view/reshape when the strides
// allow, flatten, permute, transpose, expand, slice, select, narrow,
// unsqueeze, squeeze, split, chunk, unbind), identities (detach, contiguous
// of a contiguous tensor, dropout in eval), tensor facts (size, dim, device)
// and containers (lists, tuples). A view shares its base's storage; the
// walk keeps the base alive while any view is. Measured: none of these
// reaches c10's allocator (LibTorch 1.13 CPU), except reshape/contiguous
// of a tensor whose strides do not allow a view, which copies.

#include <algorithm>
#include <numeric>

#include "shape_rules.h"

namespace modelgrid {

namespace {

std::string OpName(const RuleArgs& a) { return a.node()->kind().toQualString(); }

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

// prim::ConstantChunk[chunks=N, dim=D](self): chunk with the numbers as
// node attributes (made by the executor's passes); views.
Status ConstantChunkRule(const RuleArgs& a, OpContext&, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  const torch::jit::Node* n = a.node();
  if (x == nullptr || !n->hasAttribute(c10::attr::chunks) || !n->hasAttribute(c10::attr::dim)) {
    return BadInput(a, "input or attributes not known");
  }
  auto d = WrapDim(n->i(c10::attr::dim), x->dim());
  const int64_t chunks = n->i(c10::attr::chunks);
  if (!d || x->dim() == 0 || chunks <= 0) return BadInput(a, "bad dim or chunks");
  const int64_t size = x->sizes[*d];
  const int64_t each = (size + chunks - 1) / chunks;
  for (size_t i = 0; i < n->outputs().size(); ++i) {
    TensorMeta v = *x;
    v.value.reset();
    v.sizes[*d] = std::max<int64_t>(0, std::min(each, size - static_cast<int64_t>(i) * each));
    out->push_back(AbsValue::Tensor(std::move(v)));
  }
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
  auto p = a.size() > 1 ? AsDouble(a[1]) : std::nullopt;
  if (train.value_or(false) && p.value_or(1.0) != 0.0) {
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
  else if (op == "prim::layout") out->push_back(AbsValue::Const(static_cast<int64_t>(0)));  // strided
  else if (op.rfind("prim::is_", 0) == 0 || op == "prim::requires_grad") out->push_back(AbsValue::Const(false));
  else out->push_back(AbsValue::Unknown());
  return Status::Ok();
}

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

}  // namespace

void RegisterViewRules(std::vector<std::pair<const char*, RuleFn>>* table) {
  for (const char* op : {"aten::view", "aten::reshape", "aten::_reshape_alias", "aten::view_as",
                         "aten::reshape_as", "aten::_unsafe_view"}) {
    table->emplace_back(op, &ViewRule);
  }
  table->emplace_back("aten::flatten", &FlattenRule);
  for (const char* op : {"aten::permute", "aten::transpose", "aten::t", "aten::numpy_T", "aten::mT",
                         "aten::swapaxes", "aten::swapdims"}) {
    table->emplace_back(op, &PermuteRule);
  }
  table->emplace_back("aten::expand", &ExpandRule);
  table->emplace_back("aten::expand_as", &ExpandRule);
  table->emplace_back("aten::slice", &SliceRule);
  table->emplace_back("aten::select", &SliceRule);
  table->emplace_back("aten::narrow", &SliceRule);
  table->emplace_back("aten::unsqueeze", &SqueezeRule);
  table->emplace_back("aten::unsqueeze_", &SqueezeRule);
  table->emplace_back("aten::squeeze", &SqueezeRule);
  for (const char* op : {"aten::split", "aten::split_with_sizes", "aten::chunk", "aten::unbind",
                         "aten::unsafe_split", "aten::unsafe_chunk"}) {
    table->emplace_back(op, &SplitRule);
  }
  for (const char* op : {"aten::detach", "aten::alias", "aten::detach_", "aten::requires_grad_",
                         "aten::resolve_conj", "aten::resolve_neg", "aten::positive", "prim::unchecked_cast",
                         "aten::lift", "aten::lift_fresh", "aten::align_to", "aten::refine_names"}) {
    table->emplace_back(op, &IdentityRule);
  }
  for (const char* op : {"aten::dropout", "aten::dropout_", "aten::feature_dropout", "aten::feature_dropout_",
                         "aten::alpha_dropout", "aten::alpha_dropout_", "aten::feature_alpha_dropout"}) {
    table->emplace_back(op, &DropoutRule);
  }
  table->emplace_back("aten::contiguous", &ContiguousRule);
  table->emplace_back("prim::ConstantChunk", &ConstantChunkRule);
  table->emplace_back("aten::size", &SizeRule);
  table->emplace_back("aten::len", &ListLenRule);
  table->emplace_back("prim::ListConstruct", &ListConstructRule);
  table->emplace_back("prim::TupleConstruct", &ListConstructRule);
  table->emplace_back("prim::ListUnpack", &UnpackRule);
  table->emplace_back("prim::TupleUnpack", &UnpackRule);
  table->emplace_back("aten::__getitem__", &GetItemRule);
  table->emplace_back("prim::TupleIndex", &GetItemRule);
  for (const char* op : {"aten::dim", "aten::numel", "prim::device", "prim::dtype", "prim::is_cuda",
                         "aten::is_floating_point", "prim::layout", "prim::requires_grad", "prim::is_nested",
                         "prim::is_sparse", "prim::is_sparse_csr", "prim::is_quantized", "prim::is_mkldnn",
                         "prim::is_meta", "prim::is_xpu", "prim::is_vulkan", "prim::is_mps", "prim::is_ipu",
                         "prim::is_xla", "prim::is_hpu", "prim::is_ort", "prim::is_lazy"}) {
    table->emplace_back(op, &TensorFactRule);
  }
}

}  // namespace modelgrid

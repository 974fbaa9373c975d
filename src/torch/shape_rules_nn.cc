// Shape rules for the ops that allocate scratch memory or pick a kernel by
// shape: matmul/linear, normalisation, pooling, upsampling, recurrent
// layers, attention. Convolution: shape_rules_conv.cc.
//
// Each rule states the allocation sequence it models. Source: LibTorch
// 1.13.1 (Debian) on an AVX-512 Xeon, measured per op with
// `modelgrid-probe --trace` (the counting allocator sees every c10 CPU
// allocation, oneDNN's scratch included, since ideep allocates through
// c10's raw allocator), and ATen's kernel selection
// (aten/src/ATen/native/Convolution.cpp, LinearAlgebra.cpp, Linear.cpp).
// On CUDA only outputs are modelled (cuDNN/cuBLAS workspaces are added by
// the walker as one figure).

#include <algorithm>

#include "shape_rules.h"

namespace modelgrid {

namespace {

uint64_t Bytes(int64_t numel, c10::ScalarType dtype) {
  return static_cast<uint64_t>(std::max<int64_t>(numel, 0)) * ElementSize(dtype);
}

int64_t Prod(const std::vector<int64_t>& v, size_t from = 0, size_t to = SIZE_MAX) {
  int64_t p = 1;
  for (size_t i = from; i < std::min(to, v.size()); ++i) p *= v[i];
  return p;
}

std::string OpName(const RuleArgs& a) { return a.node()->kind().toQualString(); }

std::vector<int64_t> Expand(std::optional<std::vector<int64_t>> v, size_t n, int64_t fill) {
  if (!v || v->empty()) return std::vector<int64_t>(n, fill);
  if (v->size() == 1 && n > 1) return std::vector<int64_t>(n, (*v)[0]);
  return *v;
}

// ------------------------------------------------------------ matmul family

// A temporary reshape inside matmul: a copy only when the strides do not
// allow a view. Returns the temp id or -1.
int ReshapeTemp(const TensorMeta& t, const std::vector<int64_t>& sizes, OpContext& ctx) {
  if (ViewStrides(t.sizes, t.strides, sizes)) return -1;
  return ctx.Temp(Bytes(Prod(sizes), t.dtype), "matmul reshape copy");
}

// aten::matmul (LinearAlgebra.cpp, _matmul_impl):
//   1-D/2-D operands: dot/mv/mm, the output only;
//   N-D @ 1-D/2-D: the left operand folded to 2-D (a copy when its strides
//     do not allow a view), one mm output;
//   batched: both operands expanded to the broadcast batch and reshaped to
//     3-D (copies when not viewable, freed after), one bmm output.
Status MatmulLike(const TensorMeta& t1, const TensorMeta& t2, OpContext& ctx, TensorMeta* result) {
  const int64_t d1 = t1.dim(), d2 = t2.dim();
  const c10::ScalarType dtype = c10::promoteTypes(t1.dtype, t2.dtype);
  if (d1 == 0 || d2 == 0) return Status::Unsupported("aten::matmul: 0-dim operand");
  if (d1 <= 2 && d2 <= 2) {
    std::vector<int64_t> sizes;
    if (d1 == 2) sizes.push_back(t1.sizes[0]);
    if (d2 == 2) sizes.push_back(t2.sizes[1]);
    *result = ctx.NewTensor(sizes, dtype);
    return Status::Ok();
  }
  if (d1 >= 3 && d2 <= 2) {
    const int64_t k = t1.sizes.back();
    const int64_t rows = t1.numel() / std::max<int64_t>(k, 1);
    const int tmp = ReshapeTemp(t1, {rows, k}, ctx);
    std::vector<int64_t> sizes(t1.sizes.begin(), t1.sizes.end() - 1);
    if (d2 == 2) sizes.push_back(t2.sizes[1]);
    *result = ctx.NewTensor(sizes, dtype);
    if (tmp >= 0) ctx.FreeTemp(tmp);
    return Status::Ok();
  }
  if (d1 <= 2 && d2 >= 3) {
    // (1-D/2-D) @ N-D: computed as (t2^T @ t1^T)^T, then made contiguous.
    const int64_t n = d1 == 2 ? t1.sizes[0] : 1;
    std::vector<int64_t> sizes(t2.sizes.begin(), t2.sizes.end() - 2);
    if (d1 == 2) sizes.push_back(n);
    sizes.push_back(t2.sizes.back());
    *result = ctx.NewTensor(sizes, dtype);
    return Status::Ok();
  }
  const int64_t n = t1.sizes[d1 - 2], m1 = t1.sizes[d1 - 1];
  const int64_t m2 = t2.sizes[d2 - 2], p = t2.sizes[d2 - 1];
  std::vector<int64_t> b1(t1.sizes.begin(), t1.sizes.end() - 2), b2(t2.sizes.begin(), t2.sizes.end() - 2);
  auto batch = BroadcastShapes(b1, b2);
  if (!batch || m1 != m2) return Status::Unsupported("aten::matmul: operands do not match");
  const int64_t bp = Prod(*batch);
  auto expanded = [&](const TensorMeta& t, int64_t r, int64_t c) {
    TensorMeta e = t;
    std::vector<int64_t> target = *batch;
    target.push_back(r);
    target.push_back(c);
    const size_t lead = target.size() - t.sizes.size();
    e.sizes = target;
    e.strides.assign(target.size(), 0);
    for (size_t i = lead; i < target.size(); ++i) {
      e.strides[i] = (t.sizes[i - lead] == 1 && target[i] != 1) ? 0 : t.strides[i - lead];
    }
    return e;
  };
  const int tmp1 = ReshapeTemp(expanded(t1, n, m1), {bp, n, m1}, ctx);
  const int tmp2 = ReshapeTemp(expanded(t2, m2, p), {bp, m2, p}, ctx);
  std::vector<int64_t> sizes = *batch;
  sizes.push_back(n);
  sizes.push_back(p);
  *result = ctx.NewTensor(sizes, dtype);
  if (tmp1 >= 0) ctx.FreeTemp(tmp1);
  if (tmp2 >= 0) ctx.FreeTemp(tmp2);
  return Status::Ok();
}

Status MatmulRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* t1 = a.TensorAt(0);
  const TensorMeta* t2 = a.TensorAt(1);
  if (!t1 || !t2) return BadInput(a, "operands not known");
  TensorMeta r;
  MG_RETURN_IF_ERROR(MatmulLike(*t1, *t2, ctx, &r));
  out->push_back(AbsValue::Tensor(std::move(r)));
  return Status::Ok();
}

// aten::linear (Linear.cpp): 2-D input with bias → addmm; contiguous 3-D
// input with bias → addmm on a 2-D view; otherwise matmul then an in-place
// bias add. The output only, plus matmul's copies.
Status LinearRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  const TensorMeta* w = a.TensorAt(1);
  if (!x || !w || w->dim() != 2) return BadInput(a, "input or weight not known");
  const bool bias = a.size() > 2 && a[2].is_tensor();
  std::vector<int64_t> sizes(x->sizes.begin(), x->sizes.end() - (x->dim() > 0 ? 1 : 0));
  sizes.push_back(w->sizes[0]);
  if (bias && (x->dim() == 2 || (x->dim() == 3 && x->is_contiguous()))) {
    out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, x->dtype)));
    return Status::Ok();
  }
  TensorMeta wt = *w;
  std::swap(wt.sizes[0], wt.sizes[1]);
  std::swap(wt.strides[0], wt.strides[1]);
  TensorMeta r;
  MG_RETURN_IF_ERROR(MatmulLike(*x, wt, ctx, &r));
  out->push_back(AbsValue::Tensor(std::move(r)));
  return Status::Ok();
}

// mm, bmm, addmm, baddbmm, addmv, mv, dot: the output only.
Status BlasRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const bool with_self = op == "aten::addmm" || op == "aten::baddbmm" || op == "aten::addmv" || op == "aten::addbmm";
  const TensorMeta* m1 = a.TensorAt(with_self ? 1 : 0);
  const TensorMeta* m2 = a.TensorAt(with_self ? 2 : 1);
  if (!m1 || !m2) return BadInput(a, "operands not known");
  std::vector<int64_t> sizes;
  if (op == "aten::bmm" || op == "aten::baddbmm") {
    if (m1->dim() != 3 || m2->dim() != 3) return BadInput(a, "bmm needs 3-D operands");
    sizes = {m1->sizes[0], m1->sizes[1], m2->sizes[2]};
  } else if (op == "aten::mv" || op == "aten::addmv") {
    sizes = {m1->sizes[0]};
  } else if (op == "aten::dot") {
    sizes = {};
  } else {
    if (m1->dim() != 2 || m2->dim() != 2) return BadInput(a, "mm needs 2-D operands");
    sizes = {m1->sizes[0], m2->sizes[1]};
  }
  out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, c10::promoteTypes(m1->dtype, m2->dtype))));
  return Status::Ok();
}

// ------------------------------------------------------------ normalisation

// aten::batch_norm in eval (native_batch_norm, CPU): the output, then two
// C-element float buffers (save_mean, save_invstd) that are freed at once.
Status BatchNormRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  if (!x || x->dim() < 2) return BadInput(a, "input not known");
  out->push_back(AbsValue::Tensor(ctx.NewTensor(x->sizes, x->dtype)));
  if (ctx.device() == DeviceKind::kCpu) {
    const int m = ctx.Temp(Bytes(x->sizes[1], c10::kFloat), "batch_norm save_mean");
    const int v = ctx.Temp(Bytes(x->sizes[1], c10::kFloat), "batch_norm save_invstd");
    ctx.FreeTemp(m);
    ctx.FreeTemp(v);
  }
  return Status::Ok();
}

// aten::layer_norm (native_layer_norm): [a contiguous copy of a
// non-contiguous input,] the output, then mean and rstd of M floats each
// (M = elements outside the normalised shape), freed at once.
// aten::group_norm: the same with M = N × groups.
Status NormRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  if (!x) return BadInput(a, "input not known");
  int64_t m = 1;
  if (op == "aten::layer_norm") {
    auto shape = a.size() > 1 ? AsIntList(a[1]) : std::nullopt;
    if (!shape) return BadInput(a, "normalized_shape not known");
    m = x->numel() / std::max<int64_t>(Prod(*shape), 1);
  } else if (op == "aten::group_norm") {
    m = x->dim() > 0 ? x->sizes[0] * (a.size() > 1 ? AsInt(a[1]).value_or(1) : 1) : 1;
  } else {  // instance_norm and friends: N × C
    m = x->dim() > 1 ? x->sizes[0] * x->sizes[1] : 1;
  }
  // A non-contiguous input is made contiguous first (expect_contiguous).
  const int copy = x->is_contiguous() ? -1 : ctx.Temp(x->nbytes(), "norm contiguous input");
  out->push_back(AbsValue::Tensor(ctx.NewTensor(x->sizes, x->dtype)));
  const int mean = ctx.Temp(Bytes(m, c10::kFloat), "norm mean");
  const int rstd = ctx.Temp(Bytes(m, c10::kFloat), "norm rstd");
  if (copy >= 0) ctx.FreeTemp(copy);
  ctx.FreeTemp(mean);
  ctx.FreeTemp(rstd);
  return Status::Ok();
}

// ------------------------------------------------------------ pooling

std::vector<int64_t> PoolOutput(const TensorMeta& x, const std::vector<int64_t>& k, const std::vector<int64_t>& s,
                                const std::vector<int64_t>& pd, const std::vector<int64_t>& dl, bool ceil_mode) {
  std::vector<int64_t> sizes(x.sizes.begin(), x.sizes.end() - 2);
  for (size_t i = 0; i < 2; ++i) {
    const int64_t in = x.sizes[x.dim() - 2 + i];
    const int64_t num = in + 2 * pd[i] - dl[i] * (k[i] - 1) - 1 + (ceil_mode ? s[i] - 1 : 0);
    int64_t o = num / s[i] + 1;
    if (ceil_mode && (o - 1) * s[i] >= in + pd[i]) --o;
    sizes.push_back(o);
  }
  return sizes;
}

// aten::max_pool2d (CPU, no grad): max_pool2d_with_indices, so the output
// and an int64 index tensor of the same shape, freed at once.
// aten::avg_pool2d: the output only.
Status Pool2dRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  if (!x || x->dim() < 3) return BadInput(a, "input not known");
  auto k = Expand(a.size() > 1 ? AsIntList(a[1]) : std::nullopt, 2, 1);
  auto s_in = a.size() > 2 ? AsIntList(a[2]) : std::nullopt;
  auto s = (s_in && !s_in->empty()) ? Expand(s_in, 2, 1) : k;
  auto pd = Expand(a.size() > 3 ? AsIntList(a[3]) : std::nullopt, 2, 0);
  const bool is_max = op.find("max") != std::string::npos;
  auto dl = is_max ? Expand(a.size() > 4 ? AsIntList(a[4]) : std::nullopt, 2, 1) : std::vector<int64_t>{1, 1};
  const size_t ceil_index = is_max ? 5 : 4;
  const bool ceil_mode = a.size() > ceil_index ? AsBool(a[ceil_index]).value_or(false) : false;
  auto sizes = PoolOutput(*x, k, s, pd, dl, ceil_mode);
  out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, x->dtype)));
  if (is_max) {
    if (op == "aten::max_pool2d_with_indices") {
      out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, c10::kLong)));
    } else if (ctx.device() == DeviceKind::kCpu) {
      ctx.FreeTemp(ctx.Temp(Bytes(Prod(sizes), c10::kLong), "max_pool2d indices"));
    }
  }
  return Status::Ok();
}

// aten::adaptive_avg_pool2d: 1x1 outputs are a mean over H, W (output plus
// two scalar temporaries); others the output only.
// aten::adaptive_max_pool2d: output and int64 indices.
Status AdaptivePoolRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  auto size = a.size() > 1 ? AsIntList(a[1]) : std::nullopt;
  if (!x || !size || x->dim() < static_cast<int64_t>(size->size())) return BadInput(a, "input or size not known");
  std::vector<int64_t> sizes(x->sizes.begin(), x->sizes.end() - size->size());
  for (size_t i = 0; i < size->size(); ++i) {
    sizes.push_back((*size)[i] < 0 ? x->sizes[x->dim() - size->size() + i] : (*size)[i]);
  }
  out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, x->dtype)));
  const bool global = std::all_of(size->begin(), size->end(), [](int64_t v) { return v == 1; });
  if (op == "aten::adaptive_avg_pool2d" && global && ctx.device() == DeviceKind::kCpu) {
    // mean(): the divisor as a 0-dim double and its float copy, freed at once.
    const int d = ctx.Temp(8, "mean divisor");
    ctx.FreeTemp(ctx.Temp(ElementSize(x->dtype), "mean divisor cast"));
    ctx.FreeTemp(d);
  }
  if (op == "aten::adaptive_max_pool2d" || op == "aten::adaptive_max_pool1d") {
    out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, c10::kLong)));
  }
  return Status::Ok();
}

// aten::upsample_* / interpolate: the output only.
Status UpsampleRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  if (!x || x->dim() < 3) return BadInput(a, "input not known");
  const size_t spatial = x->dim() - 2;
  std::vector<int64_t> sizes(x->sizes.begin(), x->sizes.begin() + 2);
  auto out_size = a.size() > 1 ? AsIntList(a[1]) : std::nullopt;
  if (out_size && out_size->size() == spatial) {
    sizes.insert(sizes.end(), out_size->begin(), out_size->end());
  } else {
    const AbsValue* scales = a.Named("scale_factors");
    std::vector<double> sc;
    if (scales && scales->kind == AbsValue::Kind::kConst && scales->c.isDoubleList()) {
      for (double d : scales->c.toDoubleVector()) sc.push_back(d);
    }
    if (sc.size() != spatial) return BadInput(a, "output size not known");
    for (size_t i = 0; i < spatial; ++i) {
      sizes.push_back(static_cast<int64_t>(x->sizes[2 + i] * sc[i]));
    }
  }
  out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, x->dtype)));
  if (OpName(a) == "aten::upsample_bilinear2d" && ctx.device() == DeviceKind::kCpu && spatial == 2) {
    if (x->sizes[2] == 1 && x->sizes[3] == 1) {
      // A 1x1 source: measured one more buffer the size of the output.
      ctx.FreeTemp(ctx.Temp(Bytes(Prod(sizes), x->dtype), "upsample broadcast"));
    } else {
      // Separable kernel: per output dimension two int64 index and two
      // weight vectors, freed together.
      std::vector<int> temps;
      for (size_t d = 2; d < 4; ++d) {
        for (int k = 0; k < 2; ++k) {
          temps.push_back(ctx.Temp(Bytes(sizes[d], c10::kLong), "upsample indices"));
          temps.push_back(ctx.Temp(Bytes(sizes[d], x->dtype), "upsample weights"));
        }
      }
      for (int t : temps) ctx.FreeTemp(t);
    }
  }
  return Status::Ok();
}

// ------------------------------------------------------------ recurrent

// aten::lstm / aten::gru / aten::rnn_tanh / aten::rnn_relu (input overloads),
// CPU (RNN.cpp), per layer and direction, measured for the LSTM:
//   [layer 0, batch_first: the input copied time-major, T·B·I]
//   the input projection for all steps, T·B·G·H (G = 4 LSTM, 3 GRU, 1 RNN);
//   per step: the gates B·G·H, the new cell B·H (LSTM), a temporary B·H,
//     tanh(c) B·H, the new hidden B·H (kept for the output), freed but h;
//   the layer output stacked, T·B·H (×2 bidirectional), the steps' hidden
//     states and the projection freed;
//   at the end the final hidden (and cell) states, L·D·B·H each.
Status RecurrentRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* x = a.TensorAt(0);
  const bool lstm = op == "aten::lstm";
  const int64_t gates = lstm ? 4 : op == "aten::gru" ? 3 : 1;
  if (!x || (x->dim() != 3 && x->dim() != 2) || a.size() < 9) return BadInput(a, "input not known");
  const auto layers = AsInt(a[4]);
  const bool bidirectional = AsBool(a[7]).value_or(false);
  const bool batch_first = AsBool(a[8]).value_or(false);
  if (!layers) return BadInput(a, "num_layers not known");
  int64_t hidden = 0;
  const AbsValue& params = a[2];
  if ((params.kind == AbsValue::Kind::kList || params.kind == AbsValue::Kind::kTuple) && !params.elems.empty() &&
      params.elems[0].is_tensor() && params.elems[0].t.dim() == 2) {
    hidden = params.elems[0].t.sizes[0] / gates;
  }
  if (hidden <= 0) return BadInput(a, "hidden size not known from the weights");
  const bool unbatched = x->dim() == 2;
  const int64_t t = unbatched ? x->sizes[0] : (batch_first ? x->sizes[1] : x->sizes[0]);
  const int64_t b = unbatched ? 1 : (batch_first ? x->sizes[0] : x->sizes[1]);
  const int64_t in_size = x->sizes.back();
  const int64_t dirs = bidirectional ? 2 : 1;
  const c10::ScalarType dt = x->dtype;
  int prev_out = -1;
  TensorMeta result;
  std::vector<int> finals;
  for (int64_t l = 0; l < *layers; ++l) {
    const int64_t layer_in = l == 0 ? in_size : hidden * dirs;
    int copy = -1;
    if (l == 0 && batch_first && !unbatched) copy = ctx.Temp(Bytes(t * b * layer_in, dt), "rnn time-major input");
    std::vector<int> dir_outs;
    for (int64_t d = 0; d < dirs; ++d) {
      const int proj = ctx.Temp(Bytes(t * b * gates * hidden, dt), "rnn input projection");
      if (copy >= 0 && d == dirs - 1) {
        ctx.FreeTemp(copy);
        copy = -1;
      }
      std::vector<int> hs;
      int cell = -1;
      for (int64_t step = 0; step < t; ++step) {
        const int g = ctx.Temp(Bytes(b * gates * hidden, dt), "rnn gates");
        int c_new = -1;
        if (lstm) c_new = ctx.Temp(Bytes(b * hidden, dt), "rnn cell");
        ctx.FreeTemp(ctx.Temp(Bytes(b * hidden, dt), "rnn temporary"));
        const int th = ctx.Temp(Bytes(b * hidden, dt), "rnn tanh");
        hs.push_back(ctx.Temp(Bytes(b * hidden, dt), "rnn hidden"));
        ctx.FreeTemp(th);
        ctx.FreeTemp(g);
        if (cell >= 0) ctx.FreeTemp(cell);
        cell = c_new;
      }
      const bool last_layer = l == *layers - 1;
      if (last_layer && dirs == 1) {
        result = ctx.NewTensor({t, b, hidden}, dt);
      } else {
        dir_outs.push_back(ctx.Temp(Bytes(t * b * hidden, dt), "rnn layer output"));
      }
      for (size_t i = 0; i + 1 < hs.size(); ++i) ctx.FreeTemp(hs[i]);
      if (!hs.empty()) finals.push_back(hs.back());
      if (cell >= 0) finals.push_back(cell);
      ctx.FreeTemp(proj);
    }
    if (dirs == 2) {
      if (l == *layers - 1) {
        result = ctx.NewTensor({t, b, 2 * hidden}, dt);
        for (int o : dir_outs) ctx.FreeTemp(o);
      } else {
        const int cat = ctx.Temp(Bytes(t * b * 2 * hidden, dt), "rnn layer output");
        for (int o : dir_outs) ctx.FreeTemp(o);
        dir_outs = {cat};
      }
    }
    if (prev_out >= 0) ctx.FreeTemp(prev_out);
    prev_out = dir_outs.empty() ? -1 : dir_outs.back();
  }
  if (prev_out >= 0) ctx.FreeTemp(prev_out);
  // Output layout: time-major storage; batch_first returns a transposed view.
  if (unbatched) {
    result.sizes = {t, result.sizes[2]};
    result.strides = {result.strides[0], 1};
  } else if (batch_first) {
    std::swap(result.sizes[0], result.sizes[1]);
    std::swap(result.strides[0], result.strides[1]);
  }
  out->push_back(AbsValue::Tensor(result));
  const std::vector<int64_t> state = unbatched ? std::vector<int64_t>{*layers * dirs, hidden}
                                               : std::vector<int64_t>{*layers * dirs, b, hidden};
  for (size_t i = 1; i < a.node()->outputs().size(); ++i) out->push_back(AbsValue::Tensor(ctx.NewTensor(state, dt)));
  for (int f : finals) ctx.FreeTemp(f);
  return Status::Ok();
}

// aten::_transformer_encoder_layer_fwd(src, embed_dim, num_heads, qkv_weight,
//   qkv_bias, proj_weight, proj_bias, use_gelu, norm_first, eps, norm_weight_1,
//   norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1, ffn_bias_1,
//   ffn_weight_2, ffn_bias_2, mask, mask_type): nn.TransformerEncoderLayer's
// inference fast path. Measured (post-norm, B·T·E, H heads, F feed-forward):
//   qkv 3BTE; q,k,v 3BTE; qkv freed; scores B·H·T·T, freed; context BTE;
//   projection BTE; context, q,k,v freed; norm1 BTE (+ mean, rstd); the
//   projection freed; ffn1 BTF; ffn2 BTE; ffn1 freed; norm2 BTE, the output
//   (+ mean, rstd); ffn2 and norm1 freed. Pre-norm (norm_first) is modelled
//   with the same buffers in its own order.
Status EncoderLayerRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* x = a.TensorAt(0);
  auto heads = a.size() > 2 ? AsInt(a[2]) : std::nullopt;
  const TensorMeta* ffn1 = a.TensorAt(14);
  if (!x || x->dim() != 3 || !heads || !ffn1) return BadInput(a, "src, heads or ffn weight not known");
  const bool norm_first = a.size() > 8 ? AsBool(a[8]).value_or(false) : false;
  const int64_t b = x->sizes[0], t = x->sizes[1], e = x->sizes[2], f = ffn1->sizes[0];
  const c10::ScalarType dt = x->dtype;
  auto norm = [&](const char* what) {
    const int m = ctx.Temp(Bytes(b * t, c10::kFloat), what);
    ctx.FreeTemp(ctx.Temp(Bytes(b * t, c10::kFloat), what));
    ctx.FreeTemp(m);
  };
  int pre = -1;
  if (norm_first) {
    pre = ctx.Temp(Bytes(b * t * e, dt), "encoder norm1");
    norm("encoder norm1 stats");
  }
  const int qkv = ctx.Temp(Bytes(3 * b * t * e, dt), "encoder qkv");
  const int split = ctx.Temp(Bytes(3 * b * t * e, dt), "encoder q,k,v");
  ctx.FreeTemp(qkv);
  ctx.FreeTemp(ctx.Temp(Bytes(b * *heads * t * t, dt), "encoder scores"));
  const int context = ctx.Temp(Bytes(b * t * e, dt), "encoder context");
  const int proj = ctx.Temp(Bytes(b * t * e, dt), "encoder projection");
  ctx.FreeTemp(context);
  ctx.FreeTemp(split);
  if (pre >= 0) ctx.FreeTemp(pre);
  const int n1 = ctx.Temp(Bytes(b * t * e, dt), norm_first ? "encoder residual" : "encoder norm1");
  if (!norm_first) norm("encoder norm1 stats");
  ctx.FreeTemp(proj);
  int n2 = -1;
  if (norm_first) {
    n2 = ctx.Temp(Bytes(b * t * e, dt), "encoder norm2");
    norm("encoder norm2 stats");
  }
  const int h1 = ctx.Temp(Bytes(b * t * f, dt), "encoder ffn1");
  const int h2 = ctx.Temp(Bytes(b * t * e, dt), "encoder ffn2");
  ctx.FreeTemp(h1);
  if (n2 >= 0) ctx.FreeTemp(n2);
  out->push_back(AbsValue::Tensor(ctx.NewTensor({b, t, e}, dt)));
  if (!norm_first) norm("encoder norm2 stats");
  ctx.FreeTemp(h2);
  ctx.FreeTemp(n1);
  return Status::Ok();
}

// ------------------------------------------------------------ attention

// aten::_native_multi_head_attention(query, key, value, embed_dim, num_head,
//   qkv_weight, qkv_bias, proj_weight, proj_bias, mask, need_weights, ...)
// CPU fast path (attention.cpp), self-attention, B × T × E with H heads,
// measured order:
//   qkv = mm (3·B·T·E); q,k,v split (3·B·T·E); qkv freed;
//   scores B·H·T·S; freed after the softmax/bmm; context B·T·E;
//   the output projection B·T·E (the output); context and q,k,v freed.
// With need_weights the averaged weights B·T·S are a second output.
Status NativeMhaRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* q = a.TensorAt(0);
  const TensorMeta* k = a.TensorAt(1);
  auto heads = a.size() > 4 ? AsInt(a[4]) : std::nullopt;
  if (!q || !k || q->dim() != 3 || !heads) return BadInput(a, "query or heads not known");
  const int64_t b = q->sizes[0], t = q->sizes[1], e = q->sizes[2], s = k->dim() == 3 ? k->sizes[1] : t;
  const bool need_weights = a.size() > 10 ? AsBool(a[10]).value_or(true) : true;
  const int qkv = ctx.Temp(Bytes(3 * b * t * e, q->dtype), "mha qkv");
  const int split = ctx.Temp(Bytes(3 * b * t * e, q->dtype), "mha q,k,v");
  ctx.FreeTemp(qkv);
  const int scores = ctx.Temp(Bytes(b * *heads * t * s, q->dtype), "mha scores");
  ctx.FreeTemp(scores);
  const int context = ctx.Temp(Bytes(b * t * e, q->dtype), "mha context");
  out->push_back(AbsValue::Tensor(ctx.NewTensor({b, t, e}, q->dtype)));
  ctx.FreeTemp(context);
  ctx.FreeTemp(split);
  if (need_weights) {
    out->push_back(AbsValue::Tensor(ctx.NewTensor({b, t, s}, q->dtype)));
  } else {
    out->push_back(AbsValue::Tensor(ctx.NewTensor({0}, q->dtype)));
  }
  return Status::Ok();
}

// aten::scaled_dot_product_attention(q, k, v, ...) (newer LibTorch; the math
// kernel): scores B·H·L·S and their softmax alive together, then the output.
Status SdpaRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const TensorMeta* q = a.TensorAt(0);
  const TensorMeta* k = a.TensorAt(1);
  const TensorMeta* v = a.TensorAt(2);
  if (!q || !k || !v || q->dim() < 2) return BadInput(a, "q, k, v not known");
  std::vector<int64_t> score_sizes(q->sizes.begin(), q->sizes.end() - 1);
  score_sizes.push_back(k->sizes[k->dim() - 2]);
  const int scores = ctx.Temp(Bytes(Prod(score_sizes), q->dtype), "sdpa scores");
  const int probs = ctx.Temp(Bytes(Prod(score_sizes), q->dtype), "sdpa softmax");
  ctx.FreeTemp(scores);
  std::vector<int64_t> sizes(q->sizes.begin(), q->sizes.end() - 1);
  sizes.push_back(v->sizes.back());
  out->push_back(AbsValue::Tensor(ctx.NewTensor(sizes, q->dtype)));
  ctx.FreeTemp(probs);
  ctx.Note("aten::scaled_dot_product_attention: modelled as the math kernel (scores and softmax alive together)");
  return Status::Ok();
}

}  // namespace

void RegisterNnRules(std::vector<std::pair<const char*, RuleFn>>* table) {
  RegisterConvRules(table);
  table->emplace_back("aten::matmul", &MatmulRule);
  table->emplace_back("aten::linear", &LinearRule);
  for (const char* op : {"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "aten::addmv", "aten::mv",
                         "aten::dot", "aten::addbmm"}) {
    table->emplace_back(op, &BlasRule);
  }
  table->emplace_back("aten::batch_norm", &BatchNormRule);
  for (const char* op : {"aten::layer_norm", "aten::group_norm", "aten::instance_norm"}) {
    table->emplace_back(op, &NormRule);
  }
  for (const char* op : {"aten::max_pool2d", "aten::avg_pool2d", "aten::max_pool2d_with_indices"}) {
    table->emplace_back(op, &Pool2dRule);
  }
  for (const char* op : {"aten::adaptive_avg_pool2d", "aten::adaptive_max_pool2d", "aten::adaptive_avg_pool1d",
                         "aten::adaptive_max_pool1d"}) {
    table->emplace_back(op, &AdaptivePoolRule);
  }
  for (const char* op : {"aten::upsample_nearest2d", "aten::upsample_bilinear2d", "aten::upsample_bicubic2d"}) {
    table->emplace_back(op, &UpsampleRule);
  }
  table->emplace_back("aten::_native_multi_head_attention", &NativeMhaRule);
  table->emplace_back("aten::_transformer_encoder_layer_fwd", &EncoderLayerRule);
  for (const char* op : {"aten::lstm", "aten::gru", "aten::rnn_tanh", "aten::rnn_relu"}) {
    table->emplace_back(op, &RecurrentRule);
  }
  table->emplace_back("aten::scaled_dot_product_attention", &SdpaRule);
}

}  // namespace modelgrid

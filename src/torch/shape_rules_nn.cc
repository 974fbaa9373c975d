// Shape rules for the ops that allocate scratch memory or pick a kernel by
// shape: convolution, matmul/linear, normalisation, pooling, attention.
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

int64_t RoundUpTo(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

std::string OpName(const RuleArgs& a) { return a.node()->kind().toQualString(); }

// ------------------------------------------------------------ convolution

struct ConvParams {
  std::vector<int64_t> stride, padding, dilation;
  bool transposed = false;
  std::vector<int64_t> output_padding;
  int64_t groups = 1;
};

std::vector<int64_t> Expand(std::optional<std::vector<int64_t>> v, size_t n, int64_t fill) {
  if (!v || v->empty()) return std::vector<int64_t>(n, fill);
  if (v->size() == 1 && n > 1) return std::vector<int64_t>(n, (*v)[0]);
  return *v;
}

// Which CPU kernel ATen picks (Convolution.cpp, _select_conv_backend and
// ConvParams::use_mkldnn) for a float32 NCHW convolution.
enum class CpuConvKernel { kMkldnn, kSlowIm2col, kSlow1x1 };

CpuConvKernel SelectCpuConv(const TensorMeta& in, const TensorMeta& w, const ConvParams& p, const KernelFacts& f) {
  const bool strided = std::any_of(p.stride.begin(), p.stride.end(), [](int64_t s) { return s != 1; });
  const bool dilated = std::any_of(p.dilation.begin(), p.dilation.end(), [](int64_t d) { return d != 1; });
  const int64_t n = in.sizes[0];
  const int64_t kh = w.sizes[w.dim() - 2], kw = w.sizes[w.dim() - 1];
  const bool mkldnn = f.mkldnn && in.dtype == c10::kFloat && !p.transposed &&
                      (strided || dilated || n >= 16 || kw != 1 || kh != 1 || f.threads > 1) &&
                      (p.groups > 1 || (kw > 3 && kh > 3) || n > 1 || in.numel() > 20480);
  if (mkldnn) return CpuConvKernel::kMkldnn;
  const bool one_by_one = kh == 1 && kw == 1 && !strided &&
                          std::all_of(p.padding.begin(), p.padding.end(), [](int64_t x) { return x == 0; });
  return one_by_one ? CpuConvKernel::kSlow1x1 : CpuConvKernel::kSlowIm2col;
}

// aten::_convolution(input, weight, bias, stride, padding, dilation, transposed,
//                    output_padding, groups, benchmark, deterministic, cudnn_enabled, allow_tf32)
// aten::conv2d / conv1d / convolution(input, weight, bias, stride, padding, dilation[, transposed,
//                    output_padding], groups)
//
// Memory on the CPU (float32, NCHW; `blk` = oneDNN's channel block, 16 with
// AVX-512; pad(c) = c rounded up to blk):
//   oneDNN (mkldnn_convolution; chosen as ATen's use_mkldnn says):
//     [1x1 strided, unpadded: a strided copy of the source ("rtus"), one
//      image per intra-op thread: threads × pad(C_in) × OH × OW × 4 + 128 bytes]
//     [C_in >= 8: the source reordered to blocked layout, N × pad(C_in) × H × W × 4]
//     the weight reordered, pad(C_out) × (C_in >= 8 ? pad(C_in/g) : C_in/g) × KH × KW × 4
//       (depthwise: pad(C) × KH × KW × 4),
//     the blocked destination, N × pad(C_out) × OH × OW × 4;
//     then the weight, source copies freed; the NCHW output allocated;
//     the blocked destination freed.
//   slow_conv2d (im2col): the column buffer N × C_in × KH × KW × OH × OW × 4,
//     then the output; the columns freed. 1x1, stride 1, no padding: the
//     output only.
Status ConvolutionRule(const RuleArgs& a, OpContext& ctx, std::vector<AbsValue>* out) {
  const std::string op = OpName(a);
  const TensorMeta* in = a.TensorAt(0);
  const TensorMeta* w = a.TensorAt(1);
  if (in == nullptr || w == nullptr || w->dim() < 3) return BadInput(a, "input or weight not known");
  const size_t spatial = w->dim() - 2;
  ConvParams p;
  p.stride = Expand(a.size() > 3 ? AsIntList(a[3]) : std::nullopt, spatial, 1);
  p.padding = Expand(a.size() > 4 ? AsIntList(a[4]) : std::nullopt, spatial, 0);
  p.dilation = Expand(a.size() > 5 ? AsIntList(a[5]) : std::nullopt, spatial, 1);
  const bool full = op == "aten::_convolution" || op == "aten::convolution";
  if (full) {
    p.transposed = a.size() > 6 ? AsBool(a[6]).value_or(false) : false;
    p.output_padding = Expand(a.size() > 7 ? AsIntList(a[7]) : std::nullopt, spatial, 0);
    p.groups = a.size() > 8 ? AsInt(a[8]).value_or(1) : 1;
  } else {
    if (a.size() > 4 && a[4].kind == AbsValue::Kind::kConst && a[4].c.isString()) {
      // conv2d.padding(input, weight, bias, stride, str padding, dilation, groups)
      const std::string mode = a[4].c.toStringRef();
      p.padding.assign(spatial, 0);
      if (mode == "same") {
        for (size_t i = 0; i < spatial; ++i) p.padding[i] = p.dilation[i] * (w->sizes[2 + i] - 1) / 2;
      }
    }
    p.groups = a.size() > 6 ? AsInt(a[6]).value_or(1) : 1;
    p.output_padding.assign(spatial, 0);
  }
  // Unbatched input: one more dimension of size 1 in front.
  TensorMeta x = *in;
  const bool unbatched = x.dim() == static_cast<int64_t>(spatial) + 1;
  if (unbatched) {
    x.sizes.insert(x.sizes.begin(), 1);
    x.strides.insert(x.strides.begin(), x.numel());
  }
  if (x.dim() != static_cast<int64_t>(spatial) + 2) return BadInput(a, "input rank does not match the weight");
  std::vector<int64_t> out_sizes = {x.sizes[0], p.transposed ? w->sizes[1] * p.groups : w->sizes[0]};
  for (size_t i = 0; i < spatial; ++i) {
    const int64_t in_size = x.sizes[2 + i];
    const int64_t k = w->sizes[2 + i];
    int64_t o;
    if (p.transposed) {
      o = (in_size - 1) * p.stride[i] - 2 * p.padding[i] + p.dilation[i] * (k - 1) + p.output_padding[i] + 1;
    } else {
      o = (in_size + 2 * p.padding[i] - p.dilation[i] * (k - 1) - 1) / p.stride[i] + 1;
    }
    if (o <= 0) return BadInput(a, "output size is not positive");
    out_sizes.push_back(o);
  }
  if (unbatched) out_sizes.erase(out_sizes.begin());

  if (ctx.device() != DeviceKind::kCpu || spatial != 2 || x.dtype != c10::kFloat || p.transposed) {
    if (ctx.device() == DeviceKind::kCpu && (spatial != 2 || x.dtype != c10::kFloat || p.transposed)) {
      ctx.Note(op + ": only 2-D float32 forward convolutions have a CPU scratch model; counted the output only");
    }
    out->push_back(AbsValue::Tensor(ctx.NewTensor(out_sizes, x.dtype)));
    return Status::Ok();
  }
  const KernelFacts& f = ctx.facts();
  const int64_t n = x.sizes[0], c_in = x.sizes[1], h = x.sizes[2], wd = x.sizes[3];
  const int64_t c_out = w->sizes[0], kh = w->sizes[2], kw = w->sizes[3];
  const int64_t oh = unbatched ? out_sizes[1] : out_sizes[2];
  const int64_t ow = unbatched ? out_sizes[2] : out_sizes[3];
  switch (SelectCpuConv(x, *w, p, f)) {
    case CpuConvKernel::kMkldnn: {
      const int64_t blk = f.mkldnn_block;
      const bool depthwise = p.groups > 1 && p.groups == c_in && c_out == c_in;
      const bool reorder_src = c_in >= 8;
      const bool one_by_one = kh == 1 && kw == 1;
      const bool strided = p.stride[0] != 1 || p.stride[1] != 1;
      const bool unpadded = p.padding[0] == 0 && p.padding[1] == 0;
      int rtus = -1, src = -1;
      if (one_by_one && strided && unpadded && !depthwise) {
        const int64_t images = std::max(f.threads, 1);  // one image per thread, whatever the batch
        rtus = ctx.Temp(Bytes(images * RoundUpTo(c_in, blk) * oh * ow, c10::kFloat) + 128, "conv rtus");
      }
      if (reorder_src) src = ctx.Temp(Bytes(n * RoundUpTo(c_in, blk) * h * wd, c10::kFloat), "conv src reorder");
      int64_t w_elems;
      if (depthwise) {
        w_elems = RoundUpTo(c_out, blk) * kh * kw;
      } else {
        const int64_t ic = c_in / p.groups;
        w_elems = RoundUpTo(c_out, blk) * (reorder_src ? RoundUpTo(ic, blk) : ic) * kh * kw;
      }
      const int wt = ctx.Temp(Bytes(w_elems, c10::kFloat), "conv weight reorder");
      const int dst = ctx.Temp(Bytes(n * RoundUpTo(c_out, blk) * oh * ow, c10::kFloat), "conv blocked dst");
      ctx.FreeTemp(wt);
      if (src >= 0) ctx.FreeTemp(src);
      if (rtus >= 0) ctx.FreeTemp(rtus);
      out->push_back(AbsValue::Tensor(ctx.NewTensor(out_sizes, x.dtype)));
      ctx.FreeTemp(dst);
      return Status::Ok();
    }
    case CpuConvKernel::kSlowIm2col: {
      const int cols = ctx.Temp(Bytes(n * c_in * kh * kw * oh * ow, x.dtype), "conv im2col");
      out->push_back(AbsValue::Tensor(ctx.NewTensor(out_sizes, x.dtype)));
      ctx.FreeTemp(cols);
      return Status::Ok();
    }
    case CpuConvKernel::kSlow1x1:
      out->push_back(AbsValue::Tensor(ctx.NewTensor(out_sizes, x.dtype)));
      return Status::Ok();
  }
  return Status::Ok();
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

// aten::layer_norm (native_layer_norm): the output, then mean and rstd of M
// floats each (M = elements outside the normalised shape), freed at once.
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
  out->push_back(AbsValue::Tensor(ctx.NewTensor(x->sizes, x->dtype)));
  const int mean = ctx.Temp(Bytes(m, c10::kFloat), "norm mean");
  const int rstd = ctx.Temp(Bytes(m, c10::kFloat), "norm rstd");
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
  for (const char* op : {"aten::_convolution", "aten::conv2d", "aten::conv1d", "aten::conv3d", "aten::convolution"}) {
    table->emplace_back(op, &ConvolutionRule);
  }
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
  table->emplace_back("aten::scaled_dot_product_attention", &SdpaRule);
}

}  // namespace modelgrid

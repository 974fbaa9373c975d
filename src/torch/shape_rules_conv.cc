// The convolution rule of the graph walk: output shapes, and the scratch
// memory of the CPU kernel ATen picks (oneDNN, slow_conv2d im2col,
// slow_conv_dilated2d). Source: LibTorch 1.13.1 (Debian) on an AVX-512
// Xeon, measured per op with `modelgrid-probe --trace`, and ATen's kernel
// selection (aten/src/ATen/native/Convolution.cpp: _select_conv_backend,
// ConvParams::use_mkldnn).

#include <algorithm>

#include "shape_rules.h"

namespace modelgrid {

namespace {

uint64_t Bytes(int64_t numel, c10::ScalarType dtype) {
  return static_cast<uint64_t>(std::max<int64_t>(numel, 0)) * ElementSize(dtype);
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
enum class CpuConvKernel { kMkldnn, kSlowIm2col, kSlow1x1, kSlowDilated };

CpuConvKernel SelectCpuConv(const TensorMeta& in, const TensorMeta& w, const ConvParams& p, const KernelFacts& f) {
  const bool strided = std::any_of(p.stride.begin(), p.stride.end(), [](int64_t s) { return s != 1; });
  const bool dilated = std::any_of(p.dilation.begin(), p.dilation.end(), [](int64_t d) { return d != 1; });
  const int64_t n = in.sizes[0];
  const int64_t kh = w.sizes[w.dim() - 2], kw = w.sizes[w.dim() - 1];
  const bool mkldnn = f.mkldnn && in.dtype == c10::kFloat && !p.transposed &&
                      (strided || dilated || n >= 16 || kw != 1 || kh != 1 || f.threads > 1) &&
                      (p.groups > 1 || (kw > 3 && kh > 3) || n > 1 || in.numel() > 20480);
  if (mkldnn) return CpuConvKernel::kMkldnn;
  if (dilated) return CpuConvKernel::kSlowDilated;
  const bool one_by_one = kh == 1 && kw == 1 && !strided &&
                          std::all_of(p.padding.begin(), p.padding.end(), [](int64_t x) { return x == 0; });
  return one_by_one ? CpuConvKernel::kSlow1x1 : CpuConvKernel::kSlowIm2col;
}

Status CpuConvolution(const TensorMeta& x, const TensorMeta& w, const ConvParams& p,
                      const std::vector<int64_t>& out_sizes, const std::string& op, OpContext& ctx,
                      std::vector<AbsValue>* out);

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
//     the weight reordered, pad(C_out) × (C_in >= 8 ? pad(C_in) : C_in) × KH × KW × 4
//       (depthwise: pad(C) × KH × KW × 4; grouped: g × pad(C_out/g) × pad(C_in/g)
//       × KH × KW × 4, with blk = 8 when the per-group channels divide by 8
//       but not 16),
//     the blocked destination, N × pad(C_out) × OH × OW × 4;
//     then the weight, source copies freed; the NCHW output allocated;
//     the blocked destination freed.
//   oneDNN with a dilation whose padding reaches past the input: a GEMM
//     convolution on plain layouts (scratch about the source's size, a plain
//     destination, the output copied out); other dilations as above.
//   slow_conv2d (im2col): the column buffer N × C_in × KH × KW × OH × OW × 4,
//     then the output; the columns freed. 1x1, stride 1, no padding: the
//     output only. slow_conv_dilated2d: the output, columns for one image.
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
  // ATen makes the input contiguous for every CPU kernel: a copy when it is not.
  const int copy = x.is_contiguous() ? -1 : ctx.Temp(x.nbytes(), "conv contiguous input");
  Status s = CpuConvolution(x, *w, p, out_sizes, op, ctx, out);
  if (copy >= 0) ctx.FreeTemp(copy);
  return s;
}

Status CpuConvolution(const TensorMeta& x, const TensorMeta& wt_meta, const ConvParams& p,
                      const std::vector<int64_t>& out_sizes, const std::string& op, OpContext& ctx,
                      std::vector<AbsValue>* out) {
  const TensorMeta* w = &wt_meta;
  const KernelFacts& f = ctx.facts();
  const bool unbatched = static_cast<int64_t>(out_sizes.size()) == x.dim() - 1;
  const int64_t n = x.sizes[0], c_in = x.sizes[1], h = x.sizes[2], wd = x.sizes[3];
  const int64_t c_out = w->sizes[0], kh = w->sizes[2], kw = w->sizes[3];
  const int64_t oh = unbatched ? out_sizes[1] : out_sizes[2];
  const int64_t ow = unbatched ? out_sizes[2] : out_sizes[3];
  switch (SelectCpuConv(x, *w, p, f)) {
    case CpuConvKernel::kMkldnn: {
      const bool dilated = p.dilation[0] != 1 || p.dilation[1] != 1;
      const bool padding_beyond_input = p.padding[0] >= h || p.padding[1] >= wd;
      if (dilated && padding_beyond_input && p.groups == 1) {
        // Dilation so large that the padding reaches past the input:
        // oneDNN's direct kernels decline and a GEMM convolution on plain
        // layouts runs: scratch about the size of the source (only the
        // centre tap sees data; measured 748,064 bytes for a 752,640-byte
        // source), the plain destination, the output copied out of it.
        const int scratch = ctx.Temp(Bytes(n * c_in * h * wd, c10::kFloat), "dilated conv scratch");
        const int dst = ctx.Temp(Bytes(n * c_out * oh * ow, c10::kFloat), "dilated conv dst");
        ctx.FreeTemp(scratch);
        out->push_back(AbsValue::Tensor(ctx.NewTensor(out_sizes, x.dtype)));
        ctx.FreeTemp(dst);
        ctx.Note(op + ": dilated oneDNN convolution modelled from one measurement");
        return Status::Ok();
      }
      const bool depthwise = p.groups > 1 && p.groups == c_in && c_out == c_in;
      const bool grouped = p.groups > 1 && !depthwise;
      const int64_t ic_g = c_in / p.groups, oc_g = c_out / p.groups;
      // Channel block: oneDNN's full block (16 with AVX-512), except for
      // grouped convolutions whose per-group channels only divide by 8.
      int64_t blk = f.mkldnn_block;
      if (grouped && (ic_g % blk != 0 || oc_g % blk != 0) && ic_g % 8 == 0 && oc_g % 8 == 0) blk = 8;
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
      } else if (grouped) {
        w_elems = p.groups * RoundUpTo(oc_g, blk) * RoundUpTo(ic_g, blk) * kh * kw;
      } else {
        w_elems = RoundUpTo(c_out, blk) * (reorder_src ? RoundUpTo(ic_g, blk) : ic_g) * kh * kw;
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
    case CpuConvKernel::kSlowDilated: {
      // slow_conv_dilated2d: the output, and columns for one image at a time.
      out->push_back(AbsValue::Tensor(ctx.NewTensor(out_sizes, x.dtype)));
      ctx.FreeTemp(ctx.Temp(Bytes(c_in * kh * kw * oh * ow, x.dtype), "dilated conv columns"));
      return Status::Ok();
    }
  }
  return Status::Ok();
}

}  // namespace

void RegisterConvRules(std::vector<std::pair<const char*, RuleFn>>* table) {
  for (const char* op : {"aten::_convolution", "aten::conv2d", "aten::conv1d", "aten::conv3d", "aten::convolution"}) {
    table->emplace_back(op, &ConvolutionRule);
  }
}

}  // namespace modelgrid

// Layers shared by the encoder and decoder modules (modules.h).
#include <limits>

#include "hf/modules.h"

namespace modelgrid::hf {

torch::Tensor RmsNorm::operator()(const torch::Tensor& x) const {
  torch::Tensor x32 = x.to(c10::kFloat);
  torch::Tensor variance = x32.pow(2).mean(-1, /*keepdim=*/true);
  x32 = x32 * at::rsqrt(variance + eps);
  return weight * x32.to(x.scalar_type());
}

torch::Tensor Project(const torch::Tensor& x, const torch::Tensor& weight,
                      const torch::Tensor& bias) {
  const int64_t in = x.size(-1);
  if (!x.device().is_cpu() || x.numel() != in) return at::linear(x, weight, bias);
  auto shape = x.sizes().vec();
  shape.back() = weight.size(0);
  const torch::Tensor row = x.reshape({in});
  return (bias.defined() ? at::addmv(bias, weight, row) : at::mv(weight, row)).view(shape);
}

torch::Tensor Activate(Activation act, const torch::Tensor& x) {
  switch (act) {
    case Activation::kGelu:
      return at::gelu(x);
    case Activation::kGeluTanh:
      return at::gelu(x, "tanh");
    case Activation::kQuickGelu:
      return x * at::sigmoid(1.702 * x);
    case Activation::kRelu:
      return at::relu(x);
    case Activation::kSilu:
      return at::silu(x);
  }
  return x;
}

Linear BindLinear(WeightBinder& w, const std::string& prefix, int64_t out, int64_t in, bool bias) {
  Linear l;
  l.weight = w.Get(prefix + "weight", {out, in});
  if (bias) l.bias = w.Get(prefix + "bias", {out});
  return l;
}

LayerNorm BindLayerNorm(WeightBinder& w, const std::string& prefix, int64_t dim, double eps) {
  LayerNorm n;
  n.weight = w.Get(prefix + "weight", {dim});
  n.bias = w.Get(prefix + "bias", {dim});
  n.eps = eps;
  return n;
}

torch::Tensor AttentionBias(const torch::Tensor& key_mask, int64_t queries, bool causal) {
  const int64_t b = key_mask.size(0);
  const int64_t t = key_mask.size(1);
  // Nothing to mask (no padding, and no later key a query could see): no
  // bias at all, a few ops fewer per layer. Checked on the CPU only, where
  // reading the mask costs no device synchronisation.
  if (key_mask.device().is_cpu() && (!causal || queries == 1) &&
      key_mask.ne(0).all().item<bool>()) {
    return {};
  }
  torch::Tensor allowed = key_mask.ne(0).view({b, 1, 1, t});
  if (causal) {
    auto opts = torch::TensorOptions().dtype(c10::kLong).device(key_mask.device());
    torch::Tensor q_pos = torch::arange(t - queries, t, opts).view({queries, 1});
    torch::Tensor k_pos = torch::arange(0, t, opts).view({1, t});
    allowed = allowed.logical_and(k_pos.le(q_pos).view({1, 1, queries, t}));
  }
  // float32's lowest finite value, as transformers' masks: a row with no
  // visible key (a left-pad query) gets uniform weights instead of NaN.
  // Without causality every query sees the same keys: one row [B,1,1,T]
  // that broadcasts.
  auto f32 = torch::TensorOptions().dtype(c10::kFloat).device(key_mask.device());
  return torch::zeros({b, 1, causal ? queries : 1, t}, f32)
      .masked_fill_(allowed.logical_not(), std::numeric_limits<float>::lowest());
}

torch::Tensor Attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& bias, double scale) {
  const int64_t b = q.size(0), nh = q.size(1), s = q.size(2), hd = q.size(3);
  const int64_t nkv = k.size(1), t = k.size(2);
  const int64_t rep = nh / nkv;
  // In place where it can (scale, mask), and the scores dropped once the
  // softmax has read them: at most two [B,nh,S,T] tensors live at once.
  torch::Tensor scores;
  if (rep == 1) {
    scores = at::matmul(q, k.transpose(-1, -2));
  } else {
    // Query heads h = g·rep + r share kv head g: [B, nkv, rep·S, hd] against k.
    torch::Tensor qg = q.reshape({b, nkv, rep * s, hd});
    scores = at::matmul(qg, k.transpose(-1, -2)).view({b, nh, s, t});
  }
  scores.mul_(scale);
  // Masked in fp32: fp16 scores plus the mask's lowest value would overflow
  // to -inf.
  if (scores.scalar_type() != c10::kFloat) scores = scores.to(c10::kFloat);
  if (bias.defined()) scores.add_(bias);
  torch::Tensor probs = at::softmax(scores, -1);
  scores.reset();
  probs = probs.to(q.scalar_type());
  torch::Tensor out;
  if (rep == 1) {
    out = at::matmul(probs, v);
  } else {
    out = at::matmul(probs.view({b, nkv, rep * s, t}), v).view({b, nh, s, hd});
  }
  return out.transpose(1, 2).reshape({b, s, nh * hd});
}

torch::Tensor SplitHeads(const torch::Tensor& x, int64_t heads) {
  const int64_t b = x.size(0), s = x.size(1);
  return x.view({b, s, heads, x.size(2) / heads}).transpose(1, 2);
}

torch::Tensor PositionsFromMask(const torch::Tensor& mask) {
  torch::Tensor pos = mask.cumsum(-1) - 1;
  return pos.masked_fill_(mask.eq(0), 1);
}

void KvCache::SelectRows(const torch::Tensor& rows) {
  for (auto& t : k) t = t.index_select(0, rows);
  for (auto& t : v) t = t.index_select(0, rows);
}

KvCache Decoder::NewCache(int64_t batch, int64_t tokens) const {
  KvCache cache;
  auto opts = torch::TensorOptions().dtype(placement_.dtype).device(placement_.device);
  for (int64_t l = 0; l < layers_; ++l) {
    cache.k.push_back(torch::empty({batch, kv_heads_, tokens, head_dim_}, opts));
    cache.v.push_back(torch::empty({batch, kv_heads_, tokens, head_dim_}, opts));
  }
  cache.capacity = tokens;
  return cache;
}

namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool IgnorableTensor(const ModelConfig& config, const std::string& name) {
  if (EndsWith(name, "position_ids")) return true;         // embeddings buffer (BERT family)
  if (EndsWith(name, "rotary_emb.inv_freq")) return true;  // old LLaMA checkpoints
  if (config.family == Family::kGpt2 &&
      (EndsWith(name, ".attn.bias") || EndsWith(name, ".attn.masked_bias"))) {
    return true;  // GPT-2's causal-mask buffers
  }
  if (config.tie_word_embeddings && config.is_decoder() && name == "lm_head.weight") return true;
  // Pooler weights where the head does not use them (taken, and so never
  // asked about, where it does).
  return name.rfind("pooler.", 0) == 0 || name.find(".pooler.") != std::string::npos;
}

}  // namespace modelgrid::hf

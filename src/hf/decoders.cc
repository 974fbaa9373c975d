// Decoders: GPT-2 and the LLaMA family (LLaMA, Mistral, Qwen2), with
// transformers' tensor names and arithmetic (modeling_gpt2.py,
// modeling_llama.py, modeling_mistral.py, modeling_qwen2.py), each able to
// run step-wise with a KV cache (modules.h, Decoder::Forward).
#include <cmath>

#include "hf/modules.h"

namespace modelgrid::hf {

namespace {

// Writes this step's keys and values [B,nkv,s,hd] into the cache at its
// length and returns every cached position so far; without a cache, the
// step's own.
std::pair<torch::Tensor, torch::Tensor> Remember(KvCache* cache, size_t layer,
                                                 const torch::Tensor& k, const torch::Tensor& v) {
  if (cache == nullptr) return {k, v};
  const int64_t past = cache->length, s = k.size(2);
  TORCH_CHECK(past + s <= cache->capacity, "KV cache overflow: ", past, " + ", s, " tokens > ",
              cache->capacity);
  cache->k[layer].narrow(2, past, s).copy_(k);
  cache->v[layer].narrow(2, past, s).copy_(v);
  return {cache->k[layer].narrow(2, 0, past + s), cache->v[layer].narrow(2, 0, past + s)};
}

// GPT-2's Conv1D: y = x·W + b with W [in, out] (torch.addmm in transformers),
// i.e. a Linear whose weight is Wᵀ (a transposed view, no copy).
Linear BindConv1D(WeightBinder& w, const std::string& prefix, int64_t in, int64_t out) {
  return Linear{w.Get(prefix + "weight", {in, out}).t(), w.Get(prefix + "bias", {out})};
}

class Gpt2Decoder : public Decoder {
 public:
  Gpt2Decoder(const ModelConfig& c, WeightBinder& w, WeightPlacement placement) : c_(c) {
    layers_ = c.num_layers;
    kv_heads_ = c.num_heads;
    head_dim_ = c.head_dim;
    placement_ = placement;
    const int64_t h = c.hidden_size, inner = c.intermediate_size;
    // GPT2LMHeadModel files use "transformer."; the original gpt2 files
    // (and GPT2Model) none.
    const std::string p = w.Has("transformer.wte.weight") ? "transformer." : "";
    wte_ = w.Get(p + "wte.weight", {c.vocab_size, h});
    wpe_ = w.Get(p + "wpe.weight", {c.max_positions, h});
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string l = p + "h." + std::to_string(i) + ".";
      Layer layer;
      layer.ln_1 = BindLayerNorm(w, l + "ln_1.", h, c.norm_eps);
      layer.c_attn = BindConv1D(w, l + "attn.c_attn.", h, 3 * h);
      layer.attn_proj = BindConv1D(w, l + "attn.c_proj.", h, h);
      layer.ln_2 = BindLayerNorm(w, l + "ln_2.", h, c.norm_eps);
      layer.c_fc = BindConv1D(w, l + "mlp.c_fc.", h, inner);
      layer.mlp_proj = BindConv1D(w, l + "mlp.c_proj.", inner, h);
      layers_w_.push_back(std::move(layer));
    }
    ln_f_ = BindLayerNorm(w, p + "ln_f.", h, c.norm_eps);
    BindLmHead(c, w, wte_);
  }

  torch::Tensor Forward(const torch::Tensor& ids, const torch::Tensor& positions,
                        const torch::Tensor& key_mask, KvCache* cache) const override {
    const int64_t s = ids.size(1), h = c_.hidden_size, heads = c_.num_heads;
    torch::Tensor x = at::embedding(wte_, ids) + at::embedding(wpe_, positions);
    const torch::Tensor bias = AttentionBias(key_mask, s, /*causal=*/true);
    for (size_t i = 0; i < layers_w_.size(); ++i) {
      const Layer& l = layers_w_[i];
      double scale = c_.scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(head_dim_)) : 1.0;
      if (c_.scale_attn_by_inverse_layer_idx) scale /= static_cast<double>(i + 1);
      auto qkv = l.c_attn(l.ln_1(x)).split(h, -1);
      auto [k, v] = Remember(cache, i, SplitHeads(qkv[1], heads), SplitHeads(qkv[2], heads));
      torch::Tensor ctx = Attend(SplitHeads(qkv[0], heads), k, v, bias, scale);
      x = x + l.attn_proj(ctx);
      x = x + l.mlp_proj(Activate(c_.activation, l.c_fc(l.ln_2(x))));
    }
    if (cache != nullptr) cache->length += s;
    return ln_f_(x);
  }

 private:
  struct Layer {
    LayerNorm ln_1;
    Linear c_attn, attn_proj;
    LayerNorm ln_2;
    Linear c_fc, mlp_proj;
  };
  ModelConfig c_;
  torch::Tensor wte_, wpe_;
  std::vector<Layer> layers_w_;
  LayerNorm ln_f_;
};

// x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁] over the halves.
torch::Tensor ApplyRope(const torch::Tensor& x, const torch::Tensor& cos,
                        const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  torch::Tensor rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

class LlamaDecoder : public Decoder {
 public:
  LlamaDecoder(const ModelConfig& c, WeightBinder& w, WeightPlacement placement) : c_(c) {
    layers_ = c.num_layers;
    kv_heads_ = c.num_kv_heads;
    head_dim_ = c.head_dim;
    placement_ = placement;
    const int64_t h = c.hidden_size, hd = c.head_dim, inner = c.intermediate_size;
    const int64_t q_dim = c.num_heads * hd, kv_dim = c.num_kv_heads * hd;
    std::string p = "model.";
    if (c.head == Head::kBase && !w.Has("model.embed_tokens.weight")) p = "";
    embed_ = w.Get(p + "embed_tokens.weight", {c.vocab_size, h});
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string l = p + "layers." + std::to_string(i) + ".";
      Layer layer;
      layer.input_norm = RmsNorm{w.Get(l + "input_layernorm.weight", {h}), c.norm_eps};
      layer.q = BindLinear(w, l + "self_attn.q_proj.", q_dim, h, c.qkv_bias);
      layer.k = BindLinear(w, l + "self_attn.k_proj.", kv_dim, h, c.qkv_bias);
      layer.v = BindLinear(w, l + "self_attn.v_proj.", kv_dim, h, c.qkv_bias);
      layer.o = BindLinear(w, l + "self_attn.o_proj.", h, q_dim, c.o_bias);
      layer.post_norm = RmsNorm{w.Get(l + "post_attention_layernorm.weight", {h}), c.norm_eps};
      layer.gate = BindLinear(w, l + "mlp.gate_proj.", inner, h, c.mlp_bias);
      layer.up = BindLinear(w, l + "mlp.up_proj.", inner, h, c.mlp_bias);
      layer.down = BindLinear(w, l + "mlp.down_proj.", h, inner, c.mlp_bias);
      layers_w_.push_back(std::move(layer));
    }
    norm_ = RmsNorm{w.Get(p + "norm.weight", {h}), c.norm_eps};
    BindLmHead(c, w, embed_);
    inv_freq_ = RopeInverseFrequencies(c, placement.device);
  }

  torch::Tensor Forward(const torch::Tensor& ids, const torch::Tensor& positions,
                        const torch::Tensor& key_mask, KvCache* cache) const override {
    const int64_t s = ids.size(1);
    torch::Tensor x = at::embedding(embed_, ids);
    const auto dtype = x.scalar_type();
    // cos / sin [B,1,s,hd], computed in fp32 then cast, as transformers.
    torch::Tensor freqs = positions.to(c10::kFloat).unsqueeze(-1) * inv_freq_;
    torch::Tensor emb = torch::cat({freqs, freqs}, -1);
    const torch::Tensor cos = emb.cos().to(dtype).unsqueeze(1);
    const torch::Tensor sin = emb.sin().to(dtype).unsqueeze(1);
    const torch::Tensor bias = AttentionBias(key_mask, s, /*causal=*/true);
    const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
    for (size_t i = 0; i < layers_w_.size(); ++i) {
      const Layer& l = layers_w_[i];
      torch::Tensor a = l.input_norm(x);
      torch::Tensor q = ApplyRope(SplitHeads(l.q(a), c_.num_heads), cos, sin);
      torch::Tensor k_new = ApplyRope(SplitHeads(l.k(a), kv_heads_), cos, sin);
      auto [k, v] = Remember(cache, i, k_new, SplitHeads(l.v(a), kv_heads_));
      x = x + l.o(Attend(q, k, v, bias, scale));
      torch::Tensor m = l.post_norm(x);
      x = x + l.down(Activate(c_.activation, l.gate(m)) * l.up(m));
    }
    if (cache != nullptr) cache->length += s;
    return norm_(x);
  }

 private:
  struct Layer {
    RmsNorm input_norm;
    Linear q, k, v, o;
    RmsNorm post_norm;
    Linear gate, up, down;
  };
  ModelConfig c_;
  torch::Tensor embed_, inv_freq_;
  std::vector<Layer> layers_w_;
  RmsNorm norm_;
};

}  // namespace

torch::Tensor RopeInverseFrequencies(const ModelConfig& c, c10::Device device) {
  auto f32 = torch::TensorOptions().dtype(c10::kFloat).device(device);
  const int64_t dim = c.head_dim;
  torch::Tensor exponent =
      torch::arange(0, dim, 2, torch::TensorOptions().dtype(c10::kLong).device(device))
          .to(c10::kFloat) /
      static_cast<double>(dim);
  torch::Tensor inv_freq = 1.0 / at::pow(c.rope.theta, exponent);
  const RopeConfig& r = c.rope;
  if (r.scaling == RopeConfig::Scaling::kLinear) return inv_freq / r.factor;
  if (r.scaling != RopeConfig::Scaling::kLlama3) return inv_freq;
  const double low_freq_wavelen = r.original_max_positions / r.low_freq_factor;
  const double high_freq_wavelen = r.original_max_positions / r.high_freq_factor;
  torch::Tensor wavelen = 2.0 * M_PI / inv_freq;
  torch::Tensor scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / r.factor, inv_freq);
  torch::Tensor smooth = (r.original_max_positions / wavelen - r.low_freq_factor) /
                         (r.high_freq_factor - r.low_freq_factor);
  torch::Tensor smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
  torch::Tensor medium = wavelen.ge(high_freq_wavelen).logical_and(wavelen.le(low_freq_wavelen));
  return torch::where(medium, smoothed, scaled).to(f32);
}

std::unique_ptr<Module> BuildDecoder(const ModelConfig& config, WeightBinder& w,
                                     WeightPlacement placement) {
  if (config.family == Family::kGpt2) {
    return std::make_unique<Gpt2Decoder>(config, w, placement);
  }
  return std::make_unique<LlamaDecoder>(config, w, placement);
}

}  // namespace modelgrid::hf

// The transformer modules behind NativeModel, written with LibTorch ops, and
// the layers they share. Private to src/hf/.
//
// Conventions: ids, masks and positions are int64 [B,S] on the model's
// device; hidden states are [B,S,H] in the compute dtype; masks hold 1 for
// a real token and 0 for padding. Every function runs under the caller's
// c10::InferenceMode and may throw c10 exceptions (NativeModel turns them
// into Status).
#pragma once

#include <torch/script.h>

#include <memory>
#include <vector>

#include "hf/model_config.h"
#include "hf/weights.h"

namespace modelgrid::hf {

// y = x·Wᵀ + b for x [..., in], weight [out, in] (any strides), bias [out]
// or undefined; returns [..., out]. A single row on the CPU (a batch-1
// decode step) goes through a matrix-vector product instead of a matrix
// product: OpenBLAS's sgemm at M = 1 (0.3.21, Debian 12) runs about 3×
// slower than its sgemv on the same weights, and a cached decode step is
// nothing but such products (docs/benchmarks.md, "Hugging Face backend").
torch::Tensor Project(const torch::Tensor& x, const torch::Tensor& weight,
                      const torch::Tensor& bias);

// A linear layer y = x·Wᵀ + b (weight [out, in]; bias optional).
struct Linear {
  torch::Tensor weight;
  torch::Tensor bias;
  torch::Tensor operator()(const torch::Tensor& x) const { return Project(x, weight, bias); }
};

struct LayerNorm {
  torch::Tensor weight;
  torch::Tensor bias;
  double eps = 1e-5;
  torch::Tensor operator()(const torch::Tensor& x) const {
    return at::layer_norm(x, {weight.size(0)}, weight, bias, eps);
  }
};

// LLaMA's RMSNorm: the variance in fp32, weight · (x / √(mean(x²) + eps)).
struct RmsNorm {
  torch::Tensor weight;
  double eps = 1e-6;
  torch::Tensor operator()(const torch::Tensor& x) const;
};

torch::Tensor Activate(Activation act, const torch::Tensor& x);

// Binds "<prefix>weight" [out,in] and, when `bias`, "<prefix>bias" [out].
Linear BindLinear(WeightBinder& w, const std::string& prefix, int64_t out, int64_t in, bool bias);
LayerNorm BindLayerNorm(WeightBinder& w, const std::string& prefix, int64_t dim, double eps);

// Additive attention bias in fp32: 0 where query i may see key j, float32's
// lowest value elsewhere. key_mask [B,T] (1 = real token). With `causal`,
// [B,1,S,T]: query i sits at absolute position T−S+i and sees keys ≤ it;
// without, [B,1,1,T] (the same for every query; it broadcasts). Undefined
// (nothing to add) on the CPU when no key is masked for any query.
torch::Tensor AttentionBias(const torch::Tensor& key_mask, int64_t queries, bool causal);

// softmax(q·kᵀ·scale + bias)·v with grouped heads: q [B,nh,S,hd], k and v
// [B,nkv,T,hd] (nh a multiple of nkv; query head h uses kv head h / (nh/nkv),
// as transformers' repeat_kv), bias [B,1,S,T] or [B,1,1,T] fp32 or undefined. Scores, mask and softmax
// in fp32. Returns [B,S,nh·hd] in q's dtype.
torch::Tensor Attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                     const torch::Tensor& bias, double scale);

// [B,S,n·hd] → [B,n,S,hd].
torch::Tensor SplitHeads(const torch::Tensor& x, int64_t heads);

// Position ids of decoders from the mask, as transformers' generate makes
// them: (cumsum(mask) − 1), 1 at padding.
torch::Tensor PositionsFromMask(const torch::Tensor& mask);

// The per-layer key/value cache of a decoder. k[l], v[l]: [B, n_kv,
// capacity, hd] in the compute dtype; positions [0, length) are filled.
struct KvCache {
  std::vector<torch::Tensor> k;
  std::vector<torch::Tensor> v;
  int64_t length = 0;
  int64_t capacity = 0;
  // Keeps the batch rows `rows` (int64 indices) only.
  void SelectRows(const torch::Tensor& rows);
};

// A base model plus its head.
class Module {
 public:
  virtual ~Module() = default;
  // Hidden states [B,S,H] after the last layer (and final norm, decoders).
  virtual torch::Tensor Hidden(const torch::Tensor& ids, const torch::Tensor& mask) const = 0;
  // The head on `hidden` [B,S,H]: LM logits [B,S,V], sequence-classifier
  // logits [B,L] (from the first token), token-classifier logits [B,S,L].
  // Undefined for a bare base model.
  virtual torch::Tensor HeadLogits(const torch::Tensor& hidden) const = 0;
};

// A causal decoder that can run with a KV cache.
class Decoder : public Module {
 public:
  // Runs ids [B,s] at `positions` [B,s]; key_mask [B, past+s] covers the
  // cached tokens and these (past = cache->length, 0 without a cache).
  // With a cache, appends the s new keys/values (capacity permitting) and
  // advances its length. Returns hidden [B,s,H].
  virtual torch::Tensor Forward(const torch::Tensor& ids, const torch::Tensor& positions,
                                const torch::Tensor& key_mask, KvCache* cache) const = 0;
  torch::Tensor Hidden(const torch::Tensor& ids, const torch::Tensor& mask) const override {
    return Forward(ids, PositionsFromMask(mask), mask, nullptr);
  }
  // LM logits [B,S,V] = hidden · lm_headᵀ; undefined for a bare model.
  torch::Tensor HeadLogits(const torch::Tensor& hidden) const override {
    return lm_head_.defined() ? Project(hidden, lm_head_, {}) : torch::Tensor();
  }
  // A cache for `batch` rows and `tokens` positions (uninitialised).
  KvCache NewCache(int64_t batch, int64_t tokens) const;
  int64_t layers() const { return layers_; }
  int64_t kv_heads() const { return kv_heads_; }
  int64_t head_dim() const { return head_dim_; }

 protected:
  // Binds the LM head of a ...ForCausalLM `c`: `embedding` [V,H] when tied,
  // else "lm_head.weight"; none for a bare model.
  void BindLmHead(const ModelConfig& c, WeightBinder& w, const torch::Tensor& embedding) {
    if (c.head != Head::kCausalLm) return;
    lm_head_ = c.tie_word_embeddings ? embedding
                                     : w.Get("lm_head.weight", {c.vocab_size, c.hidden_size});
  }

  int64_t layers_ = 0;
  int64_t kv_heads_ = 0;
  int64_t head_dim_ = 0;
  WeightPlacement placement_;
  torch::Tensor lm_head_;  // [V,H] (tied: the input embedding); undefined without a head
};

// Builds the module of `config`, taking its weights from `w` (check
// w.status() afterwards; the module is unusable when it is not OK).
// encoders.cc: bert, roberta, distilbert; decoders.cc: gpt2, llama.
std::unique_ptr<Module> BuildEncoder(const ModelConfig& config, WeightBinder& w);
std::unique_ptr<Module> BuildDecoder(const ModelConfig& config, WeightBinder& w,
                                     WeightPlacement placement);

// Rotary inverse frequencies [head_dim/2] in fp32 (LLaMA family), with
// rope_scaling applied (transformers' modeling_rope_utils.py: default,
// linear, llama3): 1 / theta^(2i/head_dim), then scaled.
torch::Tensor RopeInverseFrequencies(const ModelConfig& config, c10::Device device);

// Tensor names a checkpoint of `config` may carry that no module uses:
// buffers (position_ids, GPT-2's attn.bias / attn.masked_bias, rotary
// inv_freq), a tied lm_head, and pooler weights where the head does not
// use them.
bool IgnorableTensor(const ModelConfig& config, const std::string& name);

}  // namespace modelgrid::hf

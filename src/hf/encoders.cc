// Encoders: BERT, RoBERTa (also XLM-RoBERTa, CamemBERT) and DistilBERT, with
// transformers' tensor names and arithmetic (modeling_bert.py,
// modeling_roberta.py, modeling_distilbert.py): post-LayerNorm layers,
// additive padding masks on the keys, no dropout (eval).
#include <array>
#include <cmath>

#include "hf/modules.h"

namespace modelgrid::hf {

namespace {

// One post-LayerNorm encoder layer (BERT's and DistilBERT's: the same
// arithmetic under different tensor names).
struct PostLnLayer {
  Linear q, k, v, o;
  LayerNorm attn_norm;
  Linear up, down;
  LayerNorm out_norm;
};

// Binds one layer; `names` are the eight tensor prefixes under `l` in the
// order q, k, v, o, attn_norm, up, down, out_norm.
PostLnLayer BindPostLnLayer(const ModelConfig& c, WeightBinder& w, const std::string& l,
                            const std::array<const char*, 8>& names) {
  const int64_t h = c.hidden_size;
  PostLnLayer layer;
  layer.q = BindLinear(w, l + names[0], h, h, true);
  layer.k = BindLinear(w, l + names[1], h, h, true);
  layer.v = BindLinear(w, l + names[2], h, h, true);
  layer.o = BindLinear(w, l + names[3], h, h, true);
  layer.attn_norm = BindLayerNorm(w, l + names[4], h, c.norm_eps);
  layer.up = BindLinear(w, l + names[5], c.intermediate_size, h, true);
  layer.down = BindLinear(w, l + names[6], h, c.intermediate_size, true);
  layer.out_norm = BindLayerNorm(w, l + names[7], h, c.norm_eps);
  return layer;
}

// The layers over embeddings `x` [B,S,H] with padding `mask` [B,S].
torch::Tensor RunPostLnLayers(const ModelConfig& c, const std::vector<PostLnLayer>& layers,
                              torch::Tensor x, const torch::Tensor& mask) {
  const torch::Tensor bias = AttentionBias(mask, x.size(1), /*causal=*/false);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.head_dim));
  for (const PostLnLayer& l : layers) {
    torch::Tensor ctx = Attend(SplitHeads(l.q(x), c.num_heads), SplitHeads(l.k(x), c.num_heads),
                               SplitHeads(l.v(x), c.num_heads), bias, scale);
    torch::Tensor a = l.attn_norm(l.o(ctx) + x);
    x = l.out_norm(l.down(Activate(c.activation, l.up(a))) + a);
  }
  return x;
}

// The base-model prefix: required under a head, optional for a bare model
// (sentence-transformers folders store BertModel weights without it).
std::string BasePrefix(const ModelConfig& c, WeightBinder& w, const std::string& prefix,
                       const std::string& probe) {
  if (c.head != Head::kBase) return prefix;
  return w.Has(prefix + probe) ? prefix : "";
}

// BERT and RoBERTa: the same module; RoBERTa offsets position ids by
// padding_idx + 1 and has its own sequence-classification head.
class BertEncoder : public Module {
 public:
  BertEncoder(const ModelConfig& c, WeightBinder& w) : c_(c) {
    const int64_t h = c.hidden_size;
    const std::string base = c.family == Family::kRoberta ? "roberta." : "bert.";
    const std::string p = BasePrefix(c, w, base, "embeddings.word_embeddings.weight");
    word_ = w.Get(p + "embeddings.word_embeddings.weight", {c.vocab_size, h});
    position_ = w.Get(p + "embeddings.position_embeddings.weight", {c.max_positions, h});
    if (c.type_vocab_size > 0) {
      token_type_ = w.Get(p + "embeddings.token_type_embeddings.weight", {c.type_vocab_size, h});
    }
    embed_norm_ = BindLayerNorm(w, p + "embeddings.LayerNorm.", h, c.norm_eps);
    for (int64_t i = 0; i < c.num_layers; ++i) {
      layers_.push_back(BindPostLnLayer(
          c, w, p + "encoder.layer." + std::to_string(i) + ".",
          {"attention.self.query.", "attention.self.key.", "attention.self.value.",
           "attention.output.dense.", "attention.output.LayerNorm.", "intermediate.dense.",
           "output.dense.", "output.LayerNorm."}));
    }
    const int64_t labels = static_cast<int64_t>(c.labels.size());
    if (c.head == Head::kSequenceClassification) {
      if (c.family == Family::kRoberta) {
        // RobertaClassificationHead: dense + tanh + out_proj on <s>.
        head_dense_ = BindLinear(w, "classifier.dense.", h, h, true);
        classifier_ = BindLinear(w, "classifier.out_proj.", labels, h, true);
      } else {
        // BertPooler (dense + tanh on [CLS]) + classifier.
        head_dense_ = BindLinear(w, p + "pooler.dense.", h, h, true);
        classifier_ = BindLinear(w, "classifier.", labels, h, true);
      }
    } else if (c.head == Head::kTokenClassification) {
      classifier_ = BindLinear(w, "classifier.", labels, h, true);
    }
  }

  torch::Tensor Hidden(const torch::Tensor& ids, const torch::Tensor& mask) const override {
    const int64_t s = ids.size(1);
    torch::Tensor x = at::embedding(word_, ids);
    if (c_.family == Family::kRoberta) {
      // create_position_ids_from_input_ids: padding_idx + 1 + rank among non-pad tokens.
      const int64_t pad = *c_.pad_token_id;
      torch::Tensor real = ids.ne(pad).to(c10::kLong);
      x = x + at::embedding(position_, real.cumsum(1) * real + pad);
    } else {
      // Positions 0..S-1: the table's first S rows, added by broadcast.
      x = x + position_.narrow(0, 0, s);
    }
    if (token_type_.defined()) x = x + token_type_[0];  // token_type_ids are all 0
    x = embed_norm_(x);  // the sum freed before the layers run
    return RunPostLnLayers(c_, layers_, std::move(x), mask);
  }

  torch::Tensor HeadLogits(const torch::Tensor& hidden) const override {
    switch (c_.head) {
      case Head::kSequenceClassification:
        return classifier_(at::tanh(head_dense_(hidden.select(1, 0))));
      case Head::kTokenClassification:
        return classifier_(hidden);
      default:
        return {};
    }
  }

 private:
  ModelConfig c_;
  torch::Tensor word_, position_, token_type_;
  LayerNorm embed_norm_;
  std::vector<PostLnLayer> layers_;
  Linear head_dense_;  // BERT: the pooler; RoBERTa: classifier.dense
  Linear classifier_;
};

class DistilBertEncoder : public Module {
 public:
  DistilBertEncoder(const ModelConfig& c, WeightBinder& w) : c_(c) {
    const int64_t h = c.hidden_size;
    const std::string p = BasePrefix(c, w, "distilbert.", "embeddings.word_embeddings.weight");
    word_ = w.Get(p + "embeddings.word_embeddings.weight", {c.vocab_size, h});
    position_ = w.Get(p + "embeddings.position_embeddings.weight", {c.max_positions, h});
    embed_norm_ = BindLayerNorm(w, p + "embeddings.LayerNorm.", h, c.norm_eps);
    for (int64_t i = 0; i < c.num_layers; ++i) {
      layers_.push_back(BindPostLnLayer(
          c, w, p + "transformer.layer." + std::to_string(i) + ".",
          {"attention.q_lin.", "attention.k_lin.", "attention.v_lin.", "attention.out_lin.",
           "sa_layer_norm.", "ffn.lin1.", "ffn.lin2.", "output_layer_norm."}));
    }
    const int64_t labels = static_cast<int64_t>(c.labels.size());
    if (c.head == Head::kSequenceClassification) {
      pre_classifier_ = BindLinear(w, "pre_classifier.", h, h, true);
      classifier_ = BindLinear(w, "classifier.", labels, h, true);
    } else if (c.head == Head::kTokenClassification) {
      classifier_ = BindLinear(w, "classifier.", labels, h, true);
    }
  }

  torch::Tensor Hidden(const torch::Tensor& ids, const torch::Tensor& mask) const override {
    const int64_t s = ids.size(1);
    // Positions 0..S-1: the table's first S rows, added by broadcast.
    torch::Tensor x = embed_norm_(at::embedding(word_, ids) + position_.narrow(0, 0, s));
    return RunPostLnLayers(c_, layers_, std::move(x), mask);
  }

  torch::Tensor HeadLogits(const torch::Tensor& hidden) const override {
    switch (c_.head) {
      case Head::kSequenceClassification:
        return classifier_(at::relu(pre_classifier_(hidden.select(1, 0))));
      case Head::kTokenClassification:
        return classifier_(hidden);
      default:
        return {};
    }
  }

 private:
  ModelConfig c_;
  torch::Tensor word_, position_;
  LayerNorm embed_norm_;
  std::vector<PostLnLayer> layers_;
  Linear pre_classifier_, classifier_;
};

}  // namespace

std::unique_ptr<Module> BuildEncoder(const ModelConfig& config, WeightBinder& w) {
  if (config.family == Family::kDistilBert) return std::make_unique<DistilBertEncoder>(config, w);
  return std::make_unique<BertEncoder>(config, w);
}

}  // namespace modelgrid::hf

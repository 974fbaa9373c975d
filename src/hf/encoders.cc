// Encoders: BERT, RoBERTa (also XLM-RoBERTa, CamemBERT) and DistilBERT, with
// transformers' tensor names and arithmetic (modeling_bert.py,
// modeling_roberta.py, modeling_distilbert.py): post-LayerNorm layers,
// additive padding masks on the keys, no dropout (eval).
#include <cmath>

#include "hf/modules.h"

namespace modelgrid::hf {

namespace {

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
      const std::string l = p + "encoder.layer." + std::to_string(i) + ".";
      Layer layer;
      layer.q = BindLinear(w, l + "attention.self.query.", h, h, true);
      layer.k = BindLinear(w, l + "attention.self.key.", h, h, true);
      layer.v = BindLinear(w, l + "attention.self.value.", h, h, true);
      layer.o = BindLinear(w, l + "attention.output.dense.", h, h, true);
      layer.attn_norm = BindLayerNorm(w, l + "attention.output.LayerNorm.", h, c.norm_eps);
      layer.up = BindLinear(w, l + "intermediate.dense.", c.intermediate_size, h, true);
      layer.down = BindLinear(w, l + "output.dense.", h, c.intermediate_size, true);
      layer.out_norm = BindLayerNorm(w, l + "output.LayerNorm.", h, c.norm_eps);
      layers_.push_back(std::move(layer));
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
    const int64_t b = ids.size(0), s = ids.size(1);
    torch::Tensor positions;
    if (c_.family == Family::kRoberta) {
      // create_position_ids_from_input_ids: padding_idx + 1 + rank among non-pad tokens.
      const int64_t pad = *c_.pad_token_id;
      torch::Tensor real = ids.ne(pad).to(c10::kLong);
      positions = real.cumsum(1) * real + pad;
    } else {
      positions = torch::arange(s, ids.options()).unsqueeze(0).expand({b, s});
    }
    torch::Tensor x = at::embedding(word_, ids) + at::embedding(position_, positions);
    if (token_type_.defined()) x = x + token_type_[0];  // token_type_ids are all 0
    x = embed_norm_(x);
    const torch::Tensor bias = AttentionBias(mask, s, /*causal=*/false);
    const int64_t heads = c_.num_heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(c_.head_dim));
    for (const Layer& l : layers_) {
      torch::Tensor ctx = Attend(SplitHeads(l.q(x), heads), SplitHeads(l.k(x), heads),
                                 SplitHeads(l.v(x), heads), bias, scale);
      torch::Tensor a = l.attn_norm(l.o(ctx) + x);
      x = l.out_norm(l.down(Activate(c_.activation, l.up(a))) + a);
    }
    return x;
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
  struct Layer {
    Linear q, k, v, o;
    LayerNorm attn_norm;
    Linear up, down;
    LayerNorm out_norm;
  };
  ModelConfig c_;
  torch::Tensor word_, position_, token_type_;
  LayerNorm embed_norm_;
  std::vector<Layer> layers_;
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
      const std::string l = p + "transformer.layer." + std::to_string(i) + ".";
      Layer layer;
      layer.q = BindLinear(w, l + "attention.q_lin.", h, h, true);
      layer.k = BindLinear(w, l + "attention.k_lin.", h, h, true);
      layer.v = BindLinear(w, l + "attention.v_lin.", h, h, true);
      layer.o = BindLinear(w, l + "attention.out_lin.", h, h, true);
      layer.sa_norm = BindLayerNorm(w, l + "sa_layer_norm.", h, c.norm_eps);
      layer.lin1 = BindLinear(w, l + "ffn.lin1.", c.intermediate_size, h, true);
      layer.lin2 = BindLinear(w, l + "ffn.lin2.", h, c.intermediate_size, true);
      layer.out_norm = BindLayerNorm(w, l + "output_layer_norm.", h, c.norm_eps);
      layers_.push_back(std::move(layer));
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
    torch::Tensor positions = torch::arange(s, ids.options()).unsqueeze(0);
    torch::Tensor x = embed_norm_(at::embedding(word_, ids) + at::embedding(position_, positions));
    const torch::Tensor bias = AttentionBias(mask, s, /*causal=*/false);
    const int64_t heads = c_.num_heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(c_.head_dim));
    for (const Layer& l : layers_) {
      torch::Tensor ctx = Attend(SplitHeads(l.q(x), heads), SplitHeads(l.k(x), heads),
                                 SplitHeads(l.v(x), heads), bias, scale);
      torch::Tensor a = l.sa_norm(l.o(ctx) + x);
      x = l.out_norm(l.lin2(Activate(c_.activation, l.lin1(a))) + a);
    }
    return x;
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
  struct Layer {
    Linear q, k, v, o;
    LayerNorm sa_norm;
    Linear lin1, lin2;
    LayerNorm out_norm;
  };
  ModelConfig c_;
  torch::Tensor word_, position_;
  LayerNorm embed_norm_;
  std::vector<Layer> layers_;
  Linear pre_classifier_, classifier_;
};

}  // namespace

std::unique_ptr<Module> BuildEncoder(const ModelConfig& config, WeightBinder& w) {
  if (config.family == Family::kDistilBert) return std::make_unique<DistilBertEncoder>(config, w);
  return std::make_unique<BertEncoder>(config, w);
}

}  // namespace modelgrid::hf

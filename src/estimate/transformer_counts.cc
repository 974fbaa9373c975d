#include "estimate/transformer_counts.h"

#include <string_view>

namespace modelgrid::estimate {

namespace {

// Encoder/GPT layer: q,k,v,o with bias (4h² + 4h), 2 LayerNorms (4h),
// 2-layer MLP with biases (2hi + i + h).
uint64_t EncoderLayer(uint64_t h, uint64_t i) { return 4 * h * h + 2 * h * i + 9 * h + i; }

uint64_t LlamaLayer(const HfConfig& c) {
  const uint64_t h = c.hidden_size, hd = c.head_dim, i = c.intermediate_size;
  uint64_t layer =
      h * c.num_heads * hd + 2 * h * c.num_kv_heads * hd + c.num_heads * hd * h + 3 * h * i + 2 * h;
  if (c.attention_bias) layer += c.num_heads * hd + 2 * c.num_kv_heads * hd + h;
  if (c.qkv_bias) layer += c.num_heads * hd + 2 * c.num_kv_heads * hd;  // qwen2: no o bias
  if (c.mlp_bias) layer += 2 * i + h;
  return layer;
}

// The architecture name without its family prefix ("Bert", "Roberta",
// "XLMRoberta", "Camembert", "DistilBert"), or "" when it has none of the
// prefixes of c's model_type.
std::string EncoderHead(const HfConfig& c, const std::string& a) {
  std::vector<std::string_view> prefixes;
  if (c.model_type == "bert") prefixes = {"Bert"};
  if (c.is_roberta()) prefixes = {"XLMRoberta", "Roberta", "Camembert"};
  if (c.family == HfFamily::kDistilBert) prefixes = {"DistilBert"};
  for (std::string_view prefix : prefixes) {
    if (a.size() > prefix.size() && a.compare(0, prefix.size(), prefix) == 0) {
      return a.substr(prefix.size());
    }
  }
  return "";
}

uint64_t VitPatches(const HfConfig& c) {
  const uint64_t side = c.image_size / c.patch_size;
  return side * side;
}

}  // namespace

uint64_t ParameterCount(const HfConfig& c) {
  const uint64_t h = c.hidden_size, L = c.num_layers, V = c.vocab_size;
  switch (c.family) {
    case HfFamily::kGpt2:
      return V * h + c.max_positions * h + L * EncoderLayer(h, c.intermediate_size) + 2 * h;
    case HfFamily::kBert:
      return (V + c.max_positions + c.type_vocab_size) * h + 2 * h +
             L * EncoderLayer(h, c.intermediate_size) + (h * h + h);
    case HfFamily::kDistilBert:
      // word + position embeddings, embedding LayerNorm, L encoder layers
      // (q_lin, k_lin, v_lin, out_lin, sa_layer_norm, ffn.lin1, ffn.lin2,
      // output_layer_norm: the same tensors as a BERT layer); no pooler.
      return (V + c.max_positions) * h + 2 * h + L * EncoderLayer(h, c.intermediate_size);
    case HfFamily::kLlama:
      return V * h + L * LlamaLayer(c) + h + (c.tie_word_embeddings ? 0 : V * h);
    case HfFamily::kVit: {
      const uint64_t K = c.num_labels;
      return (c.num_channels * c.patch_size * c.patch_size * h + h) + h + (VitPatches(c) + 1) * h +
             L * EncoderLayer(h, c.intermediate_size) + 2 * h + (K > 0 ? h * K + K : 0);
    }
  }
  return 0;
}

HeadAdjustedCount ArchitectureParameterCount(const HfConfig& c) {
  HeadAdjustedCount out{ParameterCount(c), true, c.architecture()};
  const std::string& a = out.architecture;
  const uint64_t h = c.hidden_size, V = c.vocab_size;
  const uint64_t K = c.num_labels > 0 ? c.num_labels : 2;
  const uint64_t pooler = h * h + h;
  uint64_t& p = out.parameters;
  if (a.empty()) return out;
  switch (c.family) {
    case HfFamily::kGpt2:
      if (a == "GPT2ForSequenceClassification")
        p += h * K;
      else
        out.known = a == "GPT2LMHeadModel" || a == "GPT2Model";
      break;
    case HfFamily::kBert: {
      const std::string head = EncoderHead(c, a);
      if (head == "ForMaskedLM" || (c.is_roberta() && head == "ForCausalLM"))
        p += 2 * h + V;  // − pooler + transform (same size)
      else if (head == "ForPreTraining" && !c.is_roberta())
        p += pooler + 2 * h + V + 2 * h + 2;
      else if (head == "ForSequenceClassification")
        // Bert: pooler + classifier; roberta: no pooler, but a
        // RobertaClassificationHead (dense h² + h, out_proj h·K + K): the same sum.
        p += h * K + K;
      else if (head == "ForTokenClassification")
        p = p - pooler + h * K + K;
      else if (head == "ForQuestionAnswering")
        p = p - pooler + 2 * h + 2;
      else if (head == "ForMultipleChoice")
        p += h + 1;  // pooler + classifier h → 1
      else
        out.known = head == "Model";
      break;
    }
    case HfFamily::kDistilBert: {
      const std::string head = EncoderHead(c, a);
      if (head == "ForMaskedLM")
        p += pooler + 2 * h + V;  // vocab_transform, vocab_layer_norm, projector bias (weight tied)
      else if (head == "ForSequenceClassification")
        p += pooler + h * K + K;  // pre_classifier h², classifier h·K
      else if (head == "ForTokenClassification")
        p += h * K + K;
      else if (head == "ForQuestionAnswering")
        p += 2 * h + 2;
      else if (head == "ForMultipleChoice")
        p += pooler + h + 1;
      else
        out.known = head == "Model";
      break;
    }
    case HfFamily::kLlama:
      if (a == "LlamaModel" || a == "MistralModel" || a == "Qwen2Model")
        p -= c.tie_word_embeddings ? 0 : V * h;
      else
        out.known = a == "LlamaForCausalLM" || a == "MistralForCausalLM" || a == "Qwen2ForCausalLM";
      break;
    case HfFamily::kVit:
      if (a == "ViTModel")
        p = p - (c.num_labels > 0 ? h * c.num_labels + c.num_labels : 0) + pooler;
      else if (a == "ViTForImageClassification" && c.num_labels == 0)
        p += h * K + K;
      else
        out.known = a == "ViTForImageClassification";
      break;
  }
  return out;
}

uint64_t KvCacheBytesPerToken(const HfConfig& c, uint64_t dtype_bytes) {
  return 2 * c.num_layers * c.num_kv_heads * c.head_dim * dtype_bytes;
}

std::vector<uint64_t> NonPersistentBufferAllocations(const HfConfig& c) {
  std::vector<uint64_t> out;
  switch (c.family) {
    case HfFamily::kGpt2:
      for (uint64_t l = 0; l < c.num_layers; ++l) {
        out.push_back(c.max_positions * c.max_positions);  // attn.bias, bool
        out.push_back(4);                                  // attn.masked_bias, fp32 scalar
      }
      break;
    case HfFamily::kBert:
      // position_ids, token_type_ids (BertEmbeddings and RobertaEmbeddings alike)
      out = {8 * c.max_positions, 8 * c.max_positions};
      break;
    case HfFamily::kDistilBert:
      out = {8 * c.max_positions};  // embeddings.position_ids only
      break;
    case HfFamily::kLlama:
      out = {2 * c.head_dim, 2 * c.head_dim};  // inv_freq, original_inv_freq: hd/2 × 4 bytes
      break;
    case HfFamily::kVit:
      break;
  }
  return out;
}

uint64_t NonPersistentBufferBytes(const HfConfig& c) {
  uint64_t sum = 0;
  for (uint64_t b : NonPersistentBufferAllocations(c)) sum += b;
  return sum;
}

}  // namespace modelgrid::estimate

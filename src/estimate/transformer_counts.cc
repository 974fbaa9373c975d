#include "estimate/transformer_counts.h"

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
  if (c.mlp_bias) layer += 2 * i + h;
  return layer;
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
    case HfFamily::kBert:
      if (a == "BertForMaskedLM")
        p += 2 * h + V;  // − pooler + transform (same size)
      else if (a == "BertForPreTraining")
        p += pooler + 2 * h + V + 2 * h + 2;
      else if (a == "BertForSequenceClassification")
        p += h * K + K;
      else if (a == "BertForTokenClassification")
        p = p - pooler + h * K + K;
      else if (a == "BertForQuestionAnswering")
        p = p - pooler + 2 * h + 2;
      else
        out.known = a == "BertModel";
      break;
    case HfFamily::kLlama:
      if (a == "LlamaModel" || a == "MistralModel")
        p -= c.tie_word_embeddings ? 0 : V * h;
      else
        out.known = a == "LlamaForCausalLM" || a == "MistralForCausalLM";
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
      out = {8 * c.max_positions, 8 * c.max_positions};  // position_ids, token_type_ids
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

// Parameter counts, KV cache and non-persistent buffers from config.json
// alone (../shared/reference/formats.md, "Parameter counts from
// config.json", verified there against the published counts).
//
// Notation: h hidden size, L layers, i intermediate size, V vocabulary,
// n_h heads, n_kv key/value heads, hd head dim, T (gpt2) or Pm (bert)
// positions, t token types, C channels, p patch, N = (image / p)² patches,
// K labels. Encoder/GPT layer (q,k,v,o with bias, 2 LayerNorms, 2-layer MLP):
//   layer = 4h² + 2·h·i + 9h + i
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "estimate/hf_config.h"

namespace modelgrid::estimate {

// Parameters (elements) of the model family's formats.md layout:
//   gpt2:  V·h + T·h + L·layer + 2h                       (GPT2Model; lm_head tied)
//   bert:  (V + Pm + t)·h + 2h + L·layer + (h² + h)       (BertModel with pooler; also
//                                                          RobertaModel, XLMRobertaModel,
//                                                          CamembertModel: the same tensors,
//                                                          Pm includes the padding offset,
//                                                          t usually 1)
//   distilbert: (V + Pm)·h + 2h + L·layer                  (DistilBertModel: no token
//                                                          types, no pooler)
//   llama: V·h + L·(h·n_h·hd + 2·h·n_kv·hd + n_h·hd·h + 3·h·i + 2h) + h
//          + (tied ? 0 : V·h)                              (LlamaForCausalLM; RMSNorm
//          weights only; + n_h·hd + 2·n_kv·hd + h with attention_bias,
//          + n_h·hd + 2·n_kv·hd with qkv_bias (qwen2), + 2i + h with mlp_bias;
//          also MistralForCausalLM and Qwen2ForCausalLM)
//   vit:   (C·p²·h + h) + h + (N+1)·h + L·layer + 2h (+ h·K + K when K > 0)
//                                                          (ViTForImageClassification)
// The architecture in config.json does not change this figure (bert-base-
// uncased's config names BertForMaskedLM, yet its published count is the
// BertModel one); see ArchitectureParameterCount for the task head.
uint64_t ParameterCount(const HfConfig& config);

// ParameterCount adjusted for the task head of config.architecture():
//   BertForMaskedLM          − pooler (h² + h) + transform (h² + h) + LayerNorm 2h + decoder bias V
//                            (the decoder weight is tied to the word embeddings)
//   BertForPreTraining       + transform (h² + h) + 2h + V + next-sentence head (2h + 2)
//   BertForSequenceClassification  + h·K + K
//   BertForTokenClassification     − (h² + h) + h·K + K
//   BertForQuestionAnswering       − (h² + h) + 2h + 2
//   BertForMultipleChoice          + h + 1
//   Roberta*, XLMRoberta*, Camembert* (no pooler in any head model; the
//   classification head has its own dense h×h):
//     ForMaskedLM, ForCausalLM     − pooler + lm_head dense (h² + h) + LayerNorm 2h
//                                  + decoder bias V (decoder weight tied) = + 2h + V
//     ForSequenceClassification    − pooler + dense (h² + h) + out_proj (h·K + K) = + h·K + K
//     ForTokenClassification       − (h² + h) + h·K + K
//     ForQuestionAnswering         − (h² + h) + 2h + 2
//     ForMultipleChoice            + h + 1 (keeps the pooler)
//   DistilBertForMaskedLM          + vocab_transform (h² + h) + vocab_layer_norm 2h
//                                  + vocab_projector bias V (weight tied)
//   DistilBertForSequenceClassification  + pre_classifier (h² + h) + classifier h·K + K
//   DistilBertForTokenClassification     + h·K + K
//   DistilBertForQuestionAnswering       + 2h + 2
//   DistilBertForMultipleChoice          + (h² + h) + h + 1
//   GPT2ForSequenceClassification  + h·K (score, no bias)
//   LlamaModel / MistralModel / Qwen2Model  − the untied lm_head V·h
//   ViTModel                 − classifier, + pooler (h² + h)
// (transformers' modeling_bert.py, modeling_roberta.py, modeling_xlm_roberta.py,
// modeling_camembert.py, modeling_distilbert.py, modeling_gpt2.py,
// modeling_llama.py, modeling_qwen2.py, modeling_vit.py, 4.46). K is
// config.num_labels, or 2 (transformers' default) when unknown. Other
// architectures: ParameterCount unchanged, known = false.
struct HeadAdjustedCount {
  uint64_t parameters = 0;
  bool known = false;  // the architecture is one of the list above or the base layout
  std::string architecture;
};
HeadAdjustedCount ArchitectureParameterCount(const HfConfig& config);

// KV cache bytes per token of context: 2 · L · n_kv · hd · dtype_bytes
// (formats.md: gpt2 fp16 36,864; Llama-2-7B fp16 524,288; Llama-3-8B fp16
// 131,072). Defined for every family; only causal LMs keep a cache.
uint64_t KvCacheBytesPerToken(const HfConfig& config, uint64_t dtype_bytes);

// Bytes of the buffers transformers creates at init and does not save
// (formats.md, "File bytes ≠ device bytes"), as registered by
// transformers 4.x:
//   gpt2:  per layer the causal mask `attn.bias` (1,1,T,T) bool and
//          `attn.masked_bias` fp32 scalar: L·(T² + 4) (removed in recent
//          versions, which build the mask per call: then an overestimate)
//   bert:  `embeddings.position_ids` and `embeddings.token_type_ids`,
//          (1, Pm) int64 each: 16·Pm (RobertaEmbeddings registers the same two)
//   distilbert: `embeddings.position_ids` (1, Pm) int64: 8·Pm
//   llama: rotary `inv_freq` and `original_inv_freq`, hd/2 fp32 each: 4·hd
//          (mistral, qwen2 alike)
//   vit:   none
uint64_t NonPersistentBufferBytes(const HfConfig& config);

// The same buffers as one entry per tensor (bytes), in registration order;
// their sum is NonPersistentBufferBytes.
std::vector<uint64_t> NonPersistentBufferAllocations(const HfConfig& config);

}  // namespace modelgrid::estimate

// Analytic peak activation bytes of one inference forward pass (no grad) of
// a standard eager transformers implementation, from config.json.
//
// Derivation. With B the batch, S the tokens per sample (vit: N + 1 with
// N = (image / p)²), T = B·S, d the bytes per element of the compute dtype,
// r = T·h·d one hidden-state tensor, A = B·n_h·S²·d one attention-score
// tensor, F = T·i·d one MLP-intermediate tensor. Without autograd a tensor is
// freed when its last reference goes, so at any point only the residual
// stream, the tensors of the current sub-block and what the caller still
// names are alive. Per stage (the per-layer stages repeat, so the peak of
// one layer is the peak of all):
//
//   inputs (whole pass)  token models: input_ids and attention_mask, int64:
//                        2·T·8 (+ T·8 token_type_ids for bert and the
//                        roberta family, none for distilbert); vit:
//                        pixel_values B·C·H·W·d. Plus the extended mask:
//                        causal LMs B·S²·d (the 4-D causal mask), bert,
//                        roberta B·S·d; distilbert the same B·S·d (its eager
//                        attention builds a bool B·S mask per layer: smaller).
//   embeddings           3r: two embedding lookups and their sum (the sum of
//                        the first two exists before the next is added);
//                        roberta family + T·8: the int64 position ids built
//                        from input_ids (modeling_roberta.py,
//                        create_position_ids_from_input_ids).
//   attention            gpt2/vit (pre-LN): residual r + LayerNorm output r
//                        (still named by the caller) + fused or separate q,k,v
//                        3r, then scores → scaled → masked → softmax, each
//                        step creating one A while freeing the previous, so
//                        2A at once; the batched matmul first copies the
//                        permuted q and k (2r, freed after it):
//                          5r + A + max(A, 2r)
//                        bert (post-LN, no LayerNorm output held): 4r + A + max(A, 2r);
//                        the roberta family runs BertSelfAttention's code
//                        (modeling_roberta.py copies it) and distilbert's
//                        MultiHeadSelfAttention the same steps (q_lin, k_lin,
//                        v_lin, scores, masked_fill, softmax, matmul; its
//                        q / √d makes one r while k, v are held, below the
//                        scores' peak): the bert figure.
//                        llama: residual r + RMSNorm output r + q r + k,v
//                        2·r_kv (r_kv = T·n_kv·hd·d) = base; RoPE builds
//                        q·cos, rotate_half(q)·sin and their sum while q is
//                        named: base + 3r; then repeat_kv copies k,v (2r,
//                        only when n_kv < n_h) and the scores run with the
//                        permuted-operand copies (2r + A) or the float32
//                        softmax (masked scores A + fp32 probs A·4/d):
//                          max(base + 3r, base + rep + max(2r + A, A·(1 + 4/d)))
//   mlp                  gpt2/vit: residual r + LayerNorm output r + fc output F
//                        + activation temporaries: a single-kernel activation
//                        (gelu, relu, silu, gelu_pytorch_tanh) adds F; gpt2's
//                        gelu_new 0.5·x·(1 + tanh(c·(x + 0.044715·x³))) keeps
//                        x, 0.5·x and two chain temporaries: 3F; quick_gelu 2F:
//                          2r + F·(1 + a)   with a = 1, 2 or 3
//                        bert, roberta family, distilbert (FFN lin1 →
//                        activation → lin2, post-LN): attention output r + F + a·F.
//                        llama: r + norm output r + act(gate) F + up F + product F
//                        (gate is freed once activated): 2r + 3F
//                        (mistral and qwen2 run the same MLP and attention;
//                        qwen2's q/k/v biases are fused into the projections).
//   output               causal LMs: final-norm output r + logits T·V·d (the
//                        logits usually dominate: gpt2 at S=128 holds 25.7 MB
//                        of fp32 logits per sample against 1.6 MB of MLP;
//                        a generation's prefill keeps the last position's
//                        only: B·V·d, see logit_positions below);
//                        BertForMaskedLM / BertForPreTraining, the roberta
//                        family's ForMaskedLM / ForCausalLM (lm_head dense,
//                        gelu, LayerNorm, decoder) and DistilBertForMaskedLM
//                        (vocab_transform, gelu, vocab_layer_norm,
//                        vocab_projector): 2r + T·V·d;
//                        vit: r + B·K·d (K = 2 when unknown); any other
//                        model without an LM head: r + 2·B·h·d (pooler;
//                        distilbert's pre_classifier and its ReLU, or the
//                        roberta classification head's dense and tanh, are
//                        the same two B·h tensors; a bare distilbert has
//                        none: an upper bound).
//
//   peak = inputs + max(embeddings, attention, mlp, output)
//
// Not included: the KV cache (the estimator adds KvCacheBytesPerToken ×
// B × S where the model keeps one), weights, library workspaces, allocator
// rounding, and a float32 upcast of the logits that some transformers
// versions perform. SDPA / flash attention kernels do not materialize A, so
// the figure is an upper bound for them. The formulas follow the eager code
// of transformers' modeling_gpt2.py, modeling_bert.py, modeling_roberta.py,
// modeling_distilbert.py, modeling_llama.py, modeling_qwen2.py and
// modeling_vit.py (4.46); they are this component's derivation, not a measured
// fact (a graph walk or a calibration run supersedes them).
#pragma once

#include <cstdint>
#include <string>

#include "estimate/hf_config.h"

namespace modelgrid::estimate {

// The stages of the derivation above, in bytes, for one (batch, seq, dtype).
// Arithmetic saturates at UINT64_MAX instead of wrapping.
struct ActivationBreakdown {
  uint64_t inputs = 0;  // inputs and masks, alive for the whole pass
  uint64_t embeddings = 0;
  uint64_t attention = 0;  // one layer's attention block at its peak
  uint64_t mlp = 0;        // one layer's MLP block at its peak
  uint64_t output = 0;     // final norm, head and logits
  uint64_t peak = 0;       // inputs + max(the four stages)
  std::string peak_stage;  // "embeddings", "attention", "mlp" or "output"
};

// Evaluates the derivation. `seq` is ignored for vit (S = N + 1).
// `dtype_bytes` is the compute dtype's element size (4 for float32).
// `logit_positions`: the positions per sample whose LM-head logits are made
// (0 = all S, a forward pass; 1 = the last only, as a generation's prefill
// does: transformers' generate with num_logits_to_keep, and the native
// backend, src/hf/generation.cc). Models without an LM head ignore it.
ActivationBreakdown AnalyzeActivations(const HfConfig& config, uint64_t batch, uint64_t seq,
                                       uint64_t dtype_bytes, uint64_t logit_positions = 0);

// AnalyzeActivations(...).peak: peak live intermediate bytes of a forward pass.
uint64_t ActivationBytes(const HfConfig& config, uint64_t batch, uint64_t seq,
                         uint64_t dtype_bytes);

}  // namespace modelgrid::estimate

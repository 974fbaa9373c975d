#include "estimate/activation_bytes.h"

#include <algorithm>
#include <limits>
#include <string_view>

namespace modelgrid::estimate {

namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// Saturating arithmetic: a batch or sequence length from the command line
// must not wrap a figure around to something small.
uint64_t Mul(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? kMax : r;
}
uint64_t Mul(uint64_t a, uint64_t b, uint64_t c) { return Mul(Mul(a, b), c); }
uint64_t Mul(uint64_t a, uint64_t b, uint64_t c, uint64_t d) { return Mul(Mul(a, b, c), d); }
uint64_t Add(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? kMax : r;
}
uint64_t Add(uint64_t a, uint64_t b, uint64_t c) { return Add(Add(a, b), c); }

// Extra MLP-intermediate tensors an activation function keeps alive beside
// its input (activation_bytes.h, "mlp").
uint64_t ActivationTemporaries(const std::string& act) {
  if (act == "gelu_new" || act == "gelu_fast") return 3;
  if (act == "quick_gelu") return 2;
  return 1;
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool HasLmHead(const HfConfig& c) {
  const std::string a = c.architecture();
  if (c.family == HfFamily::kGpt2) return a != "GPT2Model" && a != "GPT2ForSequenceClassification";
  if (c.family == HfFamily::kLlama)
    return a != "LlamaModel" && a != "MistralModel" && a != "Qwen2Model";
  if (c.family == HfFamily::kBert) {
    return EndsWith(a, "ForMaskedLM") || EndsWith(a, "ForPreTraining") ||
           (c.is_roberta() && EndsWith(a, "ForCausalLM"));
  }
  if (c.family == HfFamily::kDistilBert) return a == "DistilBertForMaskedLM";
  return false;
}

// The encoder families with BERT's post-LN layer (bert, the roberta family,
// distilbert).
bool IsBertLike(const HfConfig& c) {
  return c.family == HfFamily::kBert || c.family == HfFamily::kDistilBert;
}

}  // namespace

ActivationBreakdown AnalyzeActivations(const HfConfig& c, uint64_t batch, uint64_t seq,
                                       uint64_t d, uint64_t logit_positions) {
  const uint64_t B = batch;
  const uint64_t S = c.family == HfFamily::kVit
                         ? (c.image_size / c.patch_size) * (c.image_size / c.patch_size) + 1
                         : seq;
  const uint64_t T = Mul(B, S);
  const uint64_t r = Mul(T, c.hidden_size, d);
  const uint64_t A = Mul(B, c.num_heads, Mul(S, S), d);
  const uint64_t F = Mul(T, c.intermediate_size, d);
  const uint64_t kept = logit_positions == 0 ? S : std::min(logit_positions, S);
  const uint64_t logits = Mul(B, kept, c.vocab_size, d);
  const uint64_t a = ActivationTemporaries(c.hidden_act);

  ActivationBreakdown out;
  out.embeddings = Mul(3, r);
  // roberta family: position ids built from input_ids
  // (create_position_ids_from_input_ids), int64, alive during the lookups.
  if (c.is_roberta()) out.embeddings = Add(out.embeddings, Mul(T, 8));
  switch (c.family) {
    case HfFamily::kGpt2:
    case HfFamily::kLlama:
      out.inputs = Add(Mul(2, T, 8), Mul(B, Mul(S, S), d));
      break;
    case HfFamily::kBert:
      out.inputs = Add(Mul(3, T, 8), Mul(B, S, d));
      break;
    case HfFamily::kDistilBert:
      out.inputs = Add(Mul(2, T, 8), Mul(B, S, d));  // no token_type_ids
      break;
    case HfFamily::kVit:
      out.inputs = Mul(Mul(B, c.num_channels), Mul(c.image_size, c.image_size), d);
      break;
  }
  if (c.family == HfFamily::kLlama) {
    const uint64_t r_kv = Mul(T, c.num_kv_heads, c.head_dim, d);
    const uint64_t base = Add(Mul(3, r), Mul(2, r_kv));
    const uint64_t rep = c.num_kv_heads < c.num_heads ? Mul(2, r) : 0;
    const uint64_t softmax = Add(A, d == 0 ? 0 : Mul(A, 4) / d);
    out.attention =
        std::max(Add(base, Mul(3, r)), Add(base, rep, std::max(Add(Mul(2, r), A), softmax)));
    out.mlp = Add(Mul(2, r), Mul(3, F));
  } else {
    const uint64_t held = IsBertLike(c) ? Mul(4, r) : Mul(5, r);
    out.attention = Add(held, A, std::max(A, Mul(2, r)));
    const uint64_t mlp_held = IsBertLike(c) ? r : Mul(2, r);
    out.mlp = Add(mlp_held, Mul(F, 1 + a));
  }
  if (HasLmHead(c)) {
    out.output = Add(IsBertLike(c) ? Mul(2, r) : r, logits);
  } else if (c.family == HfFamily::kVit) {
    out.output = Add(r, Mul(B, std::max<uint64_t>(c.num_labels, 2), d));
  } else {
    out.output = Add(r, Mul(2, B, c.hidden_size, d));
  }
  const std::pair<uint64_t, const char*> stages[] = {{out.embeddings, "embeddings"},
                                                     {out.attention, "attention"},
                                                     {out.mlp, "mlp"},
                                                     {out.output, "output"}};
  uint64_t top = 0;
  for (const auto& [bytes, name] : stages) {
    if (bytes > top || out.peak_stage.empty()) {
      top = bytes;
      out.peak_stage = name;
    }
  }
  out.peak = Add(out.inputs, top);
  return out;
}

uint64_t ActivationBytes(const HfConfig& config, uint64_t batch, uint64_t seq,
                         uint64_t dtype_bytes) {
  return AnalyzeActivations(config, batch, seq, dtype_bytes).peak;
}

}  // namespace modelgrid::estimate

// Generation: step-wise decoding of a causal LM (NativeModel with a
// ...ForCausalLM / GPT2LMHeadModel head) with a KV cache.
//
// One Generation decodes a batch of prompts (one request, or several the
// caller joined). Each Step() appends one token to every unfinished row, so
// a caller can interleave several Generations at token boundaries, stream
// each token as it comes, and stop a row from outside (Finish: e.g. when
// its decoded text reached a stop string).
//
// Batching: rows of different lengths are left-padded to the longest and
// masked; position ids count real tokens only, so each row's tokens equal
// those it gets alone (up to floating-point summation order).
// Cache: per layer K and V [rows, n_kv, prompt + max_new_tokens, head_dim]
// in the compute dtype, allocated at the first Step (kv_cache_bytes());
// when rows finish, the cache, mask and ids keep the unfinished rows only.
// Picking: greedy = argmax of the last position's logits (first index on
// ties); sampling = logits / temperature, then top_k (exactly the k most
// likely), then top_p (the smallest set of most likely tokens whose
// probability reaches top_p), then a draw from the softmax over what is
// left with a torch CPU generator per row seeded with `seed`: a (prompt,
// params) pair always yields the same tokens, whatever else is in the batch.
//
// Thread-safety: one thread at a time per Generation; several Generations
// may share a model and run on different threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "hf/native_model.h"

namespace modelgrid::hf {

// The most new tokens one generation may ask for (the same limit as the
// TorchScript backend's generate task).
inline constexpr int64_t kMaxNewTokensLimit = 1024;
// Step()'s value for a row that was finished before the step.
inline constexpr int64_t kNoToken = -1;

struct GenerationParams {
  int64_t max_new_tokens = 16;   // [1, kMaxNewTokensLimit]; prompt + this ≤ the model's limit
  bool do_sample = false;        // false: argmax
  double temperature = 1.0;      // > 0; sampling only
  std::optional<int64_t> top_k;  // ≥ 1; sampling only
  std::optional<double> top_p;   // (0, 1]; sampling only
  uint64_t seed = 0;             // seeds each row's generator
  // Tokens that finish a row (kept as its last token). nullopt: the model's
  // (generation_config.json, else config.json; none when neither has one).
  std::optional<std::vector<int64_t>> eos_token_ids;
  bool ignore_eos = false;  // never stop at eos: always max_new_tokens tokens
  // false recomputes the whole sequence at every step instead of using the
  // KV cache (for tests and benchmarks: same tokens, quadratic cost).
  bool use_kv_cache = true;
};

enum class FinishReason {
  kNone,     // still generating
  kLength,   // max_new_tokens reached
  kEos,      // produced an eos token
  kStopped,  // Finish() was called
};

class Generation {
 public:
  // Checks the request and prepares the batch; computes nothing yet.
  // Errors: kUnsupported when the model is not a causal LM; kInvalidArgument
  // naming the parameter or the limit: no prompts or an empty one, a token
  // id outside the vocabulary, max_new_tokens outside [1, 1024],
  // temperature ≤ 0, top_k < 1, top_p outside (0, 1], or the longest prompt
  // + max_new_tokens past the model's limit ("prompt length 40 +
  // max_new_tokens 30 = 70 exceeds the model's limit 64
  // (max_position_embeddings in <folder>/config.json)").
  static Result<std::unique_ptr<Generation>> Start(std::shared_ptr<const NativeModel> model,
                                                   std::vector<std::vector<int64_t>> prompts,
                                                   const GenerationParams& params);

  // Appends one token to every unfinished row. The first call runs the
  // prompts (prefill) and allocates the cache. Returns, per row, the token
  // appended, or kNoToken for rows finished before this step (all kNoToken
  // once done()). Errors: kResourceExhausted when the memory limit refuses
  // (the cache, activations), kInternal for other LibTorch failures; the
  // generation is then finished (every row kStopped).
  Result<std::vector<int64_t>> Step();

  // Stops `row` (no more tokens; finish_reason kStopped unless it had
  // finished already). Rows out of range are ignored.
  void Finish(size_t row);

  bool done() const;
  size_t rows() const { return generated_.size(); }
  bool finished(size_t row) const { return reasons_.at(row) != FinishReason::kNone; }
  FinishReason finish_reason(size_t row) const { return reasons_.at(row); }
  // The tokens generated so far per row (eos included when it stopped the row).
  const std::vector<std::vector<int64_t>>& generated() const { return generated_; }
  // Steps run so far.
  int64_t steps() const { return steps_; }
  // Bytes of the KV cache (NativeModel::KvCacheBytes(rows, longest prompt +
  // max_new_tokens)); 0 with use_kv_cache false.
  uint64_t kv_cache_bytes() const;

  ~Generation();

 private:
  Generation() = default;
  struct State;
  Result<std::vector<int64_t>> RunStep();

  std::shared_ptr<const NativeModel> model_;
  GenerationParams params_;
  std::vector<int64_t> eos_;
  int64_t prompt_len_ = 0;  // longest prompt: the padded width
  std::vector<std::vector<int64_t>> prompts_;
  std::vector<std::vector<int64_t>> generated_;
  std::vector<FinishReason> reasons_;
  int64_t steps_ = 0;
  std::unique_ptr<State> state_;  // tensors (generation.cc)
};

}  // namespace modelgrid::hf

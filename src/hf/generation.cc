#include "hf/generation.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <limits>

#include "hf/modules.h"

namespace modelgrid::hf {

struct Generation::State {
  std::vector<size_t> active;  // the rows still in the batch, in batch order
  torch::Tensor mask;          // [A, len] int64: 1 = real token, 0 = left padding
  torch::Tensor ids;           // [A, len]: the prompts; the whole sequence without a cache
  torch::Tensor last;          // [A, 1]: the tokens the previous step picked
  std::optional<KvCache> cache;
  std::vector<at::Generator> generators;  // one per row
};

Generation::~Generation() = default;

namespace {

Status CheckParams(const std::string& prefix, const GenerationParams& p) {
  if (p.max_new_tokens < 1 || p.max_new_tokens > kMaxNewTokensLimit) {
    return Status::InvalidArgument(prefix + "max_new_tokens must be in [1, " +
                                   std::to_string(kMaxNewTokensLimit) + "], got " +
                                   std::to_string(p.max_new_tokens));
  }
  if (!(p.temperature > 0.0)) {
    return Status::InvalidArgument(prefix + "temperature must be > 0, got " +
                                   std::to_string(p.temperature));
  }
  if (p.top_k && *p.top_k < 1) {
    return Status::InvalidArgument(prefix + "top_k must be >= 1, got " + std::to_string(*p.top_k));
  }
  if (p.top_p && !(*p.top_p > 0.0 && *p.top_p <= 1.0)) {
    return Status::InvalidArgument(prefix + "top_p must be in (0, 1], got " +
                                   std::to_string(*p.top_p));
  }
  return Status::Ok();
}

// One token from one row's logits [V] (fp32, CPU).
int64_t Pick(const torch::Tensor& logits, const GenerationParams& p, at::Generator& gen) {
  if (!p.do_sample) return logits.argmax().item<int64_t>();
  constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
  // The candidates: every token, or the top_k most likely (sorted); ids
  // undefined means the identity.
  torch::Tensor candidates = logits / p.temperature;
  torch::Tensor ids;
  if (p.top_k && *p.top_k < candidates.size(0)) {
    std::tie(candidates, ids) = candidates.topk(*p.top_k);
  }
  if (p.top_p && *p.top_p < 1.0) {
    if (!ids.defined()) std::tie(candidates, ids) = candidates.sort(/*dim=*/0, /*descending=*/true);
    torch::Tensor probs = at::softmax(candidates, 0);
    // Drop a token once the more likely ones already reach top_p.
    candidates = candidates.masked_fill((probs.cumsum(0) - probs) >= *p.top_p, kMinusInf);
  }
  const int64_t j =
      at::multinomial(at::softmax(candidates, 0), 1, /*replacement=*/false, gen).item<int64_t>();
  return ids.defined() ? ids[j].item<int64_t>() : j;
}

}  // namespace

Result<std::unique_ptr<Generation>> Generation::Start(std::shared_ptr<const NativeModel> model,
                                                      std::vector<std::vector<int64_t>> prompts,
                                                      const GenerationParams& params) {
  const std::string prefix = model->Prefix() + "generate: ";
  if (!model->is_causal_lm()) {
    return Status::Unsupported(prefix + "architecture '" + model->config().architecture +
                               "' is not a causal LM (supported: ...ForCausalLM, GPT2LMHeadModel)");
  }
  MG_RETURN_IF_ERROR(CheckParams(prefix, params));
  if (prompts.empty()) return Status::InvalidArgument(prefix + "no prompts");
  int64_t longest = 0;
  const int64_t vocab = model->config().vocab_size;
  for (size_t r = 0; r < prompts.size(); ++r) {
    if (prompts[r].empty()) {
      return Status::InvalidArgument(prefix + "prompt " + std::to_string(r) + " is empty");
    }
    for (int64_t id : prompts[r]) {
      if (id < 0 || id >= vocab) {
        return Status::InvalidArgument(prefix + "prompt " + std::to_string(r) + " holds token " +
                                       std::to_string(id) + ", outside the vocabulary [0, " +
                                       std::to_string(vocab) + ")");
      }
    }
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts[r].size()));
  }
  if (longest + params.max_new_tokens > model->max_sequence()) {
    return Status::InvalidArgument(
        prefix + "prompt length " + std::to_string(longest) + " + max_new_tokens " +
        std::to_string(params.max_new_tokens) + " = " +
        std::to_string(longest + params.max_new_tokens) + " exceeds the model's limit " +
        std::to_string(model->max_sequence()) + " (" + model->max_sequence_field() + " in " +
        model->config().file + ")");
  }
  std::unique_ptr<Generation> g(new Generation());
  g->model_ = std::move(model);
  g->params_ = params;
  g->prompt_len_ = longest;
  if (!params.ignore_eos) g->eos_ = params.eos_token_ids.value_or(g->model_->eos_token_ids());
  g->generated_.resize(prompts.size());
  g->reasons_.assign(prompts.size(), FinishReason::kNone);
  g->prompts_ = std::move(prompts);
  return g;
}

bool Generation::done() const {
  return std::all_of(reasons_.begin(), reasons_.end(),
                     [](FinishReason r) { return r != FinishReason::kNone; });
}

void Generation::Finish(size_t row) {
  if (row < reasons_.size() && reasons_[row] == FinishReason::kNone) {
    reasons_[row] = FinishReason::kStopped;
  }
}

uint64_t Generation::kv_cache_bytes() const {
  if (!params_.use_kv_cache) return 0;
  return model_->KvCacheBytes(static_cast<int64_t>(rows()), prompt_len_ + params_.max_new_tokens);
}

Result<std::vector<int64_t>> Generation::Step() {
  if (done()) return std::vector<int64_t>(rows(), kNoToken);
  auto out =
      Guarded<std::vector<int64_t>>(model_->Prefix() + "generate", [&]() { return RunStep(); });
  if (!out.ok()) {
    for (size_t r = 0; r < rows(); ++r) Finish(r);
    state_.reset();
  }
  return out;
}

Result<std::vector<int64_t>> Generation::RunStep() {
  const c10::Device device = model_->device();
  const auto& decoder = static_cast<const Decoder&>(model_->module());
  const auto i64 = torch::TensorOptions().dtype(c10::kLong);
  if (!state_) {
    // Left-pad the prompts (token 0 under mask 0) into [B, S].
    state_ = std::make_unique<State>();
    const int64_t b = static_cast<int64_t>(rows()), s = prompt_len_;
    torch::Tensor ids = torch::zeros({b, s}, i64);
    torch::Tensor mask = torch::zeros({b, s}, i64);
    for (int64_t r = 0; r < b; ++r) {
      const auto& p = prompts_[r];
      const int64_t n = static_cast<int64_t>(p.size());
      ids[r].narrow(0, s - n, n).copy_(torch::tensor(p, i64));
      mask[r].narrow(0, s - n, n).fill_(1);
      state_->active.push_back(static_cast<size_t>(r));
      state_->generators.push_back(at::make_generator<at::CPUGeneratorImpl>(params_.seed));
    }
    state_->ids = ids.to(device);
    state_->mask = mask.to(device);
  }
  State& st = *state_;
  // Keep the unfinished rows only (finished at the last step or by Finish).
  std::vector<int64_t> keep;
  for (size_t i = 0; i < st.active.size(); ++i) {
    if (reasons_[st.active[i]] == FinishReason::kNone) keep.push_back(static_cast<int64_t>(i));
  }
  if (keep.size() != st.active.size()) {
    torch::Tensor idx = torch::tensor(keep, i64).to(device);
    std::vector<size_t> active;
    for (int64_t i : keep) active.push_back(st.active[static_cast<size_t>(i)]);
    st.active = std::move(active);
    st.mask = st.mask.index_select(0, idx);
    if (st.ids.defined()) st.ids = st.ids.index_select(0, idx);
    if (st.last.defined()) st.last = st.last.index_select(0, idx);
    if (st.cache) st.cache->SelectRows(idx);
  }
  torch::Tensor hidden;  // [A, 1, H]: the last position
  if (steps_ == 0) {
    if (params_.use_kv_cache) {
      st.cache = decoder.NewCache(static_cast<int64_t>(st.active.size()),
                                  prompt_len_ + params_.max_new_tokens);
      hidden = decoder.Forward(st.ids, PositionsFromMask(st.mask), st.mask, &*st.cache);
      st.ids = torch::Tensor();  // the cache holds the prompt now
    } else {
      hidden = decoder.Hidden(st.ids, st.mask);
    }
  } else {
    // The new token's position: the real tokens before it.
    torch::Tensor positions = st.mask.sum(1, /*keepdim=*/true);
    st.mask = torch::cat({st.mask, torch::ones_like(st.last)}, 1);
    if (params_.use_kv_cache) {
      hidden = decoder.Forward(st.last, positions, st.mask, &*st.cache);
    } else {
      st.ids = torch::cat({st.ids, st.last}, 1);
      hidden = decoder.Hidden(st.ids, st.mask);
    }
  }
  hidden = hidden.narrow(1, hidden.size(1) - 1, 1);
  torch::Tensor logits = decoder.HeadLogits(hidden).select(1, 0).to(c10::kFloat).cpu();  // [A, V]
  std::vector<int64_t> out(rows(), kNoToken);
  std::vector<int64_t> picked;
  for (size_t i = 0; i < st.active.size(); ++i) {
    const size_t row = st.active[i];
    const int64_t token = Pick(logits[static_cast<int64_t>(i)], params_, st.generators[row]);
    picked.push_back(token);
    out[row] = token;
    generated_[row].push_back(token);
    if (std::find(eos_.begin(), eos_.end(), token) != eos_.end()) {
      reasons_[row] = FinishReason::kEos;
    } else if (static_cast<int64_t>(generated_[row].size()) >= params_.max_new_tokens) {
      reasons_[row] = FinishReason::kLength;
    }
  }
  st.last = torch::tensor(picked, i64).view({-1, 1}).to(device);
  ++steps_;
  if (done()) state_.reset();  // frees the cache at once
  return out;
}

}  // namespace modelgrid::hf

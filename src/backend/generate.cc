// The `generate` task: a decode loop without a KV cache. Each step runs
// forward on the whole sequence so far (input_ids INT64 [B,T] → logits
// [B,T,V]), picks one token per row from the last position's logits (argmax,
// or a draw from softmax(logits / temperature) restricted to the top k) and
// appends it.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/script.h>

#include "backend/loaded_model.h"

namespace modelgrid::backend_internal {
namespace {

struct GenerateParams {
  int64_t max_new_tokens = kDefaultMaxNewTokens;
  bool do_sample = false;
  double temperature = 1.0;
  std::optional<int64_t> top_k;
  uint64_t seed = 0;
};

Result<GenerateParams> ParseParams(const std::string& model, const nlohmann::json& params) {
  const std::string prefix = "model '" + model + "': generate: ";
  GenerateParams p;
  if (params.is_null()) return p;
  if (!params.is_object())
    return Status::InvalidArgument(prefix + "parameters must be a JSON object");
  if (params.contains("max_new_tokens")) {
    const auto& v = params["max_new_tokens"];
    if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > kMaxNewTokensLimit) {
      return Status::InvalidArgument(prefix + "max_new_tokens must be an integer in [1, " +
                                     std::to_string(kMaxNewTokensLimit) + "], got " + v.dump());
    }
    p.max_new_tokens = v.get<int64_t>();
  }
  if (params.contains("do_sample")) {
    if (!params["do_sample"].is_boolean()) {
      return Status::InvalidArgument(prefix + "do_sample must be a bool, got " +
                                     params["do_sample"].dump());
    }
    p.do_sample = params["do_sample"].get<bool>();
  }
  if (params.contains("temperature")) {
    const auto& v = params["temperature"];
    if (!v.is_number() || !(v.get<double>() > 0.0)) {
      return Status::InvalidArgument(prefix + "temperature must be a number > 0, got " + v.dump());
    }
    p.temperature = v.get<double>();
  }
  if (params.contains("top_k") && !params["top_k"].is_null()) {
    const auto& v = params["top_k"];
    if (!v.is_number_integer() || v.get<int64_t>() < 1) {
      return Status::InvalidArgument(prefix + "top_k must be an integer >= 1, got " + v.dump());
    }
    p.top_k = v.get<int64_t>();
  }
  if (params.contains("seed")) {
    const auto& v = params["seed"];
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
      return Status::InvalidArgument(prefix + "seed must be an unsigned integer, got " + v.dump());
    }
    p.seed = v.get<uint64_t>();
  }
  return p;
}

// The logits tensor of forward's output: a tensor, the first element of a
// tuple/list, or the "logits" entry of a dict.
torch::Tensor LogitsOf(const c10::IValue& out) {
  if (out.isTensor()) return out.toTensor();
  if (out.isTuple() && !out.toTupleRef().elements().empty() &&
      out.toTupleRef().elements()[0].isTensor()) {
    return out.toTupleRef().elements()[0].toTensor();
  }
  if (out.isList() && !out.toListRef().empty() && out.toListRef()[0].isTensor()) {
    return out.toListRef()[0].toTensor();
  }
  if (out.isGenericDict()) {
    auto dict = out.toGenericDict();
    auto it = dict.find(c10::IValue(std::string("logits")));
    if (it != dict.end() && it->value().isTensor()) return it->value().toTensor();
  }
  return {};
}

}  // namespace

Result<std::vector<InferTensor>> Generate(const LoadedModel& m,
                                          std::span<const InferTensorView> inputs,
                                          const nlohmann::json& params) {
  const std::string prefix = "model '" + m.model.name + "': generate: ";
  MG_ASSIGN_OR_RETURN(GenerateParams p, ParseParams(m.model.name, params));
  const TaskInfo& task = m.tasks.at("infer");
  if (task.inputs.size() != 1) {
    return Status::Unsupported(prefix +
                               "needs a forward with one input (input_ids), this one has " +
                               std::to_string(task.inputs.size()));
  }
  MG_ASSIGN_OR_RETURN(auto tensors, ToTorchInputs(m, "generate", task, inputs));
  torch::Tensor ids = tensors[0];
  if (ids.scalar_type() != c10::kLong || ids.dim() != 2 || ids.size(0) < 1 || ids.size(1) < 1) {
    return Status::InvalidArgument(prefix + "input '" + task.inputs[0].spec.name +
                                   "' must be INT64 [B,S] with B, S >= 1, got " +
                                   FormatShape(ids.sizes().vec()));
  }
  const int64_t prompt = ids.size(1);
  if (m.max_positions && prompt + p.max_new_tokens > *m.max_positions) {
    return Status::InvalidArgument(
        prefix + "prompt length " + std::to_string(prompt) + " + max_new_tokens " +
        std::to_string(p.max_new_tokens) + " = " + std::to_string(prompt + p.max_new_tokens) +
        " exceeds the model's " + m.max_positions_key + " " + std::to_string(*m.max_positions));
  }
  c10::InferenceMode guard;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(p.seed);
  torch::jit::Method forward = m.module.get_method(task.method);
  torch::Tensor seq = ids.clone();
  for (int64_t step = 0; step < p.max_new_tokens; ++step) {
    torch::Tensor logits = LogitsOf(forward({seq}));
    if (!logits.defined() || logits.dim() != 3 || logits.size(0) != seq.size(0) ||
        logits.size(1) != seq.size(1)) {
      return Status::Internal(
          prefix + "forward must return logits [B,S,V] for input_ids " +
          FormatShape(seq.sizes().vec()) + ", got " +
          (logits.defined() ? FormatShape(logits.sizes().vec()) : std::string("no tensor")));
    }
    torch::Tensor last = logits.select(1, -1).to(c10::kFloat);  // [B,V]
    torch::Tensor next;
    if (!p.do_sample) {
      next = last.argmax(-1, /*keepdim=*/true);
    } else {
      torch::Tensor scaled = last / p.temperature;
      if (p.top_k && *p.top_k < scaled.size(-1)) {
        torch::Tensor kth = std::get<0>(scaled.topk(*p.top_k, -1)).select(-1, -1).unsqueeze(-1);
        scaled = scaled.masked_fill(scaled < kth, -std::numeric_limits<float>::infinity());
      }
      torch::Tensor probs = torch::softmax(scaled, -1).cpu();
      next = torch::multinomial(probs, 1, /*replacement=*/false, gen).to(seq.device());
    }
    seq = torch::cat({seq, next.to(c10::kLong)}, 1);
  }
  MG_ASSIGN_OR_RETURN(InferTensor output_ids, FromTorch(seq, "output_ids"));
  MG_ASSIGN_OR_RETURN(InferTensor generated_ids,
                      FromTorch(seq.narrow(1, prompt, p.max_new_tokens), "generated_ids"));
  std::vector<InferTensor> out;
  out.push_back(std::move(output_ids));
  out.push_back(std::move(generated_ids));
  return out;
}

}  // namespace modelgrid::backend_internal

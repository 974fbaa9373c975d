// Test helper: tiny Hugging Face folders with random weights, written by the
// test itself (config.json + safetensors, single or sharded), so that the
// native modules can be tested without the HF zoo. The tensor names are
// transformers' checkpoint names; the values are random.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/script.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "hf/generation.h"
#include "hf/native_model.h"

namespace modelgrid::hf::testing {

using nlohmann::json;
namespace fs = std::filesystem;

inline std::string SafetensorsDtype(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat:
      return "F32";
    case c10::kHalf:
      return "F16";
    case c10::kBFloat16:
      return "BF16";
    case c10::kLong:
      return "I64";
    case c10::kDouble:
      return "F64";
    default:
      return "?";
  }
}

// Writes `tensors` (in this order) as one safetensors file.
inline void WriteSafetensors(const fs::path& path,
                             const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  json header = json::object();
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    torch::Tensor c = t.contiguous().cpu();
    const uint64_t bytes = c.nbytes();
    header[name] = {{"dtype", SafetensorsDtype(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  header["__metadata__"] = {{"format", "pt"}};
  std::string text = header.dump();
  while (text.size() % 8 != 0) text += ' ';
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = text.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& c : data) {
    out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
  }
}

inline void WriteJson(const fs::path& path, const json& doc) { std::ofstream(path) << doc.dump(2); }

// A folder under construction: config.json + fp32 tensors.
struct TinyModel {
  json config;
  std::vector<std::pair<std::string, torch::Tensor>> tensors;

  torch::Tensor* Find(const std::string& name) {
    for (auto& [n, t] : tensors) {
      if (n == name) return &t;
    }
    return nullptr;
  }
  void Remove(const std::string& name) {
    std::erase_if(tensors, [&](const auto& p) { return p.first == name; });
  }
  void Rename(const std::string& from, const std::string& to) {
    for (auto& [n, t] : tensors) {
      if (n == from) n = to;
    }
  }
  // Renames every tensor starting with `from` to start with `to` instead.
  void Reprefix(const std::string& from, const std::string& to) {
    for (auto& [n, t] : tensors) {
      if (n.rfind(from, 0) == 0) n = to + n.substr(from.size());
    }
  }

  // Writes config.json and the weights cast to `dtype` (torch_dtype set to
  // match), in one file or `shards` shards with an index.
  fs::path Write(const fs::path& dir, c10::ScalarType dtype = c10::kFloat, int shards = 1) const {
    fs::create_directories(dir);
    json cfg = config;
    cfg["torch_dtype"] = dtype == c10::kHalf       ? "float16"
                         : dtype == c10::kBFloat16 ? "bfloat16"
                                                   : "float32";
    WriteJson(dir / "config.json", cfg);
    std::vector<std::pair<std::string, torch::Tensor>> cast;
    for (const auto& [n, t] : tensors) {
      cast.emplace_back(n, t.is_floating_point() ? t.to(dtype) : t);
    }
    if (shards <= 1) {
      WriteSafetensors(dir / "model.safetensors", cast);
      return dir;
    }
    json map = json::object();
    uint64_t total = 0;
    const size_t per = (cast.size() + shards - 1) / shards;
    for (int s = 0; s < shards; ++s) {
      char name[64];
      std::snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", s + 1, shards);
      std::vector<std::pair<std::string, torch::Tensor>> part;
      for (size_t i = s * per; i < cast.size() && i < (s + 1) * per; ++i) {
        part.push_back(cast[i]);
        map[cast[i].first] = name;
        total += cast[i].second.nbytes();
      }
      WriteSafetensors(dir / name, part);
    }
    WriteJson(dir / "model.safetensors.index.json",
              {{"metadata", {{"total_size", total}}}, {"weight_map", map}});
    return dir;
  }
};

// Random tensors from one seeded generator.
class Random {
 public:
  explicit Random(uint64_t seed) : gen_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}
  torch::Tensor Normal(std::vector<int64_t> shape, double scale) {
    return torch::randn(shape, gen_, torch::TensorOptions().dtype(c10::kFloat)) * scale;
  }
  // A linear layer's weight [out,in] (and bias [out]) into `m`.
  void Linear(TinyModel& m, const std::string& prefix, int64_t out, int64_t in, bool bias = true) {
    m.tensors.emplace_back(prefix + "weight", Normal({out, in}, 1.0 / std::sqrt(double(in))));
    if (bias) m.tensors.emplace_back(prefix + "bias", Normal({out}, 0.05));
  }
  void Norm(TinyModel& m, const std::string& prefix, int64_t dim, bool bias = true) {
    m.tensors.emplace_back(prefix + "weight", 1.0 + Normal({dim}, 0.1));
    if (bias) m.tensors.emplace_back(prefix + "bias", Normal({dim}, 0.05));
  }

 private:
  at::Generator gen_;
};

struct LlamaOptions {
  std::string model_type = "llama";
  std::string architecture = "LlamaForCausalLM";
  int64_t layers = 2, hidden = 32, heads = 4, kv_heads = 2, intermediate = 48, vocab = 64;
  int64_t max_positions = 64;
  bool tied = false;
  bool qkv_bias = false;  // qwen2
  json rope_scaling = nullptr;
  uint64_t seed = 1;
};

inline TinyModel TinyLlama(const LlamaOptions& o = {}) {
  TinyModel m;
  Random r(o.seed);
  const int64_t hd = o.hidden / o.heads;
  m.config = {{"model_type", o.model_type},
              {"architectures", {o.architecture}},
              {"hidden_size", o.hidden},
              {"num_hidden_layers", o.layers},
              {"num_attention_heads", o.heads},
              {"num_key_value_heads", o.kv_heads},
              {"intermediate_size", o.intermediate},
              {"vocab_size", o.vocab},
              {"max_position_embeddings", o.max_positions},
              {"rms_norm_eps", 1e-6},
              {"rope_theta", 10000.0},
              {"hidden_act", "silu"},
              {"tie_word_embeddings", o.tied},
              {"eos_token_id", 2},
              {"bos_token_id", 1}};
  if (!o.rope_scaling.is_null()) m.config["rope_scaling"] = o.rope_scaling;
  m.tensors.emplace_back("model.embed_tokens.weight", r.Normal({o.vocab, o.hidden}, 1.0));
  for (int64_t i = 0; i < o.layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    r.Norm(m, l + "input_layernorm.", o.hidden, false);
    r.Linear(m, l + "self_attn.q_proj.", o.heads * hd, o.hidden, o.qkv_bias);
    r.Linear(m, l + "self_attn.k_proj.", o.kv_heads * hd, o.hidden, o.qkv_bias);
    r.Linear(m, l + "self_attn.v_proj.", o.kv_heads * hd, o.hidden, o.qkv_bias);
    r.Linear(m, l + "self_attn.o_proj.", o.hidden, o.heads * hd, false);
    r.Norm(m, l + "post_attention_layernorm.", o.hidden, false);
    r.Linear(m, l + "mlp.gate_proj.", o.intermediate, o.hidden, false);
    r.Linear(m, l + "mlp.up_proj.", o.intermediate, o.hidden, false);
    r.Linear(m, l + "mlp.down_proj.", o.hidden, o.intermediate, false);
  }
  r.Norm(m, "model.norm.", o.hidden, false);
  if (!o.tied) r.Linear(m, "lm_head.", o.vocab, o.hidden, false);
  return m;
}

inline TinyModel TinyGpt2(bool prefixed = true, uint64_t seed = 2) {
  TinyModel m;
  Random r(seed);
  const int64_t h = 32, layers = 2, vocab = 64, positions = 64;
  m.config = {{"model_type", "gpt2"},
              {"architectures", {"GPT2LMHeadModel"}},
              {"n_embd", h},
              {"n_layer", layers},
              {"n_head", 4},
              {"vocab_size", vocab},
              {"n_positions", positions},
              {"layer_norm_epsilon", 1e-5},
              {"activation_function", "gelu_new"},
              {"eos_token_id", 3}};
  const std::string p = prefixed ? "transformer." : "";
  m.tensors.emplace_back(p + "wte.weight", r.Normal({vocab, h}, 0.5));
  m.tensors.emplace_back(p + "wpe.weight", r.Normal({positions, h}, 0.1));
  for (int64_t i = 0; i < layers; ++i) {
    const std::string l = p + "h." + std::to_string(i) + ".";
    r.Norm(m, l + "ln_1.", h);
    // Conv1D: [in, out].
    m.tensors.emplace_back(l + "attn.c_attn.weight", r.Normal({h, 3 * h}, 0.2));
    m.tensors.emplace_back(l + "attn.c_attn.bias", r.Normal({3 * h}, 0.05));
    m.tensors.emplace_back(l + "attn.c_proj.weight", r.Normal({h, h}, 0.2));
    m.tensors.emplace_back(l + "attn.c_proj.bias", r.Normal({h}, 0.05));
    // The causal-mask buffer of old GPT-2 files (ignorable).
    m.tensors.emplace_back(l + "attn.bias",
                           torch::ones({1, 1, positions, positions}).tril().to(c10::kFloat));
    r.Norm(m, l + "ln_2.", h);
    m.tensors.emplace_back(l + "mlp.c_fc.weight", r.Normal({h, 4 * h}, 0.2));
    m.tensors.emplace_back(l + "mlp.c_fc.bias", r.Normal({4 * h}, 0.05));
    m.tensors.emplace_back(l + "mlp.c_proj.weight", r.Normal({4 * h, h}, 0.1));
    m.tensors.emplace_back(l + "mlp.c_proj.bias", r.Normal({h}, 0.05));
  }
  r.Norm(m, p + "ln_f.", h);
  return m;
}

// BERT / RoBERTa family ("bert", "roberta", "xlm-roberta", "camembert").
// `prefix`: "bert." / "roberta." or "" (sentence-transformers layout).
inline TinyModel TinyBert(const std::string& model_type, const std::string& architecture,
                          const std::string& prefix, int64_t labels = 0, uint64_t seed = 3) {
  TinyModel m;
  Random r(seed);
  const int64_t h = 32, layers = 2, inner = 64, vocab = 64, positions = 40;
  const bool roberta = model_type != "bert";
  m.config = {{"model_type", model_type},
              {"architectures", {architecture}},
              {"hidden_size", h},
              {"num_hidden_layers", layers},
              {"num_attention_heads", 4},
              {"intermediate_size", inner},
              {"vocab_size", vocab},
              {"max_position_embeddings", positions},
              {"type_vocab_size", roberta ? 1 : 2},
              {"layer_norm_eps", roberta ? 1e-5 : 1e-12},
              {"hidden_act", "gelu"},
              {"pad_token_id", roberta ? 1 : 0}};
  if (labels > 0) {
    json id2label = json::object();
    for (int64_t i = 0; i < labels; ++i) id2label[std::to_string(i)] = "L" + std::to_string(i);
    m.config["id2label"] = id2label;
  }
  const std::string& p = prefix;
  m.tensors.emplace_back(p + "embeddings.word_embeddings.weight", r.Normal({vocab, h}, 0.5));
  m.tensors.emplace_back(p + "embeddings.position_embeddings.weight",
                         r.Normal({positions, h}, 0.1));
  m.tensors.emplace_back(p + "embeddings.token_type_embeddings.weight",
                         r.Normal({roberta ? 1 : 2, h}, 0.1));
  m.tensors.emplace_back(p + "embeddings.position_ids",
                         torch::arange(positions, torch::kLong).unsqueeze(0));  // ignorable buffer
  r.Norm(m, p + "embeddings.LayerNorm.", h);
  for (int64_t i = 0; i < layers; ++i) {
    const std::string l = p + "encoder.layer." + std::to_string(i) + ".";
    r.Linear(m, l + "attention.self.query.", h, h);
    r.Linear(m, l + "attention.self.key.", h, h);
    r.Linear(m, l + "attention.self.value.", h, h);
    r.Linear(m, l + "attention.output.dense.", h, h);
    r.Norm(m, l + "attention.output.LayerNorm.", h);
    r.Linear(m, l + "intermediate.dense.", inner, h);
    r.Linear(m, l + "output.dense.", h, inner);
    r.Norm(m, l + "output.LayerNorm.", h);
  }
  r.Linear(m, p + "pooler.dense.", h, h);
  if (architecture.ends_with("ForSequenceClassification")) {
    if (roberta) {
      r.Linear(m, "classifier.dense.", h, h);
      r.Linear(m, "classifier.out_proj.", labels, h);
    } else {
      r.Linear(m, "classifier.", labels, h);
    }
  } else if (architecture.ends_with("ForTokenClassification")) {
    r.Linear(m, "classifier.", labels, h);
  }
  return m;
}

inline TinyModel TinyDistilBert(const std::string& architecture, const std::string& prefix,
                                int64_t labels = 0, uint64_t seed = 4) {
  TinyModel m;
  Random r(seed);
  const int64_t h = 32, layers = 2, inner = 64, vocab = 64, positions = 40;
  m.config = {{"model_type", "distilbert"},
              {"architectures", {architecture}},
              {"dim", h},
              {"n_layers", layers},
              {"n_heads", 4},
              {"hidden_dim", inner},
              {"vocab_size", vocab},
              {"max_position_embeddings", positions},
              {"activation", "gelu"},
              {"pad_token_id", 0}};
  if (labels > 0) m.config["num_labels"] = labels;
  const std::string& p = prefix;
  m.tensors.emplace_back(p + "embeddings.word_embeddings.weight", r.Normal({vocab, h}, 0.5));
  m.tensors.emplace_back(p + "embeddings.position_embeddings.weight",
                         r.Normal({positions, h}, 0.1));
  r.Norm(m, p + "embeddings.LayerNorm.", h);
  for (int64_t i = 0; i < layers; ++i) {
    const std::string l = p + "transformer.layer." + std::to_string(i) + ".";
    r.Linear(m, l + "attention.q_lin.", h, h);
    r.Linear(m, l + "attention.k_lin.", h, h);
    r.Linear(m, l + "attention.v_lin.", h, h);
    r.Linear(m, l + "attention.out_lin.", h, h);
    r.Norm(m, l + "sa_layer_norm.", h);
    r.Linear(m, l + "ffn.lin1.", inner, h);
    r.Linear(m, l + "ffn.lin2.", h, inner);
    r.Norm(m, l + "output_layer_norm.", h);
  }
  if (architecture.ends_with("ForSequenceClassification")) {
    r.Linear(m, "pre_classifier.", h, h);
    r.Linear(m, "classifier.", labels, h);
  } else if (architecture.ends_with("ForTokenClassification")) {
    r.Linear(m, "classifier.", labels, h);
  }
  return m;
}

// A fresh folder under the system's temp directory, removed on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("mg_hf_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// ---------------------------------------------------------------- test helpers

inline std::shared_ptr<NativeModel> MustLoad(const std::filesystem::path& dir,
                                             LoadOptions options = {}) {
  auto m = NativeModel::Load(dir, options);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : nullptr;
}

inline torch::Tensor Ids(std::vector<std::vector<int64_t>> rows) {
  const int64_t b = static_cast<int64_t>(rows.size()), s = static_cast<int64_t>(rows[0].size());
  torch::Tensor t = torch::empty({b, s}, torch::kLong);
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t j = 0; j < s; ++j) t[i][j] = rows[i][j];
  }
  return t;
}

inline double MaxDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

// Runs a whole generation, returning every row's tokens.
inline std::vector<std::vector<int64_t>> GenerateAll(std::shared_ptr<NativeModel> model,
                                                     std::vector<std::vector<int64_t>> prompts,
                                                     const GenerationParams& params) {
  auto g = Generation::Start(model, std::move(prompts), params);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  if (!g.ok()) return {};
  while (!(*g)->done()) {
    auto step = (*g)->Step();
    EXPECT_TRUE(step.ok()) << step.status().ToString();
    if (!step.ok()) return {};
  }
  return (*g)->generated();
}

inline GenerationParams Greedy(int64_t n) {
  GenerationParams p;
  p.max_new_tokens = n;
  p.ignore_eos = true;
  return p;
}

}  // namespace modelgrid::hf::testing

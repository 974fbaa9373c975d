#include "hf/model_config.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "estimate/hf_config.h"

namespace modelgrid::hf {

namespace {

using nlohmann::json;

struct ArchEntry {
  const char* model_type;
  Family family;
  const char* architecture;
  Head head;
};

// Every (model_type, architectures[0]) pair the native modules run.
constexpr ArchEntry kArchitectures[] = {
    {"bert", Family::kBert, "BertModel", Head::kBase},
    {"bert", Family::kBert, "BertForSequenceClassification", Head::kSequenceClassification},
    {"bert", Family::kBert, "BertForTokenClassification", Head::kTokenClassification},
    {"roberta", Family::kRoberta, "RobertaModel", Head::kBase},
    {"roberta", Family::kRoberta, "RobertaForSequenceClassification",
     Head::kSequenceClassification},
    {"roberta", Family::kRoberta, "RobertaForTokenClassification", Head::kTokenClassification},
    {"xlm-roberta", Family::kRoberta, "XLMRobertaModel", Head::kBase},
    {"xlm-roberta", Family::kRoberta, "XLMRobertaForSequenceClassification",
     Head::kSequenceClassification},
    {"xlm-roberta", Family::kRoberta, "XLMRobertaForTokenClassification",
     Head::kTokenClassification},
    {"camembert", Family::kRoberta, "CamembertModel", Head::kBase},
    {"camembert", Family::kRoberta, "CamembertForSequenceClassification",
     Head::kSequenceClassification},
    {"camembert", Family::kRoberta, "CamembertForTokenClassification", Head::kTokenClassification},
    {"distilbert", Family::kDistilBert, "DistilBertModel", Head::kBase},
    {"distilbert", Family::kDistilBert, "DistilBertForSequenceClassification",
     Head::kSequenceClassification},
    {"distilbert", Family::kDistilBert, "DistilBertForTokenClassification",
     Head::kTokenClassification},
    {"gpt2", Family::kGpt2, "GPT2Model", Head::kBase},
    {"gpt2", Family::kGpt2, "GPT2LMHeadModel", Head::kCausalLm},
    {"llama", Family::kLlama, "LlamaModel", Head::kBase},
    {"llama", Family::kLlama, "LlamaForCausalLM", Head::kCausalLm},
    {"mistral", Family::kLlama, "MistralModel", Head::kBase},
    {"mistral", Family::kLlama, "MistralForCausalLM", Head::kCausalLm},
    {"qwen2", Family::kLlama, "Qwen2Model", Head::kBase},
    {"qwen2", Family::kLlama, "Qwen2ForCausalLM", Head::kCausalLm},
};

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string Short(const json& v) {
  std::string text = v.dump();
  return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

Result<json> ReadJson(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path.string() + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  try {
    json doc = json::parse(text.str());
    if (!doc.is_object()) return Status::InvalidArgument(path.string() + ": not a JSON object");
    return doc;
  } catch (const json::exception& e) {
    return Status::InvalidArgument(path.string() + ": not valid JSON: " + e.what());
  }
}

// Typed access to one JSON object's fields; errors name the file and field.
class Fields {
 public:
  Fields(const json& doc, std::string file) : doc_(doc), file_(std::move(file)) {}

  const json* Find(const std::string& name) const {
    auto it = doc_.find(name);
    return it == doc_.end() || it->is_null() ? nullptr : &*it;
  }
  Status Wrong(const std::string& name, const std::string& expected, const json& got) const {
    return Status::InvalidArgument(file_ + ": field '" + name + "' must be " + expected + ", got " +
                                   Short(got));
  }
  Result<double> NumberOr(const std::string& name, double fallback) const {
    const json* v = Find(name);
    if (v == nullptr) return fallback;
    if (!v->is_number()) return Wrong(name, "a number", *v);
    return v->get<double>();
  }
  Result<double> PositiveNumberOr(const std::string& name, double fallback) const {
    MG_ASSIGN_OR_RETURN(double x, NumberOr(name, fallback));
    if (!(x > 0)) return Wrong(name, "a number > 0", *Find(name));
    return x;
  }
  Result<bool> FlagOr(const std::string& name, bool fallback) const {
    const json* v = Find(name);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) return Wrong(name, "a boolean", *v);
    return v->get<bool>();
  }
  Result<std::string> TextOr(const std::string& name, const std::string& fallback) const {
    const json* v = Find(name);
    if (v == nullptr) return fallback;
    if (!v->is_string()) return Wrong(name, "a string", *v);
    return v->get<std::string>();
  }
  // An optional non-negative integer.
  Result<std::optional<int64_t>> Id(const std::string& name) const {
    const json* v = Find(name);
    if (v == nullptr) return std::optional<int64_t>();
    if (!v->is_number_integer() || v->get<int64_t>() < 0) {
      return Wrong(name, "a non-negative integer", *v);
    }
    return std::optional<int64_t>(v->get<int64_t>());
  }
  // An optional non-negative integer or a list of them (eos_token_id).
  Result<std::optional<std::vector<int64_t>>> Ids(const std::string& name) const {
    const json* v = Find(name);
    if (v == nullptr) return std::optional<std::vector<int64_t>>();
    std::vector<int64_t> out;
    auto add = [&](const json& x) -> bool {
      if (!x.is_number_integer() || x.get<int64_t>() < 0) return false;
      out.push_back(x.get<int64_t>());
      return true;
    };
    bool ok = true;
    if (v->is_array()) {
      for (const json& x : *v) ok = ok && add(x);
    } else {
      ok = add(*v);
    }
    if (!ok) return Wrong(name, "a non-negative integer or a list of them", *v);
    return std::optional<std::vector<int64_t>>(std::move(out));
  }
  // A required positive integer (checked here so that the message names
  // this family's field, before the estimator's parser sees renamed ones).
  Status RequireCount(const std::string& name, const std::string& model_type) const {
    const json* v = Find(name);
    if (v == nullptr) {
      return Status::InvalidArgument(file_ + ": field '" + name +
                                     "' is missing (needed for model_type " + model_type + ")");
    }
    if (!v->is_number_integer() || v->get<int64_t>() < 1) {
      return Wrong(name, "a positive integer", *v);
    }
    return Status::Ok();
  }

 private:
  const json& doc_;
  std::string file_;
};

Result<Activation> ParseActivation(const std::string& file, const std::string& field,
                                   const std::string& name) {
  if (name == "gelu") return Activation::kGelu;
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") {
    return Activation::kGeluTanh;
  }
  if (name == "quick_gelu") return Activation::kQuickGelu;
  if (name == "relu") return Activation::kRelu;
  if (name == "silu" || name == "swish") return Activation::kSilu;
  return Status::Unsupported(file + ": field '" + field + "' is '" + name +
                             "', not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, "
                             "gelu_fast, quick_gelu, relu, silu, swish)");
}

// The config.json object rewritten for estimate::ParseHfConfig, which knows
// gpt2, bert and llama/mistral: the roberta family reads as bert, qwen2 as
// llama, distilbert's fields are renamed to BERT's (checked under their
// own names first).
Result<json> AsEstimatorConfig(const json& doc, const Fields& f, const std::string& model_type,
                               Family family) {
  json out = doc;
  switch (family) {
    case Family::kBert:
    case Family::kRoberta:
      out["model_type"] = "bert";
      break;
    case Family::kDistilBert: {
      const std::pair<const char*, const char*> renames[] = {{"dim", "hidden_size"},
                                                             {"n_layers", "num_hidden_layers"},
                                                             {"n_heads", "num_attention_heads"},
                                                             {"hidden_dim", "intermediate_size"},
                                                             {"vocab_size", "vocab_size"}};
      for (const auto& [from, to] : renames) {
        MG_RETURN_IF_ERROR(f.RequireCount(from, model_type));
        out[to] = doc[from];
      }
      if (!out.contains("max_position_embeddings") || out["max_position_embeddings"].is_null()) {
        out["max_position_embeddings"] = 512;
      }
      out["model_type"] = "bert";
      out["type_vocab_size"] = 1;
      break;
    }
    case Family::kGpt2:
      break;
    case Family::kLlama:
      if (model_type == "qwen2") {
        out["model_type"] = "llama";
        if (!out.contains("max_position_embeddings") || out["max_position_embeddings"].is_null()) {
          out["max_position_embeddings"] = 32768;  // Qwen2Config's default
        }
      }
      break;
  }
  return out;
}

Status ParseRope(const Fields& f, const std::string& file, RopeConfig* rope) {
  MG_ASSIGN_OR_RETURN(rope->theta, f.PositiveNumberOr("rope_theta", 10000.0));
  const json* scaling = f.Find("rope_scaling");
  if (scaling == nullptr) return Status::Ok();
  if (!scaling->is_object()) return f.Wrong("rope_scaling", "an object or null", *scaling);
  const Fields s(*scaling, file + ": field 'rope_scaling'");
  MG_ASSIGN_OR_RETURN(std::string type, s.TextOr("rope_type", ""));
  if (type.empty()) {
    MG_ASSIGN_OR_RETURN(type, s.TextOr("type", "default"));
  }
  if (type == "default") return Status::Ok();
  if (type == "linear") {
    rope->scaling = RopeConfig::Scaling::kLinear;
    MG_ASSIGN_OR_RETURN(rope->factor, s.PositiveNumberOr("factor", 1.0));
    return Status::Ok();
  }
  if (type == "llama3") {
    rope->scaling = RopeConfig::Scaling::kLlama3;
    for (const char* name :
         {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
      if (s.Find(name) == nullptr) {
        return Status::InvalidArgument(file + ": field 'rope_scaling." + std::string(name) +
                                       "' is missing (needed for rope_type llama3)");
      }
    }
    MG_ASSIGN_OR_RETURN(rope->factor, s.PositiveNumberOr("factor", 1.0));
    MG_ASSIGN_OR_RETURN(rope->low_freq_factor, s.PositiveNumberOr("low_freq_factor", 1.0));
    MG_ASSIGN_OR_RETURN(rope->high_freq_factor, s.PositiveNumberOr("high_freq_factor", 4.0));
    MG_ASSIGN_OR_RETURN(rope->original_max_positions,
                        s.PositiveNumberOr("original_max_position_embeddings", 8192.0));
    if (rope->high_freq_factor <= rope->low_freq_factor) {
      return Status::InvalidArgument(file +
                                     ": field 'rope_scaling.high_freq_factor' must be larger than "
                                     "'low_freq_factor'");
    }
    return Status::Ok();
  }
  return Status::Unsupported(file + ": field 'rope_scaling.rope_type' is '" + type +
                             "', not supported (supported: default, linear, llama3)");
}

Result<std::vector<std::string>> ParseLabels(const Fields& f, Head head) {
  std::vector<std::string> labels;
  if (const json* v = f.Find("id2label")) {
    if (!v->is_object()) return f.Wrong("id2label", "an object {\"0\": \"NAME\", ...}", *v);
    std::map<int64_t, std::string> by_id;
    for (auto it = v->begin(); it != v->end(); ++it) {
      int64_t id = -1;
      try {
        size_t used = 0;
        id = std::stoll(it.key(), &used);
        if (used != it.key().size()) id = -1;
      } catch (const std::exception&) {
        id = -1;
      }
      if (id < 0 || !it.value().is_string()) {
        return f.Wrong("id2label", "an object {\"0\": \"NAME\", ...}", *v);
      }
      by_id[id] = it.value().get<std::string>();
    }
    int64_t expected = 0;
    for (const auto& [id, name] : by_id) {
      if (id != expected++) return f.Wrong("id2label", "keys 0..N-1", *v);
      labels.push_back(name);
    }
    return labels;
  }
  if (head != Head::kSequenceClassification && head != Head::kTokenClassification) return labels;
  int64_t n = 2;  // PretrainedConfig's default num_labels
  if (const json* v = f.Find("num_labels")) {
    if (!v->is_number_integer() || v->get<int64_t>() < 1) {
      return f.Wrong("num_labels", "a positive integer", *v);
    }
    n = v->get<int64_t>();
  }
  for (int64_t i = 0; i < n; ++i) labels.push_back("LABEL_" + std::to_string(i));
  return labels;
}

Status ParsePoolingFile(const std::filesystem::path& path, PoolingConfig* p) {
  MG_ASSIGN_OR_RETURN(json doc, ReadJson(path));
  const Fields f(doc, path.string());
  MG_ASSIGN_OR_RETURN(p->cls, f.FlagOr("pooling_mode_cls_token", false));
  MG_ASSIGN_OR_RETURN(p->max, f.FlagOr("pooling_mode_max_tokens", false));
  MG_ASSIGN_OR_RETURN(p->mean, f.FlagOr("pooling_mode_mean_tokens", false));
  MG_ASSIGN_OR_RETURN(p->mean_sqrt_len, f.FlagOr("pooling_mode_mean_sqrt_len_tokens", false));
  MG_ASSIGN_OR_RETURN(p->last_token, f.FlagOr("pooling_mode_lasttoken", false));
  MG_ASSIGN_OR_RETURN(bool weighted, f.FlagOr("pooling_mode_weightedmean_tokens", false));
  if (weighted) {
    return Status::Unsupported(path.string() +
                               ": field 'pooling_mode_weightedmean_tokens' is true, not supported "
                               "(supported: cls_token, max_tokens, mean_tokens, "
                               "mean_sqrt_len_tokens, lasttoken)");
  }
  if (p->modes() == 0) {
    return Status::InvalidArgument(path.string() + ": no pooling_mode_* field is true");
  }
  p->source = path.string();
  return Status::Ok();
}

// modules.json (sentence-transformers) and the pooling config.
Status ParsePooling(const std::filesystem::path& folder, bool decoder, PoolingConfig* p) {
  const std::filesystem::path modules = folder / "modules.json";
  std::error_code ec;
  std::optional<std::filesystem::path> pooling_file;
  if (std::filesystem::exists(modules, ec)) {
    std::ifstream in(modules, std::ios::binary);
    json doc;
    try {
      doc = json::parse(in);
    } catch (const json::exception& e) {
      return Status::InvalidArgument(modules.string() + ": not valid JSON: " + e.what());
    }
    if (!doc.is_array()) return Status::InvalidArgument(modules.string() + ": not a JSON array");
    for (const json& m : doc) {
      if (!m.is_object() || !m.contains("type") || !m["type"].is_string()) {
        return Status::InvalidArgument(
            modules.string() + ": every entry needs a string field 'type', got " + Short(m));
      }
      const std::string type = m["type"].get<std::string>();
      const std::string path =
          m.contains("path") && m["path"].is_string() ? m["path"].get<std::string>() : "";
      if (type == "sentence_transformers.models.Transformer") continue;
      if (type == "sentence_transformers.models.Pooling") {
        pooling_file = folder / path / "config.json";
      } else if (type == "sentence_transformers.models.Normalize") {
        p->normalize = true;
      } else {
        return Status::Unsupported(modules.string() + ": module type '" + type +
                                   "' is not supported (supported: "
                                   "sentence_transformers.models.Transformer, "
                                   "sentence_transformers.models.Pooling, "
                                   "sentence_transformers.models.Normalize)");
      }
    }
  } else if (std::filesystem::exists(folder / "1_Pooling" / "config.json", ec)) {
    pooling_file = folder / "1_Pooling" / "config.json";
  }
  if (pooling_file) return ParsePoolingFile(*pooling_file, p);
  // No pooling module: the documented default.
  (decoder ? p->last_token : p->mean) = true;
  p->source = p->normalize ? "default (with Normalize from modules.json)" : "default";
  return Status::Ok();
}

// generation_config.json's eos_token_id overrides config.json's.
Status ParseEos(const std::filesystem::path& folder, const Fields& config, ModelConfig* c) {
  const std::filesystem::path gen = folder / "generation_config.json";
  std::error_code ec;
  if (std::filesystem::exists(gen, ec)) {
    MG_ASSIGN_OR_RETURN(json doc, ReadJson(gen));
    const Fields f(doc, gen.string());
    MG_ASSIGN_OR_RETURN(auto ids, f.Ids("eos_token_id"));
    if (ids) {
      c->eos_token_ids = *ids;
      c->eos_source = gen.string();
      return Status::Ok();
    }
  }
  MG_ASSIGN_OR_RETURN(auto ids, config.Ids("eos_token_id"));
  if (ids) {
    c->eos_token_ids = *ids;
    c->eos_source = c->file;
  }
  return Status::Ok();
}

// Fields each family reads beyond the dimensions.
Status ParseFamilyFields(const Fields& f, ModelConfig* c) {
  const std::string& file = c->file;
  std::string act;
  switch (c->family) {
    case Family::kBert:
    case Family::kRoberta: {
      MG_ASSIGN_OR_RETURN(c->norm_eps, f.PositiveNumberOr("layer_norm_eps", 1e-12));
      MG_ASSIGN_OR_RETURN(act, f.TextOr("hidden_act", "gelu"));
      MG_ASSIGN_OR_RETURN(c->activation, ParseActivation(file, "hidden_act", act));
      MG_ASSIGN_OR_RETURN(std::string pos, f.TextOr("position_embedding_type", "absolute"));
      if (pos != "absolute") {
        return Status::Unsupported(file + ": field 'position_embedding_type' is '" + pos +
                                   "', not supported (supported: absolute)");
      }
      MG_ASSIGN_OR_RETURN(c->pad_token_id, f.Id("pad_token_id"));
      if (!c->pad_token_id) c->pad_token_id = c->family == Family::kRoberta ? 1 : 0;
      if (c->family == Family::kRoberta && *c->pad_token_id + 1 >= c->max_positions) {
        return Status::InvalidArgument(file + ": field 'pad_token_id' (" +
                                       std::to_string(*c->pad_token_id) +
                                       ") leaves no positions below max_position_embeddings (" +
                                       std::to_string(c->max_positions) + ")");
      }
      break;
    }
    case Family::kDistilBert: {
      c->norm_eps = 1e-12;  // DistilBERT's LayerNorms are built with eps=1e-12
      MG_ASSIGN_OR_RETURN(act, f.TextOr("activation", "gelu"));
      MG_ASSIGN_OR_RETURN(c->activation, ParseActivation(file, "activation", act));
      MG_ASSIGN_OR_RETURN(c->pad_token_id, f.Id("pad_token_id"));
      c->type_vocab_size = 0;
      break;
    }
    case Family::kGpt2: {
      MG_ASSIGN_OR_RETURN(c->norm_eps, f.PositiveNumberOr("layer_norm_epsilon", 1e-5));
      MG_ASSIGN_OR_RETURN(act, f.TextOr("activation_function", "gelu_new"));
      MG_ASSIGN_OR_RETURN(c->activation, ParseActivation(file, "activation_function", act));
      MG_ASSIGN_OR_RETURN(c->scale_attn_weights, f.FlagOr("scale_attn_weights", true));
      MG_ASSIGN_OR_RETURN(c->scale_attn_by_inverse_layer_idx,
                          f.FlagOr("scale_attn_by_inverse_layer_idx", false));
      MG_ASSIGN_OR_RETURN(c->pad_token_id, f.Id("pad_token_id"));
      c->type_vocab_size = 0;
      break;
    }
    case Family::kLlama: {
      MG_ASSIGN_OR_RETURN(c->norm_eps, f.PositiveNumberOr("rms_norm_eps", 1e-6));
      MG_ASSIGN_OR_RETURN(act, f.TextOr("hidden_act", "silu"));
      MG_ASSIGN_OR_RETURN(c->activation, ParseActivation(file, "hidden_act", act));
      MG_ASSIGN_OR_RETURN(c->pad_token_id, f.Id("pad_token_id"));
      MG_RETURN_IF_ERROR(ParseRope(f, file, &c->rope));
      MG_ASSIGN_OR_RETURN(double partial, f.NumberOr("partial_rotary_factor", 1.0));
      if (partial != 1.0) {
        return Status::Unsupported(file + ": field 'partial_rotary_factor' is " +
                                   std::to_string(partial) + ", not supported (only 1.0)");
      }
      bool use_window = true;
      if (c->model_type == "qwen2") {
        MG_ASSIGN_OR_RETURN(use_window, f.FlagOr("use_sliding_window", false));
      }
      if (use_window) {
        MG_ASSIGN_OR_RETURN(c->sliding_window, f.Id("sliding_window"));
      }
      if (c->head_dim % 2 != 0) {
        return Status::InvalidArgument(file + ": head_dim " + std::to_string(c->head_dim) +
                                       " is odd: rotary embeddings need an even head_dim");
      }
      c->type_vocab_size = 0;
      break;
    }
  }
  return Status::Ok();
}

Result<std::pair<Family, Head>> ResolveArchitecture(const Fields& f, const ModelConfig& c) {
  std::vector<std::string> types;
  std::optional<Family> family;
  for (const ArchEntry& e : kArchitectures) {
    if (std::find(types.begin(), types.end(), e.model_type) == types.end()) {
      types.push_back(e.model_type);
    }
    if (c.model_type == e.model_type) family = e.family;
  }
  if (!family) {
    std::sort(types.begin(), types.end());
    return Status::Unsupported(c.file + ": field 'model_type' is '" + c.model_type +
                               "', not supported (supported: " + Join(types) + ")");
  }
  const bool decoder = *family == Family::kGpt2 || *family == Family::kLlama;
  if (c.architecture.empty()) {
    return std::make_pair(*family, decoder ? Head::kCausalLm : Head::kBase);
  }
  std::vector<std::string> names;
  for (const ArchEntry& e : kArchitectures) {
    if (c.model_type != e.model_type) continue;
    if (c.architecture == e.architecture) return std::make_pair(e.family, e.head);
    names.push_back(e.architecture);
  }
  return Status::Unsupported(c.file + ": field 'architectures[0]' is '" + c.architecture +
                             "', not supported for model_type '" + c.model_type +
                             "' (supported: " + Join(names) + ")");
}

}  // namespace

std::string SupportedModelTypes() {
  std::vector<std::string> types;
  for (const ArchEntry& e : kArchitectures) {
    if (std::find(types.begin(), types.end(), e.model_type) == types.end()) {
      types.push_back(e.model_type);
    }
  }
  std::sort(types.begin(), types.end());
  return Join(types);
}

Result<ModelConfig> ReadModelConfig(const std::filesystem::path& folder) {
  ModelConfig c;
  c.folder = folder;
  const std::filesystem::path path = folder / "config.json";
  c.file = path.string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::NotFound(c.file + ": no such file");
  MG_ASSIGN_OR_RETURN(json doc, ReadJson(path));
  const Fields f(doc, c.file);
  const json* mt = f.Find("model_type");
  if (mt == nullptr) {
    return Status::InvalidArgument(c.file +
                                   ": field 'model_type' is missing (needed to pick the "
                                   "module; supported: " +
                                   SupportedModelTypes() + ")");
  }
  if (!mt->is_string()) return f.Wrong("model_type", "a string", *mt);
  c.model_type = mt->get<std::string>();
  if (const json* a = f.Find("architectures")) {
    if (!a->is_array() || (!a->empty() && !(*a)[0].is_string())) {
      return f.Wrong("architectures", "an array of strings", *a);
    }
    if (!a->empty()) c.architecture = (*a)[0].get<std::string>();
  }
  MG_ASSIGN_OR_RETURN(auto resolved, ResolveArchitecture(f, c));
  c.family = resolved.first;
  c.head = resolved.second;

  // Dimensions: the estimator's parser, on a copy it understands.
  MG_ASSIGN_OR_RETURN(json dims_doc, AsEstimatorConfig(doc, f, c.model_type, c.family));
  MG_ASSIGN_OR_RETURN(estimate::HfConfig dims, estimate::ParseHfConfig(dims_doc.dump(), c.file));
  c.hidden_size = static_cast<int64_t>(dims.hidden_size);
  c.num_layers = static_cast<int64_t>(dims.num_layers);
  c.num_heads = static_cast<int64_t>(dims.num_heads);
  c.num_kv_heads = static_cast<int64_t>(dims.num_kv_heads);
  c.head_dim = static_cast<int64_t>(dims.head_dim);
  c.intermediate_size = static_cast<int64_t>(dims.intermediate_size);
  c.vocab_size = static_cast<int64_t>(dims.vocab_size);
  c.max_positions = static_cast<int64_t>(dims.max_positions);
  c.max_positions_field = c.family == Family::kGpt2 ? "n_positions" : "max_position_embeddings";
  c.type_vocab_size = static_cast<int64_t>(dims.type_vocab_size);
  c.tie_word_embeddings = dims.tie_word_embeddings;
  c.torch_dtype = dims.torch_dtype;
  if (c.torch_dtype.rfind("torch.", 0) == 0) c.torch_dtype = c.torch_dtype.substr(6);
  if (c.torch_dtype == "float") c.torch_dtype = "float32";
  if (c.torch_dtype == "half") c.torch_dtype = "float16";
  if (c.torch_dtype == "float64" || c.torch_dtype == "double") {
    return Status::Unsupported(c.file + ": field 'torch_dtype' is '" + dims.torch_dtype +
                               "', not supported (supported: float32, float16, bfloat16)");
  }
  if (c.family == Family::kLlama) {
    const bool qwen2 = c.model_type == "qwen2";
    c.qkv_bias = qwen2 || dims.attention_bias;
    c.o_bias = !qwen2 && dims.attention_bias;
    c.mlp_bias = !qwen2 && dims.mlp_bias;
  }
  MG_RETURN_IF_ERROR(ParseFamilyFields(f, &c));
  MG_ASSIGN_OR_RETURN(c.labels, ParseLabels(f, c.head));
  if ((c.head == Head::kSequenceClassification || c.head == Head::kTokenClassification) &&
      c.labels.empty()) {
    return Status::InvalidArgument(c.file +
                                   ": field 'id2label' is empty: a classifier needs "
                                   "at least one label");
  }
  MG_RETURN_IF_ERROR(ParseEos(folder, f, &c));
  MG_RETURN_IF_ERROR(ParsePooling(folder, c.is_decoder(), &c.pooling));
  return c;
}

}  // namespace modelgrid::hf

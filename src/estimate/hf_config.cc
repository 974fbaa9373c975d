#include "estimate/hf_config.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

namespace modelgrid::estimate {

namespace {

using nlohmann::json;

// Largest dimension accepted; keeps every formula of transformer_counts.h
// and activation_bytes.h far from 64-bit overflow.
constexpr uint64_t kMaxDim = uint64_t{1} << 24;

// Typed, checked access to the fields of one config.json object. Every error
// names the file and the field.
class Fields {
 public:
  Fields(const json& doc, std::string file, std::string model_type)
      : doc_(doc), file_(std::move(file)), model_type_(std::move(model_type)) {}

  // A required positive integer ≤ kMaxDim.
  Result<uint64_t> Count(const char* name) const {
    const json* v = Find(name);
    if (v == nullptr) {
      return Status::InvalidArgument(file_ + ": field '" + name +
                                     "' is missing (needed for model_type " + model_type_ + ")");
    }
    return AsCount(name, *v);
  }
  // An optional positive integer (absent or null → `fallback`).
  Result<uint64_t> CountOr(const char* name, uint64_t fallback) const {
    const json* v = Find(name);
    return v == nullptr ? Result<uint64_t>(fallback) : AsCount(name, *v);
  }
  Result<bool> FlagOr(const char* name, bool fallback) const {
    const json* v = Find(name);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) return Wrong(name, "a boolean", *v);
    return v->get<bool>();
  }
  Result<std::string> TextOr(const char* name, const std::string& fallback) const {
    const json* v = Find(name);
    if (v == nullptr) return fallback;
    if (!v->is_string()) return Wrong(name, "a string", *v);
    return v->get<std::string>();
  }
  // len(id2label) if present, else num_labels, else 0.
  Result<uint64_t> Labels() const {
    if (const json* v = Find("id2label")) {
      if (!v->is_object()) return Wrong("id2label", "an object", *v);
      return static_cast<uint64_t>(v->size());
    }
    const json* v = Find("num_labels");
    if (v == nullptr) return uint64_t{0};
    if (!v->is_number_integer() || v->get<int64_t>() < 0 ||
        static_cast<uint64_t>(v->get<int64_t>()) > kMaxDim) {
      return Wrong("num_labels", "a non-negative integer", *v);
    }
    return static_cast<uint64_t>(v->get<int64_t>());
  }
  Result<std::vector<std::string>> Architectures() const {
    std::vector<std::string> out;
    const json* v = Find("architectures");
    if (v == nullptr) return out;
    if (!v->is_array()) return Wrong("architectures", "an array of strings", *v);
    for (const json& a : *v) {
      if (!a.is_string()) return Wrong("architectures", "an array of strings", *v);
      out.push_back(a.get<std::string>());
    }
    return out;
  }

  Status Wrong(const std::string& name, const std::string& expected, const json& got) const {
    std::string text = got.dump();
    if (text.size() > 40) text = text.substr(0, 37) + "...";
    return Status::InvalidArgument(file_ + ": field '" + name + "' must be " + expected + ", got " +
                                   got.type_name() + " " + text);
  }

 private:
  const json* Find(const char* name) const {
    auto it = doc_.find(name);
    return it == doc_.end() || it->is_null() ? nullptr : &*it;
  }
  Result<uint64_t> AsCount(const char* name, const json& v) const {
    if (v.is_number_integer()) {
      const bool in_range = v.is_number_unsigned()
                                ? v.get<uint64_t>() >= 1 && v.get<uint64_t>() <= kMaxDim
                                : v.get<int64_t>() >= 1 && v.get<int64_t>() <= int64_t{kMaxDim};
      if (in_range) return static_cast<uint64_t>(v.get<int64_t>());
    }
    return Wrong(name, "a positive integer no larger than 16777216", v);
  }

  const json& doc_;
  std::string file_;
  std::string model_type_;
};

// h / n_h, which transformers requires to be exact.
Result<uint64_t> HeadDim(const HfConfig& c, const char* hidden_name, const char* heads_name) {
  if (c.hidden_size % c.num_heads != 0) {
    return Status::InvalidArgument(c.file + ": field '" + hidden_name + "' (" +
                                   std::to_string(c.hidden_size) + ") is not a multiple of '" +
                                   heads_name + "' (" + std::to_string(c.num_heads) + ")");
  }
  return c.hidden_size / c.num_heads;
}

Status ParseGpt2(const Fields& f, HfConfig* c) {
  MG_ASSIGN_OR_RETURN(c->hidden_size, f.Count("n_embd"));
  MG_ASSIGN_OR_RETURN(c->num_layers, f.Count("n_layer"));
  MG_ASSIGN_OR_RETURN(c->num_heads, f.Count("n_head"));
  MG_ASSIGN_OR_RETURN(c->vocab_size, f.Count("vocab_size"));
  MG_ASSIGN_OR_RETURN(c->max_positions, f.Count("n_positions"));
  MG_ASSIGN_OR_RETURN(c->intermediate_size, f.CountOr("n_inner", 4 * c->hidden_size));
  MG_ASSIGN_OR_RETURN(c->hidden_act, f.TextOr("activation_function", "gelu_new"));
  MG_ASSIGN_OR_RETURN(c->tie_word_embeddings, f.FlagOr("tie_word_embeddings", true));
  MG_ASSIGN_OR_RETURN(c->head_dim, HeadDim(*c, "n_embd", "n_head"));
  c->num_kv_heads = c->num_heads;
  return Status::Ok();
}

Status ParseBert(const Fields& f, HfConfig* c) {
  MG_ASSIGN_OR_RETURN(c->hidden_size, f.Count("hidden_size"));
  MG_ASSIGN_OR_RETURN(c->num_layers, f.Count("num_hidden_layers"));
  MG_ASSIGN_OR_RETURN(c->num_heads, f.Count("num_attention_heads"));
  MG_ASSIGN_OR_RETURN(c->intermediate_size, f.Count("intermediate_size"));
  MG_ASSIGN_OR_RETURN(c->vocab_size, f.Count("vocab_size"));
  MG_ASSIGN_OR_RETURN(c->max_positions, f.Count("max_position_embeddings"));
  MG_ASSIGN_OR_RETURN(c->type_vocab_size, f.CountOr("type_vocab_size", 2));
  MG_ASSIGN_OR_RETURN(c->hidden_act, f.TextOr("hidden_act", "gelu"));
  MG_ASSIGN_OR_RETURN(c->tie_word_embeddings, f.FlagOr("tie_word_embeddings", true));
  MG_ASSIGN_OR_RETURN(c->head_dim, HeadDim(*c, "hidden_size", "num_attention_heads"));
  c->num_kv_heads = c->num_heads;
  return Status::Ok();
}

// DistilBertConfig (transformers 4.46): its own field names; no token types
// (type_vocab_size 0), activation default "gelu", max_position_embeddings
// default 512. sinusoidal_pos_embds does not change the tensors (the
// position embedding is filled with sinusoids, still a saved weight).
Status ParseDistilBert(const Fields& f, HfConfig* c) {
  MG_ASSIGN_OR_RETURN(c->hidden_size, f.Count("dim"));
  MG_ASSIGN_OR_RETURN(c->num_layers, f.Count("n_layers"));
  MG_ASSIGN_OR_RETURN(c->num_heads, f.Count("n_heads"));
  MG_ASSIGN_OR_RETURN(c->intermediate_size, f.Count("hidden_dim"));
  MG_ASSIGN_OR_RETURN(c->vocab_size, f.Count("vocab_size"));
  MG_ASSIGN_OR_RETURN(c->max_positions, f.CountOr("max_position_embeddings", 512));
  MG_ASSIGN_OR_RETURN(c->hidden_act, f.TextOr("activation", "gelu"));
  MG_ASSIGN_OR_RETURN(c->tie_word_embeddings, f.FlagOr("tie_word_embeddings", true));
  MG_ASSIGN_OR_RETURN(c->head_dim, HeadDim(*c, "dim", "n_heads"));
  c->type_vocab_size = 0;
  c->num_kv_heads = c->num_heads;
  return Status::Ok();
}

Status ParseLlama(const Fields& f, HfConfig* c) {
  MG_ASSIGN_OR_RETURN(c->hidden_size, f.Count("hidden_size"));
  MG_ASSIGN_OR_RETURN(c->num_layers, f.Count("num_hidden_layers"));
  MG_ASSIGN_OR_RETURN(c->num_heads, f.Count("num_attention_heads"));
  MG_ASSIGN_OR_RETURN(c->intermediate_size, f.Count("intermediate_size"));
  MG_ASSIGN_OR_RETURN(c->vocab_size, f.Count("vocab_size"));
  MG_ASSIGN_OR_RETURN(c->num_kv_heads, f.CountOr("num_key_value_heads", c->num_heads));
  // Qwen2Config: max_position_embeddings default 32768; q/k/v always carry a
  // bias and o never does (Qwen2Attention), the MLP has none: attention_bias
  // and mlp_bias are not Qwen2Config fields and are ignored.
  const bool qwen2 = c->model_type == "qwen2";
  MG_ASSIGN_OR_RETURN(c->max_positions, f.CountOr("max_position_embeddings", qwen2 ? 32768 : 2048));
  MG_ASSIGN_OR_RETURN(c->hidden_act, f.TextOr("hidden_act", "silu"));
  MG_ASSIGN_OR_RETURN(c->tie_word_embeddings, f.FlagOr("tie_word_embeddings", false));
  if (qwen2) {
    c->qkv_bias = true;
  } else {
    MG_ASSIGN_OR_RETURN(c->attention_bias, f.FlagOr("attention_bias", false));
    MG_ASSIGN_OR_RETURN(c->mlp_bias, f.FlagOr("mlp_bias", false));
  }
  if (c->num_heads % c->num_kv_heads != 0) {
    return Status::InvalidArgument(
        c->file + ": field 'num_attention_heads' (" + std::to_string(c->num_heads) +
        ") is not a multiple of 'num_key_value_heads' (" + std::to_string(c->num_kv_heads) + ")");
  }
  Result<uint64_t> derived = HeadDim(*c, "hidden_size", "num_attention_heads");
  // An explicit head_dim lifts the divisibility requirement (Mistral-NeMo style).
  MG_ASSIGN_OR_RETURN(c->head_dim, f.CountOr("head_dim", derived.ok() ? derived.value() : 0));
  if (c->head_dim == 0) return derived.status();
  return Status::Ok();
}

Status ParseVit(const Fields& f, HfConfig* c) {
  MG_ASSIGN_OR_RETURN(c->hidden_size, f.Count("hidden_size"));
  MG_ASSIGN_OR_RETURN(c->num_layers, f.Count("num_hidden_layers"));
  MG_ASSIGN_OR_RETURN(c->num_heads, f.Count("num_attention_heads"));
  MG_ASSIGN_OR_RETURN(c->intermediate_size, f.Count("intermediate_size"));
  MG_ASSIGN_OR_RETURN(c->image_size, f.Count("image_size"));
  MG_ASSIGN_OR_RETURN(c->patch_size, f.Count("patch_size"));
  MG_ASSIGN_OR_RETURN(c->num_channels, f.CountOr("num_channels", 3));
  MG_ASSIGN_OR_RETURN(c->hidden_act, f.TextOr("hidden_act", "gelu"));
  MG_ASSIGN_OR_RETURN(c->head_dim, HeadDim(*c, "hidden_size", "num_attention_heads"));
  c->num_kv_heads = c->num_heads;
  if (c->patch_size > c->image_size) {
    return Status::InvalidArgument(
        c->file + ": field 'patch_size' (" + std::to_string(c->patch_size) +
        ") is larger than 'image_size' (" + std::to_string(c->image_size) + ")");
  }
  return Status::Ok();
}

}  // namespace

std::string_view HfFamilyName(HfFamily family) {
  switch (family) {
    case HfFamily::kGpt2:
      return "gpt2";
    case HfFamily::kBert:
      return "bert";
    case HfFamily::kDistilBert:
      return "distilbert";
    case HfFamily::kLlama:
      return "llama";
    case HfFamily::kVit:
      return "vit";
  }
  return "unknown";
}

Result<uint64_t> TorchDtypeBytes(std::string_view torch_dtype) {
  if (torch_dtype.substr(0, 6) == "torch.") torch_dtype.remove_prefix(6);
  if (torch_dtype == "float32" || torch_dtype == "float") return uint64_t{4};
  if (torch_dtype == "float16" || torch_dtype == "half" || torch_dtype == "bfloat16")
    return uint64_t{2};
  if (torch_dtype == "float64" || torch_dtype == "double") return uint64_t{8};
  return Status::InvalidArgument("torch_dtype '" + std::string(torch_dtype) +
                                 "' is not one of float32, float16, bfloat16, float64");
}

Result<HfConfig> ParseHfConfig(std::string_view json_text, const std::string& file) {
  json doc;
  try {
    doc = json::parse(json_text.begin(), json_text.end());
  } catch (const json::exception& e) {
    return Status::InvalidArgument(file + ": not valid JSON: " + e.what());
  }
  if (!doc.is_object()) return Status::InvalidArgument(file + ": not a JSON object");
  HfConfig c;
  c.file = file;
  Fields f(doc, file, "?");
  auto mt = doc.find("model_type");
  if (mt == doc.end() || mt->is_null()) {
    return Status::InvalidArgument(
        file + ": field 'model_type' is missing (needed to pick the model family)");
  }
  if (!mt->is_string()) return f.Wrong("model_type", "a string", *mt);
  c.model_type = mt->get<std::string>();
  const Fields fields(doc, file, c.model_type);
  MG_ASSIGN_OR_RETURN(c.architectures, fields.Architectures());
  MG_ASSIGN_OR_RETURN(c.num_labels, fields.Labels());
  // transformers ≥ 4.56 writes "dtype"; older versions "torch_dtype".
  MG_ASSIGN_OR_RETURN(c.torch_dtype, fields.TextOr("torch_dtype", ""));
  if (c.torch_dtype.empty()) {
    MG_ASSIGN_OR_RETURN(c.torch_dtype, fields.TextOr("dtype", "float32"));
  }
  Result<uint64_t> bytes = TorchDtypeBytes(c.torch_dtype);
  if (!bytes.ok()) return bytes.status().WithPrefix(file + ": field 'torch_dtype'");
  c.dtype_bytes = bytes.value();
  if (c.model_type == "gpt2") {
    c.family = HfFamily::kGpt2;
    MG_RETURN_IF_ERROR(ParseGpt2(fields, &c));
  } else if (c.model_type == "bert" || c.is_roberta()) {
    // RobertaConfig / XLMRobertaConfig / CamembertConfig take BertConfig's
    // fields and defaults (type_vocab_size 2 unless written; checkpoints
    // write 1).
    c.family = HfFamily::kBert;
    MG_RETURN_IF_ERROR(ParseBert(fields, &c));
  } else if (c.model_type == "distilbert") {
    c.family = HfFamily::kDistilBert;
    MG_RETURN_IF_ERROR(ParseDistilBert(fields, &c));
  } else if (c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2") {
    c.family = HfFamily::kLlama;
    MG_RETURN_IF_ERROR(ParseLlama(fields, &c));
  } else if (c.model_type == "vit") {
    c.family = HfFamily::kVit;
    MG_RETURN_IF_ERROR(ParseVit(fields, &c));
  } else {
    return Status::Unsupported(file + ": model_type '" + c.model_type +
                               "' is not supported (supported: gpt2, bert, roberta, xlm-roberta, "
                               "camembert, distilbert, llama, mistral, qwen2, vit)");
  }
  return c;
}

Result<HfConfig> ReadHfConfig(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path.string() + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  return ParseHfConfig(text.str(), path.string());
}

}  // namespace modelgrid::estimate

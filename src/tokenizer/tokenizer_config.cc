// tokenizer_config.json and special_tokens_map.json (transformers' files).
// Only the fields ModelGrid uses are read; each must have the type
// transformers writes, else the load fails naming the file and field.
#include <map>

#include "tokenizer/json_node.h"
#include "tokenizer/tokenizer_impl.h"

namespace modelgrid::tokenizer {

namespace {

// A special token entry: "<s>", {"content": "<s>", ...} or null.
Result<std::string> TokenName(const JsonNode& n) {
  if (n.IsNull()) return std::string();
  if (n.value().is_string()) return n.value().get<std::string>();
  if (n.value().is_object()) return n.RequiredString("content");
  return n.Error(std::string("expected a string, an object with \"content\" or null, got ") +
                 JsonTypeName(n.value()));
}

Status ReadNames(const JsonNode& root, SpecialTokenNames* names, bool only_missing) {
  std::pair<const char*, std::string*> fields[] = {
      {"bos_token", &names->bos},  {"eos_token", &names->eos}, {"pad_token", &names->pad},
      {"unk_token", &names->unk},  {"cls_token", &names->cls}, {"sep_token", &names->sep},
      {"mask_token", &names->mask}};
  for (auto& [key, out] : fields) {
    if (only_missing && !out->empty()) continue;
    MG_ASSIGN_OR_RETURN(*out, TokenName(root.At(key)));
  }
  return Status::Ok();
}

Result<nlohmann::json> Parse(std::string_view text, const std::string& name) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(name + ": invalid JSON: " + e.what());
  }
}

Status ReadConfig(const JsonNode& root, TokenizerConfig* c) {
  MG_RETURN_IF_ERROR(root.ExpectObject());
  MG_ASSIGN_OR_RETURN(c->add_bos_token, root.OptionalBool("add_bos_token"));
  MG_ASSIGN_OR_RETURN(c->add_eos_token, root.OptionalBool("add_eos_token"));
  MG_ASSIGN_OR_RETURN(c->legacy, root.OptionalBool("legacy"));
  MG_ASSIGN_OR_RETURN(c->clean_up_tokenization_spaces,
                      root.BoolOr("clean_up_tokenization_spaces", true));
  MG_ASSIGN_OR_RETURN(c->tokenizer_class, root.StringOr("tokenizer_class", ""));
  JsonNode max_len = root.At("model_max_length");
  if (!max_len.IsNull()) {
    if (!max_len.value().is_number()) {
      return max_len.Error(std::string("expected a number, got ") + JsonTypeName(max_len.value()));
    }
    double d = max_len.value().get<double>();
    // transformers writes int(1e30) for "no limit".
    if (d >= 0 && d < 1e18) c->model_max_length = static_cast<uint64_t>(d);
  }
  JsonNode chat = root.At("chat_template");
  if (chat.value().is_string()) {
    c->chat_template = chat.value().get<std::string>();
  } else if (chat.value().is_array()) {  // [{"name": ..., "template": ...}]: the "default" one
    for (size_t i = 0; i < chat.value().size(); ++i) {
      JsonNode t = chat.At(i);
      MG_ASSIGN_OR_RETURN(std::string name, t.StringOr("name", ""));
      MG_ASSIGN_OR_RETURN(std::string text, t.RequiredString("template"));
      if (name == "default" || c->chat_template.empty()) c->chat_template = text;
    }
  } else if (!chat.IsNull()) {
    return chat.Error("expected a string or a list of named templates");
  }
  JsonNode extra = root.At("additional_special_tokens");
  if (!extra.IsNull()) {
    MG_RETURN_IF_ERROR(extra.ExpectArray());
    for (size_t i = 0; i < extra.value().size(); ++i) {
      MG_ASSIGN_OR_RETURN(std::string name, TokenName(extra.At(i)));
      if (!name.empty()) c->additional_special_tokens.push_back(name);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<nlohmann::json> ReadAddedTokensDecoder(std::string_view config_json,
                                              const std::string& config_name) {
  nlohmann::json out = nlohmann::json::array();
  if (config_json.empty()) return out;
  MG_ASSIGN_OR_RETURN(nlohmann::json j, Parse(config_json, config_name));
  JsonNode root(&j, config_name, "");
  MG_RETURN_IF_ERROR(root.ExpectObject());
  JsonNode decoder = root.At("added_tokens_decoder");
  if (decoder.IsNull()) return out;
  MG_RETURN_IF_ERROR(decoder.ExpectObject());
  std::map<int64_t, nlohmann::json> by_id;
  for (const auto& [key, value] : decoder.value().items()) {
    JsonNode entry = decoder.At(key);
    int64_t id = -1;
    try {
      size_t used = 0;
      id = std::stoll(key, &used);
      if (used != key.size()) id = -1;
    } catch (const std::exception&) {
    }
    if (id < 0) return entry.Error("the key is not a non-negative token id");
    MG_RETURN_IF_ERROR(entry.ExpectObject());
    nlohmann::json t = {{"id", id}};
    MG_ASSIGN_OR_RETURN(std::string content, entry.RequiredString("content"));
    t["content"] = content;
    MG_ASSIGN_OR_RETURN(bool special, entry.BoolOr("special", false));
    t["special"] = special;
    for (const char* flag : {"single_word", "lstrip", "rstrip"}) {
      MG_ASSIGN_OR_RETURN(bool v, entry.BoolOr(flag, false));
      t[flag] = v;
    }
    MG_ASSIGN_OR_RETURN(bool normalized, entry.BoolOr("normalized", !special));
    t["normalized"] = normalized;
    by_id[id] = std::move(t);
  }
  for (auto& [id, t] : by_id) out.push_back(std::move(t));
  return out;
}

Status ReadTokenizerConfig(std::string_view config_json, const std::string& config_name,
                           std::string_view special_map_json, const std::string& special_map_name,
                           TokenizerConfig* config, SpecialTokenNames* names) {
  if (!config_json.empty()) {
    MG_ASSIGN_OR_RETURN(nlohmann::json j, Parse(config_json, config_name));
    JsonNode root(&j, config_name, "");
    MG_RETURN_IF_ERROR(ReadConfig(root, config));
    MG_RETURN_IF_ERROR(ReadNames(root, names, false));
  }
  if (!special_map_json.empty()) {
    MG_ASSIGN_OR_RETURN(nlohmann::json j, Parse(special_map_json, special_map_name));
    JsonNode root(&j, special_map_name, "");
    MG_RETURN_IF_ERROR(root.ExpectObject());
    MG_RETURN_IF_ERROR(ReadNames(root, names, true));
    if (config->additional_special_tokens.empty()) {
      JsonNode extra = root.At("additional_special_tokens");
      if (!extra.IsNull()) {
        MG_RETURN_IF_ERROR(extra.ExpectArray());
        for (size_t i = 0; i < extra.value().size(); ++i) {
          MG_ASSIGN_OR_RETURN(std::string name, TokenName(extra.At(i)));
          if (!name.empty()) config->additional_special_tokens.push_back(name);
        }
      }
    }
  }
  return Status::Ok();
}

}  // namespace modelgrid::tokenizer

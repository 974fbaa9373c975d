// Tokenizer::FromSentencePiece: a folder whose tokenizer is a SentencePiece
// tokenizer.model. libsentencepiece segments the text (sentencepiece_model.*);
// the added tokens, the decoder and the [bos] $A [eos] template are what
// transformers' LlamaTokenizer does (and its LlamaConverter writes into a
// tokenizer.json), so Encode / Decode / IncrementalDecoder behave as for the
// same model's tokenizer.json.
#include <filesystem>
#include <map>

#include "tokenizer/post_processor.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/tokenizer_impl.h"

namespace modelgrid::tokenizer {

namespace {

using nlohmann::json;

// tokenizer_config.json classes whose rules these are ("": no config).
bool IsLlamaClass(const std::string& cls) {
  return cls.empty() || cls == "LlamaTokenizer" || cls == "LlamaTokenizerFast";
}

// The added tokens, in tokenizer.json's form: the UNKNOWN and CONTROL pieces
// (special), then tokenizer_config.json's added_tokens_decoder (which wins
// for its ids and may add ids past the model's pieces).
Result<json> AddedTokens(const SentencePieceModel& model, std::string_view config,
                         const std::string& config_name) {
  std::map<int64_t, json> by_id;
  for (size_t id = 0; id < model.size(); ++id) {
    PieceType type = model.type(static_cast<int64_t>(id));
    if (type != PieceType::kUnknown && type != PieceType::kControl) continue;
    by_id[static_cast<int64_t>(id)] = {{"id", id},
                                       {"content", model.piece(id)},
                                       {"special", true},
                                       {"normalized", false},
                                       {"lstrip", false},
                                       {"rstrip", false},
                                       {"single_word", false}};
  }
  MG_ASSIGN_OR_RETURN(json listed, ReadAddedTokensDecoder(config, config_name));
  for (json& t : listed) {
    const auto id = t.at("id").get<int64_t>();
    const auto& content = t.at("content").get_ref<const std::string&>();
    if (static_cast<size_t>(id) < model.size() && model.piece(id) != content) {
      return Status::Corruption(config_name + ": /added_tokens_decoder/" + std::to_string(id) +
                                " is \"" + content + "\", but the tokenizer.model's piece " +
                                std::to_string(id) + " is \"" + model.piece(id) + "\"");
    }
    by_id[id] = std::move(t);
  }
  json out = json::array();
  for (auto& [id, t] : by_id) out.push_back(std::move(t));
  return out;
}

// transformers' LlamaConverter decoder: "▁" -> " ", <0xNN> -> bytes, joined,
// and one leading space dropped when the model adds a dummy prefix.
json DecoderJson(bool strip_dummy_prefix) {
  json steps = json::array();
  steps.push_back(
      {{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}});
  steps.push_back({{"type", "ByteFallback"}});
  steps.push_back({{"type", "Fuse"}});
  if (strip_dummy_prefix) {
    steps.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  }
  return {{"type", "Sequence"}, {"decoders", steps}};
}

// Special token names the config files leave out: the model file's.
void DefaultNames(const SentencePieceModel& model, SpecialTokenNames* names) {
  std::pair<std::string*, std::optional<int64_t>> defaults[] = {{&names->unk, model.unk_id()},
                                                                {&names->bos, model.bos_id()},
                                                                {&names->eos, model.eos_id()},
                                                                {&names->pad, model.pad_id()}};
  for (auto& [name, id] : defaults) {
    if (name->empty() && id) *name = model.piece(*id);
  }
}

// LlamaTokenizer's [bos] $A [eos]: add_bos_token defaults to true,
// add_eos_token to false.
std::unique_ptr<PostProcessor> LlamaTemplate(const Tokenizer& t) {
  std::vector<SpecialPiece> before, after;
  const SpecialTokenIds& ids = t.special_ids();
  if (t.config().add_bos_token.value_or(true) && ids.bos) {
    before.push_back({*t.IdToToken(*ids.bos), *ids.bos, 0});
  }
  if (t.config().add_eos_token.value_or(false) && ids.eos) {
    after.push_back({*t.IdToToken(*ids.eos), *ids.eos, 0});
  }
  return MakeSimpleTemplate(std::move(before), std::move(after));
}

}  // namespace

Result<Tokenizer> Tokenizer::FromSentencePiece(const std::string& model_path) {
  MG_ASSIGN_OR_RETURN(std::string bytes, ReadTokenizerFile(model_path));
  const std::filesystem::path dir = std::filesystem::path(model_path).parent_path();
  const std::string config_name = (dir / "tokenizer_config.json").string();
  MG_ASSIGN_OR_RETURN(std::string config, ReadOptionalSibling(dir, "tokenizer_config.json"));
  MG_ASSIGN_OR_RETURN(std::string special_map, ReadOptionalSibling(dir, "special_tokens_map.json"));
  auto impl = std::make_unique<Impl>();
  impl->name = model_path;
  SpecialTokenNames names;
  MG_RETURN_IF_ERROR(ReadTokenizerConfig(config, config_name, special_map,
                                         (dir / "special_tokens_map.json").string(), &impl->config,
                                         &names));
  if (!IsLlamaClass(impl->config.tokenizer_class)) {
    return Status::Unsupported(config_name + ": tokenizer_class \"" + impl->config.tokenizer_class +
                               "\" with " + model_path +
                               ": only LlamaTokenizer's rules are implemented for a "
                               "SentencePiece model ([bos] text [eos], \"▁\" prefix)");
  }
  MG_ASSIGN_OR_RETURN(auto model, SentencePieceModel::Create(bytes, model_path,
                                                             impl->config.legacy.value_or(true)));
  const SentencePieceModel& spm = *model;
  impl->model = std::move(model);
  MG_ASSIGN_OR_RETURN(json added, AddedTokens(spm, config, config_name));
  MG_ASSIGN_OR_RETURN(
      impl->added,
      AddedVocabulary::Create(JsonNode(&added, config_name, "/added_tokens_decoder"), nullptr));
  BuildIdTables(impl.get());
  const json decoder = DecoderJson(spm.adds_dummy_prefix());
  DecoderContext context{&impl->added_contents};
  MG_ASSIGN_OR_RETURN(impl->decoder, MakeDecoder(JsonNode(&decoder, model_path, ""), context));
  DefaultNames(spm, &names);
  Impl* raw = impl.get();
  Tokenizer t(std::move(impl));
  ResolveSpecialIds(names, raw, t);
  raw->post_processor = LlamaTemplate(t);
  return t;
}

}  // namespace modelgrid::tokenizer

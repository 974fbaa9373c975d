// Loading a Tokenizer: tokenizer.json's components, the added tokens, the id
// tables, tokenizer_config.json / special_tokens_map.json.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tokenizer/tokenizer_impl.h"

namespace modelgrid::tokenizer {

Result<std::string> ReadTokenizerFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return Status::Corruption(path + ": read error");
  return s.str();
}

Result<std::string> ReadOptionalSibling(const std::filesystem::path& dir, const char* name) {
  std::filesystem::path p = dir / name;
  std::error_code ec;
  if (!std::filesystem::exists(p, ec)) return std::string();
  return ReadTokenizerFile(p.string());
}

namespace {

Result<Direction> ReadDirection(const JsonNode& n) {
  MG_ASSIGN_OR_RETURN(std::string d, n.StringOr("direction", "Right"));
  if (d == "Right") return Direction::kRight;
  if (d == "Left") return Direction::kLeft;
  return n.At("direction").Error("expected \"Right\" or \"Left\", got \"" + d + "\"");
}

Result<std::optional<Truncation>> ReadTruncation(const JsonNode& n) {
  if (n.IsNull()) return std::optional<Truncation>();
  MG_RETURN_IF_ERROR(n.ExpectObject());
  Truncation t;
  MG_ASSIGN_OR_RETURN(int64_t max_length, n.At("max_length").AsInt());
  MG_ASSIGN_OR_RETURN(int64_t stride, n.IntOr("stride", 0));
  if (max_length < 0 || stride < 0) return n.Error("max_length and stride must not be negative");
  t.max_length = static_cast<size_t>(max_length);
  t.stride = static_cast<size_t>(stride);
  MG_ASSIGN_OR_RETURN(t.direction, ReadDirection(n));
  MG_ASSIGN_OR_RETURN(std::string s, n.StringOr("strategy", "LongestFirst"));
  if (s == "LongestFirst")
    t.strategy = TruncationStrategy::kLongestFirst;
  else if (s == "OnlyFirst")
    t.strategy = TruncationStrategy::kOnlyFirst;
  else if (s == "OnlySecond")
    t.strategy = TruncationStrategy::kOnlySecond;
  else
    return n.At("strategy").Error("unknown truncation strategy \"" + s + "\"");
  return std::optional<Truncation>(t);
}

Result<std::optional<Padding>> ReadPadding(const JsonNode& n) {
  if (n.IsNull()) return std::optional<Padding>();
  MG_RETURN_IF_ERROR(n.ExpectObject());
  Padding p;
  JsonNode strategy = n.At("strategy");
  if (strategy.value().is_object() && strategy.Has("Fixed")) {
    MG_ASSIGN_OR_RETURN(int64_t fixed, strategy.At("Fixed").AsInt());
    if (fixed < 0) return strategy.At("Fixed").Error("must not be negative");
    p.length = static_cast<size_t>(fixed);
  } else if (!(strategy.IsNull() ||
               (strategy.value().is_string() && strategy.value() == "BatchLongest"))) {
    return strategy.Error("expected \"BatchLongest\" or {\"Fixed\": n}");
  }
  MG_ASSIGN_OR_RETURN(p.direction, ReadDirection(n));
  MG_ASSIGN_OR_RETURN(auto multiple, n.OptionalInt("pad_to_multiple_of"));
  if (multiple && *multiple > 0) p.pad_to_multiple_of = static_cast<size_t>(*multiple);
  MG_ASSIGN_OR_RETURN(p.pad_id, n.IntOr("pad_id", 0));
  MG_ASSIGN_OR_RETURN(p.pad_type_id, n.IntOr("pad_type_id", 0));
  MG_ASSIGN_OR_RETURN(p.pad_token, n.StringOr("pad_token", "[PAD]"));
  return std::optional<Padding>(p);
}

// transformers' LlamaTokenizerFast rebuilds its post-processor from
// add_bos_token / add_eos_token: [bos] $A [eos].
void ApplyLlamaTemplate(const SpecialTokenNames& names, Tokenizer::Impl* impl) {
  const std::string& cls = impl->config.tokenizer_class;
  if (cls != "LlamaTokenizer" && cls != "LlamaTokenizerFast") return;
  if (!impl->config.add_bos_token && !impl->config.add_eos_token) return;
  std::vector<SpecialPiece> before, after;
  if (impl->config.add_bos_token.value_or(true) && impl->special_ids.bos) {
    before.push_back({names.bos, *impl->special_ids.bos, 0});
  }
  if (impl->config.add_eos_token.value_or(false) && impl->special_ids.eos) {
    after.push_back({names.eos, *impl->special_ids.eos, 0});
  }
  impl->post_processor = MakeSimpleTemplate(std::move(before), std::move(after));
}

Result<std::unique_ptr<Tokenizer::Impl>> BuildImpl(std::string_view text, const std::string& name) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(name + ": invalid JSON: " + e.what());
  }
  auto impl = std::make_unique<Tokenizer::Impl>();
  impl->name = name;
  JsonNode root(&j, name, "");
  MG_RETURN_IF_ERROR(root.ExpectObject());
  MG_ASSIGN_OR_RETURN(impl->normalizer, MakeNormalizer(root.At("normalizer")));
  MG_ASSIGN_OR_RETURN(impl->pre_tokenizer, MakePreTokenizer(root.At("pre_tokenizer")));
  JsonNode model = root.At("model");
  if (model.IsNull()) return model.Error("missing (expected an object)");
  MG_ASSIGN_OR_RETURN(impl->model, MakeModel(model));
  MG_ASSIGN_OR_RETURN(impl->post_processor, MakePostProcessor(root.At("post_processor")));
  MG_ASSIGN_OR_RETURN(impl->added,
                      AddedVocabulary::Create(root.At("added_tokens"), impl->normalizer.get()));
  BuildIdTables(impl.get());
  DecoderContext context{&impl->added_contents};
  MG_ASSIGN_OR_RETURN(impl->decoder, MakeDecoder(root.At("decoder"), context));
  MG_ASSIGN_OR_RETURN(impl->truncation, ReadTruncation(root.At("truncation")));
  MG_ASSIGN_OR_RETURN(impl->padding, ReadPadding(root.At("padding")));
  return impl;
}

}  // namespace

void BuildIdTables(Tokenizer::Impl* impl) {
  size_t limit = 0;
  for (const auto& [token, id] : impl->model->vocab())
    limit = std::max(limit, static_cast<size_t>(id) + 1);
  for (const AddedToken& t : impl->added.tokens())
    limit = std::max(limit, static_cast<size_t>(t.id) + 1);
  impl->id_to_token.assign(limit, "");
  impl->assigned.assign(limit, false);
  impl->special.assign(limit, false);
  for (const auto& [token, id] : impl->model->vocab()) {
    impl->id_to_token[id] = token;
    impl->assigned[id] = true;
  }
  for (const AddedToken& t : impl->added.tokens()) {
    impl->id_to_token[t.id] = t.content;
    impl->assigned[t.id] = true;
    if (t.special) impl->special[t.id] = true;
    impl->added_contents.insert(t.content);
  }
  impl->vocab_size = 0;
  for (bool a : impl->assigned) impl->vocab_size += a;
}

void ResolveSpecialIds(const SpecialTokenNames& names, Tokenizer::Impl* impl,
                       const Tokenizer& tokenizer) {
  auto id = [&](const std::string& name) -> std::optional<int64_t> {
    if (name.empty()) return std::nullopt;
    return tokenizer.TokenToId(name);
  };
  SpecialTokenIds& s = impl->special_ids;
  s.bos = id(names.bos);
  s.eos = id(names.eos);
  s.pad = id(names.pad);
  s.unk = id(names.unk);
  if (!s.unk && impl->model->unk_token()) s.unk = id(*impl->model->unk_token());
  s.cls = id(names.cls);
  s.sep = id(names.sep);
  s.mask = id(names.mask);
  for (const std::string& extra : impl->config.additional_special_tokens) {
    if (auto i = id(extra)) impl->special[*i] = true;
  }
}

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Result<Tokenizer> Tokenizer::FromDirectory(const std::string& dir) {
  std::filesystem::path json = std::filesystem::path(dir) / "tokenizer.json";
  std::filesystem::path model = std::filesystem::path(dir) / "tokenizer.model";
  std::error_code ec;
  if (std::filesystem::exists(json, ec)) return FromFile(json.string());
  if (std::filesystem::exists(model, ec)) return FromSentencePiece(model.string());
  return Status::NotFound(dir + ": no tokenizer.json or tokenizer.model");
}

Result<Tokenizer> Tokenizer::FromFile(const std::string& path) {
  MG_ASSIGN_OR_RETURN(std::string text, ReadTokenizerFile(path));
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  MG_ASSIGN_OR_RETURN(std::string config, ReadOptionalSibling(dir, "tokenizer_config.json"));
  MG_ASSIGN_OR_RETURN(std::string special_map, ReadOptionalSibling(dir, "special_tokens_map.json"));
  MG_ASSIGN_OR_RETURN(auto impl, BuildImpl(text, path));
  SpecialTokenNames names;
  MG_RETURN_IF_ERROR(ReadTokenizerConfig(config, (dir / "tokenizer_config.json").string(),
                                         special_map, (dir / "special_tokens_map.json").string(),
                                         &impl->config, &names));
  Impl* raw = impl.get();
  Tokenizer t(std::move(impl));
  ResolveSpecialIds(names, raw, t);
  ApplyLlamaTemplate(names, raw);
  return t;
}

Result<Tokenizer> Tokenizer::FromJson(std::string_view tokenizer_json, std::string_view config_json,
                                      const std::string& name) {
  MG_ASSIGN_OR_RETURN(auto impl, BuildImpl(tokenizer_json, name));
  SpecialTokenNames names;
  MG_RETURN_IF_ERROR(
      ReadTokenizerConfig(config_json, "tokenizer_config.json", "", "", &impl->config, &names));
  Impl* raw = impl.get();
  Tokenizer t(std::move(impl));
  ResolveSpecialIds(names, raw, t);
  ApplyLlamaTemplate(names, raw);
  return t;
}

std::optional<int64_t> Tokenizer::TokenToId(std::string_view token) const {
  if (const AddedToken* t = impl_->added.Find(token); t != nullptr && t->content == token)
    return t->id;
  const Vocab& v = impl_->model->vocab();
  auto it = v.find(std::string(token));
  if (it == v.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Tokenizer::IdToToken(int64_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= impl_->assigned.size() || !impl_->assigned[id]) {
    return std::nullopt;
  }
  return impl_->id_to_token[id];
}

size_t Tokenizer::VocabSize() const { return impl_->vocab_size; }
size_t Tokenizer::IdLimit() const { return impl_->id_to_token.size(); }

bool Tokenizer::IsSpecialId(int64_t id) const {
  return id >= 0 && static_cast<size_t>(id) < impl_->special.size() && impl_->special[id];
}

const SpecialTokenIds& Tokenizer::special_ids() const { return impl_->special_ids; }
const TokenizerConfig& Tokenizer::config() const { return impl_->config; }
const std::optional<Truncation>& Tokenizer::truncation() const { return impl_->truncation; }
const std::optional<Padding>& Tokenizer::padding() const { return impl_->padding; }

size_t Tokenizer::NumSpecialTokensToAdd() const {
  return impl_->post_processor ? impl_->post_processor->AddedTokens() : 0;
}

}  // namespace modelgrid::tokenizer

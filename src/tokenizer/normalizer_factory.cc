// MakeNormalizer: tokenizer.json "normalizer" objects to Normalizer classes.
#include "tokenizer/normalizer.h"
#include "tokenizer/normalizers_internal.h"

namespace modelgrid::tokenizer {

Result<Pattern> ReadPattern(const JsonNode& node) {
  MG_RETURN_IF_ERROR(node.ExpectObject());
  if (node.Has("String")) {
    MG_ASSIGN_OR_RETURN(std::string s, node.RequiredString("String"));
    return Pattern::Literal(std::move(s));
  }
  if (node.Has("Regex")) {
    MG_ASSIGN_OR_RETURN(std::string r, node.RequiredString("Regex"));
    auto regex = Regex::FromOniguruma(r);
    if (!regex.ok()) return node.At("Regex").Error(regex.status().message());
    return Pattern::FromRegex(std::move(regex).value());
  }
  return node.Error("expected {\"String\": ...} or {\"Regex\": ...}");
}

Result<std::unique_ptr<Normalizer>> MakeNormalizer(const JsonNode& node) {
  if (node.IsNull()) return std::unique_ptr<Normalizer>();
  MG_RETURN_IF_ERROR(node.ExpectObject());
  MG_ASSIGN_OR_RETURN(std::string type, node.Type());
  if (type == "BertNormalizer") {
    MG_ASSIGN_OR_RETURN(bool clean, node.BoolOr("clean_text", true));
    MG_ASSIGN_OR_RETURN(bool chinese, node.BoolOr("handle_chinese_chars", true));
    MG_ASSIGN_OR_RETURN(std::optional<bool> strip, node.OptionalBool("strip_accents"));
    MG_ASSIGN_OR_RETURN(bool lower, node.BoolOr("lowercase", true));
    return std::unique_ptr<Normalizer>(new BertNormalizer(clean, chinese, strip, lower));
  }
  if (type == "NFC") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UnicodeForm::kNfc));
  if (type == "NFD") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UnicodeForm::kNfd));
  if (type == "NFKC") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UnicodeForm::kNfkc));
  if (type == "NFKD") return std::unique_ptr<Normalizer>(new UnicodeNormalizer(UnicodeForm::kNfkd));
  if (type == "Lowercase") return std::unique_ptr<Normalizer>(new LowercaseNormalizer());
  if (type == "StripAccents") return std::unique_ptr<Normalizer>(new StripAccentsNormalizer());
  if (type == "Prepend") {
    MG_ASSIGN_OR_RETURN(std::string prepend, node.RequiredString("prepend"));
    return std::unique_ptr<Normalizer>(new PrependNormalizer(std::move(prepend)));
  }
  if (type == "Replace") {
    MG_ASSIGN_OR_RETURN(Pattern pattern, ReadPattern(node.At("pattern")));
    MG_ASSIGN_OR_RETURN(std::string content, node.RequiredString("content"));
    return std::unique_ptr<Normalizer>(
        new ReplaceNormalizer(std::move(pattern), std::move(content)));
  }
  if (type == "Strip") {
    MG_ASSIGN_OR_RETURN(bool left, node.BoolOr("strip_left", true));
    MG_ASSIGN_OR_RETURN(bool right, node.BoolOr("strip_right", true));
    return std::unique_ptr<Normalizer>(new StripNormalizer(left, right));
  }
  if (type == "Sequence") {
    JsonNode list = node.At("normalizers");
    MG_RETURN_IF_ERROR(list.ExpectArray());
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < list.value().size(); ++i) {
      MG_ASSIGN_OR_RETURN(auto part, MakeNormalizer(list.At(i)));
      if (part) parts.push_back(std::move(part));
    }
    return std::unique_ptr<Normalizer>(new SequenceNormalizer(std::move(parts)));
  }
  return node.Unsupported("normalizer", type);
}

}  // namespace modelgrid::tokenizer

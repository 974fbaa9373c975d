// MakeModel: tokenizer.json "model" objects to BpeModel / WordPieceModel.
#include "tokenizer/bpe.h"
#include "tokenizer/model.h"
#include "tokenizer/wordpiece.h"

namespace modelgrid::tokenizer {

namespace {

Result<std::vector<std::pair<std::string, std::string>>> ReadMerges(const JsonNode& node) {
  MG_RETURN_IF_ERROR(node.ExpectArray());
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(node.value().size());
  size_t i = 0;
  for (const auto& m : node.value()) {
    if (m.is_string()) {  // "a b"
      const std::string& s = m.get_ref<const std::string&>();
      size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        return node.At(i).Error("expected \"<left> <right>\", got \"" + s + "\"");
      }
      merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // [a, b]
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      return node.At(i).Error("expected a \"a b\" string or an [a, b] pair of strings");
    }
    ++i;
  }
  return merges;
}

Result<std::unique_ptr<Model>> MakeBpe(const JsonNode& node) {
  JsonNode dropout = node.At("dropout");
  if (!dropout.IsNull()) {
    if (!dropout.value().is_number()) return dropout.Error("expected a number or null");
    if (dropout.value().get<double>() != 0.0) {
      return dropout.Error("BPE dropout is random: only null or 0 can be loaded");
    }
  }
  MG_ASSIGN_OR_RETURN(Vocab vocab, ReadVocab(node.At("vocab")));
  MG_ASSIGN_OR_RETURN(auto merges, ReadMerges(node.At("merges")));
  BpeOptions o;
  MG_ASSIGN_OR_RETURN(o.unk_token, node.OptionalString("unk_token"));
  MG_ASSIGN_OR_RETURN(o.continuing_subword_prefix, node.StringOr("continuing_subword_prefix", ""));
  MG_ASSIGN_OR_RETURN(o.end_of_word_suffix, node.StringOr("end_of_word_suffix", ""));
  MG_ASSIGN_OR_RETURN(o.fuse_unk, node.BoolOr("fuse_unk", false));
  MG_ASSIGN_OR_RETURN(o.byte_fallback, node.BoolOr("byte_fallback", false));
  MG_ASSIGN_OR_RETURN(o.ignore_merges, node.BoolOr("ignore_merges", false));
  auto model = BpeModel::Create(std::move(vocab), merges, std::move(o));
  if (!model.ok()) return node.Error(model.status().message());
  return std::unique_ptr<Model>(std::move(model).value());
}

Result<std::unique_ptr<Model>> MakeWordPiece(const JsonNode& node) {
  MG_ASSIGN_OR_RETURN(Vocab vocab, ReadVocab(node.At("vocab")));
  MG_ASSIGN_OR_RETURN(std::string unk, node.StringOr("unk_token", "[UNK]"));
  MG_ASSIGN_OR_RETURN(std::string prefix, node.StringOr("continuing_subword_prefix", "##"));
  MG_ASSIGN_OR_RETURN(int64_t max_chars, node.IntOr("max_input_chars_per_word", 100));
  if (max_chars < 0) return node.At("max_input_chars_per_word").Error("must not be negative");
  auto it = vocab.find(unk);
  if (it == vocab.end()) {
    return node.At("unk_token").Error("\"" + unk + "\" is not in the vocabulary");
  }
  int64_t unk_id = it->second;
  return std::unique_ptr<Model>(new WordPieceModel(
      std::move(vocab), std::move(unk), unk_id, std::move(prefix), static_cast<size_t>(max_chars)));
}

}  // namespace

Result<Vocab> ReadVocab(const JsonNode& node) {
  MG_RETURN_IF_ERROR(node.ExpectObject());
  Vocab vocab;
  vocab.reserve(node.value().size());
  for (const auto& [token, id] : node.value().items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0) {
      return node.At(token).Error("expected a non-negative integer id");
    }
    vocab.emplace(token, id.get<int64_t>());
  }
  return vocab;
}

Result<std::unique_ptr<Model>> MakeModel(const JsonNode& node) {
  MG_RETURN_IF_ERROR(node.ExpectObject());
  MG_ASSIGN_OR_RETURN(std::optional<std::string> type, node.OptionalString("type"));
  if (!type) {
    // Old files omit the type: infer it as the Rust crate's untagged
    // deserialisation does.
    if (node.Has("merges"))
      type = "BPE";
    else if (node.Has("continuing_subword_prefix") || node.Has("max_input_chars_per_word"))
      type = "WordPiece";
    else
      return node.Error("model has no \"type\" and is neither BPE nor WordPiece");
  }
  if (*type == "BPE") return MakeBpe(node);
  if (*type == "WordPiece") return MakeWordPiece(node);
  return node.Unsupported("model", *type);
}

}  // namespace modelgrid::tokenizer

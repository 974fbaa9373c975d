// Models (tokenizer.json "model"): turn one pre-tokenized piece into tokens.
// Supported types: BPE and WordPiece ("type" may be absent in old files: a
// model with merges is BPE, one with continuing_subword_prefix and no merges
// WordPiece). Implementations are immutable (the BPE cache is locked) and
// thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "modelgrid/status.h"
#include "tokenizer/json_node.h"
#include "tokenizer/normalized_string.h"

namespace modelgrid::tokenizer {

// One token of an encoding under construction.
struct Token {
  int64_t id = 0;
  std::string value;
  Span offsets;  // bytes of the original input
};

using Vocab = std::unordered_map<std::string, int64_t>;

class Model {
 public:
  virtual ~Model() = default;
  // Appends the tokens of `piece` to `out`.
  virtual Status Tokenize(const NormalizedString& piece, std::vector<Token>* out) const = 0;
  // token -> id of the model's own vocabulary.
  virtual const Vocab& vocab() const = 0;
  // The unknown token, when the model has one.
  virtual const std::optional<std::string>& unk_token() const = 0;
  // BPE's end_of_word_suffix ("" for none; the JS decoder replaces it by a space).
  virtual std::string end_of_word_suffix() const { return ""; }
};

// Builds the model `node` describes. Errors: kUnsupported for an unknown
// "type" (e.g. Unigram, WordLevel), kCorruption for a bad field, a merge
// whose tokens are not in the vocabulary, a dropout other than null or 0, a
// WordPiece unk_token missing from the vocabulary.
Result<std::unique_ptr<Model>> MakeModel(const JsonNode& node);

// Reads a {"token": id, ...} vocabulary.
Result<Vocab> ReadVocab(const JsonNode& node);

}  // namespace modelgrid::tokenizer

// Added tokens (tokenizer.json "added_tokens"): strings split out of the text
// before the model sees it, as the JS reference does: tokens that are not
// `normalized` (or all of them when there is no normalizer) are matched in
// the raw text; the others in each normalized section. At each position the
// longest token wins, scanning left to right; `lstrip` / `rstrip` trim the
// whitespace of the neighbouring text; `single_word` (which the JS reference
// ignores) only matches between non-word characters, Hugging Face's Rust rule.
// Immutable after Create; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "modelgrid/status.h"
#include "tokenizer/json_node.h"
#include "tokenizer/normalizer.h"

namespace modelgrid::tokenizer {

struct AddedToken {
  int64_t id = 0;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false;
  bool normalized = true;  // default: !special
  bool special = false;
  std::string match_content;  // content, or its normalized form for a normalized token
};

// A section of split text: [begin, end) bytes, and the added token it is
// (nullptr for plain text).
struct Section {
  size_t begin = 0, end = 0;
  const AddedToken* token = nullptr;
};

class AddedVocabulary {
 public:
  // Reads the "added_tokens" array; `normalizer` (may be null) gives the
  // normalized contents. Errors: kCorruption naming the field.
  static Result<AddedVocabulary> Create(const JsonNode& list, const Normalizer* normalizer);

  // Splits `text` on the raw-text tokens (`normalized_pass` false) or on the
  // normalized ones (true). Empty text sections are dropped.
  std::vector<Section> Split(std::string_view text, bool normalized_pass) const;
  // The token whose content (or normalized content) is exactly `text`.
  const AddedToken* Find(std::string_view text) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  std::vector<AddedToken> tokens_;
  // Per pass, token indexes by first byte, longest first.
  std::unordered_map<unsigned char, std::vector<size_t>> by_first_byte_[2];
  std::unordered_map<std::string, size_t> by_content_;
};

}  // namespace modelgrid::tokenizer

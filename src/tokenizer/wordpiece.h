// The WordPiece model (see wordpiece.cc for the rule).
#pragma once

#include "tokenizer/model.h"

namespace modelgrid::tokenizer {

class WordPieceModel : public Model {
 public:
  // `unk_token` must be in `vocab` (MakeModel checks).
  WordPieceModel(Vocab vocab, std::string unk_token, int64_t unk_id, std::string prefix,
                 size_t max_input_chars_per_word)
      : vocab_(std::move(vocab)),
        unk_token_(std::move(unk_token)),
        unk_id_(unk_id),
        prefix_(std::move(prefix)),
        max_input_chars_per_word_(max_input_chars_per_word) {}

  Status Tokenize(const NormalizedString& piece, std::vector<Token>* out) const override;
  const Vocab& vocab() const override { return vocab_; }
  const std::optional<std::string>& unk_token() const override { return unk_token_; }

 private:
  Vocab vocab_;
  std::optional<std::string> unk_token_;
  int64_t unk_id_;
  std::string prefix_;
  size_t max_input_chars_per_word_;
};

}  // namespace modelgrid::tokenizer

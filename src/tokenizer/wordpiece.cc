// WordPiece: greedy longest-match-first over each word's characters, later
// pieces with the continuing_subword_prefix; a word with no full cover, or
// longer than max_input_chars_per_word characters, becomes the unknown token
// (Google's BERT, as Hugging Face's WordPiece model implements it).
#include "tokenizer/wordpiece.h"

#include "tokenizer/unicode.h"

namespace modelgrid::tokenizer {

Status WordPieceModel::Tokenize(const NormalizedString& piece, std::vector<Token>* out) const {
  const std::string& word = piece.text();
  std::vector<size_t> starts;  // byte offset of each character, then word.size()
  for (size_t i = 0; i < word.size();) {
    starts.push_back(i);
    NextCodePoint(word, &i);
  }
  size_t chars = starts.size();
  starts.push_back(word.size());
  Token unk{unk_id_, *unk_token_, piece.SpanOf(0, word.size())};
  if (chars > max_input_chars_per_word_) {
    out->push_back(std::move(unk));
    return Status::Ok();
  }
  std::vector<Token> pieces;
  std::string candidate;
  for (size_t start = 0; start < chars;) {
    size_t end = chars;
    int64_t found = -1;
    for (; end > start; --end) {
      candidate.clear();
      if (start > 0) candidate = prefix_;
      candidate.append(word, starts[start], starts[end] - starts[start]);
      auto it = vocab_.find(candidate);
      if (it != vocab_.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {
      out->push_back(std::move(unk));
      return Status::Ok();
    }
    pieces.push_back({found, candidate, piece.SpanOf(starts[start], starts[end])});
    start = end;
  }
  out->insert(out->end(), pieces.begin(), pieces.end());
  return Status::Ok();
}

}  // namespace modelgrid::tokenizer

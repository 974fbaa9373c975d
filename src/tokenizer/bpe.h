// The byte-pair-encoding model (Sennrich et al. 2016, as Hugging Face's BPE
// model runs it): a word starts as its characters (continuing_subword_prefix
// before all but the first, end_of_word_suffix after the last); the adjacent
// pair with the lowest merge rank is merged, the leftmost first among equals,
// until no pair has a merge. A priority queue over a linked list of symbols
// keeps this O(n log n) in the word's length. Characters missing from the
// vocabulary become <0xXX> byte tokens (byte_fallback) or the unknown token
// (fused with a preceding one under fuse_unk), or are dropped when the model
// has no unknown token. With ignore_merges a word that is itself in the
// vocabulary is one token. Results for words under 256 bytes are cached.
#pragma once

#include <array>
#include <mutex>
#include <unordered_map>

#include "tokenizer/model.h"

namespace modelgrid::tokenizer {

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel : public Model {
 public:
  // `merges`: pairs of tokens, highest priority first. Errors: kCorruption
  // when a merge's parts or result are not in `vocab` (names the merge index),
  // or when the unk_token is not in `vocab`.
  static Result<std::unique_ptr<BpeModel>> Create(
      Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
      BpeOptions options);

  Status Tokenize(const NormalizedString& piece, std::vector<Token>* out) const override;
  const Vocab& vocab() const override { return vocab_; }
  const std::optional<std::string>& unk_token() const override { return options_.unk_token; }
  std::string end_of_word_suffix() const override { return options_.end_of_word_suffix; }

 private:
  // A symbol of a word: token id and its [begin, end) bytes in the word.
  struct Piece {
    int64_t id;
    uint32_t begin, end;
  };
  struct Merge {
    int32_t rank;
    int64_t new_id;
  };

  BpeModel() = default;
  std::vector<Piece> Encode(const std::string& word) const;
  std::vector<Piece> InitialSymbols(const std::string& word) const;
  void MergeAll(std::vector<Piece>* symbols) const;

  Vocab vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, Merge> merges_;  // key: left id << 32 | right id
  std::array<int64_t, 256> byte_ids_{};         // id of <0xXX>, -1 when absent
  int64_t unk_id_ = -1;
  BpeOptions options_;

  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<Piece>> cache_;
};

}  // namespace modelgrid::tokenizer

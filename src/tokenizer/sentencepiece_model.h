// A SentencePiece model file (tokenizer.model: a serialised
// sentencepiece.ModelProto) as a Model: libsentencepiece normalizes and
// segments each text section, so its BPE or Unigram rules, normalizer and
// byte fallback are the library's own. The library is reached through
// libmodelgrid_sentencepiece.so (sentencepiece_shim.h says why), loaded on
// first use from beside the executable, ../lib from it, or where the build
// put it.
//
// Immutable after Create; thread-safe (SentencePieceProcessor's const
// encoding may run on several threads: google/sentencepiece issues 207, 657).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/model.h"
#include "tokenizer/sentencepiece_shim.h"

namespace modelgrid::tokenizer {

// ModelProto.SentencePiece.Type; kNormal includes USER_DEFINED pieces (the
// library matches those in the text itself; 0.1.97 does not report them).
enum class PieceType { kNormal, kUnknown, kControl, kUnused, kByte };

class SentencePieceModel : public Model {
 public:
  // Loads the model from the file's bytes; `name` (the file) prefixes errors.
  // `legacy` is tokenizer_config.json's: true (transformers' default) gives
  // every text section the model's dummy "▁" prefix; false only a section
  // that starts the text (transformers' legacy=False LlamaTokenizer).
  // Errors: kCorruption when libsentencepiece refuses the bytes (not a
  // ModelProto, an empty vocabulary, a bad byte piece ...), with its reason;
  // kInternal when libmodelgrid_sentencepiece.so cannot be loaded (names
  // the paths tried).
  static Result<std::unique_ptr<SentencePieceModel>> Create(std::string_view bytes,
                                                            const std::string& name, bool legacy);
  ~SentencePieceModel() override;

  // Appends the library's segmentation of `piece` (one text section, as
  // given, no normalizer before it). Offsets: the byte pieces of one
  // character all cover that character. Errors: kInternal naming the file
  // when the library fails.
  Status Tokenize(const NormalizedString& piece, std::vector<Token>* out) const override;
  const Vocab& vocab() const override { return vocab_; }
  const std::optional<std::string>& unk_token() const override { return unk_token_; }

  // Number of pieces; ids are 0..size()-1.
  size_t size() const { return pieces_.size(); }
  const std::string& piece(int64_t id) const { return pieces_[id]; }
  PieceType type(int64_t id) const { return types_[id]; }
  // The ids the file reserves (trainer_spec unk_id / bos_id / eos_id /
  // pad_id); nullopt where it says -1.
  std::optional<int64_t> unk_id() const { return unk_id_; }
  std::optional<int64_t> bos_id() const { return bos_id_; }
  std::optional<int64_t> eos_id() const { return eos_id_; }
  std::optional<int64_t> pad_id() const { return pad_id_; }
  // normalizer_spec.add_dummy_prefix: "▁" is put before the text (and
  // decoding removes one leading space).
  bool adds_dummy_prefix() const { return adds_dummy_prefix_; }

 private:
  SentencePieceModel();

  std::string name_;
  bool adds_dummy_prefix_ = true;
  using Handle = std::unique_ptr<MgSpm, MgSpmFreeFn>;
  MgSpmEncodeFn encode_ = nullptr;
  Handle processor_{nullptr, nullptr};
  // The same model without the dummy prefix (legacy false only).
  Handle without_prefix_{nullptr, nullptr};
  std::vector<std::string> pieces_;
  std::vector<PieceType> types_;
  Vocab vocab_;
  std::optional<std::string> unk_token_;
  std::optional<int64_t> unk_id_, bos_id_, eos_id_, pad_id_;
};

}  // namespace modelgrid::tokenizer

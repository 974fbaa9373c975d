// Hugging Face tokenizers in C++: a Tokenizer reads a `tokenizer.json` (the
// serialisation of Hugging Face's `tokenizers` library) plus, when present,
// the `tokenizer_config.json` and `special_tokens_map.json` beside it, and
// turns text into token ids and back. A folder whose only tokenizer is a
// SentencePiece `tokenizer.model` (LLaMA / Mistral repositories) is read
// with libsentencepiece behind the same class (FromSentencePiece).
//
// Encoding follows Hugging Face's pipeline: added tokens are split out of the
// text first, then each remaining section goes through the normalizer, the
// pre-tokenizer, the model (BPE or WordPiece) and the post-processor. The
// rules are those of Hugging Face's JavaScript implementation
// (@huggingface/tokenizers, the reference of the tests); where it lacks a
// feature the rule of the Rust `tokenizers` crate is used
// (src/tokenizer/README.md lists the supported component types and every
// place where the two differ).
//
// Texts are UTF-8; offsets are byte offsets into the text given to Encode.
// A loaded Tokenizer is immutable; all its const methods may be called from
// several threads at once (the BPE cache inside is locked).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::tokenizer {

// Which end of a sequence truncation or padding acts on.
enum class Direction { kRight, kLeft };

// How a pair of sequences is truncated (tokenizer.json "truncation.strategy").
// For a single sequence every strategy removes tokens from that sequence.
enum class TruncationStrategy { kLongestFirst, kOnlyFirst, kOnlySecond };

// tokenizer.json's "truncation": cut an encoding to `max_length` tokens,
// counting the special tokens the post-processor adds (as Hugging Face does).
struct Truncation {
  size_t max_length = 0;
  TruncationStrategy strategy = TruncationStrategy::kLongestFirst;
  Direction direction = Direction::kRight;
  size_t stride = 0;  // read, not used: overflowing windows are not returned
};

// tokenizer.json's "padding": pad encodings with `pad_id` to `length` tokens
// (nullopt: the longest encoding of the batch), rounded up to a multiple of
// `pad_to_multiple_of` when that is set.
struct Padding {
  std::optional<size_t> length;
  std::optional<size_t> pad_to_multiple_of;
  Direction direction = Direction::kRight;
  int64_t pad_id = 0;
  int64_t pad_type_id = 0;
  std::string pad_token = "[PAD]";
};

// The result of encoding one text. All vectors have one entry per token.
struct Encoding {
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;      // vocabulary strings, e.g. "Ġworld", "##ing", "▁the"
  std::vector<int64_t> type_ids;        // segment ids from the post-processor (0 for one text)
  std::vector<int64_t> attention_mask;  // 1 for real tokens, 0 for padding
  std::vector<int64_t> special_tokens_mask;  // 1 for tokens added by post-processing/padding
  // [begin, end) byte offsets of each token in the text given to Encode;
  // (0, 0) for tokens the post-processor or padding added. A token made of
  // part of a multi-byte character covers the whole character.
  std::vector<std::pair<size_t, size_t>> offsets;

  size_t size() const { return ids.size(); }
};

// Per-call encoding options.
struct EncodeOptions {
  // Run the post-processor's special tokens ([CLS] ... [SEP], <s> ...).
  bool add_special_tokens = true;
  // Truncate to this many tokens (special tokens included), overriding
  // tokenizer.json's "truncation". nullopt: use tokenizer.json's, if any.
  // Whether a prompt longer than a model's positions is an error or is
  // truncated is the caller's decision: compare Encode's size first, or set
  // this.
  std::optional<size_t> max_length;
  // Which end max_length cuts (kLeft keeps the last tokens).
  Direction truncation_direction = Direction::kRight;
  // Apply tokenizer.json's "padding" (when it has one).
  bool apply_padding = true;
};

// Per-call decoding options.
struct DecodeOptions {
  // Drop special tokens (added tokens marked special, and the config's
  // additional_special_tokens) before decoding.
  bool skip_special_tokens = false;
  // Apply transformers' clean_up_tokenization (" ." -> "." , " n't" -> "n't"
  // ...). nullopt: tokenizer_config.json's clean_up_tokenization_spaces,
  // which defaults to true when absent (transformers 4.x and the JS reference).
  std::optional<bool> clean_up_tokenization_spaces;
};

// Special tokens named by tokenizer_config.json / special_tokens_map.json
// (for unk: also the model's unk_token). nullopt where none is defined or the
// named token is not in the vocabulary.
struct SpecialTokenIds {
  std::optional<int64_t> bos, eos, pad, unk, cls, sep, mask;
};

// What tokenizer_config.json says beyond the special tokens.
struct TokenizerConfig {
  std::optional<bool> add_bos_token;  // LLaMA-style configs
  std::optional<bool> add_eos_token;
  // transformers' LlamaTokenizer "legacy" (nullopt: absent, which means
  // true): whether text after a special token gets SentencePiece's "▁"
  // prefix. Only a tokenizer.model reads it (tokenizer.json spells it out).
  std::optional<bool> legacy;
  // Longest input the model accepts, in tokens; nullopt when absent or set to
  // transformers' "unbounded" 1e30.
  std::optional<uint64_t> model_max_length;
  bool clean_up_tokenization_spaces = true;
  std::string tokenizer_class;  // e.g. "GPT2Tokenizer"; "" when absent
  std::string chat_template;    // Jinja source; "" when absent (not rendered here)
  std::vector<std::string> additional_special_tokens;
};

class Tokenizer {
 public:
  // Loads `dir`/tokenizer.json, or when it has none `dir`/tokenizer.model
  // (FromSentencePiece), and tokenizer_config.json and
  // special_tokens_map.json from `dir` when they exist.
  // Errors: kNotFound (neither file), kCorruption (bad JSON, a field of
  // the wrong type: the message names the file and the JSON path; a
  // tokenizer.model libsentencepiece cannot read), kUnsupported (a component
  // type not implemented: names file, path, type).
  static Result<Tokenizer> FromDirectory(const std::string& dir);
  // Loads one tokenizer.json file; the two config files are read from its
  // folder when present. Errors as FromDirectory.
  static Result<Tokenizer> FromFile(const std::string& tokenizer_json_path);
  // Loads a SentencePiece model file (tokenizer.model, a serialised
  // sentencepiece.ModelProto: BPE or Unigram, with or without byte fallback)
  // and the two config files from its folder when present. Encoding: the
  // CONTROL and UNKNOWN pieces (<s>, </s>, <unk>; special) and
  // tokenizer_config.json's added_tokens_decoder are added tokens (split
  // out of the text first, as transformers' LlamaTokenizer does); every
  // other section is segmented by libsentencepiece with the file's
  // normalizer (its "▁" dummy prefix on every section, or with legacy false
  // only on one that starts the text); then [bos] text [eos] as add_bos_token (default true) /
  // add_eos_token (default false) say. Decoding: byte pieces <0xNN> become
  // bytes, "▁" a space, and one leading space goes when the model adds a
  // dummy prefix (transformers' LlamaConverter decoder). Special ids: the
  // config's names, else the file's unk/bos/eos/pad ids.
  // Errors: kNotFound (cannot open), kCorruption (libsentencepiece refuses
  // the bytes; a bad config file or an added_tokens_decoder entry that
  // contradicts the file: names the file), kUnsupported (a tokenizer_class
  // whose template is not LLaMA's, e.g. T5Tokenizer), kInternal (the
  // libsentencepiece wrapper, libmodelgrid_sentencepiece.so, cannot be
  // loaded: names the paths tried; src/tokenizer/README.md).
  static Result<Tokenizer> FromSentencePiece(const std::string& model_path);
  // Loads from JSON text. `config_json` ("" for none) is a
  // tokenizer_config.json text; `name` names the source in error messages.
  // Errors as FromDirectory (never kNotFound).
  static Result<Tokenizer> FromJson(std::string_view tokenizer_json,
                                    std::string_view config_json = "",
                                    const std::string& name = "tokenizer.json");

  // Movable, not copyable (a vocabulary with its merges takes tens of MB).
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Encodes `text` (UTF-8). Errors: kInvalidArgument when `text` is not
  // valid UTF-8 (the message names the byte offset of the first bad byte) or
  // when max_length leaves no room for the special tokens; kInternal when a
  // pattern cannot be matched (PCRE2 resource limits).
  Result<Encoding> Encode(std::string_view text, bool add_special_tokens = true) const;
  Result<Encoding> Encode(std::string_view text, const EncodeOptions& options) const;
  // Encodes each text; tokenizer.json's padding (if any, and
  // options.apply_padding) pads them to the batch's longest. Errors: the first
  // text's error, prefixed with its index.
  Result<std::vector<Encoding>> EncodeBatch(std::span<const std::string> texts,
                                            const EncodeOptions& options = {}) const;

  // Turns ids back into text. Errors: kInvalidArgument for an id outside
  // [0, IdLimit()) or with no token (the message names it and its position).
  // Byte sequences that are not UTF-8 decode to U+FFFD (WHATWG rule).
  Result<std::string> Decode(std::span<const int64_t> ids, bool skip_special_tokens = false) const;
  Result<std::string> Decode(std::span<const int64_t> ids, const DecodeOptions& options) const;

  // The id of a vocabulary or added token; nullopt when there is none.
  std::optional<int64_t> TokenToId(std::string_view token) const;
  // The token of an id; nullopt when out of range or unassigned.
  std::optional<std::string> IdToToken(int64_t id) const;
  // Number of distinct tokens, added tokens included (transformers' len(tokenizer)).
  size_t VocabSize() const;
  // One past the largest id in use (the embedding rows a model needs).
  size_t IdLimit() const;
  // Whether `id` is an added token marked special (or listed in the config's
  // additional_special_tokens).
  bool IsSpecialId(int64_t id) const;

  const SpecialTokenIds& special_ids() const;
  const TokenizerConfig& config() const;
  // tokenizer.json's "truncation" / "padding"; nullopt when null or absent.
  const std::optional<Truncation>& truncation() const;
  const std::optional<Padding>& padding() const;
  // Number of special tokens the post-processor adds to one sequence.
  size_t NumSpecialTokensToAdd() const;

  // The loaded components (src/tokenizer/tokenizer_impl.h); opaque here.
  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelgrid::tokenizer

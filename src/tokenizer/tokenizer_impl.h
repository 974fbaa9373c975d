// The state behind modelgrid::tokenizer::Tokenizer (include/modelgrid/tokenizer/tokenizer.h).
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "modelgrid/tokenizer/tokenizer.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/decoder.h"
#include "tokenizer/model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"

namespace modelgrid::tokenizer {

struct Tokenizer::Impl {
  std::string name;  // the tokenizer.json path, for messages
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Model> model;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;
  AddedVocabulary added;
  std::unordered_set<std::string> added_contents;  // for the ByteLevel decoder

  std::vector<std::string> id_to_token;  // "" where unassigned
  std::vector<bool> assigned;
  std::vector<bool> special;  // per id
  size_t vocab_size = 0;

  TokenizerConfig config;
  SpecialTokenIds special_ids;
  std::optional<Truncation> truncation;
  std::optional<Padding> padding;

  // Encodes one text (no truncation, no padding, no post-processing).
  Status EncodeTokens(std::string_view text, Encoding* e) const;
  // Truncates, post-processes and (Fixed) pads one encoding.
  Status Finish(std::string_view text, const EncodeOptions& options, Encoding* e) const;
};

// The special token names of tokenizer_config.json / special_tokens_map.json
// ("" where a file does not name one).
struct SpecialTokenNames {
  std::string bos, eos, pad, unk, cls, sep, mask;
};

// Reads tokenizer_config.json text (may be "") into `config` and `names`,
// then special_tokens_map.json text (may be "") for the names the config
// lacks. Errors: kCorruption naming the file and field.
Status ReadTokenizerConfig(std::string_view config_json, const std::string& config_name,
                           std::string_view special_map_json, const std::string& special_map_name,
                           TokenizerConfig* config, SpecialTokenNames* names);

// tokenizer_config.json's "added_tokens_decoder" ({"id": {"content": ...,
// "special": ...}}) as tokenizer.json "added_tokens" entries, in id order
// ([] when absent or `config_json` is ""). Errors: kCorruption naming the
// file and entry.
Result<nlohmann::json> ReadAddedTokensDecoder(std::string_view config_json,
                                              const std::string& config_name);

// Pads `e` to `length` tokens with `p`'s pad token.
void PadEncoding(const Padding& p, size_t length, Encoding* e);

// A whole file. Errors: kNotFound (cannot open), kCorruption (read error);
// both name the path.
Result<std::string> ReadTokenizerFile(const std::string& path);
// `dir`/`name`'s text, or "" when there is no such file.
Result<std::string> ReadOptionalSibling(const std::filesystem::path& dir, const char* name);

// Fills the id tables (id_to_token, assigned, special, vocab_size) from the
// model's vocabulary and the added tokens (which win).
void BuildIdTables(Tokenizer::Impl* impl);
// Sets impl->special_ids from `names` (unk falls back to the model's
// unk_token) and marks the config's additional_special_tokens special.
// `tokenizer` owns `impl` (its TokenToId resolves the names).
void ResolveSpecialIds(const SpecialTokenNames& names, Tokenizer::Impl* impl,
                       const Tokenizer& tokenizer);

}  // namespace modelgrid::tokenizer

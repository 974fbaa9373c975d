// Decoders (tokenizer.json "decoder"): turn a list of token strings back into
// text, as a chain of list-to-list steps. Supported types: ByteLevel,
// WordPiece, Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder,
// Sequence. Implementations are immutable and thread-safe.
#pragma once

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "modelgrid/status.h"
#include "tokenizer/json_node.h"

namespace modelgrid::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Rewrites the list of strings; the caller joins the final list.
  virtual Status DecodeChain(std::vector<std::string>* tokens) const = 0;
};

// What decoders need from the tokenizer: the contents of the added tokens
// (the ByteLevel decoder passes them through unchanged, as the JS reference
// does). Must outlive the decoder.
struct DecoderContext {
  const std::unordered_set<std::string>* added_tokens = nullptr;
};

// Builds the decoder `node` describes; nullptr for a JSON null. Errors:
// kUnsupported for an unknown "type", kCorruption for a bad field.
Result<std::unique_ptr<Decoder>> MakeDecoder(const JsonNode& node, const DecoderContext& context);

// transformers' clean_up_tokenization: " ." -> ".", " ?" -> "?", " !" -> "!",
// " ," -> ",", " ' " -> "'", " n't" -> "n't", " 'm" -> "'m", " 's" -> "'s",
// " 've" -> "'ve", " 're" -> "'re", applied in that order.
std::string CleanUpTokenization(std::string_view text);

}  // namespace modelgrid::tokenizer

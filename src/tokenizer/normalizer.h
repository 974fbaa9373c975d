// Normalizers (tokenizer.json "normalizer"): rewrite a section of text before
// pre-tokenization, keeping each output byte's original span. Supported
// types: BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents,
// Prepend, Replace (String and Regex patterns), Strip, Sequence.
// Implementations are immutable and thread-safe.
#pragma once

#include <memory>
#include <string>

#include "modelgrid/status.h"
#include "tokenizer/json_node.h"
#include "tokenizer/normalized_string.h"

namespace modelgrid::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites `s` in place. Errors come only from regex matching (kInternal).
  virtual Status Normalize(NormalizedString* s) const = 0;
};

// Builds the normalizer `node` describes; nullptr for a JSON null. Errors:
// kUnsupported for an unknown "type", kCorruption for a bad field (both name
// the file and JSON path).
Result<std::unique_ptr<Normalizer>> MakeNormalizer(const JsonNode& node);

// Unicode normalization forms through ICU.
enum class UnicodeForm { kNfc, kNfd, kNfkc, kNfkd };
// Applies `form` to `s`. Output characters keep the spans of the input
// characters they replace (1:1 where a normalization segment keeps its
// length, else every output character of the segment spans the segment).
void ApplyUnicodeForm(UnicodeForm form, NormalizedString* s);

}  // namespace modelgrid::tokenizer

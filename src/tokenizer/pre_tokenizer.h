// Pre-tokenizers (tokenizer.json "pre_tokenizer"): split a normalized section
// into pieces that the model tokenizes one by one. Supported types:
// BertPreTokenizer, ByteLevel, Split, Metaspace, Whitespace, WhitespaceSplit,
// Punctuation, Digits, Sequence. Implementations are immutable and
// thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "modelgrid/status.h"
#include "tokenizer/json_node.h"
#include "tokenizer/normalized_string.h"

namespace modelgrid::tokenizer {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces each piece of `pieces` by the pieces it splits into (empty
  // pieces are dropped). Errors only from regex matching (kInternal).
  virtual Status PreTokenize(std::vector<NormalizedString>* pieces) const = 0;
};

// Builds the pre-tokenizer `node` describes; nullptr for a JSON null. Errors:
// kUnsupported for an unknown "type", kCorruption for a bad field.
Result<std::unique_ptr<PreTokenizer>> MakePreTokenizer(const JsonNode& node);

// How a split keeps the delimiters it finds (Hugging Face's
// SplitDelimiterBehavior).
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

// Byte ranges of the pieces `text` of `length` bytes splits into, given the
// delimiter `matches` (sorted, non-overlapping) and the behavior; with
// `invert` the matches are the pieces and the gaps the delimiters. Empty
// ranges are dropped.
std::vector<Span> SplitRanges(size_t length, const std::vector<Span>& matches,
                              SplitBehavior behavior, bool invert);

// GPT-2's byte-to-character table (bytes_to_unicode): the UTF-8 of the
// character that stands for `byte`.
const std::string& ByteLevelChar(unsigned char byte);
// The byte a byte-level character stands for; -1 when `c` is none.
int ByteLevelByte(char32_t c);

}  // namespace modelgrid::tokenizer

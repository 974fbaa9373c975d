// Streaming detokenization for generation: given the ids generated so far,
// returns the text they add since the previous call, never ending inside a
// multi-byte UTF-8 character or a byte-fallback sequence (trailing text that
// decodes to U+FFFD is held back until the next ids complete it, or until
// Flush; the complete characters before it are returned at once).
//
// It decodes a short window of ids (up to kContextIds before the pending
// ones) twice and emits the difference, so each step costs O(window), and
// decoders that treat the first token specially (Metaspace, Strip, WordPiece)
// do not add or drop spaces at window boundaries. clean_up_tokenization is
// off: it rewrites text across token boundaries.
//
// Not thread-safe (one object per stream); the Tokenizer must outlive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "modelgrid/status.h"
#include "modelgrid/tokenizer/tokenizer.h"

namespace modelgrid::tokenizer {

class IncrementalDecoder {
 public:
  // Ids kept before the pending ones as decoding context.
  static constexpr size_t kContextIds = 5;

  explicit IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = true)
      : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

  // `all_ids`: every id of the stream so far (the previous call's ids plus
  // new ones). Returns the newly completed text ("" when the new ids only
  // start a character). Errors: kInvalidArgument when `all_ids` is shorter
  // than at the previous call, or Decode's errors (an unknown id).
  Result<std::string> Step(std::span<const int64_t> all_ids);

  // The text still held back (an incomplete character decodes as U+FFFD),
  // for the end of the stream. Errors as Decode.
  Result<std::string> Flush(std::span<const int64_t> all_ids);

 private:
  Result<std::string> DecodeRange(std::span<const int64_t> ids, size_t begin, size_t end) const;

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  size_t prefix_offset_ = 0;  // start of the context window
  size_t read_offset_ = 0;    // ids before this are emitted
  size_t seen_ = 0;           // ids given at the previous call
  size_t emitted_ = 0;        // bytes past the window's prefix already returned
};

}  // namespace modelgrid::tokenizer

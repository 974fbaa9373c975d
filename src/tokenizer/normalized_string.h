// A piece of text being normalized or pre-tokenized, with the byte range of
// the original input that each of its bytes came from, so that tokens can
// report offsets into the text the caller gave (Hugging Face's
// NormalizedString, reduced to what encoding needs). Value type.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace modelgrid::tokenizer {

// [begin, end) in bytes of the original input.
struct Span {
  size_t begin = 0;
  size_t end = 0;
};

class NormalizedString {
 public:
  NormalizedString() = default;
  // `text` taken as is; its byte i comes from original byte `base` + i.
  NormalizedString(std::string_view text, size_t base);

  const std::string& text() const { return text_; }
  bool empty() const { return text_.empty(); }
  size_t size() const { return text_.size(); }
  // Original range of byte `i` of text().
  Span SpanAt(size_t i) const { return spans_[i]; }
  // Original range covered by bytes [begin, end) of text(); an empty range
  // maps to the empty span at the original position of byte `begin`.
  Span SpanOf(size_t begin, size_t end) const;
  // Bytes [begin, end) of this string, spans kept.
  NormalizedString Slice(size_t begin, size_t end) const;

  // Appends `utf8`; every byte of it gets `span`.
  void Append(std::string_view utf8, Span span);
  // Appends bytes [begin, end) of `other` with their spans.
  void AppendSlice(const NormalizedString& other, size_t begin, size_t end);

 private:
  std::string text_;
  std::vector<Span> spans_;  // one per byte of text_
};

}  // namespace modelgrid::tokenizer

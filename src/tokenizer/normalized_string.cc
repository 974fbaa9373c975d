#include "tokenizer/normalized_string.h"

#include <algorithm>

namespace modelgrid::tokenizer {

NormalizedString::NormalizedString(std::string_view text, size_t base) : text_(text) {
  spans_.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) spans_.push_back({base + i, base + i + 1});
}

Span NormalizedString::SpanOf(size_t begin, size_t end) const {
  if (begin >= end) {
    if (begin < spans_.size()) return {spans_[begin].begin, spans_[begin].begin};
    if (!spans_.empty()) return {spans_.back().end, spans_.back().end};
    return {};
  }
  Span s = spans_[begin];
  for (size_t i = begin + 1; i < end; ++i) {
    s.begin = std::min(s.begin, spans_[i].begin);
    s.end = std::max(s.end, spans_[i].end);
  }
  return s;
}

NormalizedString NormalizedString::Slice(size_t begin, size_t end) const {
  NormalizedString out;
  out.AppendSlice(*this, begin, end);
  return out;
}

void NormalizedString::Append(std::string_view utf8, Span span) {
  text_.append(utf8);
  spans_.insert(spans_.end(), utf8.size(), span);
}

void NormalizedString::AppendSlice(const NormalizedString& other, size_t begin, size_t end) {
  text_.append(other.text_, begin, end - begin);
  spans_.insert(spans_.end(), other.spans_.begin() + begin, other.spans_.begin() + end);
}

}  // namespace modelgrid::tokenizer

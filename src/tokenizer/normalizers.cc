// The normalizer types; rules of Hugging Face's JS implementation (each
// class says where the Rust crate differs).
#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <vector>

#include "tokenizer/normalizer.h"
#include "tokenizer/normalizers_internal.h"
#include "tokenizer/unicode.h"

namespace modelgrid::tokenizer {

namespace {

const icu::Normalizer2* Instance(UnicodeForm form) {
  UErrorCode e = U_ZERO_ERROR;
  switch (form) {
    case UnicodeForm::kNfc:
      return icu::Normalizer2::getNFCInstance(e);
    case UnicodeForm::kNfd:
      return icu::Normalizer2::getNFDInstance(e);
    case UnicodeForm::kNfkc:
      return icu::Normalizer2::getNFKCInstance(e);
    case UnicodeForm::kNfkd:
      return icu::Normalizer2::getNFKDInstance(e);
  }
  return nullptr;
}

}  // namespace

void ApplyUnicodeForm(UnicodeForm form, NormalizedString* s) {
  const icu::Normalizer2* norm = Instance(form);
  UErrorCode e = U_ZERO_ERROR;
  const std::string& text = s->text();
  icu::UnicodeString whole = icu::UnicodeString::fromUTF8(text);
  if (norm->isNormalized(whole, e) && U_SUCCESS(e)) return;
  NormalizedString out;
  // Segments start at characters with a normalization boundary before them;
  // each is normalized on its own (the result equals normalizing the whole).
  size_t seg_begin = 0;
  auto flush = [&](size_t seg_end) {
    if (seg_end <= seg_begin) return;
    std::string_view seg(text.data() + seg_begin, seg_end - seg_begin);
    UErrorCode err = U_ZERO_ERROR;
    icu::UnicodeString n = norm->normalize(icu::UnicodeString::fromUTF8(seg), err);
    std::string converted;
    n.toUTF8String(converted);
    if (CountCodePoints(converted) == CountCodePoints(seg)) {
      size_t i = 0, j = seg_begin;
      while (i < converted.size()) {
        size_t ci = i, cj = j;
        NextCodePoint(converted, &i);
        NextCodePoint(text, &j);
        out.Append(std::string_view(converted).substr(ci, i - ci), s->SpanOf(cj, j));
      }
    } else {
      Span span = s->SpanOf(seg_begin, seg_end);
      size_t i = 0;
      while (i < converted.size()) {
        size_t ci = i;
        NextCodePoint(converted, &i);
        out.Append(std::string_view(converted).substr(ci, i - ci), span);
      }
    }
    seg_begin = seg_end;
  };
  for (size_t i = 0; i < text.size();) {
    size_t at = i;
    char32_t c = NextCodePoint(text, &i);
    if (at > seg_begin && norm->hasBoundaryBefore(static_cast<UChar32>(c))) flush(at);
  }
  flush(text.size());
  *s = std::move(out);
}

NormalizedString MapChars(const NormalizedString& s, const CharMapper& f) {
  NormalizedString out;
  const std::string& text = s.text();
  std::string piece;
  for (size_t i = 0; i < text.size();) {
    size_t at = i;
    char32_t c = NextCodePoint(text, &i);
    piece.clear();
    f(c, at, &piece);
    if (!piece.empty()) out.Append(piece, s.SpanOf(at, i));
  }
  return out;
}

void LowercaseInPlace(NormalizedString* s) {
  const std::string& text = s->text();
  *s = MapChars(*s, [&](char32_t c, size_t at, std::string* out) {
    *out = LowercaseCodePoint(c, c == 0x03A3 && IsFinalSigmaAt(text, at));
  });
}

Status BertNormalizer::Normalize(NormalizedString* s) const {
  if (clean_text_) {
    *s = MapChars(*s, [](char32_t c, size_t, std::string* out) {
      if (c == 0 || c == 0xFFFD || IsBertControl(c)) return;
      if (IsJsWhitespace(c)) {
        out->push_back(' ');
      } else {
        AppendUtf8(out, c);
      }
    });
  }
  if (handle_chinese_chars_) {
    *s = MapChars(*s, [](char32_t c, size_t, std::string* out) {
      bool cjk = IsBertChineseChar(c);
      if (cjk) out->push_back(' ');
      AppendUtf8(out, c);
      if (cjk) out->push_back(' ');
    });
  }
  // strip_accents null follows lowercase (Hugging Face's rule).
  bool strip = strip_accents_.value_or(lowercase_);
  if (lowercase_) LowercaseInPlace(s);
  if (strip) {
    ApplyUnicodeForm(UnicodeForm::kNfd, s);
    *s = MapChars(*s, [](char32_t c, size_t, std::string* out) {
      if (!IsNonspacingMark(c)) AppendUtf8(out, c);
    });
  }
  return Status::Ok();
}

Status UnicodeNormalizer::Normalize(NormalizedString* s) const {
  ApplyUnicodeForm(form_, s);
  return Status::Ok();
}

Status LowercaseNormalizer::Normalize(NormalizedString* s) const {
  LowercaseInPlace(s);
  return Status::Ok();
}

Status StripAccentsNormalizer::Normalize(NormalizedString* s) const {
  *s = MapChars(*s, [](char32_t c, size_t, std::string* out) {
    if (!IsMark(c)) AppendUtf8(out, c);
  });
  return Status::Ok();
}

Status PrependNormalizer::Normalize(NormalizedString* s) const {
  if (s->empty()) return Status::Ok();
  NormalizedString out;
  Span first = s->SpanAt(0);
  out.Append(prepend_, {first.begin, first.begin});
  out.AppendSlice(*s, 0, s->size());
  *s = std::move(out);
  return Status::Ok();
}

Status ReplaceNormalizer::Normalize(NormalizedString* s) const {
  std::vector<Span> matches;
  MG_RETURN_IF_ERROR(pattern_.FindAll(s->text(), &matches));
  if (matches.empty()) return Status::Ok();
  NormalizedString out;
  size_t at = 0;
  for (const Span& m : matches) {
    out.AppendSlice(*s, at, m.begin);
    if (!content_.empty()) out.Append(content_, s->SpanOf(m.begin, m.end));
    at = m.end;
  }
  out.AppendSlice(*s, at, s->size());
  *s = std::move(out);
  return Status::Ok();
}

Status StripNormalizer::Normalize(NormalizedString* s) const {
  const std::string& text = s->text();
  size_t begin = 0, end = text.size();
  if (left_) begin = TrimJsWhitespaceStart(text, begin, end);
  if (right_) end = TrimJsWhitespaceEnd(text, begin, end);
  if (begin != 0 || end != text.size()) *s = s->Slice(begin, end);
  return Status::Ok();
}

Status SequenceNormalizer::Normalize(NormalizedString* s) const {
  for (const auto& n : normalizers_) MG_RETURN_IF_ERROR(n->Normalize(s));
  return Status::Ok();
}

}  // namespace modelgrid::tokenizer

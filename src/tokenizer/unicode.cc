#include "tokenizer/unicode.h"

#include <unicode/locid.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

namespace modelgrid::tokenizer {

size_t Utf8Length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

char32_t NextCodePoint(std::string_view s, size_t* i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  unsigned char b = p[*i];
  size_t n = Utf8Length(b);
  if (n == 1 || *i + n > s.size()) {
    ++*i;
    return b;
  }
  char32_t c = b & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) c = (c << 6) | (p[*i + k] & 0x3F);
  *i += n;
  return c;
}

void AppendUtf8(std::string* out, char32_t c) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

size_t CountCodePoints(std::string_view s) {
  size_t n = 0;
  for (unsigned char b : s) n += (b & 0xC0) != 0x80;
  return n;
}

bool IsJsWhitespace(char32_t c) {
  switch (c) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
    case 0xFEFF:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

size_t TrimJsWhitespaceStart(std::string_view text, size_t begin, size_t end) {
  while (begin < end) {
    size_t i = begin;
    if (!IsJsWhitespace(NextCodePoint(text, &i))) break;
    begin = i;
  }
  return begin;
}

size_t TrimJsWhitespaceEnd(std::string_view text, size_t begin, size_t end) {
  while (end > begin) {
    size_t start = end - 1;  // the last code point's first byte
    while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    size_t i = start;
    if (!IsJsWhitespace(NextCodePoint(text, &i))) break;
    end = start;
  }
  return end;
}

bool IsUnicodeWhitespace(char32_t c) {
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE);
}

static int Category(char32_t c) { return u_charType(static_cast<UChar32>(c)); }

bool IsBertPunctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126)) {
    return true;
  }
  return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_P_MASK) != 0;
}

bool IsBertControl(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  int t = Category(c);
  return t == U_CONTROL_CHAR || t == U_FORMAT_CHAR || t == U_PRIVATE_USE_CHAR || t == U_SURROGATE;
}

bool IsBertChineseChar(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0xF900 && c <= 0xFAFF);
}

bool IsMark(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_M_MASK) != 0; }

bool IsNonspacingMark(char32_t c) { return Category(c) == U_NON_SPACING_MARK; }

bool IsNumeric(char32_t c) { return (U_GET_GC_MASK(static_cast<UChar32>(c)) & U_GC_N_MASK) != 0; }

bool IsWordChar(char32_t c) {
  auto mask = U_GET_GC_MASK(static_cast<UChar32>(c));
  return (mask & (U_GC_L_MASK | U_GC_M_MASK | U_GC_ND_MASK | U_GC_PC_MASK)) != 0;
}

std::string LowercaseCodePoint(char32_t c, bool final_sigma) {
  std::string out;
  if (c < 0x80) {
    out.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c));
    return out;
  }
  if (c == 0x03A3) {
    AppendUtf8(&out, final_sigma ? 0x03C2 : 0x03C3);
    return out;
  }
  icu::UnicodeString u(static_cast<UChar32>(c));
  u.toLower(icu::Locale::getRoot());
  u.toUTF8String(out);
  return out;
}

static bool IsCased(char32_t c) {
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASED);
}
static bool IsCaseIgnorable(char32_t c) {
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_CASE_IGNORABLE);
}

// The code point ending just before byte `end` of valid UTF-8 `s`; sets
// *start to its first byte.
static char32_t PrevCodePoint(std::string_view s, size_t end, size_t* start) {
  size_t i = end - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  *start = i;
  size_t j = i;
  return NextCodePoint(s, &j);
}

bool IsFinalSigmaAt(std::string_view s, size_t pos) {
  bool cased_before = false;
  for (size_t end = pos; end > 0;) {
    size_t start;
    char32_t c = PrevCodePoint(s, end, &start);
    end = start;
    if (IsCaseIgnorable(c)) continue;
    cased_before = IsCased(c);
    break;
  }
  if (!cased_before) return false;
  size_t i = pos;
  NextCodePoint(s, &i);
  while (i < s.size()) {
    char32_t c = NextCodePoint(s, &i);
    if (IsCaseIgnorable(c)) continue;
    return !IsCased(c);
  }
  return true;
}

std::string DecodeUtf8Lossy(std::string_view bytes) {
  static constexpr char32_t kReplacement = 0xFFFD;
  std::string out;
  out.reserve(bytes.size());
  size_t needed = 0, seen = 0;
  unsigned lower = 0x80, upper = 0xBF;
  char32_t cp = 0;
  for (size_t i = 0; i < bytes.size();) {
    unsigned b = static_cast<unsigned char>(bytes[i]);
    if (needed == 0) {
      ++i;
      if (b <= 0x7F) {
        out.push_back(static_cast<char>(b));
      } else if (b >= 0xC2 && b <= 0xDF) {
        needed = 1;
        cp = b & 0x1F;
      } else if (b >= 0xE0 && b <= 0xEF) {
        if (b == 0xE0) lower = 0xA0;
        if (b == 0xED) upper = 0x9F;
        needed = 2;
        cp = b & 0x0F;
      } else if (b >= 0xF0 && b <= 0xF4) {
        if (b == 0xF0) lower = 0x90;
        if (b == 0xF4) upper = 0x8F;
        needed = 3;
        cp = b & 0x07;
      } else {
        AppendUtf8(&out, kReplacement);
      }
      continue;
    }
    if (b < lower || b > upper) {
      // The byte is not consumed: it may start the next sequence.
      needed = seen = 0;
      cp = 0;
      lower = 0x80;
      upper = 0xBF;
      AppendUtf8(&out, kReplacement);
      continue;
    }
    ++i;
    lower = 0x80;
    upper = 0xBF;
    cp = (cp << 6) | (b & 0x3F);
    if (++seen == needed) {
      AppendUtf8(&out, cp);
      needed = seen = 0;
      cp = 0;
    }
  }
  if (needed != 0) AppendUtf8(&out, kReplacement);
  return out;
}

std::string ReplaceAll(std::string_view text, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (true) {
    size_t j = text.find(from, i);
    if (j == std::string_view::npos) break;
    out.append(text, i, j - i);
    out.append(to);
    i = j + from.size();
  }
  out.append(text, i, std::string_view::npos);
  return out;
}

}  // namespace modelgrid::tokenizer

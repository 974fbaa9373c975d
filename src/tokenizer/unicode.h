// Character-level helpers of the tokenizer: UTF-8 walking, the character
// classes Hugging Face's tokenizers use (JS whitespace, BERT punctuation and
// CJK ranges), Unicode properties from ICU, lossy UTF-8 decoding.
// Inputs are valid UTF-8 unless said otherwise. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace modelgrid::tokenizer {

// Decodes the code point starting at s[*i] and advances *i past it. `s` must
// be valid UTF-8 and *i the start of a sequence.
char32_t NextCodePoint(std::string_view s, size_t* i);
// Length in bytes of the UTF-8 sequence whose lead byte is `lead` (1 for a
// stray byte).
size_t Utf8Length(unsigned char lead);
// Appends the UTF-8 encoding of `c` to `out`.
void AppendUtf8(std::string* out, char32_t c);
// Number of code points in valid UTF-8 `s`.
size_t CountCodePoints(std::string_view s);

// The whitespace of JavaScript's \s, String.prototype.trim and \S
// (ECMA-262 WhiteSpace + LineTerminator): TAB LF VT FF CR SPACE U+00A0
// U+1680 U+2000..U+200A U+2028 U+2029 U+202F U+205F U+3000 U+FEFF.
bool IsJsWhitespace(char32_t c);
// The bounds of text[begin, end) (valid UTF-8, `begin` and `end` on code
// point boundaries) without IsJsWhitespace code points at its start /
// its end, as String.prototype.trimStart / trimEnd.
size_t TrimJsWhitespaceStart(std::string_view text, size_t begin, size_t end);
size_t TrimJsWhitespaceEnd(std::string_view text, size_t begin, size_t end);
// Unicode's White_Space property (what the JS reference rewrites regex \s to).
bool IsUnicodeWhitespace(char32_t c);
// BERT punctuation: ASCII 33-47, 58-64, 91-96, 123-126, or general category
// P* (Hugging Face's BertPreTokenizer and the JS PUNCTUATION_REGEX).
bool IsBertPunctuation(char32_t c);
// BertNormalizer's control characters: categories Cc Cf Co Cs except TAB LF CR.
bool IsBertControl(char32_t c);
// BertNormalizer's CJK ranges as the JS reference applies them: it tests
// UTF-16 code units, so only U+3400..U+4DBF, U+4E00..U+9FFF and
// U+F900..U+FAFF count (the astral extensions never match there).
bool IsBertChineseChar(char32_t c);
// General category M* (Mn Mc Me) / Mn only.
bool IsMark(char32_t c);
bool IsNonspacingMark(char32_t c);
// General category N* (Nd Nl No): Rust's char::is_numeric.
bool IsNumeric(char32_t c);
// Letters, marks, decimal digits and connector punctuation (regex \w).
bool IsWordChar(char32_t c);

// The full lowercase mapping of `c` in the root locale (may be several code
// points, e.g. U+0130 -> "i̇"). U+03A3 maps to final sigma when
// `final_sigma` is set.
std::string LowercaseCodePoint(char32_t c, bool final_sigma);
// Unicode's Final_Sigma condition for a capital sigma at byte `pos` of `s`:
// preceded by a cased letter and not followed by one (case-ignorable
// characters skipped), as JS toLowerCase and ICU apply it.
bool IsFinalSigmaAt(std::string_view s, size_t pos);

// Decodes bytes as UTF-8 the WHATWG way (TextDecoder with fatal=false):
// each maximal invalid subpart becomes one U+FFFD. A byte-order mark is kept.
std::string DecodeUtf8Lossy(std::string_view bytes);

// Replaces every occurrence of `from` (non-empty) with `to`.
std::string ReplaceAll(std::string_view text, std::string_view from, std::string_view to);

}  // namespace modelgrid::tokenizer

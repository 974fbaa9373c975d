// Character helpers: lossy UTF-8 (WHATWG), case mapping, whitespace sets,
// the byte-level alphabet and the Oniguruma -> PCRE2 rewrite.
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/regex.h"

namespace modelgrid::tokenizer {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

// Expected values: the WHATWG Encoding standard's decoder (one U+FFFD per
// maximal subpart; Unicode 15 section 3.9 "U+FFFD substitution of maximal
// subparts").
TEST(Utf8LossyTest, MaximalSubparts) {
  EXPECT_EQ(DecodeUtf8Lossy("abc"), "abc");
  EXPECT_EQ(DecodeUtf8Lossy("\xE6\x9D\xB1"), "東");
  EXPECT_EQ(DecodeUtf8Lossy("\xF0\x9F\x98"), kFffd);  // cut short: one
  EXPECT_EQ(DecodeUtf8Lossy("a\x80"
                            "b"),
            "a" + kFffd + "b");                                       // stray continuation
  EXPECT_EQ(DecodeUtf8Lossy("\xC0\x80"), kFffd + kFffd);              // overlong lead: two
  EXPECT_EQ(DecodeUtf8Lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // surrogate: three
  EXPECT_EQ(DecodeUtf8Lossy("\xE6\x9D"
                            "A"),
            kFffd + "A");  // A is not swallowed
  EXPECT_EQ(DecodeUtf8Lossy("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(DecodeUtf8Lossy("\xEF\xBB\xBFx"), "\xEF\xBB\xBFx");                   // the BOM is kept
}

TEST(CaseTest, LowercaseFullMappingAndFinalSigma) {
  EXPECT_EQ(LowercaseCodePoint('A', false), "a");
  EXPECT_EQ(LowercaseCodePoint(0x130, false), "i\xCC\x87");  // İ -> i + U+0307
  EXPECT_EQ(LowercaseCodePoint(0x3A3, true), "ς");
  EXPECT_EQ(LowercaseCodePoint(0x3A3, false), "σ");
  std::string s = "ΟΔΟΣ ΣΑ";
  EXPECT_TRUE(IsFinalSigmaAt(s, s.find("Σ")));    // end of a word
  EXPECT_FALSE(IsFinalSigmaAt(s, s.rfind("Σ")));  // starts "ΣΑ"
  EXPECT_FALSE(IsFinalSigmaAt("Σ", 0));           // no cased letter before
}

TEST(CharClassTest, WhitespaceSets) {
  // ECMA-262 WhiteSpace/LineTerminator vs Unicode White_Space.
  EXPECT_TRUE(IsJsWhitespace(0xFEFF));
  EXPECT_FALSE(IsJsWhitespace(0x85));
  EXPECT_TRUE(IsUnicodeWhitespace(0x85));
  EXPECT_FALSE(IsUnicodeWhitespace(0xFEFF));
  EXPECT_TRUE(IsJsWhitespace(0x3000));
  EXPECT_FALSE(IsJsWhitespace(0x200B));  // zero width space is Cf
}

TEST(CharClassTest, BertClasses) {
  EXPECT_TRUE(IsBertPunctuation('$'));      // ASCII symbol counts
  EXPECT_TRUE(IsBertPunctuation(0x3002));   // 。 Po
  EXPECT_FALSE(IsBertPunctuation(0x20AC));  // € is Sc, not P
  EXPECT_TRUE(IsBertControl(0x200B));
  EXPECT_FALSE(IsBertControl('\t'));
  EXPECT_TRUE(IsBertChineseChar(0x6771));    // 東
  EXPECT_FALSE(IsBertChineseChar(0x20000));  // astral: not as the JS reference runs it
  EXPECT_FALSE(IsBertChineseChar(0x3042));   // あ
}

// GPT-2's bytes_to_unicode: printable bytes map to themselves; space (the
// 33rd unprintable byte after 0..31) to U+0120 'Ġ', newline to U+010A 'Ċ'.
TEST(ByteLevelTest, Alphabet) {
  EXPECT_EQ(ByteLevelChar('a'), "a");
  EXPECT_EQ(ByteLevelChar(' '), "Ġ");
  EXPECT_EQ(ByteLevelChar('\n'), "Ċ");
  EXPECT_EQ(ByteLevelChar(0), "Ā");
  EXPECT_EQ(ByteLevelByte(0x120), 32);
  EXPECT_EQ(ByteLevelByte(0x4E00), -1);
  for (int b = 0; b < 256; ++b) {
    std::string c = ByteLevelChar(static_cast<unsigned char>(b));
    size_t i = 0;
    EXPECT_EQ(ByteLevelByte(NextCodePoint(c, &i)), b);
  }
}

TEST(RegexTest, OnigurumaRewrite) {
  EXPECT_EQ(Regex::RewriteOniguruma("(?i:'s|'t)"), "(?:'[sS]|'[tT])");
  EXPECT_EQ(Regex::RewriteOniguruma("\\s+(?!\\S)"), "\\p{White_Space}+(?!\\P{White_Space})");
  EXPECT_EQ(Regex::RewriteOniguruma("[^\\s\\p{L}]"), "[^\\p{White_Space}\\p{L}]");
  EXPECT_EQ(Regex::RewriteOniguruma("a.b{,3}"), "a[^\\n]b{0,3}");
  EXPECT_EQ(Regex::RewriteOniguruma("\\p{N}{1,3}"), "\\p{N}{1,3}");
}

TEST(RegexTest, FindAllSkipsEmptyMatches) {
  auto r = Regex::FromOniguruma("x*");
  ASSERT_TRUE(r.ok());
  std::vector<Span> m;
  ASSERT_TRUE(r->FindAll("axxbx", &m).ok());
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0].begin, 1u);
  EXPECT_EQ(m[0].end, 3u);
  EXPECT_EQ(m[1].begin, 4u);
}

TEST(RegexTest, AsciiOnlyCaseFolding) {
  // The JS reference folds (?i:) groups over ASCII only: 'ſ (U+017F) is not 's.
  auto r = Regex::FromOniguruma("(?i:'s)");
  ASSERT_TRUE(r.ok());
  std::vector<Span> m;
  ASSERT_TRUE(r->FindAll("'S 'ſ", &m).ok());
  EXPECT_EQ(m.size(), 1u);
}

TEST(RegexTest, CompileErrorNamesPattern) {
  auto r = Regex::Compile("(unclosed");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("(unclosed"), std::string::npos);
}

}  // namespace
}  // namespace modelgrid::tokenizer

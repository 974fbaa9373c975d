// Normalizers built from tokenizer.json objects; expected texts worked out
// from the rules in normalizers_internal.h (and Unicode's tables).
#include "tokenizer/normalizer.h"

#include <gtest/gtest.h>

#include "tokenizer/test_util.h"

namespace modelgrid::tokenizer {
namespace {

using testing::json;
using testing::Node;

std::string Normalize(const json& config, const std::string& text,
                      NormalizedString* out = nullptr) {
  Node n(config);
  auto normalizer = MakeNormalizer(n.node());
  EXPECT_TRUE(normalizer.ok()) << normalizer.status().ToString();
  NormalizedString s(text, 0);
  EXPECT_TRUE((*normalizer)->Normalize(&s).ok());
  if (out != nullptr) *out = s;
  return s.text();
}

json Bert(json strip_accents, bool lowercase = true) {
  return {{"type", "BertNormalizer"},
          {"clean_text", true},
          {"handle_chinese_chars", true},
          {"strip_accents", strip_accents},
          {"lowercase", lowercase}};
}

TEST(BertNormalizerTest, CleanChineseLowercaseStrip) {
  EXPECT_EQ(Normalize(Bert(nullptr), std::string("Héllo\tWORLD\0 東京", 20)),
            "hello world  東  京 ");
}

TEST(BertNormalizerTest, StripAccentsNullFollowsLowercase) {
  EXPECT_EQ(Normalize(Bert(nullptr, true), "Héllo"), "hello");
  EXPECT_EQ(Normalize(Bert(nullptr, false), "Héllo"), "Héllo");
  EXPECT_EQ(Normalize(Bert(false, true), "Héllo"), "héllo");
  EXPECT_EQ(Normalize(Bert(true, false), "Héllo"), "Hello");
}

TEST(BertNormalizerTest, ControlsDroppedWhitespaceMapped) {
  // U+200B is Cf (dropped), U+00A0 and U+3000 are whitespace (-> ' '),
  // U+FFFD is dropped.
  EXPECT_EQ(Normalize(Bert(false, false), "a\u200Bb\u00A0c\u3000d\uFFFDe"), "ab c de");
}

TEST(BertNormalizerTest, SpansFollowCharacters) {
  NormalizedString s;
  Normalize(Bert(nullptr), "É東", &s);  // "e" + " 東 "
  ASSERT_EQ(s.text(), "e 東 ");
  EXPECT_EQ(s.SpanAt(0).begin, 0u);
  EXPECT_EQ(s.SpanAt(0).end, 2u);  // from the two bytes of É
  EXPECT_EQ(s.SpanOf(2, 5).begin, 2u);
  EXPECT_EQ(s.SpanOf(2, 5).end, 5u);
}

TEST(UnicodeNormalizerTest, Forms) {
  EXPECT_EQ(Normalize({{"type", "NFD"}}, "é"), "e\u0301");
  EXPECT_EQ(Normalize({{"type", "NFC"}}, "e\u0301"), "é");
  EXPECT_EQ(Normalize({{"type", "NFKC"}}, "ﬁ①"), "fi1");
  EXPECT_EQ(Normalize({{"type", "NFKD"}}, "é①"), "e\u03011");
  NormalizedString s;
  Normalize({{"type", "NFKC"}}, "xﬁ", &s);
  ASSERT_EQ(s.text(), "xfi");
  EXPECT_EQ(s.SpanAt(1).begin, 1u);  // both letters of the ligature span its 3 bytes
  EXPECT_EQ(s.SpanAt(2).end, 4u);
}

TEST(LowercaseTest, FullMapping) {
  EXPECT_EQ(Normalize({{"type", "Lowercase"}}, "HeLLo İ ΟΔΟΣ ΣΑ"), "hello i\u0307 οδος σα");
}

TEST(StripAccentsTest, DropsAllMarks) {
  EXPECT_EQ(Normalize({{"type", "StripAccents"}}, "e\u0301a\u0308"), "ea");
  EXPECT_EQ(Normalize({{"type", "StripAccents"}}, "é"), "é");  // precomposed: no mark to drop
}

TEST(PrependTest, OnlyNonEmpty) {
  EXPECT_EQ(Normalize({{"type", "Prepend"}, {"prepend", "▁"}}, "hi"), "▁hi");
  EXPECT_EQ(Normalize({{"type", "Prepend"}, {"prepend", "▁"}}, ""), "");
}

TEST(ReplaceTest, StringAndRegex) {
  EXPECT_EQ(
      Normalize({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}, "a b  c"),
      "a▁b▁▁c");
  EXPECT_EQ(Normalize({{"type", "Replace"}, {"pattern", {{"Regex", "\\s+"}}}, {"content", " "}},
                      "a \t b\n\nc"),
            "a b c");
  EXPECT_EQ(
      Normalize({{"type", "Replace"}, {"pattern", {{"String", "ab"}}}, {"content", ""}}, "xabyab"),
      "xy");
}

TEST(StripTest, LeftRight) {
  EXPECT_EQ(Normalize({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}, "  a b \n"),
            "a b");
  EXPECT_EQ(Normalize({{"type", "Strip"}, {"strip_left", false}, {"strip_right", true}}, "  a "),
            "  a");
  EXPECT_EQ(
      Normalize({{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}}, "\u3000a "),
      "a ");
}

TEST(SequenceNormalizerTest, AppliesInOrder) {
  json seq = {{"type", "Sequence"},
              {"normalizers",
               {{{"type", "Prepend"}, {"prepend", "▁"}},
                {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}}}};
  EXPECT_EQ(Normalize(seq, "Hello world"), "▁Hello▁world");
  json nfd_strip = {
      {"type", "Sequence"},
      {"normalizers", {{{"type", "NFD"}}, {{"type", "StripAccents"}}, {{"type", "Lowercase"}}}}};
  EXPECT_EQ(Normalize(nfd_strip, "Crème Brûlée"), "creme brulee");
}

TEST(NormalizerFactoryTest, NullIsNone) {
  Node n(nullptr);
  auto r = MakeNormalizer(n.node());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->get(), nullptr);
}

}  // namespace
}  // namespace modelgrid::tokenizer

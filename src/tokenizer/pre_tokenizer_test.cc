// Pre-tokenizers built from tokenizer.json objects; expected pieces worked
// out by hand from each rule (GPT-2 / LLaMA-3 patterns traced step by step).
#include "tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include "tokenizer/test_util.h"

namespace modelgrid::tokenizer {
namespace {

using testing::json;
using testing::Node;
using V = std::vector<std::string>;

V Split(const json& config, const std::string& text, size_t base = 0) {
  Node n(config);
  auto pre = MakePreTokenizer(n.node());
  EXPECT_TRUE(pre.ok()) << pre.status().ToString();
  std::vector<NormalizedString> pieces{NormalizedString(text, base)};
  EXPECT_TRUE((*pre)->PreTokenize(&pieces).ok());
  return testing::Texts(pieces);
}

const char* kLlama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

TEST(ByteLevelPreTokenizerTest, Gpt2Pattern) {
  json bl = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  EXPECT_EQ(Split(bl, "Hello world"), (V{"Hello", "Ġworld"}));
  EXPECT_EQ(Split(bl, "a  b"), (V{"a", "Ġ", "Ġb"}));  // \s+(?!\S) leaves one space
  EXPECT_EQ(Split(bl, "it's 12ab!?"), (V{"it", "'s", "Ġ12", "ab", "!?"}));
  EXPECT_EQ(Split(bl, "é\n"), (V{"Ã©", "Ċ"}));
  // JavaScript's \s includes U+FEFF (EF BB BF): it is a piece of its own.
  EXPECT_EQ(Split(bl, "a\uFEFFb"), (V{"a", "ï»¿", "b"}));
}

TEST(ByteLevelPreTokenizerTest, PrefixSpaceAndNoRegex) {
  json prefix = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  EXPECT_EQ(Split(prefix, "Hello world"), (V{"ĠHello", "Ġworld"}));
  EXPECT_EQ(Split(prefix, " x"), (V{"Ġx"}));
  json whole = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  EXPECT_EQ(Split(whole, "Hello world"), (V{"HelloĠworld"}));
}

TEST(SplitPreTokenizerTest, Llama3Pattern) {
  json split = {{"type", "Split"},
                {"pattern", {{"Regex", kLlama3}}},
                {"behavior", "Isolated"},
                {"invert", false}};
  EXPECT_EQ(Split(split, "Hello  world's 12345"),
            (V{"Hello", " ", " world", "'s", " ", "123", "45"}));
  EXPECT_EQ(Split(split, "IT'S ok\r\n\nx"), (V{"IT", "'S", " ok", "\r\n\n", "x"}));
}

TEST(SplitPreTokenizerTest, StringPatternBehaviors) {
  auto split = [](const char* behavior, bool invert = false) {
    return json{{"type", "Split"},
                {"pattern", {{"String", "-"}}},
                {"behavior", behavior},
                {"invert", invert}};
  };
  EXPECT_EQ(Split(split("Removed"), "a-b--c"), (V{"a", "b", "c"}));
  EXPECT_EQ(Split(split("Isolated"), "a-b--c"), (V{"a", "-", "b", "-", "-", "c"}));
  EXPECT_EQ(Split(split("MergedWithPrevious"), "a-b--c"), (V{"a-", "b-", "-", "c"}));
  EXPECT_EQ(Split(split("MergedWithNext"), "a-b--c"), (V{"a", "-b", "-", "-c"}));
  EXPECT_EQ(Split(split("Contiguous"), "a-b--c"), (V{"a", "-", "b", "--", "c"}));
  EXPECT_EQ(Split(split("Removed", true), "a-b--c"), (V{"-", "-", "-"}));
}

TEST(MetaspacePreTokenizerTest, SchemesAndSplit) {
  auto meta = [](const char* scheme, bool split) {
    return json{
        {"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", scheme}, {"split", split}};
  };
  EXPECT_EQ(Split(meta("always", true), "Hello world"), (V{"▁Hello", "▁world"}));
  EXPECT_EQ(Split(meta("always", false), "Hello world"), (V{"▁Hello▁world"}));
  EXPECT_EQ(Split(meta("never", true), "Hello world"), (V{"Hello", "▁world"}));
  EXPECT_EQ(Split(meta("first", true), "Hello world"), (V{"▁Hello", "▁world"}));
  EXPECT_EQ(Split(meta("first", true), "Hello", /*base=*/7), (V{"Hello"}));  // not at the start
  EXPECT_EQ(Split(meta("always", true), " x"), (V{"▁x"}));  // already starts with ▁
}

TEST(SimplePreTokenizersTest, WhitespaceFamily) {
  EXPECT_EQ(Split({{"type", "Whitespace"}}, "Hello, world! 123 héllo"),
            (V{"Hello", ",", "world", "!", "123", "héllo"}));
  EXPECT_EQ(Split({{"type", "WhitespaceSplit"}}, " a  b\tc\u3000d "), (V{"a", "b", "c", "d"}));
  EXPECT_EQ(Split({{"type", "BertPreTokenizer"}}, " Hello, world!! $5 "),
            (V{"Hello", ",", "world", "!", "!", "$", "5"}));
}

TEST(SimplePreTokenizersTest, PunctuationAndDigits) {
  EXPECT_EQ(Split({{"type", "Punctuation"}}, "Hi!!you"), (V{"Hi", "!", "!", "you"}));
  EXPECT_EQ(Split({{"type", "Punctuation"}, {"behavior", "Contiguous"}}, "Hi!!"), (V{"Hi", "!!"}));
  EXPECT_EQ(Split({{"type", "Digits"}, {"individual_digits", true}}, "abc123"),
            (V{"abc", "1", "2", "3"}));
  EXPECT_EQ(Split({{"type", "Digits"}, {"individual_digits", false}}, "abc123d4"),
            (V{"abc", "123", "d", "4"}));
}

TEST(SequencePreTokenizerTest, Llama3Sequence) {
  json seq = {{"type", "Sequence"},
              {"pretokenizers",
               {{{"type", "Split"}, {"pattern", {{"Regex", kLlama3}}}, {"behavior", "Isolated"}},
                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  EXPECT_EQ(Split(seq, "Hi there"), (V{"Hi", "Ġthere"}));
}

TEST(SplitRangesTest, OffsetsOfPieces) {
  Node n(json{{"type", "WhitespaceSplit"}});
  auto pre = MakePreTokenizer(n.node());
  ASSERT_TRUE(pre.ok());
  std::vector<NormalizedString> pieces{NormalizedString("ab  cd", 10)};
  ASSERT_TRUE((*pre)->PreTokenize(&pieces).ok());
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(pieces[1].SpanOf(0, 2).begin, 14u);
  EXPECT_EQ(pieces[1].SpanOf(0, 2).end, 16u);
}

}  // namespace
}  // namespace modelgrid::tokenizer

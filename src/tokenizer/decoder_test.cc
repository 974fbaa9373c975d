// Decoders on token lists; expectations from each decoder's rule.
#include "tokenizer/decoder.h"

#include <gtest/gtest.h>

#include "tokenizer/test_util.h"

namespace modelgrid::tokenizer {
namespace {

using testing::json;
using testing::Node;

std::string Decode(const json& config, std::vector<std::string> tokens,
                   const std::unordered_set<std::string>* added = nullptr) {
  Node n(config);
  auto d = MakeDecoder(n.node(), DecoderContext{added});
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE((*d)->DecodeChain(&tokens).ok());
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

TEST(ByteLevelDecoderTest, BytesBackToText) {
  EXPECT_EQ(Decode({{"type", "ByteLevel"}}, {"Hello", "Ġworld", "Ċ"}), "Hello world\n");
  EXPECT_EQ(Decode({{"type", "ByteLevel"}}, {"æĿ", "±"}), "東");  // a character split over tokens
  EXPECT_EQ(Decode({{"type", "ByteLevel"}}, {"æĿ"}), "\xEF\xBF\xBD");  // cut short: one U+FFFD
  std::unordered_set<std::string> added{"<|x|>"};
  EXPECT_EQ(Decode({{"type", "ByteLevel"}}, {"a", "<|x|>", "Ġb"}, &added), "a<|x|> b");
}

TEST(WordPieceDecoderTest, JoinsPiecesAndCleansUp) {
  json wp = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
  EXPECT_EQ(Decode(wp, {"un", "##aff", "##able", "man", "."}), "unaffable man.");
  EXPECT_EQ(Decode(wp, {"it", "'", "s", "don", "'", "t"}), "it ' s don ' t");
  EXPECT_EQ(Decode(wp, {"do", "n't", "!"}), "don't!");
  json raw = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", false}};
  EXPECT_EQ(Decode(raw, {"a", ",", "b"}), "a , b");
}

TEST(MetaspaceDecoderTest, LeadingSpace) {
  json m = {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}};
  EXPECT_EQ(Decode(m, {"▁Hello", "▁world"}), "Hello world");
  json never = {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "never"}};
  EXPECT_EQ(Decode(never, {"▁Hello"}), " Hello");
}

TEST(ByteFallbackDecoderTest, ByteRuns) {
  json bf = {{"type", "ByteFallback"}};
  EXPECT_EQ(Decode(bf, {"a", "<0xE6>", "<0x9D>", "<0xB1>", "b"}), "a東b");
  EXPECT_EQ(Decode(bf, {"<0xE6>", "<0x9D>", "x"}), "\xEF\xBF\xBDx");  // maximal subpart
  EXPECT_EQ(Decode(bf, {"<0xZZ>", "<0x0A>"}), "<0xZZ>\n");
}

TEST(SimpleDecodersTest, FuseStripReplaceBpe) {
  EXPECT_EQ(Decode({{"type", "Fuse"}}, {"a", "b"}), "ab");
  json strip = {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 1}};
  EXPECT_EQ(Decode(strip, {"  a  ", " b"}), " a b");
  json replace = {{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}};
  EXPECT_EQ(Decode(replace, {"▁a▁b"}), " a b");
  json bpe = {{"type", "BPEDecoder"}, {"suffix", "</w>"}};
  EXPECT_EQ(Decode(bpe, {"hel", "lo</w>", "world</w>"}), "hello world");
}

TEST(SequenceDecoderTest, MistralChain) {
  json seq = {{"type", "Sequence"},
              {"decoders",
               {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                {{"type", "ByteFallback"}},
                {{"type", "Fuse"}},
                {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  EXPECT_EQ(Decode(seq, {"▁Hello", "▁", "<0xE6>", "<0x9D>", "<0xB1>", "▁x"}), "Hello 東 x");
}

TEST(CleanUpTest, TransformersRules) {
  EXPECT_EQ(CleanUpTokenization("a , b . c ? d ! e"), "a, b. c? d! e");
  EXPECT_EQ(CleanUpTokenization("do n't I 'm he 's we 've they 're"),
            "don't I'm he's we've they're");
  EXPECT_EQ(CleanUpTokenization("x ' y"), "x'y");
}

}  // namespace
}  // namespace modelgrid::tokenizer

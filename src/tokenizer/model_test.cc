// BPE and WordPiece on hand-made vocabularies; each expectation follows
// from the merge ranks / greedy longest match by hand.
#include "tokenizer/model.h"

#include <gtest/gtest.h>

#include <chrono>

#include "tokenizer/test_util.h"

namespace modelgrid::tokenizer {
namespace {

using testing::json;
using testing::Node;
using V = std::vector<std::string>;

struct Built {
  Node node;
  std::unique_ptr<Model> model;
};

std::unique_ptr<Built> Make(json config) {
  auto b = std::make_unique<Built>(Built{Node(std::move(config)), nullptr});
  auto m = MakeModel(b->node.node());
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (m.ok()) b->model = std::move(m).value();
  return b;
}

std::vector<Token> TokenizeWord(const Model& m, const std::string& word) {
  std::vector<Token> out;
  EXPECT_TRUE(m.Tokenize(NormalizedString(word, 0), &out).ok());
  return out;
}

V Values(const std::vector<Token>& tokens) {
  V out;
  for (const auto& t : tokens) out.push_back(t.value);
  return out;
}

json Bpe(json vocab, json merges) {
  return {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"dropout", nullptr}};
}

TEST(BpeTest, MergesByRank) {
  auto b = Make(Bpe({{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}, {"abc", 5}},
                    {"b c", "a b", "a bc"}));
  // "b c" ranks first: a + bc, then "a bc" -> abc.
  auto t = TokenizeWord(*b->model, "abc");
  ASSERT_EQ(Values(t), V{"abc"});
  EXPECT_EQ(t[0].id, 5);
  EXPECT_EQ(Values(TokenizeWord(*b->model, "abab")), (V{"ab", "ab"}));
}

TEST(BpeTest, LeftmostAmongEqualRanks) {
  auto b = Make(Bpe({{"a", 0}, {"aa", 1}}, {"a a"}));
  EXPECT_EQ(Values(TokenizeWord(*b->model, "aaa")), (V{"aa", "a"}));
  EXPECT_EQ(Values(TokenizeWord(*b->model, "aaaaa")), (V{"aa", "aa", "a"}));
}

TEST(BpeTest, PairFormMergesAndOffsets) {
  auto b = Make(Bpe({{"é", 0}, {"t", 1}, {"ét", 2}}, json::array({json::array({"é", "t"})})));
  auto t = TokenizeWord(*b->model, "étét");
  ASSERT_EQ(Values(t), (V{"ét", "ét"}));
  EXPECT_EQ(t[1].offsets.begin, 3u);
  EXPECT_EQ(t[1].offsets.end, 6u);
}

TEST(BpeTest, ByteFallback) {
  json vocab = {{"<unk>", 0}, {"<0xC3>", 1}, {"<0xA9>", 2}, {"a", 3}};
  json config = Bpe(vocab, json::array());
  config["byte_fallback"] = true;
  config["unk_token"] = "<unk>";
  auto b = Make(config);
  auto t = TokenizeWord(*b->model, "aé");
  EXPECT_EQ(Values(t), (V{"a", "<0xC3>", "<0xA9>"}));
  EXPECT_EQ(t[2].offsets.begin, 1u);  // both bytes span the whole character
  EXPECT_EQ(t[2].offsets.end, 3u);
  EXPECT_EQ(Values(TokenizeWord(*b->model, "a東")), (V{"a", "<unk>"}));  // no <0xE6>: unknown
}

TEST(BpeTest, UnknownFusedOrDropped) {
  json vocab = {{"<unk>", 0}, {"a", 1}};
  json config = Bpe(vocab, json::array());
  config["unk_token"] = "<unk>";
  EXPECT_EQ(Values(TokenizeWord(*Make(config)->model, "axyza")),
            (V{"a", "<unk>", "<unk>", "<unk>", "a"}));
  config["fuse_unk"] = true;
  auto fused = TokenizeWord(*Make(config)->model, "axyza");
  EXPECT_EQ(Values(fused), (V{"a", "<unk>", "a"}));
  EXPECT_EQ(fused[1].offsets.end, 4u);
  config["unk_token"] = nullptr;
  EXPECT_EQ(Values(TokenizeWord(*Make(config)->model, "axyza")), (V{"a", "a"}));
}

TEST(BpeTest, IgnoreMerges) {
  // Without ignore_merges "abc" becomes ab + c (no merge makes abc).
  json config = Bpe({{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"abc", 4}}, {"a b"});
  EXPECT_EQ(Values(TokenizeWord(*Make(config)->model, "abc")), (V{"ab", "c"}));
  config["ignore_merges"] = true;
  EXPECT_EQ(Values(TokenizeWord(*Make(config)->model, "abc")), (V{"abc"}));
}

TEST(BpeTest, PrefixAndSuffix) {
  json config = Bpe({{"a", 0},
                     {"##b", 1},
                     {"##c</w>", 2},
                     {"a##b", 3},
                     {"ab", 4},
                     {"##b##c</w>", 5},
                     {"##bc</w>", 6}},
                    {"##b ##c</w>"});
  config["continuing_subword_prefix"] = "##";
  config["end_of_word_suffix"] = "</w>";
  // ##b + ##c</w> merge to ##b + c</w> with the prefix of the right part dropped.
  EXPECT_EQ(Values(TokenizeWord(*Make(config)->model, "abc")), (V{"a", "##bc</w>"}));
}

TEST(BpeTest, LongWordIsNotQuadratic) {
  // 20000 characters, merges that keep halving: finishes quickly.
  json vocab = {{"a", 0}, {"aa", 1}, {"aaaa", 2}, {"aaaaaaaa", 3}};
  auto b = Make(Bpe(vocab, {"a a", "aa aa", "aaaa aaaa"}));
  auto start = std::chrono::steady_clock::now();
  auto t = TokenizeWord(*b->model, std::string(20000, 'a'));
  EXPECT_EQ(t.size(), 2500u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(WordPieceTest, GreedyLongestMatch) {
  json config = {
      {"type", "WordPiece"},
      {"vocab", {{"[UNK]", 0}, {"un", 1}, {"##aff", 2}, {"##able", 3}, {"u", 4}, {"##n", 5}}},
      {"unk_token", "[UNK]"},
      {"continuing_subword_prefix", "##"},
      {"max_input_chars_per_word", 10}};
  auto b = Make(config);
  auto t = TokenizeWord(*b->model, "unaffable");
  EXPECT_EQ(Values(t), (V{"un", "##aff", "##able"}));
  EXPECT_EQ(t[1].offsets.begin, 2u);
  EXPECT_EQ(t[1].offsets.end, 5u);
  EXPECT_EQ(Values(TokenizeWord(*b->model, "unx")), (V{"[UNK]"}));          // no full cover
  EXPECT_EQ(Values(TokenizeWord(*b->model, "unaffableun")), (V{"[UNK]"}));  // 11 > 10 characters
}

TEST(ModelFactoryTest, TypeInferredWhenAbsent) {
  json bpe = {{"vocab", {{"a", 0}}}, {"merges", json::array()}, {"dropout", nullptr}};
  EXPECT_NE(Make(bpe)->model, nullptr);
  json wp = {
      {"vocab", {{"[UNK]", 0}}}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"}};
  EXPECT_NE(Make(wp)->model, nullptr);
}

}  // namespace
}  // namespace modelgrid::tokenizer

// The public Tokenizer on tiny tokenizer.json texts: the pipeline end to
// end, added tokens, special ids, truncation, padding, config fields.
#include "modelgrid/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include "tokenizer/test_util.h"

namespace modelgrid::tokenizer {
namespace {

using testing::json;
using Ids = std::vector<int64_t>;
using Strs = std::vector<std::string>;

// A WordPiece BERT in miniature.
json MiniBert() {
  json vocab = {{"[PAD]", 0},   {"[UNK]", 1}, {"[CLS]", 2}, {"[SEP]", 3}, {"[MASK]", 4},
                {"hello", 5},   {"world", 6}, {",", 7},     {"un", 8},    {"##aff", 9},
                {"##able", 10}, {"cafe", 11}, {"東", 12},   {"!", 13}};
  json t = testing::TokenizerJson({{"type", "WordPiece"},
                                   {"vocab", vocab},
                                   {"unk_token", "[UNK]"},
                                   {"continuing_subword_prefix", "##"},
                                   {"max_input_chars_per_word", 100}});
  json added = json::array();
  for (auto [content, id] : std::vector<std::pair<std::string, int>>{
           {"[PAD]", 0}, {"[UNK]", 1}, {"[CLS]", 2}, {"[SEP]", 3}, {"[MASK]", 4}}) {
    added.push_back({{"id", id},
                     {"content", content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  t["added_tokens"] = added;
  t["normalizer"] = {{"type", "BertNormalizer"},
                     {"clean_text", true},
                     {"handle_chinese_chars", true},
                     {"strip_accents", nullptr},
                     {"lowercase", true}};
  t["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  t["post_processor"] = {{"type", "BertProcessing"}, {"cls", {"[CLS]", 2}}, {"sep", {"[SEP]", 3}}};
  t["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
  return t;
}

TEST(TokenizerTest, BertPipeline) {
  Tokenizer tok = testing::Load(MiniBert());
  auto e = tok.Encode("Hello, WORLD! Unaffable Café東");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->tokens, (Strs{"[CLS]", "hello", ",", "world", "!", "un", "##aff", "##able", "cafe",
                             "東", "[SEP]"}));
  EXPECT_EQ(e->ids, (Ids{2, 5, 7, 6, 13, 8, 9, 10, 11, 12, 3}));
  EXPECT_EQ(e->attention_mask, Ids(11, 1));
  EXPECT_EQ(e->type_ids, Ids(11, 0));
  EXPECT_EQ(e->special_tokens_mask, (Ids{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(e->offsets[1], (std::pair<size_t, size_t>{0, 5}));    // "Hello"
  EXPECT_EQ(e->offsets[6], (std::pair<size_t, size_t>{16, 19}));  // "aff" of "Unaffable"
  EXPECT_EQ(e->offsets[8], (std::pair<size_t, size_t>{24, 29}));  // "Café" (é is 2 bytes)
  EXPECT_EQ(e->offsets[9], (std::pair<size_t, size_t>{29, 32}));  // 東
  auto d = tok.Decode(e->ids, true);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d.value(), "hello, world! unaffable cafe 東");
  EXPECT_EQ(tok.Decode(e->ids, false).value(), "[CLS] hello, world! unaffable cafe 東 [SEP]");
}

TEST(TokenizerTest, AddedSpecialTokensInText) {
  Tokenizer tok = testing::Load(MiniBert());
  auto e = tok.Encode("hello [MASK] world[SEP]", false);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ids, (Ids{5, 4, 6, 3}));
  EXPECT_EQ(e->offsets[1], (std::pair<size_t, size_t>{6, 12}));
  EXPECT_TRUE(tok.IsSpecialId(4));
  EXPECT_FALSE(tok.IsSpecialId(5));
}

TEST(TokenizerTest, Lookups) {
  Tokenizer tok = testing::Load(MiniBert());
  EXPECT_EQ(tok.TokenToId("##aff"), 9);
  EXPECT_EQ(tok.TokenToId("nope"), std::nullopt);
  EXPECT_EQ(tok.IdToToken(12), "東");
  EXPECT_EQ(tok.IdToToken(99), std::nullopt);
  EXPECT_EQ(tok.VocabSize(), 14u);
  EXPECT_EQ(tok.IdLimit(), 14u);
  EXPECT_EQ(tok.NumSpecialTokensToAdd(), 2u);
  EXPECT_EQ(tok.special_ids().unk, 1);  // from the model's unk_token
}

TEST(TokenizerTest, EmptyText) {
  Tokenizer tok = testing::Load(MiniBert());
  EXPECT_EQ(tok.Encode("", true)->ids, (Ids{2, 3}));
  EXPECT_TRUE(tok.Encode("", false)->ids.empty());
  EXPECT_EQ(tok.Decode(Ids{}, false).value(), "");
}

TEST(TokenizerTest, SpecialIdsFromConfig) {
  json config = {{"cls_token", "[CLS]"},
                 {"sep_token", {{"content", "[SEP]"}}},
                 {"pad_token", "[PAD]"},
                 {"mask_token", "[MASK]"},
                 {"unk_token", "[UNK]"},
                 {"bos_token", nullptr},
                 {"model_max_length", 512},
                 {"clean_up_tokenization_spaces", false},
                 {"tokenizer_class", "BertTokenizer"}};
  Tokenizer tok = testing::Load(MiniBert(), config);
  EXPECT_EQ(tok.special_ids().cls, 2);
  EXPECT_EQ(tok.special_ids().sep, 3);
  EXPECT_EQ(tok.special_ids().pad, 0);
  EXPECT_EQ(tok.special_ids().mask, 4);
  EXPECT_EQ(tok.special_ids().bos, std::nullopt);
  EXPECT_EQ(tok.config().model_max_length, 512u);
  EXPECT_EQ(tok.config().tokenizer_class, "BertTokenizer");
  // clean_up_tokenization_spaces false: the WordPiece decoder's own cleanup
  // still runs per token, the whole-text one does not.
  EXPECT_FALSE(tok.config().clean_up_tokenization_spaces);
}

TEST(TokenizerTest, UnboundedModelMaxLengthAndChatTemplate) {
  json config = {{"model_max_length", 1e30}, {"chat_template", "{{ messages }}"}};
  Tokenizer tok = testing::Load(MiniBert(), config);
  EXPECT_EQ(tok.config().model_max_length, std::nullopt);
  EXPECT_EQ(tok.config().chat_template, "{{ messages }}");
}

TEST(TokenizerTest, TruncationOption) {
  Tokenizer tok = testing::Load(MiniBert());
  EncodeOptions o;
  o.max_length = 4;
  auto e = tok.Encode("hello world hello world", o);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ids, (Ids{2, 5, 6, 3}));  // room for 2 words + [CLS] [SEP]
  o.truncation_direction = Direction::kLeft;
  o.max_length = 3;
  EXPECT_EQ(tok.Encode("hello world , !", o)->ids, (Ids{2, 13, 3}));
  o.max_length = 1;
  auto bad = tok.Encode("hello", o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  o.add_special_tokens = false;
  EXPECT_EQ(tok.Encode("hello world", o)->ids, (Ids{6}));
}

TEST(TokenizerTest, TruncationAndPaddingFromJson) {
  json t = MiniBert();
  t["truncation"] = {
      {"direction", "Right"}, {"max_length", 5}, {"strategy", "LongestFirst"}, {"stride", 0}};
  t["padding"] = {{"strategy", {{"Fixed", 6}}},
                  {"direction", "Right"},
                  {"pad_to_multiple_of", nullptr},
                  {"pad_id", 0},
                  {"pad_type_id", 0},
                  {"pad_token", "[PAD]"}};
  Tokenizer tok = testing::Load(t);
  ASSERT_TRUE(tok.truncation().has_value());
  EXPECT_EQ(tok.truncation()->max_length, 5u);
  auto e = tok.Encode("hello world hello world");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ids, (Ids{2, 5, 6, 5, 3, 0}));
  EXPECT_EQ(e->attention_mask, (Ids{1, 1, 1, 1, 1, 0}));
  EXPECT_EQ(e->tokens.back(), "[PAD]");
}

TEST(TokenizerTest, BatchLongestPadding) {
  json t = MiniBert();
  t["padding"] = {{"strategy", "BatchLongest"}, {"direction", "Left"},
                  {"pad_to_multiple_of", 4},    {"pad_id", 0},
                  {"pad_type_id", 1},           {"pad_token", "[PAD]"}};
  Tokenizer tok = testing::Load(t);
  std::vector<std::string> texts{"hello", "hello world , hello"};
  auto batch = tok.EncodeBatch(texts);
  ASSERT_TRUE(batch.ok());
  ASSERT_EQ(batch->size(), 2u);
  EXPECT_EQ((*batch)[0].ids, (Ids{0, 0, 0, 0, 0, 2, 5, 3}));  // 6 -> multiple of 4: 8
  EXPECT_EQ((*batch)[0].type_ids, (Ids{1, 1, 1, 1, 1, 0, 0, 0}));
  EXPECT_EQ((*batch)[1].size(), 8u);
}

// A byte-level BPE with GPT-2's pre-tokenizer and added tokens.
json MiniGpt(json added) {
  json t = testing::ByteLevelJson(
      {{"Ġ", "w"}, {"Ġw", "o"}, {"l", "d"}, {"r", "ld"}, {"Ġwo", "rld"}, {"h", "i"}});
  t["added_tokens"] = added;
  return t;
}

json Added(int id, const std::string& content, bool special, bool lstrip = false,
           bool rstrip = false, bool single_word = false, bool normalized = false) {
  return {{"id", id},          {"content", content}, {"single_word", single_word},
          {"lstrip", lstrip},  {"rstrip", rstrip},   {"normalized", normalized},
          {"special", special}};
}

TEST(TokenizerTest, ByteLevelRoundTripAndMerges) {
  Tokenizer tok = testing::Load(MiniGpt(json::array()));
  auto e = tok.Encode("hi world");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->tokens, (Strs{"hi", "Ġworld"}));
  EXPECT_EQ(e->offsets[1], (std::pair<size_t, size_t>{2, 8}));
  DecodeOptions raw;
  raw.clean_up_tokenization_spaces = false;
  EXPECT_EQ(tok.Decode(e->ids, raw).value(), "hi world");
  std::string odd = "东京 🤷🏽‍♀️ \t\r\n";
  EXPECT_EQ(tok.Decode(tok.Encode(odd)->ids, raw).value(), odd);
}

TEST(TokenizerTest, AddedTokenStripping) {
  json added =
      json::array({Added(300, "<mask>", true, /*lstrip=*/true),
                   Added(301, "<r>", true, false, /*rstrip=*/true), Added(302, "<mask>x", false)});
  Tokenizer tok = testing::Load(MiniGpt(added));
  // lstrip eats the space before <mask>; rstrip the spaces after <r>; the
  // longest added token wins at a position.
  EXPECT_EQ(tok.Encode("hi <mask> hi")->tokens, (Strs{"hi", "<mask>", "Ġ", "hi"}));
  EXPECT_EQ(tok.Encode("hi<r>   hi")->tokens, (Strs{"hi", "<r>", "hi"}));
  EXPECT_EQ(tok.Encode("<mask>x")->ids, (Ids{302}));
}

TEST(TokenizerTest, SingleWordAddedToken) {
  json added = json::array({Added(300, "cat", false, false, false, /*single_word=*/true)});
  Tokenizer tok = testing::Load(MiniGpt(added));
  EXPECT_EQ(tok.Encode("a cat!")->ids.size(), 4u);  // "a", "Ġ", cat, "!"
  EXPECT_EQ(tok.Encode("a cat!")->ids[2], 300);
  auto inside = tok.Encode("concatenate");
  ASSERT_TRUE(inside.ok());
  for (int64_t id : inside->ids) EXPECT_NE(id, 300);
}

TEST(TokenizerTest, NormalizedAddedTokenMatchesAfterNormalizer) {
  json t =
      MiniGpt(json::array({Added(300, "hey", false, false, false, false, /*normalized=*/true)}));
  t["normalizer"] = {{"type", "Lowercase"}};
  Tokenizer tok = testing::Load(t);
  auto e = tok.Encode("HEY hi");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ids[0], 300);
  EXPECT_EQ(e->offsets[0], (std::pair<size_t, size_t>{0, 3}));
}

TEST(TokenizerTest, DecodeSkipsSpecialAndAdditionalSpecialTokens) {
  json added = json::array({Added(300, "<|end|>", true), Added(301, "<|tool|>", false)});
  json config = {{"additional_special_tokens", {"<|tool|>"}}};
  Tokenizer tok = testing::Load(MiniGpt(added), config);
  auto e = tok.Encode("hi<|tool|>hi<|end|>");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(tok.Decode(e->ids, false).value(), "hi<|tool|>hi<|end|>");
  EXPECT_EQ(tok.Decode(e->ids, true).value(), "hihi");
}

TEST(TokenizerTest, LlamaConfigRebuildsTemplate) {
  json t = MiniGpt(json::array({Added(300, "<s>", true), Added(301, "</s>", true)}));
  json config = {{"tokenizer_class", "LlamaTokenizerFast"},
                 {"add_bos_token", true},
                 {"add_eos_token", true},
                 {"bos_token", "<s>"},
                 {"eos_token", "</s>"}};
  Tokenizer tok = testing::Load(t, config);
  EXPECT_EQ(tok.Encode("hi")->ids, (Ids{300, tok.TokenToId("hi").value(), 301}));
  EXPECT_EQ(tok.special_ids().bos, 300);
  EXPECT_EQ(tok.special_ids().eos, 301);
  EXPECT_EQ(tok.NumSpecialTokensToAdd(), 2u);
}

TEST(TokenizerTest, MetaspaceByteFallbackPipeline) {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"▁hi", 2}, {"▁", 3}, {"h", 4}, {"i", 5}, {"▁h", 6}};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 7 + b;
  }
  json t = testing::TokenizerJson({{"type", "BPE"},
                                   {"vocab", vocab},
                                   {"merges", {"▁ h", "▁h i"}},
                                   {"unk_token", "<unk>"},
                                   {"byte_fallback", true},
                                   {"fuse_unk", true},
                                   {"dropout", nullptr}});
  t["added_tokens"] = json::array({Added(0, "<unk>", true), Added(1, "<s>", true)});
  t["normalizer"] = {{"type", "Sequence"},
                     {"normalizers",
                      {{{"type", "Prepend"}, {"prepend", "▁"}},
                       {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "▁"}}}}};
  t["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}};
  t["decoder"] = {{"type", "Sequence"},
                  {"decoders",
                   {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                    {{"type", "ByteFallback"}},
                    {{"type", "Fuse"}},
                    {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  Tokenizer tok = testing::Load(t, json{{"clean_up_tokenization_spaces", false}});
  auto e = tok.Encode("hi é");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->tokens, (Strs{"<s>", "▁hi", "▁", "<0xC3>", "<0xA9>"}));
  EXPECT_EQ(tok.Decode(e->ids, true).value(), "hi é");
}

}  // namespace
}  // namespace modelgrid::tokenizer

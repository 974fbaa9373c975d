// Streaming decoding: the deltas concatenate to the full decode and never
// end inside a character.
#include "modelgrid/tokenizer/incremental_decoder.h"

#include <gtest/gtest.h>

#include "tokenizer/test_util.h"

namespace modelgrid::tokenizer {
namespace {

using testing::json;

std::string Stream(const Tokenizer& tok, const std::vector<int64_t>& ids,
                   std::vector<std::string>* deltas) {
  IncrementalDecoder dec(tok);
  std::string out;
  for (size_t n = 1; n <= ids.size(); ++n) {
    auto d = dec.Step(std::span<const int64_t>(ids.data(), n));
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->find("\xEF\xBF\xBD"), std::string::npos)
        << "a partial character after " << n << " ids";
    deltas->push_back(d.value());
    out += d.value();
  }
  auto rest = dec.Flush(ids);
  EXPECT_TRUE(rest.ok());
  return out + rest.value();
}

TEST(IncrementalDecoderTest, ByteLevelHoldsPartialCharacters) {
  Tokenizer tok = testing::Load(testing::ByteLevelJson({{"Ġ", "w"}}));
  std::string text = "héllo 東京 👍🏽 wow";
  auto e = tok.Encode(text, false);
  ASSERT_TRUE(e.ok());
  std::vector<std::string> deltas;
  EXPECT_EQ(Stream(tok, e->ids, &deltas), text);
  // 東 is three byte tokens: nothing after the first two, the character after the third.
  size_t at = text.find("東");
  EXPECT_EQ(deltas[at], "");
  EXPECT_EQ(deltas[at + 1], "");
  EXPECT_EQ(deltas[at + 2], "東");
}

TEST(IncrementalDecoderTest, MetaspaceKeepsSpaces) {
  json vocab = {{"<unk>", 0}, {"▁Hello", 1}, {"▁world", 2}, {"▁", 3}, {"!", 4}};
  json t = testing::TokenizerJson({{"type", "BPE"},
                                   {"vocab", vocab},
                                   {"merges", json::array()},
                                   {"unk_token", "<unk>"},
                                   {"dropout", nullptr}});
  t["decoder"] = {{"type", "Sequence"},
                  {"decoders",
                   {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                    {{"type", "Fuse"}},
                    {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  Tokenizer tok = testing::Load(t);
  std::vector<int64_t> ids{1, 2, 2, 3, 4, 1, 2, 2, 2, 2, 2, 2, 4};
  std::vector<std::string> deltas;
  std::string streamed = Stream(tok, ids, &deltas);
  DecodeOptions raw;
  raw.clean_up_tokenization_spaces = false;
  EXPECT_EQ(streamed, tok.Decode(ids, raw).value());
  EXPECT_EQ(deltas[0], "Hello");
  EXPECT_EQ(deltas[1], " world");
}

TEST(IncrementalDecoderTest, RejectsShrinkingInput) {
  Tokenizer tok = testing::Load(testing::ByteLevelJson({}));
  IncrementalDecoder dec(tok);
  std::vector<int64_t> ids{104, 105};
  ASSERT_TRUE(dec.Step(ids).ok());
  auto r = dec.Step(std::span<const int64_t>(ids.data(), 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

TEST(IncrementalDecoderTest, FlushEmitsIncompleteTail) {
  Tokenizer tok = testing::Load(testing::ByteLevelJson({}));
  IncrementalDecoder dec(tok);
  std::vector<int64_t> ids{104, 0xE6 /* byte-level char of 0xE6 has id 0xE6 */};
  EXPECT_EQ(dec.Step(ids).value(), "h");
  EXPECT_EQ(dec.Flush(ids).value(), "\xEF\xBF\xBD");
}

}  // namespace
}  // namespace modelgrid::tokenizer

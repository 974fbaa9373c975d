// Post-processors on a hand-made encoding.
#include "tokenizer/post_processor.h"

#include <gtest/gtest.h>

#include "tokenizer/test_util.h"

namespace modelgrid::tokenizer {
namespace {

using testing::json;
using testing::Node;

// Two model tokens of the text " hi there": "Ġhi" (0..3) and "Ġthere" (3..9).
Encoding Sample() {
  Encoding e;
  e.ids = {10, 11};
  e.tokens = {"Ġhi", "Ġthere"};
  e.type_ids = {0, 0};
  e.attention_mask = {1, 1};
  e.special_tokens_mask = {0, 0};
  e.offsets = {{0, 3}, {3, 9}};
  return e;
}

Encoding Process(const json& config, bool add_special, size_t* added = nullptr) {
  Node n(config);
  auto p = MakePostProcessor(n.node());
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  Encoding e = Sample();
  (*p)->Process(" hi there", add_special, &e);
  if (added != nullptr) *added = (*p)->AddedTokens();
  return e;
}

json BertTemplate() {
  return {{"type", "TemplateProcessing"},
          {"single",
           {{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}},
            {{"Sequence", {{"id", "A"}, {"type_id", 1}}}},
            {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 2}}}}}},
          {"pair", json::array()},
          {"special_tokens",
           {{"[CLS]", {{"id", "[CLS]"}, {"ids", {101}}, {"tokens", {"[CLS]"}}}},
            {"[SEP]", {{"id", "[SEP]"}, {"ids", {102}}, {"tokens", {"[SEP]"}}}}}}};
}

TEST(TemplateProcessingTest, AddsSpecialTokens) {
  size_t added = 0;
  Encoding e = Process(BertTemplate(), true, &added);
  EXPECT_EQ(added, 2u);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{101, 10, 11, 102}));
  EXPECT_EQ(e.type_ids, (std::vector<int64_t>{0, 1, 1, 2}));
  EXPECT_EQ(e.special_tokens_mask, (std::vector<int64_t>{1, 0, 0, 1}));
  EXPECT_EQ(e.offsets[0], (std::pair<size_t, size_t>{0, 0}));
  EXPECT_EQ(e.offsets[2], (std::pair<size_t, size_t>{3, 9}));
}

TEST(TemplateProcessingTest, WithoutSpecialTokens) {
  Encoding e = Process(BertTemplate(), false);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{10, 11}));
  EXPECT_EQ(e.type_ids, (std::vector<int64_t>{1, 1}));
}

TEST(BertProcessingTest, ClsSep) {
  Encoding e =
      Process({{"type", "BertProcessing"}, {"cls", {"[CLS]", 101}}, {"sep", {"[SEP]", 102}}}, true);
  EXPECT_EQ(e.tokens, (std::vector<std::string>{"[CLS]", "Ġhi", "Ġthere", "[SEP]"}));
  EXPECT_EQ(e.offsets[1], (std::pair<size_t, size_t>{0, 3}));  // BERT does not trim
}

TEST(RobertaProcessingTest, TrimsLeadingSpaceOffsets) {
  json r = {{"type", "RobertaProcessing"},
            {"cls", {"<s>", 0}},
            {"sep", {"</s>", 2}},
            {"trim_offsets", true},
            {"add_prefix_space", false}};
  Encoding e = Process(r, true);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{0, 10, 11, 2}));
  EXPECT_EQ(e.offsets[1], (std::pair<size_t, size_t>{1, 3}));
  EXPECT_EQ(e.offsets[2], (std::pair<size_t, size_t>{4, 9}));
}

TEST(ByteLevelProcessingTest, TrimOnlyWhenAsked) {
  Encoding kept = Process({{"type", "ByteLevel"}, {"trim_offsets", false}}, true);
  EXPECT_EQ(kept.offsets[1], (std::pair<size_t, size_t>{3, 9}));
  Encoding trimmed =
      Process({{"type", "ByteLevel"}, {"trim_offsets", true}, {"add_prefix_space", false}}, true);
  EXPECT_EQ(trimmed.offsets[1], (std::pair<size_t, size_t>{4, 9}));
  EXPECT_EQ(trimmed.ids.size(), 2u);
}

TEST(SequenceProcessingTest, ByteLevelThenTemplate) {
  json seq = {{"type", "Sequence"},
              {"processors", {{{"type", "ByteLevel"}, {"trim_offsets", false}}, BertTemplate()}}};
  size_t added = 0;
  Encoding e = Process(seq, true, &added);
  EXPECT_EQ(added, 2u);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{101, 10, 11, 102}));
}

}  // namespace
}  // namespace modelgrid::tokenizer

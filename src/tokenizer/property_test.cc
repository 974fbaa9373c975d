// Properties over generated inputs (rapidcheck): byte-level BPE gives back
// any UTF-8 text; no input, valid or not, crashes the tokenizers; offsets
// stay inside the text.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "modelgrid/utf8.h"
#include "tokenizer/test_util.h"
#include "tokenizer/unicode.h"

namespace modelgrid::tokenizer {
namespace {

using testing::json;

// Code points from every plane, weighted towards ASCII, spaces and marks.
rc::Gen<std::string> Utf8Text() {
  auto cp = rc::gen::oneOf(
      rc::gen::inRange<uint32_t>(0x20, 0x7F),
      rc::gen::element<uint32_t>(' ', '\t', '\n', '\r', 0xA0, 0x3000, 0xFEFF, 0x85),
      rc::gen::inRange<uint32_t>(0x80, 0x800), rc::gen::inRange<uint32_t>(0x300, 0x370),
      rc::gen::inRange<uint32_t>(0x4E00, 0x9FFF), rc::gen::inRange<uint32_t>(0x1F300, 0x1FAFF),
      rc::gen::suchThat(rc::gen::inRange<uint32_t>(0, 0x110000),
                        [](uint32_t c) { return c < 0xD800 || c > 0xDFFF; }));
  return rc::gen::map(rc::gen::container<std::vector<uint32_t>>(cp),
                      [](const std::vector<uint32_t>& cps) {
                        std::string s;
                        for (uint32_t c : cps) AppendUtf8(&s, c);
                        return s;
                      });
}

const Tokenizer& ByteLevel() {
  static const Tokenizer t = testing::Load(testing::ByteLevelJson(
      {{"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"Ã", "©"}, {"ä", "¸"}, {"Ġ", "Ġ"}}));
  return t;
}

const Tokenizer& Bert() {
  static const Tokenizer t = [] {
    json vocab = {{"[UNK]", 0}, {"a", 1}, {"##a", 2}, {"the", 3}, {"[CLS]", 4}, {"[SEP]", 5}};
    json j = testing::TokenizerJson({{"type", "WordPiece"},
                                     {"vocab", vocab},
                                     {"unk_token", "[UNK]"},
                                     {"continuing_subword_prefix", "##"}});
    j["normalizer"] = {{"type", "BertNormalizer"}, {"lowercase", true}};
    j["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
    j["post_processor"] = {
        {"type", "BertProcessing"}, {"cls", {"[CLS]", 4}}, {"sep", {"[SEP]", 5}}};
    j["decoder"] = {{"type", "WordPiece"}};
    j["added_tokens"] = {{{"id", 4}, {"content", "[CLS]"}, {"special", true}}};
    return testing::Load(j);
  }();
  return t;
}

RC_GTEST_PROP(PropertyTest, ByteLevelRoundTrip, ()) {
  std::string text = *Utf8Text();
  auto e = ByteLevel().Encode(text, false);
  RC_ASSERT(e.ok());
  DecodeOptions raw;
  raw.clean_up_tokenization_spaces = false;
  auto back = ByteLevel().Decode(e->ids, raw);
  RC_ASSERT(back.ok());
  RC_ASSERT(back.value() == text);
}

RC_GTEST_PROP(PropertyTest, ArbitraryBytesNeverCrash, (const std::string& bytes)) {
  for (const Tokenizer* t : {&ByteLevel(), &Bert()}) {
    auto e = t->Encode(bytes, true);
    size_t bad = FindInvalidUtf8(bytes);
    if (bad == std::string::npos) {
      RC_ASSERT(e.ok());
    } else {
      RC_ASSERT(!e.ok());
      RC_ASSERT(e.status().code() == StatusCode::kInvalidArgument);
      RC_ASSERT(e.status().message().find("offset " + std::to_string(bad)) != std::string::npos);
    }
  }
}

RC_GTEST_PROP(PropertyTest, OffsetsInsideText, ()) {
  std::string text = *Utf8Text();
  for (const Tokenizer* t : {&ByteLevel(), &Bert()}) {
    auto e = t->Encode(text, true);
    RC_ASSERT(e.ok());
    RC_ASSERT(e->offsets.size() == e->ids.size());
    for (auto [b, end] : e->offsets) {
      RC_ASSERT(b <= end);
      RC_ASSERT(end <= text.size());
    }
    auto d = t->Decode(e->ids, true);
    RC_ASSERT(d.ok());
    RC_ASSERT(FindInvalidUtf8(d.value()) == std::string::npos);
  }
}

RC_GTEST_PROP(PropertyTest, DecodeOfAnyIdsIsUtf8, ()) {
  const Tokenizer& t = ByteLevel();
  auto ids = *rc::gen::container<std::vector<int64_t>>(
      rc::gen::inRange<int64_t>(0, static_cast<int64_t>(t.IdLimit())));
  auto d = t.Decode(ids, false);
  RC_ASSERT(d.ok());
  RC_ASSERT(FindInvalidUtf8(d.value()) == std::string::npos);
}

}  // namespace
}  // namespace modelgrid::tokenizer

// Tokenizer::FromSentencePiece on a small Unigram model trained here with
// libsentencepiece_train (nmt_nfkc normalizer, byte fallback): ids and
// decoding against the library itself, the special tokens, the config's
// switches, streaming over byte pieces, and load errors. The rebuilt Mistral
// tokenizer.model against Hugging Face's JS tokenizer is in
// sentencepiece_reference_test.cc.
#include <gtest/gtest.h>
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include "modelgrid/tokenizer/incremental_decoder.h"
#include "modelgrid/tokenizer/tokenizer.h"
#include "modelgrid/utf8.h"

namespace modelgrid::tokenizer {
namespace {

namespace fs = std::filesystem;

// A training corpus: a few sentences, repeated (the trainer counts them).
std::vector<std::string> Sentences() {
  return {"the quick brown fox jumps over the lazy dog",
          "a café in Zürich serves crème brûlée",
          "hello world, hello tokenizer",
          "numbers 12345 and 67890 are numbers",
          "the rain in spain stays mainly in the plain",
          "sentencepiece treats the input as a raw stream",
          "ｆｕｌｌｗｉｄｔｈ letters are folded by nfkc"};
}

class SentencePieceTest : public ::testing::Test {
 protected:
  // Trains once per test suite: tokenizer.model in a temporary folder.
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("modelgrid-spm-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream corpus(dir_ / "corpus.txt");
    for (int r = 0; r < 30; ++r) {
      for (const std::string& s : Sentences()) corpus << s << "\n";
    }
    corpus.close();
    std::string proto;
    auto status = sentencepiece::SentencePieceTrainer::Train(
        "--input=" + (dir_ / "corpus.txt").string() +
            " --model_type=unigram --vocab_size=330 --hard_vocab_limit=false"
            " --byte_fallback=true --character_coverage=1.0 --minloglevel=2",
        nullptr, &proto);
    ASSERT_TRUE(status.ok()) << status.ToString();
    model_ = proto;
    std::ofstream(dir_ / "tokenizer.model", std::ios::binary) << proto;
    ASSERT_TRUE(library_.LoadFromSerializedProto(proto).ok());
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // A folder holding the trained model and `config` as tokenizer_config.json.
  static fs::path Folder(const std::string& name, const std::string& config) {
    fs::path d = dir_ / name;
    fs::create_directories(d);
    fs::copy_file(dir_ / "tokenizer.model", d / "tokenizer.model",
                  fs::copy_options::overwrite_existing);
    if (!config.empty()) std::ofstream(d / "tokenizer_config.json") << config;
    return d;
  }

  static Tokenizer Load(const fs::path& d) {
    auto t = Tokenizer::FromDirectory(d.string());
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    if (!t.ok()) throw std::runtime_error(t.status().ToString());
    return std::move(t).value();
  }

  static std::vector<int64_t> LibraryIds(const std::string& text) {
    std::vector<int> ids = library_.EncodeAsIds(text);
    return {ids.begin(), ids.end()};
  }

  static inline fs::path dir_;
  static inline std::string model_;
  static inline sentencepiece::SentencePieceProcessor library_;
};

const std::vector<std::string> kTexts = {"the quick brown fox",
                                         "Hello  World",
                                         "café crème",
                                         "ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ",
                                         "日本語と emoji 🙂 here",
                                         "  leading spaces",
                                         "tabs\tand\nnewlines",
                                         "x",
                                         "numbers 3.14159"};

TEST_F(SentencePieceTest, IdsAndDecodingAreTheLibrarys) {
  Tokenizer tok = Load(Folder("plain", ""));
  ASSERT_EQ(tok.VocabSize(), static_cast<size_t>(library_.GetPieceSize()));
  ASSERT_EQ(tok.IdLimit(), tok.VocabSize());
  for (const std::string& text : kTexts) {
    auto e = tok.Encode(text, false);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ(e->ids, LibraryIds(text)) << text;
    // The library decodes the normalized text (nfkc, collapsed spaces).
    std::vector<int> ids(e->ids.begin(), e->ids.end());
    auto decoded = tok.Decode(e->ids, true);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, library_.DecodeIds(ids)) << text;
    // Offsets: inside the text, never backwards, byte pieces cover their character.
    size_t last = 0;
    for (size_t k = 0; k < e->size(); ++k) {
      auto [b, end] = e->offsets[k];
      EXPECT_LE(b, end);
      EXPECT_LE(end, text.size());
      EXPECT_GE(b, last) << text << " token " << k;
      last = b;
      if (e->tokens[k].starts_with("<0x")) {
        EXPECT_LT(b, end) << text << " token " << k;
      }
    }
  }
  // With special tokens: LlamaTokenizer's default, bos and no eos.
  auto with = tok.Encode("the quick brown fox");
  ASSERT_TRUE(with.ok());
  std::vector<int64_t> want = {library_.bos_id()};
  for (int64_t id : LibraryIds("the quick brown fox")) want.push_back(id);
  EXPECT_EQ(with->ids, want);
  EXPECT_EQ(with->special_tokens_mask.front(), 1);
  EXPECT_EQ(tok.NumSpecialTokensToAdd(), 1u);
}

TEST_F(SentencePieceTest, SpecialTokensComeFromTheModelFile) {
  Tokenizer tok = Load(Folder("plain", ""));
  const SpecialTokenIds& s = tok.special_ids();
  EXPECT_EQ(s.unk, 0);
  EXPECT_EQ(s.bos, 1);
  EXPECT_EQ(s.eos, 2);
  EXPECT_FALSE(s.pad);  // the trainer's pad_id is -1
  for (int64_t id : {0, 1, 2}) EXPECT_TRUE(tok.IsSpecialId(id)) << id;
  EXPECT_FALSE(tok.IsSpecialId(3));
  EXPECT_EQ(tok.IdToToken(1), "<s>");
  EXPECT_EQ(tok.TokenToId("</s>"), 2);
  EXPECT_EQ(tok.IdToToken(3), "<0x00>");
  EXPECT_EQ(tok.TokenToId("<0x41>"), 3 + 0x41);
  EXPECT_FALSE(tok.IdToToken(static_cast<int64_t>(tok.IdLimit())));
  EXPECT_FALSE(tok.TokenToId("no such piece"));
  // <s> written in the text is the special token (transformers' rule; the
  // library alone would segment it as text).
  auto e = tok.Encode("hello<s>world", false);
  ASSERT_TRUE(e.ok());
  std::vector<int64_t> want = LibraryIds("hello");
  want.push_back(1);
  for (int64_t id : LibraryIds("world")) want.push_back(id);
  EXPECT_EQ(e->ids, want);
  auto all = tok.Decode(e->ids, false);
  auto skipped = tok.Decode(e->ids, true);
  ASSERT_TRUE(all.ok() && skipped.ok());
  EXPECT_EQ(*all, "hello<s> world");  // legacy: "world" got its own "▁"
  EXPECT_EQ(*skipped, "hello world");
}

TEST_F(SentencePieceTest, ConfigSwitchesBosEosAndTruncation) {
  Tokenizer both = Load(Folder("eos", R"({"add_bos_token": true, "add_eos_token": true,
                                          "tokenizer_class": "LlamaTokenizer"})"));
  auto e = both.Encode("the lazy dog");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ids.front(), 1);
  EXPECT_EQ(e->ids.back(), 2);
  EXPECT_EQ(both.NumSpecialTokensToAdd(), 2u);
  EncodeOptions cut;
  cut.max_length = 4;
  auto short_one = both.Encode("the quick brown fox jumps over the lazy dog", cut);
  ASSERT_TRUE(short_one.ok());
  ASSERT_EQ(short_one->size(), 4u);
  EXPECT_EQ(short_one->ids.front(), 1);
  EXPECT_EQ(short_one->ids.back(), 2);
  auto body = LibraryIds("the quick brown fox jumps over the lazy dog");
  EXPECT_EQ(short_one->ids[1], body[0]);
  cut.truncation_direction = Direction::kLeft;
  auto tail = both.Encode("the quick brown fox jumps over the lazy dog", cut);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->ids[2], body.back());
  cut.max_length = 1;
  EXPECT_FALSE(both.Encode("the", cut).ok());

  Tokenizer none = Load(Folder("nobos", R"({"add_bos_token": false})"));
  auto plain = none.Encode("the lazy dog");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->ids, LibraryIds("the lazy dog"));
  EXPECT_EQ(none.config().add_bos_token, false);
}

// legacy false: only a section that starts the text gets the "▁" prefix.
TEST_F(SentencePieceTest, LegacyFalseDropsThePrefixAfterSpecialTokens) {
  Tokenizer legacy = Load(Folder("legacy", R"({"legacy": true})"));
  Tokenizer modern = Load(Folder("modern", R"({"legacy": false})"));
  EXPECT_EQ(modern.config().legacy, false);
  auto a = legacy.Encode("hello</s>world", false);
  auto b = modern.Encode("hello</s>world", false);
  ASSERT_TRUE(a.ok() && b.ok());
  // The first token after </s>.
  auto after = [](const Encoding& e) {
    auto at = std::find(e.ids.begin(), e.ids.end(), 2);
    return at + 1 < e.ids.end() ? e.tokens[at + 1 - e.ids.begin()] : std::string();
  };
  EXPECT_EQ(after(*a).rfind("\xE2\x96\x81", 0), 0u) << after(*a);
  EXPECT_NE(after(*b).rfind("\xE2\x96\x81", 0), 0u) << after(*b);
  EXPECT_EQ(b->tokens.front(), a->tokens.front());
  auto text = modern.Decode(b->ids, true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "helloworld");
  // A text that starts with a special token: no prefix anywhere.
  auto c = modern.Encode("</s>world", false);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->ids.front(), 2);
  EXPECT_NE(c->tokens.at(1).rfind("\xE2\x96\x81", 0), 0u);
  // Text without special tokens is the same either way.
  for (const std::string& t : kTexts) EXPECT_EQ(legacy.Encode(t)->ids, modern.Encode(t)->ids);
}

TEST_F(SentencePieceTest, AddedTokensDecoderAddsAndChecksTokens) {
  const int64_t next = library_.GetPieceSize();
  Tokenizer tok = Load(Folder("added", R"({"added_tokens_decoder": {
      "1": {"content": "<s>", "special": true},
      ")" + std::to_string(next) + R"(": {"content": "<|tool|>", "special": true}}})"));
  EXPECT_EQ(tok.IdLimit(), static_cast<size_t>(next) + 1);
  EXPECT_EQ(tok.TokenToId("<|tool|>"), next);
  EXPECT_TRUE(tok.IsSpecialId(next));
  auto e = tok.Encode("x<|tool|>", false);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ids.back(), next);
  auto skipped = tok.Decode(e->ids, true);
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, "x");

  auto wrong = Tokenizer::FromDirectory(
      Folder("wrong", R"({"added_tokens_decoder": {"1": {"content": "<bos>"}}})").string());
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kCorruption);
  EXPECT_NE(wrong.status().message().find("tokenizer_config.json"), std::string::npos);
  EXPECT_NE(wrong.status().message().find("\"<bos>\""), std::string::npos);
  EXPECT_NE(wrong.status().message().find("\"<s>\""), std::string::npos);
}

// Streaming over byte pieces: 日本 and 🙂 are not in the model's pieces, so
// each is 3 or 4 <0xNN> ids; no delta ends inside a character.
TEST_F(SentencePieceTest, IncrementalDecoderJoinsBytePieces) {
  Tokenizer tok = Load(Folder("plain", ""));
  const std::string text = "the 日本 fox 🙂!";
  auto e = tok.Encode(text);
  ASSERT_TRUE(e.ok());
  size_t bytes = 0;
  for (const auto& t : e->tokens) bytes += t.starts_with("<0x");
  ASSERT_GE(bytes, 10u) << "the test needs byte pieces";
  IncrementalDecoder dec(tok);
  std::string streamed;
  size_t empty_steps = 0;
  for (size_t n = 1; n <= e->ids.size(); ++n) {
    auto d = dec.Step(std::span<const int64_t>(e->ids.data(), n));
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(FindInvalidUtf8(*d), std::string::npos);
    EXPECT_EQ(d->find("\xEF\xBF\xBD"), std::string::npos) << "step " << n;
    empty_steps += d->empty();
    streamed += *d;
  }
  auto tail = dec.Flush(e->ids);
  ASSERT_TRUE(tail.ok());
  streamed += *tail;
  EXPECT_EQ(streamed, text);
  EXPECT_GE(empty_steps, 2u);  // held back while a character was incomplete
  // Alone, a lone lead byte decodes to U+FFFD.
  auto lone = tok.Decode(std::vector<int64_t>{*tok.TokenToId("<0xE6>")});
  ASSERT_TRUE(lone.ok());
  EXPECT_EQ(*lone, "\xEF\xBF\xBD");
}

void ExpectCorruption(const fs::path& dir, const std::string& why) {
  auto t = Tokenizer::FromDirectory(dir.string());
  if (t.ok()) return;  // a cut at a field boundary can leave a valid, smaller model
  EXPECT_EQ(t.status().code(), StatusCode::kCorruption) << why << ": " << t.status().ToString();
  EXPECT_NE(t.status().message().find((dir / "tokenizer.model").string()), std::string::npos)
      << t.status().ToString();
}

TEST_F(SentencePieceTest, BrokenModelFilesAreCorruptionErrors) {
  auto write = [&](const std::string& name, const std::string& bytes) {
    fs::path d = dir_ / name;
    fs::create_directories(d);
    std::ofstream(d / "tokenizer.model", std::ios::binary) << bytes;
    return d;
  };
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"empty", ""},
           {"text", "{\"model\": {\"type\": \"BPE\"}}"},
           {"garbage", std::string("\xff\xff\xff\xff\x0f\x01\x02", 7)},
           {"half", model_.substr(0, model_.size() / 2 + 1)}}) {
    fs::path d = write(name, bytes);
    auto t = Tokenizer::FromDirectory(d.string());
    ASSERT_FALSE(t.ok()) << name;
    EXPECT_EQ(t.status().code(), StatusCode::kCorruption) << name << ": " << t.status().ToString();
    EXPECT_NE(t.status().message().find((d / "tokenizer.model").string()), std::string::npos)
        << t.status().ToString();
  }
  // Random cuts and flipped bytes: an error or a model, never a crash.
  std::mt19937 rng(7);
  for (int k = 0; k < 40; ++k) {
    std::string bytes = model_.substr(0, rng() % model_.size());
    if (k % 2 == 1) {
      bytes = model_;
      for (int f = 0; f < 8; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    ExpectCorruption(write("fuzz" + std::to_string(k), bytes), "case " + std::to_string(k));
  }
  // A folder that is not readable as a file.
  fs::create_directories(dir_ / "dir" / "tokenizer.model");
  auto d = Tokenizer::FromDirectory((dir_ / "dir").string());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("tokenizer.model"), std::string::npos)
      << d.status().ToString();
}

TEST_F(SentencePieceTest, FolderChoiceAndOtherLoadErrors) {
  fs::path empty = dir_ / "nothing";
  fs::create_directories(empty);
  auto none = Tokenizer::FromDirectory(empty.string());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("no tokenizer.json or tokenizer.model"), std::string::npos)
      << none.status().ToString();
  auto missing = Tokenizer::FromSentencePiece((empty / "tokenizer.model").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);

  // tokenizer.json wins over tokenizer.model.
  fs::path both = Folder("both", "");
  std::ofstream(both / "tokenizer.json") << "{not json";
  auto json_first = Tokenizer::FromDirectory(both.string());
  ASSERT_FALSE(json_first.ok());
  EXPECT_NE(json_first.status().message().find("tokenizer.json"), std::string::npos);

  auto t5 =
      Tokenizer::FromDirectory(Folder("t5", R"({"tokenizer_class": "T5Tokenizer"})").string());
  ASSERT_FALSE(t5.ok());
  EXPECT_EQ(t5.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(t5.status().message().find("T5Tokenizer"), std::string::npos);
  auto bad_config = Tokenizer::FromDirectory(Folder("badconfig", "{\"legacy\": 3}").string());
  ASSERT_FALSE(bad_config.ok());
  EXPECT_EQ(bad_config.status().code(), StatusCode::kCorruption);
  EXPECT_NE(bad_config.status().message().find("legacy"), std::string::npos);
}

}  // namespace
}  // namespace modelgrid::tokenizer

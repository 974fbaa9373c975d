// The rebuilt Mistral tokenizer.model ($MODELGRID_TEST_TOKENIZERS/mistral-spm,
// tools/tokenizers/sentencepiece_model.mjs) read by libsentencepiece: what
// the JS reference cannot say (reference_test.cc compares its ids and
// decoding with @huggingface/tokenizers on Mistral's tokenizer.json).
//   - legacy false against the tokenizer.json transformers' LlamaConverter
//     writes for it (no normalizer; Metaspace, prepend_scheme "first"),
//     loaded by our tokenizer.json code;
//   - streaming over byte-fallback pieces, and their offsets;
//   - the folder's special ids and sizes, and manifest.json's entry.
// Needs the tokenizer folders; fails naming the command that makes them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "modelgrid/tokenizer/incremental_decoder.h"
#include "modelgrid/tokenizer/tokenizer.h"
#include "tokenizer/reference_util.h"

namespace modelgrid::tokenizer {
namespace {

namespace fs = std::filesystem;
using reference::Corpus;
using reference::json;
using reference::RandomTexts;
using reference::ReadFile;
using reference::TokenizerDir;

// `var`: the folder of tokenizer `name`; fails the test (naming the
// command that makes it) when missing.
#define REQUIRE_FOLDER(var, name)                      \
  std::string var##_why;                               \
  const fs::path var = TokenizerDir(name, &var##_why); \
  ASSERT_FALSE(var.empty()) << var##_why

Tokenizer LoadOrThrow(const fs::path& dir) {
  auto t = Tokenizer::FromDirectory(dir.string());
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok()) throw std::runtime_error(t.status().ToString());
  return std::move(t).value();
}

TEST(MistralSentencePieceTest, FolderLoadsWithMistralsIds) {
  REQUIRE_FOLDER(spm_dir, "mistral-spm");
  ASSERT_FALSE(fs::exists(spm_dir / "tokenizer.json"));
  Tokenizer tok = LoadOrThrow(spm_dir);
  EXPECT_EQ(tok.VocabSize(), 32000u);
  EXPECT_EQ(tok.IdLimit(), 32000u);
  EXPECT_EQ(tok.special_ids().unk, 0);
  EXPECT_EQ(tok.special_ids().bos, 1);
  EXPECT_EQ(tok.special_ids().eos, 2);
  EXPECT_FALSE(tok.special_ids().pad);
  EXPECT_EQ(tok.config().tokenizer_class, "LlamaTokenizer");
  EXPECT_EQ(tok.IdToToken(28705), "\xE2\x96\x81");  // Mistral's "▁" (LLaMA-2 has it at 29871)
  auto e = tok.Encode("Hello world");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->ids, (std::vector<int64_t>{1, 22557, 1526}));
  EXPECT_EQ(e->tokens, (std::vector<std::string>{"<s>", "\xE2\x96\x81Hello", "\xE2\x96\x81world"}));
  // "▁Hello" covers "Hello" (the dummy prefix has no input bytes).
  EXPECT_EQ(e->offsets[1], (std::pair<size_t, size_t>{0, 5}));
  EXPECT_EQ(e->offsets[2], (std::pair<size_t, size_t>{5, 11}));
}

// 𝄞 (U+1D11E) is not one of Mistral's pieces: four byte pieces, each
// covering the whole character; streaming holds them back until complete.
TEST(MistralSentencePieceTest, BytePiecesStreamWholeCharacters) {
  REQUIRE_FOLDER(spm_dir, "mistral-spm");
  Tokenizer tok = LoadOrThrow(spm_dir);
  const std::string text = "a\xF0\x9D\x84\x9E b \xF0\x9D\x84\x9E\xF0\x9D\x84\xA0!";  // a𝄞 b 𝄞𝄠!
  auto e = tok.Encode(text, false);
  ASSERT_TRUE(e.ok());
  ASSERT_GE(e->size(), 6u);
  EXPECT_EQ(e->tokens[0],
            "\xE2\x96\x81"
            "a");
  const std::vector<std::string> bytes = {"<0xF0>", "<0x9D>", "<0x84>", "<0x9E>"};
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_EQ(e->tokens[1 + k], bytes[k]);
    EXPECT_EQ(e->offsets[1 + k], (std::pair<size_t, size_t>{1, 5})) << k;
  }
  IncrementalDecoder dec(tok);
  std::vector<int64_t> ids = {1};
  ids.insert(ids.end(), e->ids.begin(), e->ids.end());
  std::string streamed;
  std::vector<std::string> deltas;
  for (size_t n = 1; n <= ids.size(); ++n) {
    auto d = dec.Step(std::span<const int64_t>(ids.data(), n));
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->find("\xEF\xBF\xBD"), std::string::npos) << "step " << n;
    deltas.push_back(*d);
    streamed += *d;
  }
  auto tail = dec.Flush(ids);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, "");
  EXPECT_EQ(streamed, text);
  // Steps 3..5 (<0xF0> <0x9D> <0x84>) add nothing; <0x9E> completes 𝄞.
  EXPECT_EQ(deltas[1], "a");
  EXPECT_EQ(deltas[2] + deltas[3] + deltas[4], "");
  EXPECT_EQ(deltas[5], "\xF0\x9D\x84\x9E");
  // Decoding a cut-off character: U+FFFD, as the JS ByteFallback decoder.
  auto cut = tok.Decode(std::span<const int64_t>(e->ids.data(), 3));
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(*cut, "a\xEF\xBF\xBD");
}

// tokenizer_config.json "legacy": false. transformers' LlamaConverter writes
// such a tokenizer as no normalizer and a Metaspace pre-tokenizer with
// prepend_scheme "first"; that tokenizer.json, loaded by our tokenizer.json
// code (checked against the JS reference on the other tokenizers), must give
// the ids the SentencePiece folder gives.
TEST(MistralSentencePieceTest, LegacyFalseEqualsMetaspaceFirst) {
  REQUIRE_FOLDER(spm_dir, "mistral-spm");
  REQUIRE_FOLDER(json_dir, "mistral");
  const fs::path work =
      fs::temp_directory_path() / ("modelgrid-spm-legacy-" + std::to_string(::getpid()));
  fs::create_directories(work);
  fs::copy_file(spm_dir / "tokenizer.model", work / "tokenizer.model",
                fs::copy_options::overwrite_existing);
  json config = json::parse(ReadFile(spm_dir / "tokenizer_config.json"));
  config["legacy"] = false;
  std::ofstream(work / "tokenizer_config.json") << config.dump();
  Tokenizer spm = LoadOrThrow(work);
  fs::remove_all(work);
  json converted = json::parse(ReadFile(json_dir / "tokenizer.json"));
  converted["normalizer"] = nullptr;
  converted["pre_tokenizer"] = {{"type", "Metaspace"},
                                {"replacement", "\xE2\x96\x81"},
                                {"prepend_scheme", "first"},
                                {"split", false}};
  auto fast = Tokenizer::FromJson(converted.dump(), config.dump(), "converted/tokenizer.json");
  ASSERT_TRUE(fast.ok()) << fast.status().ToString();

  std::vector<std::string> texts = Corpus();
  for (std::string& t : RandomTexts(150)) texts.push_back(std::move(t));
  for (const char* t : {"<s>Hello", "Hello<s>world", "Hello</s> world", " <unk>x", "a\u2581b"}) {
    texts.push_back(t);
  }
  // Texts that start with a space (or "▁") are compared apart: Metaspace
  // (the Rust rule, which our tokenizer.json code follows) prepends no "▁" to
  // a section that already starts with one, but libsentencepiece's dummy
  // prefix, like transformers' slow LlamaTokenizer with legacy=False, always
  // adds it (" x" -> "▁▁x"). For those the section before the first special
  // token must be what legacy true gives (checked against the JS reference).
  Tokenizer legacy = LoadOrThrow(spm_dir);
  auto first_section = [](const Encoding& e) {
    std::vector<int64_t> ids;
    for (int64_t id : e.ids) {
      if (id <= 2) break;  // <unk> <s> </s>
      ids.push_back(id);
    }
    return ids;
  };
  size_t differing = 0, after_special = 0, leading_space = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (texts[i].starts_with(" ") || texts[i].starts_with("\xE2\x96\x81")) {
      ++leading_space;
      auto a = spm.Encode(texts[i], false);
      auto b = legacy.Encode(texts[i], false);
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(first_section(*a), first_section(*b)) << "text " << i;
      EXPECT_FALSE(first_section(*a).empty()) << "text " << i;
      continue;
    }
    for (bool special : {true, false}) {
      auto a = spm.Encode(texts[i], special);
      auto b = fast->Encode(texts[i], special);
      ASSERT_TRUE(a.ok() && b.ok()) << i;
      if (a->ids != b->ids) ++differing;
      EXPECT_EQ(a->ids, b->ids) << "text " << i << " " << json(texts[i]).dump();
      EXPECT_EQ(a->tokens, b->tokens) << "text " << i;
      auto da = spm.Decode(a->ids), db = fast->Decode(a->ids);
      ASSERT_TRUE(da.ok() && db.ok());
      EXPECT_EQ(*da, *db) << "text " << i;
    }
    for (const char* s : {"<s>", "</s>", "<unk>"}) {
      size_t at = texts[i].find(s);
      if (at != std::string::npos && at + std::string(s).size() < texts[i].size()) {
        ++after_special;
        break;
      }
    }
  }
  EXPECT_EQ(differing, 0u);
  EXPECT_GE(after_special, 20u);  // texts where legacy false changes something
  EXPECT_GE(leading_space, 5u);
  // And legacy false is not legacy true: "Hello<s>world" keeps "world" bare.
  auto e = spm.Encode("Hello<s>world", false);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->tokens.back().rfind("\xE2\x96\x81", 0), std::string::npos) << e->tokens.back();
}

// manifest.json's "sentencepiece" folders load, with the sizes it records.
TEST(MistralSentencePieceTest, ManifestListsTheTokenizerModelFolders) {
  REQUIRE_FOLDER(spm_dir, "mistral-spm");
  json manifest = json::parse(ReadFile(spm_dir.parent_path() / "manifest.json"));
  ASSERT_EQ(manifest.at("sentencepiece").size(), 1u);
  for (const json& entry : manifest.at("sentencepiece")) {
    const fs::path dir = spm_dir.parent_path() / entry.at("dir").get<std::string>();
    EXPECT_TRUE(fs::exists(dir / "tokenizer.model")) << dir;
    EXPECT_FALSE(fs::exists(dir / "tokenizer.json")) << dir;
    Tokenizer tok = LoadOrThrow(dir);
    EXPECT_EQ(tok.VocabSize(), entry.at("vocab_size").get<size_t>()) << entry.at("name");
  }
}

}  // namespace
}  // namespace modelgrid::tokenizer

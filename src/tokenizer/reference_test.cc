// The C++ Tokenizer against Hugging Face's own JS implementation
// (@huggingface/tokenizers, run by tools/tokenizers/reference.mjs) on the
// real tokenizers of $MODELGRID_TEST_TOKENIZERS and the hard strings of
// tools/tokenizers/corpus.json: ids and tokens with and without special
// tokens, Decode with and without skip_special_tokens, decoding of
// arbitrary id lists, and encode -> decode round trips. mistral-spm is the
// SentencePiece tokenizer.model rebuilt from Mistral's tokenizer.json,
// compared with the JS reference on that tokenizer.json.
//
// Needs the tokenizer folders and node_modules; without them every test
// fails saying which command creates them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "modelgrid/tokenizer/tokenizer.h"
#include "tokenizer/reference_util.h"

namespace modelgrid::tokenizer {
namespace {

namespace fs = std::filesystem;
using reference::Corpus;
using reference::json;
using reference::RandomTexts;
using reference::ReadFile;
using reference::RunReference;
using reference::TokenizerDir;

// The folder whose tokenizer.json the JS reference loads for `name`:
// mistral-spm is Mistral's tokenizer.json rebuilt as a SentencePiece
// tokenizer.model (tools/tokenizers/sentencepiece_model.mjs), read by
// libsentencepiece on our side; the JS side reads the original.
std::string ReferenceName(const std::string& name) {
  return name == "mistral-spm" ? "mistral" : name;
}

std::string Shorten(const std::string& s) {
  std::string out = json(s.substr(0, 60)).dump(-1, ' ', false, json::error_handler_t::replace);
  return s.size() > 60 ? out + "... (" + std::to_string(s.size()) + " bytes)" : out;
}

std::string Around(const std::vector<std::string>& tokens, size_t at) {
  std::string out;
  for (size_t i = at >= 3 ? at - 3 : 0; i < std::min(tokens.size(), at + 4); ++i) {
    out += (i == at ? " >" : " ") +
           json(tokens[i]).dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return out;
}

// Deterministic id lists for decoding: random ids, and runs of the highest
// ids (added tokens) and of the lowest (bytes, specials).
std::vector<std::vector<int64_t>> ArbitraryIds(const Tokenizer& t) {
  std::mt19937_64 rng(12);
  std::vector<std::vector<int64_t>> lists;
  std::uniform_int_distribution<int64_t> any(0, static_cast<int64_t>(t.IdLimit()) - 1);
  for (int k = 0; k < 40; ++k) {
    std::vector<int64_t> ids;
    for (int i = 0; i < 1 + k % 12; ++i) {
      int64_t id = any(rng);
      if (t.IdToToken(id)) ids.push_back(id);
    }
    lists.push_back(ids);
  }
  std::vector<int64_t> low, high;
  for (int64_t id = 0; id < 300 && id < static_cast<int64_t>(t.IdLimit()); ++id) {
    if (t.IdToToken(id)) low.push_back(id);
  }
  for (int64_t id = static_cast<int64_t>(t.IdLimit()) - 1; id >= 0 && high.size() < 40; --id) {
    if (t.IdToToken(id)) high.push_back(id);
  }
  lists.push_back(low);
  lists.push_back(high);
  return lists;
}

class ReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceTest, MatchesHuggingFaceJs) {
  const std::string name = GetParam();
  std::string why;
  fs::path dir = TokenizerDir(name, &why);
  ASSERT_FALSE(dir.empty()) << why;
  fs::path ref_dir = TokenizerDir(ReferenceName(name), &why);
  ASSERT_FALSE(ref_dir.empty()) << why;
  auto loaded = Tokenizer::FromDirectory(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Tokenizer& tok = loaded.value();
  std::vector<std::string> texts = Corpus();
  const size_t corpus_size = texts.size();
  for (std::string& t : RandomTexts(150)) texts.push_back(std::move(t));

  // Our encodings first: their ids are what the reference decodes.
  std::vector<Encoding> with, without;
  for (const std::string& text : texts) {
    auto a = tok.Encode(text, true);
    auto b = tok.Encode(text, false);
    ASSERT_TRUE(a.ok() && b.ok()) << Shorten(text) << ": " << a.status().ToString();
    with.push_back(std::move(a).value());
    without.push_back(std::move(b).value());
  }
  json with_ids = json::array();
  for (const Encoding& e : with) with_ids.push_back(e.ids);
  std::vector<std::vector<int64_t>> arbitrary = ArbitraryIds(tok);
  json request = json::array({
      {{"tokenizer_dir", ref_dir.string()},
       {"texts", texts},
       {"add_special_tokens", true},
       {"ids_to_decode", with_ids},
       {"skip_special_tokens", false}},
      {{"tokenizer_dir", ref_dir.string()},
       {"texts", texts},
       {"add_special_tokens", false},
       {"ids_to_decode", with_ids},
       {"skip_special_tokens", true}},
      {{"tokenizer_dir", ref_dir.string()},
       {"ids_to_decode", arbitrary},
       {"skip_special_tokens", false}},
  });
  fs::path work =
      fs::temp_directory_path() / ("modelgrid-tokref-" + name + "-" + std::to_string(::getpid()));
  fs::create_directories(work);
  json answer = RunReference(request, work);
  fs::remove_all(work);

  size_t id_mismatches = 0;
  for (int pass = 0; pass < 2; ++pass) {
    const auto& ours = pass == 0 ? with : without;
    const json& theirs = answer[pass]["encodings"];
    ASSERT_EQ(theirs.size(), texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      auto ids = theirs[i]["ids"].get<std::vector<int64_t>>();
      auto tokens = theirs[i]["tokens"].get<std::vector<std::string>>();
      if (ids != ours[i].ids) {
        ++id_mismatches;
        size_t at = 0;
        while (at < ids.size() && at < ours[i].ids.size() && ids[at] == ours[i].ids[at]) ++at;
        ADD_FAILURE() << name << " text " << i << " " << Shorten(texts[i])
                      << (pass == 0 ? " with" : " without") << " special tokens: " << ours[i].size()
                      << " ids vs reference " << ids.size() << ", first difference at " << at
                      << "\n  ours:" << Around(ours[i].tokens, at)
                      << "\n  js:  " << Around(tokens, at);
        continue;
      }
      EXPECT_EQ(tokens, ours[i].tokens) << name << " text " << i;
    }
  }
  // Decode of our ids (equal to the reference's where the above passed).
  for (int pass = 0; pass < 2; ++pass) {
    const json& decoded = answer[pass]["decoded"];
    for (size_t i = 0; i < texts.size(); ++i) {
      auto ours = tok.Decode(with[i].ids, pass == 1);
      ASSERT_TRUE(ours.ok()) << ours.status().ToString();
      EXPECT_EQ(ours.value(), decoded[i].get<std::string>())
          << name << " decode of text " << i << " " << Shorten(texts[i])
          << (pass == 1 ? " skipping special tokens" : "");
    }
  }
  const json& decoded = answer[2]["decoded"];
  for (size_t k = 0; k < arbitrary.size(); ++k) {
    auto ours = tok.Decode(arbitrary[k], false);
    ASSERT_TRUE(ours.ok()) << ours.status().ToString();
    EXPECT_EQ(ours.value(), decoded[k].get<std::string>())
        << name << " decode of arbitrary id list " << k << ": " << json(arbitrary[k]).dump();
  }
  // Round trips: byte-level BPE and Mistral's SentencePiece-style BPE give
  // back every text without added tokens in it (<mask> strips the space
  // before it; Mistral's sections after an added token get their own "▁").
  bool byte_level = name == "gpt2" || name == "roberta" || name == "llama3";
  DecodeOptions raw;
  raw.clean_up_tokenization_spaces = false;
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string& t = texts[i];
    bool has_special = t.find("<s>") != std::string::npos || t.find("</s>") != std::string::npos ||
                       t.find("<unk>") != std::string::npos ||
                       t.find("<mask>") != std::string::npos;
    if (has_special || !(byte_level || name == "mistral" || name == "mistral-spm")) continue;
    auto back = tok.Decode(without[i].ids, raw);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back.value(), t) << name << " round trip of text " << i;
  }
  // Offsets stay inside the text and never go backwards.
  for (size_t i = 0; i < texts.size(); ++i) {
    size_t last = 0;
    for (size_t k = 0; k < without[i].size(); ++k) {
      auto [b, e] = without[i].offsets[k];
      EXPECT_LE(b, e);
      EXPECT_LE(e, texts[i].size());
      EXPECT_GE(b + 1, last) << name << " text " << i << " token " << k;
      last = b;
    }
  }
  RecordProperty("corpus_texts", static_cast<int>(corpus_size));
  RecordProperty("random_texts", static_cast<int>(texts.size() - corpus_size));
  EXPECT_EQ(id_mismatches, 0u);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, ReferenceTest,
                         ::testing::Values("gpt2", "bert-base-uncased", "roberta", "llama3",
                                           "mistral", "mistral-spm"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

// The manifest the zoo generator reads agrees with the loaded tokenizers.
TEST(ReferenceManifest, VocabSizesMatch) {
  std::string why;
  fs::path dir = TokenizerDir("gpt2", &why);
  ASSERT_FALSE(dir.empty()) << why;
  json manifest = json::parse(ReadFile(dir.parent_path() / "manifest.json"));
  ASSERT_EQ(manifest.at("tokenizers").size(), 5u);
  for (const json& entry : manifest.at("tokenizers")) {
    auto tok =
        Tokenizer::FromDirectory((dir.parent_path() / entry.at("dir").get<std::string>()).string());
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    EXPECT_EQ(tok->VocabSize(), entry.at("vocab_size").get<size_t>()) << entry.at("name");
  }
}

}  // namespace
}  // namespace modelgrid::tokenizer

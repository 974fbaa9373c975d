// Every load and call error names what went wrong and where.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "modelgrid/tokenizer/tokenizer.h"
#include "tokenizer/test_util.h"

namespace modelgrid::tokenizer {
namespace {

using testing::json;

json Minimal() { return testing::ByteLevelJson({{"h", "i"}}); }

Status LoadError(const json& t, const std::string& config = "") {
  auto r = Tokenizer::FromJson(t.dump(), config, "mini/tokenizer.json");
  return r.ok() ? Status::Ok() : r.status();
}

void ExpectError(const Status& s, StatusCode code, std::vector<std::string> parts) {
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), code) << s.ToString();
  for (const auto& p : parts)
    EXPECT_NE(s.message().find(p), std::string::npos) << s.ToString() << " lacks " << p;
}

TEST(LoadErrorTest, UnknownComponentTypes) {
  json t = Minimal();
  t["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", "AAAA"}};
  ExpectError(LoadError(t), StatusCode::kUnsupported,
              {"mini/tokenizer.json", "/normalizer/type", "normalizer", "\"Precompiled\""});
  t = Minimal();
  t["pre_tokenizer"] = {
      {"type", "Sequence"},
      {"pretokenizers", {{{"type", "Whitespace"}}, {{"type", "FixedLength"}, {"length", 3}}}}};
  ExpectError(LoadError(t), StatusCode::kUnsupported,
              {"/pre_tokenizer/pretokenizers/1/type", "FixedLength"});
  t = Minimal();
  t["model"]["type"] = "Unigram";
  ExpectError(LoadError(t), StatusCode::kUnsupported, {"/model/type", "Unigram"});
  t = Minimal();
  t["post_processor"] = {{"type", "Mystery"}};
  ExpectError(LoadError(t), StatusCode::kUnsupported, {"/post_processor/type", "post-processor"});
  t = Minimal();
  t["decoder"] = {{"type", "CTC"}};
  ExpectError(LoadError(t), StatusCode::kUnsupported, {"/decoder/type", "CTC"});
}

TEST(LoadErrorTest, BadJsonAndFieldTypes) {
  auto r = Tokenizer::FromJson("{\"model\": ", "", "broken.json");
  ExpectError(r.status(), StatusCode::kCorruption, {"broken.json", "invalid JSON"});
  json t = Minimal();
  t["normalizer"] = {{"type", "BertNormalizer"}, {"lowercase", "yes"}};
  ExpectError(LoadError(t), StatusCode::kCorruption,
              {"/normalizer/lowercase", "boolean", "string"});
  t = Minimal();
  t["normalizer"] = {{"lowercase", true}};
  ExpectError(LoadError(t), StatusCode::kCorruption, {"/normalizer/type", "missing"});
  t = Minimal();
  t.erase("model");
  ExpectError(LoadError(t), StatusCode::kCorruption, {"/model", "missing"});
  t = Minimal();
  t["model"]["vocab"]["x"] = "seven";
  ExpectError(LoadError(t), StatusCode::kCorruption, {"/model/vocab/x", "integer"});
  t = Minimal();
  t["model"]["merges"] = {"h i j"};
  ExpectError(LoadError(t), StatusCode::kCorruption, {"/model/merges/0"});
  t = Minimal();
  t["added_tokens"] = {{{"id", "one"}, {"content", "<x>"}}};
  ExpectError(LoadError(t), StatusCode::kCorruption, {"/added_tokens/0/id"});
  t = Minimal();
  t["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"Regex", "(oops"}}}, {"behavior", "Isolated"}};
  ExpectError(LoadError(t), StatusCode::kCorruption, {"/pre_tokenizer/pattern/Regex", "(oops"});
  t = Minimal();
  t["pre_tokenizer"] = {
      {"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", "Sideways"}};
  ExpectError(LoadError(t), StatusCode::kCorruption, {"/pre_tokenizer/behavior", "Sideways"});
  t = Minimal();
  t["truncation"] = {{"max_length", "long"}};
  ExpectError(LoadError(t), StatusCode::kCorruption, {"/truncation/max_length"});
}

TEST(LoadErrorTest, BpeRules) {
  json t = Minimal();
  t["model"]["dropout"] = 0.1;
  ExpectError(LoadError(t), StatusCode::kCorruption, {"/model/dropout", "null or 0"});
  t["model"]["dropout"] = 0;
  EXPECT_TRUE(LoadError(t).ok());
  t = Minimal();
  t["model"]["merges"] = {"h zz"};
  ExpectError(LoadError(t), StatusCode::kCorruption,
              {"/model", "merges/0", "\"zz\"", "vocabulary"});
  t = Minimal();
  t["model"]["unk_token"] = "<missing>";
  ExpectError(LoadError(t), StatusCode::kCorruption, {"<missing>"});
}

TEST(LoadErrorTest, ConfigFieldTypes) {
  ExpectError(LoadError(Minimal(), R"({"add_bos_token": "yes"})"), StatusCode::kCorruption,
              {"tokenizer_config.json", "/add_bos_token", "boolean"});
  ExpectError(LoadError(Minimal(), R"({"bos_token": 7})"), StatusCode::kCorruption,
              {"tokenizer_config.json", "/bos_token"});
  ExpectError(LoadError(Minimal(), "[1,"), StatusCode::kCorruption,
              {"tokenizer_config.json", "invalid JSON"});
}

TEST(LoadErrorTest, MissingFiles) {
  auto r = Tokenizer::FromDirectory("/nonexistent/modelgrid-tok");
  ExpectError(r.status(), StatusCode::kNotFound, {"/nonexistent/modelgrid-tok", "tokenizer.json"});
  auto f = Tokenizer::FromFile("/nonexistent/tokenizer.json");
  ExpectError(f.status(), StatusCode::kNotFound, {"/nonexistent/tokenizer.json"});
}

TEST(LoadErrorTest, FromDirectoryReadsConfigBeside) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("modelgrid-tok-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  json t = Minimal();
  t["added_tokens"] = {{{"id", 300}, {"content", "<eos>"}, {"special", true}}};
  std::ofstream(dir / "tokenizer.json") << t.dump();
  std::ofstream(dir / "tokenizer_config.json") << R"({"eos_token": {"content": "<eos>"}})";
  std::ofstream(dir / "special_tokens_map.json") << R"({"bos_token": "<eos>", "eos_token": "x"})";
  auto tok = Tokenizer::FromDirectory(dir.string());
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->special_ids().eos, 300);  // the config wins over the map
  EXPECT_EQ(tok->special_ids().bos, 300);  // the map fills what the config lacks
  std::ofstream(dir / "tokenizer_config.json") << R"({"model_max_length": "big"})";
  auto bad = Tokenizer::FromDirectory(dir.string());
  ExpectError(bad.status(), StatusCode::kCorruption,
              {(dir / "tokenizer_config.json").string(), "/model_max_length"});
  fs::remove_all(dir);
}

TEST(CallErrorTest, InvalidUtf8NamesOffset) {
  Tokenizer tok = testing::Load(Minimal());
  auto e = tok.Encode("ok\xC3(", true);
  ExpectError(e.status(), StatusCode::kInvalidArgument, {"UTF-8", "0xC3", "offset 2"});
  auto surrogate = tok.Encode("ab\xED\xA0\x80", true);
  ExpectError(surrogate.status(), StatusCode::kInvalidArgument, {"offset 2"});
  std::vector<std::string> batch{"fine", "bad\xFF"};
  ExpectError(tok.EncodeBatch(batch).status(), StatusCode::kInvalidArgument,
              {"text 1", "offset 3"});
}

TEST(CallErrorTest, DecodeUnknownId) {
  Tokenizer tok = testing::Load(Minimal());
  std::vector<int64_t> ids{104, 999999};
  ExpectError(tok.Decode(ids).status(), StatusCode::kInvalidArgument, {"999999", "position 1"});
  std::vector<int64_t> negative{-1};
  ExpectError(tok.Decode(negative).status(), StatusCode::kInvalidArgument, {"-1", "position 0"});
}

}  // namespace
}  // namespace modelgrid::tokenizer

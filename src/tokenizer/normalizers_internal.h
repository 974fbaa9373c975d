// The normalizer classes behind MakeNormalizer (normalizer.h). Internal:
// tests construct them through JSON.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/normalizer.h"
#include "tokenizer/regex.h"

namespace modelgrid::tokenizer {

// Called once per character of a string: appends what replaces character `c`
// (at byte `at` of the input) to `out`; nothing appended drops it.
using CharMapper = std::function<void(char32_t c, size_t at, std::string* out)>;
// A copy of `s` with each character replaced as `f` says; the replacement
// keeps the span of the character it replaces.
NormalizedString MapChars(const NormalizedString& s, const CharMapper& f);
// Full Unicode lowercase (root locale, final sigma in context), as JS
// String.prototype.toLowerCase.
void LowercaseInPlace(NormalizedString* s);

// BERT's normalizer: clean_text (drop NUL, U+FFFD and controls, map
// whitespace to ' '), handle_chinese_chars (spaces around CJK ideographs),
// lowercase, strip_accents (NFD then drop Mn; null follows lowercase).
class BertNormalizer : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool handle_chinese_chars, std::optional<bool> strip_accents,
                 bool lowercase)
      : clean_text_(clean_text),
        handle_chinese_chars_(handle_chinese_chars),
        strip_accents_(strip_accents),
        lowercase_(lowercase) {}
  Status Normalize(NormalizedString* s) const override;

 private:
  bool clean_text_, handle_chinese_chars_;
  std::optional<bool> strip_accents_;
  bool lowercase_;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(UnicodeForm form) : form_(form) {}
  Status Normalize(NormalizedString* s) const override;

 private:
  UnicodeForm form_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  Status Normalize(NormalizedString* s) const override;
};

// Drops every character of general category M (Mn Mc Me), without
// decomposing first (JS remove_accents; Rust's is_combining_mark agrees).
class StripAccentsNormalizer : public Normalizer {
 public:
  Status Normalize(NormalizedString* s) const override;
};

// Prepends `prepend` to a non-empty section.
class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  Status Normalize(NormalizedString* s) const override;

 private:
  std::string prepend_;
};

// Replaces every match of `pattern` with `content`.
class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  Status Normalize(NormalizedString* s) const override;

 private:
  Pattern pattern_;
  std::string content_;
};

// Trims JS whitespace on the left and/or right.
class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  Status Normalize(NormalizedString* s) const override;

 private:
  bool left_, right_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> normalizers)
      : normalizers_(std::move(normalizers)) {}
  Status Normalize(NormalizedString* s) const override;

 private:
  std::vector<std::unique_ptr<Normalizer>> normalizers_;
};

// Reads a tokenizer.json pattern object {"String": s} or {"Regex": r}
// (shared by Replace and Split). Errors name the file and path.
Result<Pattern> ReadPattern(const JsonNode& node);

}  // namespace modelgrid::tokenizer

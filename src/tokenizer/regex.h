// Regular expressions of tokenizer.json (Split, Replace patterns) and the
// byte-level pre-tokenizer, run by PCRE2 in UTF + UCP mode with JIT.
//
// Hugging Face writes its patterns for Oniguruma; FromOniguruma rewrites the
// constructs whose meaning differs in PCRE2 the way the JS reference rewrites
// them for JavaScript: \s -> \p{White_Space}, \w -> letters, marks, digits and
// connector punctuation, \h -> hex digit, `.` -> any character but \n,
// (?i:...) -> ASCII-only case folding, ^ and $ -> line anchors, {,n} -> {0,n}.
// A compiled Regex is immutable and shared by copies; FindAll is thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/status.h"
#include "tokenizer/normalized_string.h"

namespace modelgrid::tokenizer {

class Regex {
 public:
  // Compiles a PCRE2 pattern as is. Errors: kInvalidArgument with PCRE2's
  // message and the offset in the pattern.
  static Result<Regex> Compile(const std::string& pcre2_pattern);
  // Rewrites an Oniguruma pattern (see above) and compiles it.
  static Result<Regex> FromOniguruma(std::string_view pattern);
  // The rewrite alone (exposed for tests).
  static std::string RewriteOniguruma(std::string_view pattern);

  // Byte ranges of the non-overlapping matches in `text` (valid UTF-8), left
  // to right; empty matches are skipped. Errors: kInternal when PCRE2 fails
  // (e.g. its JIT stack is exhausted).
  Status FindAll(std::string_view text, std::vector<Span>* matches) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::shared_ptr<Code> code_;
  std::string pattern_;
};

// A tokenizer.json pattern: {"String": "..."} (literal) or {"Regex": "..."}.
class Pattern {
 public:
  static Pattern Literal(std::string s);
  static Pattern FromRegex(Regex r);
  // Non-overlapping matches, left to right (a literal "" never matches).
  Status FindAll(std::string_view text, std::vector<Span>* matches) const;
  bool is_regex() const { return is_regex_; }

 private:
  bool is_regex_ = false;
  std::string literal_;
  std::shared_ptr<Regex> regex_;
};

}  // namespace modelgrid::tokenizer

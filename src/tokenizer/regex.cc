#include "tokenizer/regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer/unicode.h"

namespace modelgrid::tokenizer {

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

namespace {

// Regex \w as the JS reference defines it (Oniguruma's Unicode word class).
constexpr const char* kWordClassBody =
    "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{B2}\\x{B3}\\x{B9}\\x{BC}-\\x{BE}";
constexpr const char* kHexClassBody = "0-9A-Fa-f";

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c; }

// Copies the escape starting at p[i] ("\x" plus a {...} argument for \p \P
// \x) to `out`, rewriting the classes listed in regex.h; returns the index
// after it.
size_t RewriteEscape(std::string_view p, size_t i, bool in_class, std::string* out) {
  char n = p[i + 1];
  auto set = [&](const char* body, bool negate) {
    if (in_class && !negate) {
      *out += body;
    } else {
      *out += negate ? "[^" : "[";
      *out += body;
      *out += "]";
    }
  };
  switch (n) {
    case 's':
      *out += "\\p{White_Space}";
      return i + 2;
    case 'S':
      *out += "\\P{White_Space}";
      return i + 2;
    case 'd':
      *out += "\\p{Nd}";
      return i + 2;
    case 'D':
      *out += "\\P{Nd}";
      return i + 2;
    case 'w':
      set(kWordClassBody, false);
      return i + 2;
    case 'W':
      if (in_class)
        *out += "\\W";
      else
        set(kWordClassBody, true);
      return i + 2;
    case 'h':
      set(kHexClassBody, false);
      return i + 2;
    case 'H':
      if (in_class)
        *out += "\\H";
      else
        set(kHexClassBody, true);
      return i + 2;
    default:
      break;
  }
  if ((n == 'p' || n == 'P' || n == 'x') && i + 2 < p.size() && p[i + 2] == '{') {
    size_t close = p.find('}', i + 2);
    if (close != std::string_view::npos) {
      out->append(p.substr(i, close + 1 - i));
      return close + 1;
    }
  }
  size_t len = 1 + Utf8Length(static_cast<unsigned char>(n));
  out->append(p.substr(i, len));
  return i + len;
}

struct MatchResources {
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* context = nullptr;
  MatchResources() {
    stack = pcre2_jit_stack_create(64 * 1024, 16 * 1024 * 1024, nullptr);
    context = pcre2_match_context_create(nullptr);
    if (stack != nullptr && context != nullptr) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchResources() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};

}  // namespace

std::string Regex::RewriteOniguruma(std::string_view p) {
  std::string out;
  std::vector<bool> folds;
  bool fold = false;
  bool in_class = false;
  for (size_t i = 0; i < p.size();) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      i = RewriteEscape(p, i, in_class, &out);
      continue;
    }
    if (in_class) {
      if (c == ']') {
        in_class = false;
        out += c;
      } else if (c == '[' && p.substr(i, 2) == "[:") {
        size_t close = p.find(":]", i + 2);
        size_t end = close == std::string_view::npos ? p.size() : close + 2;
        out.append(p.substr(i, end - i));
        i = end;
        continue;
      } else if (c == '[') {
        out += "\\[";
      } else if (fold && IsAsciiLetter(c)) {
        out += Lower(c);
        out += Upper(c);
      } else {
        size_t len = Utf8Length(static_cast<unsigned char>(c));
        out.append(p.substr(i, len));
        i += len;
        continue;
      }
      ++i;
      continue;
    }
    switch (c) {
      case '[':
        in_class = true;
        out += c;
        if (i + 1 < p.size() && p[i + 1] == '^') {
          out += '^';
          ++i;
        }
        if (i + 1 < p.size() && p[i + 1] == ']') {  // a leading ] is literal
          out += "\\]";
          ++i;
        }
        ++i;
        continue;
      case '(':
        folds.push_back(fold);
        if (p.substr(i, 4) == "(?i:") {
          fold = true;
          out += "(?:";
          i += 4;
          continue;
        }
        out += c;
        ++i;
        continue;
      case ')':
        if (!folds.empty()) {
          fold = folds.back();
          folds.pop_back();
        }
        out += c;
        ++i;
        continue;
      case '.':
        out += "[^\\n]";
        ++i;
        continue;
      case '{':
        if (i + 1 < p.size() && p[i + 1] == ',') {
          out += "{0";
          ++i;
          continue;
        }
        break;
      default:
        break;
    }
    if (fold && IsAsciiLetter(c)) {
      out += '[';
      out += Lower(c);
      out += Upper(c);
      out += ']';
      ++i;
      continue;
    }
    size_t len = Utf8Length(static_cast<unsigned char>(c));
    out.append(p.substr(i, len));
    i += len;
  }
  return out;
}

Result<Regex> Regex::Compile(const std::string& pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_compile_context* cc = pcre2_compile_context_create(nullptr);
  pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE, &error, &offset, cc);
  pcre2_compile_context_free(cc);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return Status::InvalidArgument("regex \"" + pattern +
                                   "\": " + reinterpret_cast<const char*>(message) + " at offset " +
                                   std::to_string(offset));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // the interpreter runs it when JIT is absent
  Regex r;
  r.code_ = std::make_shared<Code>();
  r.code_->code = code;
  r.pattern_ = pattern;
  return r;
}

Result<Regex> Regex::FromOniguruma(std::string_view pattern) {
  return Compile(RewriteOniguruma(pattern));
}

Status Regex::FindAll(std::string_view text, std::vector<Span>* matches) const {
  thread_local MatchResources resources;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  if (md == nullptr) return Status::Internal("pcre2: out of memory");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  Status status;
  while (start <= text.size()) {
    int rc = pcre2_match(code_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, md,
                         resources.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      status =
          Status::Internal("regex \"" + pattern_ + "\": " + reinterpret_cast<const char*>(message));
      break;
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (e <= b) {
      if (b >= text.size()) break;
      start = b + Utf8Length(static_cast<unsigned char>(text[b]));
      continue;
    }
    matches->push_back({b, e});
    start = e;
  }
  pcre2_match_data_free(md);
  return status;
}

Pattern Pattern::Literal(std::string s) {
  Pattern p;
  p.literal_ = std::move(s);
  return p;
}

Pattern Pattern::FromRegex(Regex r) {
  Pattern p;
  p.is_regex_ = true;
  p.regex_ = std::make_shared<Regex>(std::move(r));
  return p;
}

Status Pattern::FindAll(std::string_view text, std::vector<Span>* matches) const {
  if (is_regex_) return regex_->FindAll(text, matches);
  if (literal_.empty()) return Status::Ok();
  for (size_t i = text.find(literal_); i != std::string_view::npos;
       i = text.find(literal_, i + literal_.size())) {
    matches->push_back({i, i + literal_.size()});
  }
  return Status::Ok();
}

}  // namespace modelgrid::tokenizer

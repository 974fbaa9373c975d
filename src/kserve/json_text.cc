#include "kserve/json_text.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <new>
#include <span>
#include <string>
#include <vector>

namespace modelgrid::kserve_internal {

namespace {

template <typename T>
void AppendShortest(std::string* out, T v) {
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v < 0 ? "-Infinity" : "Infinity");
    return;
  }
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  std::string_view text(buf, static_cast<size_t>(end - buf));
  out->append(text);
  if (text.find_first_of(".e") == std::string_view::npos) out->append(".0");
}

// Scans for the first place where array/object nesting passes kMaxJsonDepth,
// skipping string contents. Returns its offset or npos.
size_t FindTooDeep(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::string_view::npos;
}

// nlohmann's what() reads "[json.exception.parse_error.101] parse error at
// line 1, column 5: syntax error ..."; keep the part after the position.
std::string ParseErrorReason(const char* what) {
  std::string_view w(what);
  const size_t colon = w.find(": ");
  if (colon != std::string_view::npos) return std::string(w.substr(colon + 2));
  const size_t bracket = w.find("] ");
  return std::string(bracket == std::string_view::npos ? w : w.substr(bracket + 2));
}

// ---- ParseInferJson ----

// A non-finite token found by ScanNonFinite.
struct NonFiniteToken {
  double value;             // NaN, +infinity or -infinity
  std::string_view text;    // "NaN", "Infinity" or "-Infinity"
  size_t offset;            // of the token in the text
  uint64_t number_ordinal;  // its place among all number tokens (0-based)
};

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Whether a token may start right after text[pos - 1] / end right before
// text[end]: a JSON structural character, whitespace or the text's end
// there, so that replacing the token cannot glue it to a neighbour.
bool FreeBefore(std::string_view text, size_t pos) {
  if (pos == 0) return true;
  const char c = text[pos - 1];
  return IsJsonSpace(c) || c == '[' || c == ',' || c == ':' || c == '{';
}
bool FreeAfter(std::string_view text, size_t end) {
  if (end == text.size()) return true;
  const char c = text[end];
  return IsJsonSpace(c) || c == ']' || c == ',' || c == '}' || c == ':';
}

// Finds the standalone NaN / Infinity / -Infinity tokens outside strings and
// numbers every number token (a maximal run of 0-9 + - . e E starting with
// a digit or '-'), in text order. In a text that parses, those runs are
// exactly the lexer's number tokens, so the ordinals match the parser's
// number events once each non-finite token is replaced by "0".
std::vector<NonFiniteToken> ScanNonFinite(std::string_view text) {
  static constexpr std::string_view kNaN = "NaN";
  static constexpr std::string_view kInf = "Infinity";
  static constexpr std::string_view kNegInf = "-Infinity";
  std::vector<NonFiniteToken> found;
  uint64_t numbers = 0;
  bool in_string = false;
  const auto is_number_char = [](char c) {
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' || c == 'E';
  };
  const auto try_token = [&](size_t i, std::string_view token, double value) {
    if (text.substr(i, token.size()) != token) return false;
    if (!FreeBefore(text, i) || !FreeAfter(text, i + token.size())) return false;
    found.push_back({value, token, i, numbers++});
    return true;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == 'N') {
      if (try_token(i, kNaN, std::numeric_limits<double>::quiet_NaN())) i += kNaN.size() - 1;
    } else if (c == 'I') {
      if (try_token(i, kInf, std::numeric_limits<double>::infinity())) i += kInf.size() - 1;
    } else if (c == '-' && text.substr(i + 1, kInf.size()) == kInf) {
      if (try_token(i, kNegInf, -std::numeric_limits<double>::infinity())) {
        i += kNegInf.size() - 1;
      }
      // Otherwise "-Infinity" glued to a neighbour: left for the parser to
      // reject ('-' followed by a letter is no number).
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      ++numbers;
      while (i + 1 < text.size() && is_number_char(text[i + 1])) ++i;
    }
  }
  return found;
}

// Builds a document from nlohmann's SAX events as nlohmann's own DOM parser
// does (a repeated key keeps its last value), swapping the number events
// that stand for non-finite tokens, and checking that those lie in a
// tensor's "data".
class InferDomBuilder {
 public:
  using json = nlohmann::json;

  // `original` is the text as sent, `parsed` the one given to the parser
  // (with the tokens replaced; the same length).
  InferDomBuilder(json* root, std::span<const NonFiniteToken> tokens, std::string_view original,
                  std::string_view parsed)
      : root_(root), tokens_(tokens), original_(original), parsed_(parsed) {}

  bool null() { return Put(json(nullptr)) != nullptr; }
  bool boolean(bool v) { return Put(json(v)) != nullptr; }
  bool number_integer(json::number_integer_t v) { return Number(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return Number(json(v)); }
  bool number_float(json::number_float_t v, const std::string& /*text*/) { return Number(json(v)); }
  bool string(std::string& v) { return Put(json(std::move(v))) != nullptr; }
  bool binary(json::binary_t& v) { return Put(json(std::move(v))) != nullptr; }
  bool start_object(std::size_t /*elements*/) { return Open(json::object(), /*array=*/false); }
  bool start_array(std::size_t /*elements*/) { return Open(json::array(), /*array=*/true); }
  bool key(std::string& k) {
    stack_.back().key = std::move(k);
    return true;
  }
  bool end_object() {
    stack_.pop_back();
    return true;
  }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string& last_token,
                   const nlohmann::json::exception& e) {
    // position counts the characters read, the offending one included.
    error_offset_ = position > 0 ? position - 1 : 0;
    error_reason_ = ParseErrorReason(e.what());
    // The reason may quote the text last read ("last read: '0  ,x'"); quote
    // the text as sent instead of the replaced one.
    const size_t end = std::min(position, parsed_.size());
    if (!tokens_.empty() && last_token.size() <= end &&
        parsed_.substr(end - last_token.size(), last_token.size()) == last_token) {
      const std::string replaced = "last read: '" + last_token + "'";
      const size_t at = error_reason_.find(replaced);
      if (at != std::string::npos) {
        error_reason_.replace(
            at, replaced.size(),
            "last read: '" +
                std::string(original_.substr(end - last_token.size(), last_token.size())) + "'");
      }
    }
    return false;
  }

  size_t error_offset() const { return error_offset_; }
  const std::string& error_reason() const { return error_reason_; }

 private:
  // What an open container is, for placing non-finite values.
  enum class Role { kOther, kTensorList, kTensor, kData };
  struct Frame {
    json* value;
    Role role;
    std::string key;  // objects: the key of the member being read
  };

  // The role a value placed now gets if it is a container (`array`).
  Role ChildRole(bool array) const {
    if (stack_.empty()) return Role::kOther;
    const Frame& parent = stack_.back();
    switch (parent.role) {
      case Role::kOther:
        // The top-level object's "inputs" / "outputs" arrays.
        return stack_.size() == 1 && array && parent.value->is_object() &&
                       (parent.key == "inputs" || parent.key == "outputs")
                   ? Role::kTensorList
                   : Role::kOther;
      case Role::kTensorList:
        return array ? Role::kOther : Role::kTensor;
      case Role::kTensor:
        return array && parent.key == "data" ? Role::kData : Role::kOther;
      case Role::kData:
        return array ? Role::kData : Role::kOther;
    }
    return Role::kOther;
  }

  // Whether a scalar placed now is (an element of) a tensor's "data".
  bool InData() const {
    if (stack_.empty()) return false;
    const Frame& parent = stack_.back();
    return parent.role == Role::kData || (parent.role == Role::kTensor && parent.key == "data");
  }

  json* Put(json&& v) {
    if (stack_.empty()) {
      *root_ = std::move(v);
      return root_;
    }
    Frame& top = stack_.back();
    if (top.value->is_array()) {
      top.value->push_back(std::move(v));
      return &top.value->back();
    }
    json& slot = (*top.value)[top.key];
    slot = std::move(v);
    return &slot;
  }

  bool Open(json&& container, bool array) {
    const Role role = ChildRole(array);
    json* placed = Put(std::move(container));
    stack_.push_back(Frame{placed, role, {}});
    return true;
  }

  bool Number(json&& v) {
    const uint64_t ordinal = numbers_++;
    if (next_ < tokens_.size() && tokens_[next_].number_ordinal == ordinal) {
      const NonFiniteToken& t = tokens_[next_++];
      if (!InData()) {
        error_offset_ = t.offset;
        error_reason_ = std::string(t.text) + " is accepted only in a tensor's \"data\"";
        return false;
      }
      v = json(t.value);
    }
    return Put(std::move(v)) != nullptr;
  }

  json* root_;
  std::span<const NonFiniteToken> tokens_;
  std::string_view original_;
  std::string_view parsed_;
  size_t next_ = 0;       // the next token of tokens_ to meet
  uint64_t numbers_ = 0;  // number events seen
  std::vector<Frame> stack_;
  size_t error_offset_ = 0;
  std::string error_reason_ = "syntax error";
};

}  // namespace

std::string ToValidUtf8(std::string_view s) {
  if (FindInvalidUtf8(s) == std::string_view::npos) return std::string(s);
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t len = Utf8SequenceLength(s, i);
    if (len == 0) {
      out.append("\xEF\xBF\xBD");
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

void AppendJsonString(std::string* out, std::string_view s, bool lossy) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = Utf8SequenceLength(s, i);
      if (len == 0) {
        if (lossy) out->append("\xEF\xBF\xBD");
        ++i;
      } else {
        out->append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

void AppendFloat(std::string* out, float v) { AppendShortest(out, v); }
void AppendDouble(std::string* out, double v) { AppendShortest(out, v); }

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
}

void AppendUInt(std::string* out, uint64_t v) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
}

void AppendJsonValue(std::string* out, const nlohmann::json& value) {
  out->append(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

Result<nlohmann::json> ParseJson(std::string_view text) {
  const size_t deep = FindTooDeep(text);
  if (deep != std::string_view::npos) {
    return Status::InvalidArgument("malformed JSON at byte " + std::to_string(deep) +
                                   ": nested deeper than " + std::to_string(kMaxJsonDepth) +
                                   " levels");
  }
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte counts the characters read, the offending one included.
    const size_t offset = e.byte > 0 ? e.byte - 1 : 0;
    return Status::InvalidArgument("malformed JSON at byte " + std::to_string(offset) + ": " +
                                   ParseErrorReason(e.what()));
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument("malformed JSON: " + ParseErrorReason(e.what()));
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while parsing JSON");
  }
}

Result<nlohmann::json> ParseInferJson(std::string_view text) {
  const size_t deep = FindTooDeep(text);
  if (deep != std::string_view::npos) {
    return Status::InvalidArgument("malformed JSON at byte " + std::to_string(deep) +
                                   ": nested deeper than " + std::to_string(kMaxJsonDepth) +
                                   " levels");
  }
  try {
    const std::vector<NonFiniteToken> tokens = ScanNonFinite(text);
    std::string replaced;
    std::string_view input = text;
    if (!tokens.empty()) {
      replaced.assign(text);
      for (const NonFiniteToken& t : tokens) {
        replaced.replace(t.offset, t.text.size(), t.text.size(), ' ');
        replaced[t.offset] = '0';
      }
      input = replaced;
    }
    nlohmann::json root;
    InferDomBuilder builder(&root, tokens, text, input);
    if (!nlohmann::json::sax_parse(input.begin(), input.end(), &builder)) {
      return Status::InvalidArgument("malformed JSON at byte " +
                                     std::to_string(builder.error_offset()) + ": " +
                                     builder.error_reason());
    }
    return root;
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument("malformed JSON: " + ParseErrorReason(e.what()));
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("out of memory while parsing JSON");
  }
}

}  // namespace modelgrid::kserve_internal

#include "kserve/json_text.h"

#include <charconv>
#include <cmath>
#include <exception>
#include <new>
#include <string>

namespace modelgrid::kserve_internal {

namespace {

// Length of the well-formed UTF-8 sequence at s[i], or 0 when it is not one
// (Unicode 15, table 3-7).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // no overlongs
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // no overlongs
    if (b0 == 0xF4) hi = 0x8F;  // nothing past U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return len;
}

template <typename T>
void AppendShortest(std::string* out, T v) {
  if (!std::isfinite(v)) {
    out->append("null");
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

}  // namespace

size_t FindInvalidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const size_t len = Utf8SequenceLength(s, i);
    if (len == 0) return i;
    i += len;
  }
  return std::string_view::npos;
}

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

}  // namespace modelgrid::kserve_internal

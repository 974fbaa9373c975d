// SplitRanges and the byte-level alphabet, shared by the pre-tokenizers.
#include <array>
#include <unordered_map>

#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/unicode.h"

namespace modelgrid::tokenizer {

std::vector<Span> SplitRanges(size_t length, const std::vector<Span>& matches,
                              SplitBehavior behavior, bool invert) {
  // Segments covering [0, length): (range, is_delimiter).
  std::vector<std::pair<Span, bool>> segments;
  size_t at = 0;
  for (const Span& m : matches) {
    if (m.begin > at) segments.push_back({{at, m.begin}, invert});
    if (m.end > m.begin) segments.push_back({m, !invert});
    at = m.end;
  }
  if (at < length) segments.push_back({{at, length}, invert});

  std::vector<Span> out;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const auto& [s, delim] : segments) {
        if (!delim) out.push_back(s);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const auto& seg : segments) out.push_back(seg.first);
      break;
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_delim = false;
      for (const auto& [s, delim] : segments) {
        if (delim && !previous_delim && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back(s);
        }
        previous_delim = delim;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_delim = false;  // walking backwards: "previous" is the one after
      std::vector<Span> rev;
      for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
        const auto& [s, delim] = *it;
        if (delim && !previous_delim && !rev.empty()) {
          rev.back().begin = s.begin;
        } else {
          rev.push_back(s);
        }
        previous_delim = delim;
      }
      out.assign(rev.rbegin(), rev.rend());
      break;
    }
    case SplitBehavior::kContiguous: {
      bool previous_delim = false;
      for (const auto& [s, delim] : segments) {
        if (delim && previous_delim && !out.empty()) {
          out.back().end = s.end;
        } else {
          out.push_back(s);
        }
        previous_delim = delim;
      }
      break;
    }
  }
  std::vector<Span> nonempty;
  for (const Span& s : out) {
    if (s.end > s.begin) nonempty.push_back(s);
  }
  return nonempty;
}

namespace {

struct ByteLevelTables {
  std::array<std::string, 256> chars;
  std::unordered_map<char32_t, int> bytes;
  ByteLevelTables() {
    // Printable Latin-1 bytes stand for themselves; the others, in byte
    // order, for U+0100 onwards (GPT-2's bytes_to_unicode).
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      char32_t c = printable ? static_cast<char32_t>(b) : next++;
      AppendUtf8(&chars[b], c);
      bytes[c] = b;
    }
  }
};

const ByteLevelTables& Tables() {
  static const ByteLevelTables tables;
  return tables;
}

}  // namespace

const std::string& ByteLevelChar(unsigned char byte) { return Tables().chars[byte]; }

int ByteLevelByte(char32_t c) {
  const auto& bytes = Tables().bytes;
  auto it = bytes.find(c);
  return it == bytes.end() ? -1 : it->second;
}

}  // namespace modelgrid::tokenizer

// The decoder types and MakeDecoder, with the JS reference's rules (the
// Metaspace decoder keeps a leading space under prepend_scheme "never", as the
// Rust crate does; the JS one always drops it).
#include "tokenizer/decoder.h"
#include "tokenizer/normalizers_internal.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/unicode.h"

namespace modelgrid::tokenizer {

std::string CleanUpTokenization(std::string_view text) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  std::string out(text);
  for (const auto& [from, to] : kRules) out = ReplaceAll(out, from, to);
  return out;
}

namespace {

// Runs of byte-level tokens become their bytes, decoded as UTF-8 (invalid
// sequences -> U+FFFD); added tokens stay as they are. A character outside
// the byte-level alphabet keeps its own UTF-8 bytes.
class ByteLevelDecoder : public Decoder {
 public:
  explicit ByteLevelDecoder(const DecoderContext& c) : added_(c.added_tokens) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    bool pending = false;
    auto flush = [&] {
      if (pending) out.push_back(DecodeUtf8Lossy(bytes));
      bytes.clear();
      pending = false;
    };
    for (const std::string& t : *tokens) {
      if (added_ != nullptr && added_->count(t)) {
        flush();
        out.push_back(t);
        continue;
      }
      pending = true;
      for (size_t i = 0; i < t.size();) {
        size_t at = i;
        int b = ByteLevelByte(NextCodePoint(t, &i));
        if (b >= 0) {
          bytes.push_back(static_cast<char>(b));
        } else {
          bytes.append(t, at, i - at);
        }
      }
    }
    flush();
    *tokens = std::move(out);
    return Status::Ok();
  }

 private:
  const std::unordered_set<std::string>* added_;
};

class WordPieceDecoder : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup)
      : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      std::string& t = (*tokens)[i];
      if (i != 0) {
        if (!prefix_.empty() && t.compare(0, prefix_.size(), prefix_) == 0) {
          t.erase(0, prefix_.size());
        } else {
          t = " " + t;  // (not insert: GCC 12 warns falsely, -Wrestrict)
        }
      }
      if (cleanup_) t = CleanUpTokenization(t);
    }
    return Status::Ok();
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      std::string t = ReplaceAll((*tokens)[i], replacement_, " ");
      if (i == 0 && strip_first_ && !t.empty() && t[0] == ' ') t.erase(0, 1);
      (*tokens)[i] = std::move(t);
    }
    return Status::Ok();
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

// Runs of <0xXX> tokens become their bytes decoded as UTF-8 (JS TextDecoder:
// invalid sequences -> U+FFFD per maximal subpart).
class ByteFallbackDecoder : public Decoder {
 public:
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    for (const std::string& t : *tokens) {
      int b = ParseByteToken(t);
      if (b >= 0) {
        bytes.push_back(static_cast<char>(b));
        continue;
      }
      if (!bytes.empty()) out.push_back(DecodeUtf8Lossy(bytes));
      bytes.clear();
      out.push_back(t);
    }
    if (!bytes.empty()) out.push_back(DecodeUtf8Lossy(bytes));
    *tokens = std::move(out);
    return Status::Ok();
  }

 private:
  static int Hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }
  static int ParseByteToken(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return -1;
    int hi = Hex(t[3]), lo = Hex(t[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }
};

class FuseDecoder : public Decoder {
 public:
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    std::string joined;
    for (const std::string& t : *tokens) joined += t;
    tokens->assign(1, std::move(joined));
    return Status::Ok();
  }
};

// Removes up to `start` leading and `stop` trailing `content` characters of
// each token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) {
      std::vector<size_t> starts;
      std::vector<char32_t> chars;
      for (size_t i = 0; i < t.size();) {
        starts.push_back(i);
        chars.push_back(NextCodePoint(t, &i));
      }
      starts.push_back(t.size());
      size_t begin = 0, end = chars.size();
      while (begin < start_ && begin < end && chars[begin] == content_) ++begin;
      size_t removed = 0;
      while (removed < stop_ && end > begin && chars[end - 1] == content_) {
        --end;
        ++removed;
      }
      t = t.substr(starts[begin], starts[end] - starts[begin]);
    }
    return Status::Ok();
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (std::string& t : *tokens) {
      std::vector<Span> matches;
      MG_RETURN_IF_ERROR(pattern_.FindAll(t, &matches));
      if (matches.empty()) continue;
      std::string out;
      size_t at = 0;
      for (const Span& m : matches) {
        out.append(t, at, m.begin - at);
        out += content_;
        at = m.end;
      }
      out.append(t, at, std::string::npos);
      t = std::move(out);
    }
    return Status::Ok();
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// BPEDecoder: the end-of-word suffix becomes a space (nothing on the last token).
class BpeSuffixDecoder : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (size_t i = 0; i < tokens->size(); ++i) {
      if (suffix_.empty()) break;
      (*tokens)[i] = ReplaceAll((*tokens)[i], suffix_, i + 1 == tokens->size() ? "" : " ");
    }
    return Status::Ok();
  }

 private:
  std::string suffix_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts)
      : parts_(std::move(parts)) {}
  Status DecodeChain(std::vector<std::string>* tokens) const override {
    for (const auto& p : parts_) MG_RETURN_IF_ERROR(p->DecodeChain(tokens));
    return Status::Ok();
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

Result<std::unique_ptr<Decoder>> MakeMetaspaceDecoder(const JsonNode& node) {
  MG_ASSIGN_OR_RETURN(std::string replacement, node.StringOr("replacement", "\u2581"));
  MG_ASSIGN_OR_RETURN(auto scheme, node.OptionalString("prepend_scheme"));
  bool strip_first = true;
  if (scheme) {
    strip_first = *scheme != "never";
  } else {
    MG_ASSIGN_OR_RETURN(strip_first, node.BoolOr("add_prefix_space", true));
  }
  return std::unique_ptr<Decoder>(new MetaspaceDecoder(std::move(replacement), strip_first));
}

Result<std::unique_ptr<Decoder>> MakeStripDecoder(const JsonNode& node) {
  MG_ASSIGN_OR_RETURN(std::string content, node.RequiredString("content"));
  if (CountCodePoints(content) != 1) return node.At("content").Error("expected one character");
  size_t i = 0;
  char32_t c = NextCodePoint(content, &i);
  MG_ASSIGN_OR_RETURN(int64_t start, node.IntOr("start", 0));
  MG_ASSIGN_OR_RETURN(int64_t stop, node.IntOr("stop", 0));
  if (start < 0 || stop < 0) return node.Error("start and stop must not be negative");
  return std::unique_ptr<Decoder>(
      new StripDecoder(c, static_cast<size_t>(start), static_cast<size_t>(stop)));
}

}  // namespace

Result<std::unique_ptr<Decoder>> MakeDecoder(const JsonNode& node, const DecoderContext& context) {
  using Ptr = std::unique_ptr<Decoder>;
  if (node.IsNull()) return Ptr();
  MG_RETURN_IF_ERROR(node.ExpectObject());
  MG_ASSIGN_OR_RETURN(std::string type, node.Type());
  if (type == "ByteLevel") return Ptr(new ByteLevelDecoder(context));
  if (type == "WordPiece") {
    MG_ASSIGN_OR_RETURN(std::string prefix, node.StringOr("prefix", "##"));
    MG_ASSIGN_OR_RETURN(bool cleanup, node.BoolOr("cleanup", true));
    return Ptr(new WordPieceDecoder(std::move(prefix), cleanup));
  }
  if (type == "Metaspace") return MakeMetaspaceDecoder(node);
  if (type == "ByteFallback") return Ptr(new ByteFallbackDecoder());
  if (type == "Fuse") return Ptr(new FuseDecoder());
  if (type == "Strip") return MakeStripDecoder(node);
  if (type == "Replace") {
    MG_ASSIGN_OR_RETURN(Pattern pattern, ReadPattern(node.At("pattern")));
    MG_ASSIGN_OR_RETURN(std::string content, node.RequiredString("content"));
    return Ptr(new ReplaceDecoder(std::move(pattern), std::move(content)));
  }
  if (type == "BPEDecoder") {
    MG_ASSIGN_OR_RETURN(std::string suffix, node.StringOr("suffix", "</w>"));
    return Ptr(new BpeSuffixDecoder(std::move(suffix)));
  }
  if (type == "Sequence") {
    JsonNode list = node.At("decoders");
    MG_RETURN_IF_ERROR(list.ExpectArray());
    std::vector<Ptr> parts;
    for (size_t i = 0; i < list.value().size(); ++i) {
      MG_ASSIGN_OR_RETURN(Ptr part, MakeDecoder(list.At(i), context));
      if (part) parts.push_back(std::move(part));
    }
    return Ptr(new SequenceDecoder(std::move(parts)));
  }
  return node.Unsupported("decoder", type);
}

}  // namespace modelgrid::tokenizer

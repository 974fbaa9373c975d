// The pre-tokenizer types and MakePreTokenizer. Rules of Hugging Face's JS
// implementation where it has them; Split behaviors other than Isolated,
// Metaspace's split, Punctuation's behavior, Digits and Whitespace follow the
// Rust crate (src/tokenizer/README.md lists the differences).
#include <functional>

#include "tokenizer/normalizers_internal.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

namespace modelgrid::tokenizer {

namespace {

using PieceSplitter =
    std::function<Status(const NormalizedString&, std::vector<NormalizedString>*)>;

// Applies `split` to every non-empty piece.
Status SplitEach(std::vector<NormalizedString>* pieces, const PieceSplitter& split) {
  std::vector<NormalizedString> out;
  out.reserve(pieces->size());
  for (const NormalizedString& p : *pieces) {
    if (p.empty()) continue;
    MG_RETURN_IF_ERROR(split(p, &out));
  }
  for (auto it = out.begin(); it != out.end();) it = it->empty() ? out.erase(it) : it + 1;
  *pieces = std::move(out);
  return Status::Ok();
}

void AppendRanges(const NormalizedString& p, const std::vector<Span>& ranges,
                  std::vector<NormalizedString>* out) {
  for (const Span& r : ranges) out->push_back(p.Slice(r.begin, r.end));
}

// One match per character satisfying `pred` (Rust's char-predicate split).
std::vector<Span> CharMatches(const std::string& text, const std::function<bool(char32_t)>& pred) {
  std::vector<Span> matches;
  for (size_t i = 0; i < text.size();) {
    size_t at = i;
    if (pred(NextCodePoint(text, &i))) matches.push_back({at, i});
  }
  return matches;
}

// GPT-2's pattern as the JS reference runs it: JavaScript's \s (with U+FEFF,
// without U+0085) spelled out for PCRE2.
constexpr const char* kJsSpace =
    "\\t\\n\\x{0B}\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}"
    "\\x{3000}\\x{FEFF}";

std::string Gpt2Pattern() {
  std::string s = kJsSpace;
  return "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" + s + "\\p{L}\\p{N}]+|[" + s +
         "]+(?![^" + s + "])|[" + s + "]+";
}

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, Regex regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex), regex_(std::move(regex)) {}

  Status PreTokenize(std::vector<NormalizedString>* pieces) const override {
    return SplitEach(pieces, [&](const NormalizedString& p, std::vector<NormalizedString>* out) {
      NormalizedString text;
      if (add_prefix_space_ && p.text()[0] != ' ') {
        Span first = p.SpanAt(0);
        text.Append(" ", {first.begin, first.begin});
      }
      text.AppendSlice(p, 0, p.size());
      std::vector<Span> matches;
      if (use_regex_) {
        MG_RETURN_IF_ERROR(regex_.FindAll(text.text(), &matches));
      } else {
        matches.push_back({0, text.size()});
      }
      for (const Span& m : matches) {
        NormalizedString mapped;
        for (size_t i = m.begin; i < m.end; ++i) {
          mapped.Append(ByteLevelChar(static_cast<unsigned char>(text.text()[i])), text.SpanAt(i));
        }
        out->push_back(std::move(mapped));
      }
      return Status::Ok();
    });
  }

 private:
  bool add_prefix_space_, use_regex_;
  Regex regex_;
};

// BERT's basic split: whitespace removed, each punctuation character alone.
class BertPreTokenizer : public PreTokenizer {
 public:
  Status PreTokenize(std::vector<NormalizedString>* pieces) const override {
    return SplitEach(pieces, [](const NormalizedString& p, std::vector<NormalizedString>* out) {
      const std::string& t = p.text();
      size_t word = std::string::npos;
      for (size_t i = 0; i < t.size();) {
        size_t at = i;
        char32_t c = NextCodePoint(t, &i);
        bool space = IsJsWhitespace(c), punct = !space && IsBertPunctuation(c);
        if ((space || punct) && word != std::string::npos) {
          out->push_back(p.Slice(word, at));
          word = std::string::npos;
        }
        if (punct) out->push_back(p.Slice(at, i));
        if (!space && !punct && word == std::string::npos) word = at;
      }
      if (word != std::string::npos) out->push_back(p.Slice(word, t.size()));
      return Status::Ok();
    });
  }
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  Status PreTokenize(std::vector<NormalizedString>* pieces) const override {
    return SplitEach(pieces, [&](const NormalizedString& p, std::vector<NormalizedString>* out) {
      std::vector<Span> matches;
      MG_RETURN_IF_ERROR(pattern_.FindAll(p.text(), &matches));
      AppendRanges(p, SplitRanges(p.size(), matches, behavior_, invert_), out);
      return Status::Ok();
    });
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

enum class PrependScheme { kFirst, kAlways, kNever };

// Spaces become `replacement`; a replacement is prepended per the scheme
// ("first": only to the piece that starts the input); with `split`, pieces
// break before each replacement.
class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  Status PreTokenize(std::vector<NormalizedString>* pieces) const override {
    return SplitEach(pieces, [&](const NormalizedString& p, std::vector<NormalizedString>* out) {
      NormalizedString r = MapChars(p, [&](char32_t c, size_t, std::string* o) {
        if (c == ' ') {
          *o = replacement_;
        } else {
          AppendUtf8(o, c);
        }
      });
      bool starts = r.text().compare(0, replacement_.size(), replacement_) == 0;
      bool prepend = scheme_ == PrependScheme::kAlways ||
                     (scheme_ == PrependScheme::kFirst && p.SpanAt(0).begin == 0);
      if (!starts && prepend) {
        NormalizedString withPrefix;
        Span first = r.SpanAt(0);
        withPrefix.Append(replacement_, {first.begin, first.begin});
        withPrefix.AppendSlice(r, 0, r.size());
        r = std::move(withPrefix);
      }
      if (!split_) {
        out->push_back(std::move(r));
        return Status::Ok();
      }
      std::vector<Span> matches;
      MG_RETURN_IF_ERROR(Pattern::Literal(replacement_).FindAll(r.text(), &matches));
      AppendRanges(r, SplitRanges(r.size(), matches, SplitBehavior::kMergedWithNext, false), out);
      return Status::Ok();
    });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

// Splits on matches of a character predicate with a fixed behavior
// (WhitespaceSplit, Punctuation, Digits).
class CharSplitPreTokenizer : public PreTokenizer {
 public:
  CharSplitPreTokenizer(std::function<bool(char32_t)> pred, SplitBehavior behavior)
      : pred_(std::move(pred)), behavior_(behavior) {}
  Status PreTokenize(std::vector<NormalizedString>* pieces) const override {
    return SplitEach(pieces, [&](const NormalizedString& p, std::vector<NormalizedString>* out) {
      AppendRanges(p, SplitRanges(p.size(), CharMatches(p.text(), pred_), behavior_, false), out);
      return Status::Ok();
    });
  }

 private:
  std::function<bool(char32_t)> pred_;
  SplitBehavior behavior_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  Status PreTokenize(std::vector<NormalizedString>* pieces) const override {
    for (const auto& p : parts_) MG_RETURN_IF_ERROR(p->PreTokenize(pieces));
    return Status::Ok();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

Result<SplitBehavior> ReadBehavior(const JsonNode& node, const char* fallback) {
  MG_ASSIGN_OR_RETURN(std::string b, node.StringOr("behavior", fallback));
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return node.At("behavior").Error("unknown split behavior \"" + b + "\"");
}

Result<std::unique_ptr<PreTokenizer>> MakeMetaspace(const JsonNode& node) {
  MG_ASSIGN_OR_RETURN(std::string replacement, node.StringOr("replacement", "\u2581"));
  if (CountCodePoints(replacement) != 1) {
    return node.At("replacement").Error("expected one character");
  }
  PrependScheme scheme = PrependScheme::kAlways;
  MG_ASSIGN_OR_RETURN(auto s, node.OptionalString("prepend_scheme"));
  if (s) {
    if (*s == "first")
      scheme = PrependScheme::kFirst;
    else if (*s == "always")
      scheme = PrependScheme::kAlways;
    else if (*s == "never")
      scheme = PrependScheme::kNever;
    else
      return node.At("prepend_scheme").Error("unknown prepend_scheme \"" + *s + "\"");
  } else {
    // Files written before prepend_scheme existed say add_prefix_space.
    MG_ASSIGN_OR_RETURN(bool add, node.BoolOr("add_prefix_space", true));
    scheme = add ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  MG_ASSIGN_OR_RETURN(bool split, node.BoolOr("split", true));
  return std::unique_ptr<PreTokenizer>(new MetaspacePreTokenizer(replacement, scheme, split));
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> MakePreTokenizer(const JsonNode& node) {
  using Ptr = std::unique_ptr<PreTokenizer>;
  if (node.IsNull()) return Ptr();
  MG_RETURN_IF_ERROR(node.ExpectObject());
  MG_ASSIGN_OR_RETURN(std::string type, node.Type());
  if (type == "BertPreTokenizer") return Ptr(new BertPreTokenizer());
  if (type == "ByteLevel") {
    MG_ASSIGN_OR_RETURN(bool prefix, node.BoolOr("add_prefix_space", false));
    MG_ASSIGN_OR_RETURN(bool use_regex, node.BoolOr("use_regex", true));
    MG_RETURN_IF_ERROR(node.BoolOr("trim_offsets", true).status());
    static const Result<Regex> kGpt2 = Regex::Compile(Gpt2Pattern());
    if (!kGpt2.ok()) return kGpt2.status();
    return Ptr(new ByteLevelPreTokenizer(prefix, use_regex, kGpt2.value()));
  }
  if (type == "Split") {
    MG_ASSIGN_OR_RETURN(Pattern pattern, ReadPattern(node.At("pattern")));
    MG_ASSIGN_OR_RETURN(SplitBehavior behavior, ReadBehavior(node, "Isolated"));
    MG_ASSIGN_OR_RETURN(bool invert, node.BoolOr("invert", false));
    return Ptr(new SplitPreTokenizer(std::move(pattern), behavior, invert));
  }
  if (type == "Metaspace") return MakeMetaspace(node);
  if (type == "Whitespace") {
    static const Result<Regex> kWords = Regex::Compile("\\w+|[^\\w\\s]+");
    if (!kWords.ok()) return kWords.status();
    return Ptr(
        new SplitPreTokenizer(Pattern::FromRegex(kWords.value()), SplitBehavior::kRemoved, true));
  }
  if (type == "WhitespaceSplit") {
    return Ptr(new CharSplitPreTokenizer(IsJsWhitespace, SplitBehavior::kRemoved));
  }
  if (type == "Punctuation") {
    MG_ASSIGN_OR_RETURN(SplitBehavior behavior, ReadBehavior(node, "Isolated"));
    return Ptr(new CharSplitPreTokenizer(IsBertPunctuation, behavior));
  }
  if (type == "Digits") {
    MG_ASSIGN_OR_RETURN(bool individual, node.BoolOr("individual_digits", false));
    return Ptr(new CharSplitPreTokenizer(
        IsNumeric, individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous));
  }
  if (type == "Sequence") {
    JsonNode list = node.At("pretokenizers");
    MG_RETURN_IF_ERROR(list.ExpectArray());
    std::vector<Ptr> parts;
    for (size_t i = 0; i < list.value().size(); ++i) {
      MG_ASSIGN_OR_RETURN(Ptr part, MakePreTokenizer(list.At(i)));
      if (part) parts.push_back(std::move(part));
    }
    return Ptr(new SequencePreTokenizer(std::move(parts)));
  }
  return node.Unsupported("pre-tokenizer", type);
}

}  // namespace modelgrid::tokenizer

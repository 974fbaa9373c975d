#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/unicode.h"

namespace modelgrid::tokenizer {

void AppendSpecial(const SpecialPiece& p, Encoding* e) {
  e->ids.push_back(p.id);
  e->tokens.push_back(p.token);
  e->type_ids.push_back(p.type_id);
  e->attention_mask.push_back(1);
  e->special_tokens_mask.push_back(1);
  e->offsets.push_back({0, 0});
}

namespace {

void AppendSequence(const Encoding& from, int64_t type_id, Encoding* e) {
  for (size_t i = 0; i < from.size(); ++i) {
    e->ids.push_back(from.ids[i]);
    e->tokens.push_back(from.tokens[i]);
    e->type_ids.push_back(type_id);
    e->attention_mask.push_back(from.attention_mask[i]);
    e->special_tokens_mask.push_back(from.special_tokens_mask[i]);
    e->offsets.push_back(from.offsets[i]);
  }
}

// One item of a template: a special token, or the sequence (id "A").
struct TemplateItem {
  bool is_sequence = false;
  int64_t type_id = 0;
  std::vector<SpecialPiece> pieces;  // a special token may stand for several ids
};

class TemplateProcessing : public PostProcessor {
 public:
  explicit TemplateProcessing(std::vector<TemplateItem> single) : single_(std::move(single)) {}
  void Process(std::string_view, bool add_special_tokens, Encoding* e) const override {
    Encoding out;
    for (const TemplateItem& item : single_) {
      if (item.is_sequence) {
        AppendSequence(*e, item.type_id, &out);
      } else if (add_special_tokens) {
        for (const SpecialPiece& p : item.pieces) AppendSpecial(p, &out);
      }
    }
    *e = std::move(out);
  }
  size_t AddedTokens() const override {
    size_t n = 0;
    for (const TemplateItem& item : single_) n += item.pieces.size();
    return n;
  }

 private:
  std::vector<TemplateItem> single_;
};

// Hugging Face's ByteLevel offset trimming: leading/trailing spaces (U+0120
// 'Ġ' or whitespace) of a token leave its offsets, except the one prefix
// space add_prefix_space put before the first word.
void TrimByteLevelOffsets(bool add_prefix_space, Encoding* e) {
  static const char32_t kSpace = 0x120;
  for (size_t i = 0; i < e->size(); ++i) {
    if (e->special_tokens_mask[i]) continue;
    const std::string& t = e->tokens[i];
    std::vector<char32_t> chars;
    for (size_t k = 0; k < t.size();) chars.push_back(NextCodePoint(t, &k));
    auto is_space = [](char32_t c) { return c == kSpace || IsUnicodeWhitespace(c); };
    size_t leading = 0, trailing = 0;
    while (leading < chars.size() && is_space(chars[leading])) ++leading;
    while (trailing < chars.size() && is_space(chars[chars.size() - 1 - trailing])) ++trailing;
    auto& [begin, end] = e->offsets[i];
    if (leading > 0) {
      bool first = i == 0 || begin == 0;
      if (first && add_prefix_space && leading == 1) leading = 0;
      begin = std::min(begin + leading, end);
    }
    if (trailing > 0 && end >= trailing) end = std::max(end - trailing, begin);
  }
}

// [CLS] $A [SEP] (BertProcessing) or <s> $A </s> with offset trimming
// (RobertaProcessing).
class ClsSepProcessing : public PostProcessor {
 public:
  ClsSepProcessing(SpecialPiece cls, SpecialPiece sep, bool trim_offsets, bool add_prefix_space)
      : cls_(std::move(cls)),
        sep_(std::move(sep)),
        trim_offsets_(trim_offsets),
        add_prefix_space_(add_prefix_space) {}
  void Process(std::string_view, bool add_special_tokens, Encoding* e) const override {
    if (trim_offsets_) TrimByteLevelOffsets(add_prefix_space_, e);
    if (!add_special_tokens) return;
    Encoding out;
    AppendSpecial(cls_, &out);
    AppendSequence(*e, 0, &out);
    AppendSpecial(sep_, &out);
    *e = std::move(out);
  }
  size_t AddedTokens() const override { return 2; }

 private:
  SpecialPiece cls_, sep_;
  bool trim_offsets_, add_prefix_space_;
};

class ByteLevelProcessing : public PostProcessor {
 public:
  ByteLevelProcessing(bool trim_offsets, bool add_prefix_space)
      : trim_offsets_(trim_offsets), add_prefix_space_(add_prefix_space) {}
  void Process(std::string_view, bool, Encoding* e) const override {
    if (trim_offsets_) TrimByteLevelOffsets(add_prefix_space_, e);
  }
  size_t AddedTokens() const override { return 0; }

 private:
  bool trim_offsets_, add_prefix_space_;
};

class SequenceProcessing : public PostProcessor {
 public:
  explicit SequenceProcessing(std::vector<std::unique_ptr<PostProcessor>> parts)
      : parts_(std::move(parts)) {}
  void Process(std::string_view input, bool add_special_tokens, Encoding* e) const override {
    for (const auto& p : parts_) p->Process(input, add_special_tokens, e);
  }
  size_t AddedTokens() const override {
    size_t n = 0;
    for (const auto& p : parts_) n += p->AddedTokens();
    return n;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

// ["[CLS]", 101]
Result<SpecialPiece> ReadTokenIdPair(const JsonNode& node) {
  const auto& v = node.value();
  if (!v.is_array() || v.size() != 2 || !v[0].is_string() || !v[1].is_number_integer()) {
    return node.Error("expected a [token, id] pair");
  }
  return SpecialPiece{v[0].get<std::string>(), v[1].get<int64_t>(), 0};
}

Result<std::unique_ptr<PostProcessor>> MakeTemplate(const JsonNode& node) {
  JsonNode specials = node.At("special_tokens");
  if (!specials.IsNull()) MG_RETURN_IF_ERROR(specials.ExpectObject());
  JsonNode single = node.At("single");
  MG_RETURN_IF_ERROR(single.ExpectArray());
  std::vector<TemplateItem> items;
  for (size_t i = 0; i < single.value().size(); ++i) {
    JsonNode item = single.At(i);
    MG_RETURN_IF_ERROR(item.ExpectObject());
    TemplateItem t;
    if (item.Has("Sequence")) {
      JsonNode seq = item.At("Sequence");
      MG_ASSIGN_OR_RETURN(std::string id, seq.RequiredString("id"));
      MG_ASSIGN_OR_RETURN(t.type_id, seq.IntOr("type_id", 0));
      if (id != "A") continue;  // a single-sequence template has only A
      t.is_sequence = true;
    } else if (item.Has("SpecialToken")) {
      JsonNode sp = item.At("SpecialToken");
      MG_ASSIGN_OR_RETURN(std::string id, sp.RequiredString("id"));
      MG_ASSIGN_OR_RETURN(t.type_id, sp.IntOr("type_id", 0));
      JsonNode def = specials.At(id);
      if (def.IsNull()) return sp.Error("special token \"" + id + "\" is not in special_tokens");
      JsonNode ids = def.At("ids"), tokens = def.At("tokens");
      MG_RETURN_IF_ERROR(ids.ExpectArray());
      MG_RETURN_IF_ERROR(tokens.ExpectArray());
      if (ids.value().size() != tokens.value().size()) {
        return def.Error("ids and tokens differ in length");
      }
      for (size_t k = 0; k < ids.value().size(); ++k) {
        MG_ASSIGN_OR_RETURN(int64_t tid, ids.At(k).AsInt());
        MG_ASSIGN_OR_RETURN(std::string tok, tokens.At(k).AsString());
        t.pieces.push_back({tok, tid, t.type_id});
      }
    } else {
      return item.Error("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    }
    items.push_back(std::move(t));
  }
  return std::unique_ptr<PostProcessor>(new TemplateProcessing(std::move(items)));
}

}  // namespace

std::unique_ptr<PostProcessor> MakeSimpleTemplate(std::vector<SpecialPiece> before,
                                                  std::vector<SpecialPiece> after) {
  std::vector<TemplateItem> items;
  for (auto& p : before) items.push_back({false, p.type_id, {p}});
  items.push_back({true, 0, {}});
  for (auto& p : after) items.push_back({false, p.type_id, {p}});
  return std::unique_ptr<PostProcessor>(new TemplateProcessing(std::move(items)));
}

Result<std::unique_ptr<PostProcessor>> MakePostProcessor(const JsonNode& node) {
  using Ptr = std::unique_ptr<PostProcessor>;
  if (node.IsNull()) return Ptr();
  MG_RETURN_IF_ERROR(node.ExpectObject());
  MG_ASSIGN_OR_RETURN(std::string type, node.Type());
  if (type == "TemplateProcessing") return MakeTemplate(node);
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    MG_ASSIGN_OR_RETURN(SpecialPiece cls, ReadTokenIdPair(node.At("cls")));
    MG_ASSIGN_OR_RETURN(SpecialPiece sep, ReadTokenIdPair(node.At("sep")));
    bool roberta = type == "RobertaProcessing";
    MG_ASSIGN_OR_RETURN(bool trim, node.BoolOr("trim_offsets", true));
    MG_ASSIGN_OR_RETURN(bool prefix, node.BoolOr("add_prefix_space", true));
    return Ptr(new ClsSepProcessing(std::move(cls), std::move(sep), roberta && trim, prefix));
  }
  if (type == "ByteLevel") {
    MG_ASSIGN_OR_RETURN(bool trim, node.BoolOr("trim_offsets", true));
    MG_ASSIGN_OR_RETURN(bool prefix, node.BoolOr("add_prefix_space", true));
    return Ptr(new ByteLevelProcessing(trim, prefix));
  }
  if (type == "Sequence") {
    JsonNode list = node.At("processors");
    MG_RETURN_IF_ERROR(list.ExpectArray());
    std::vector<Ptr> parts;
    for (size_t i = 0; i < list.value().size(); ++i) {
      MG_ASSIGN_OR_RETURN(Ptr part, MakePostProcessor(list.At(i)));
      if (part) parts.push_back(std::move(part));
    }
    return Ptr(new SequenceProcessing(std::move(parts)));
  }
  return node.Unsupported("post-processor", type);
}

}  // namespace modelgrid::tokenizer

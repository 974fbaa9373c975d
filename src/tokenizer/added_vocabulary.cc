#include "tokenizer/added_vocabulary.h"

#include <algorithm>

#include "modelgrid/utf8.h"
#include "tokenizer/unicode.h"

namespace modelgrid::tokenizer {

Result<AddedVocabulary> AddedVocabulary::Create(const JsonNode& list,
                                                const Normalizer* normalizer) {
  AddedVocabulary v;
  if (list.IsNull()) return v;
  MG_RETURN_IF_ERROR(list.ExpectArray());
  for (size_t i = 0; i < list.value().size(); ++i) {
    JsonNode n = list.At(i);
    MG_RETURN_IF_ERROR(n.ExpectObject());
    AddedToken t;
    MG_ASSIGN_OR_RETURN(t.id, n.At("id").AsInt());
    if (t.id < 0) return n.At("id").Error("must not be negative");
    MG_ASSIGN_OR_RETURN(t.content, n.RequiredString("content"));
    if (t.content.empty()) return n.At("content").Error("must not be empty");
    if (FindInvalidUtf8(t.content) != std::string::npos) {
      return n.At("content").Error("is not valid UTF-8");
    }
    MG_ASSIGN_OR_RETURN(t.single_word, n.BoolOr("single_word", false));
    MG_ASSIGN_OR_RETURN(t.lstrip, n.BoolOr("lstrip", false));
    MG_ASSIGN_OR_RETURN(t.rstrip, n.BoolOr("rstrip", false));
    MG_ASSIGN_OR_RETURN(t.special, n.BoolOr("special", false));
    MG_ASSIGN_OR_RETURN(t.normalized, n.BoolOr("normalized", !t.special));
    t.match_content = t.content;
    bool normalized_pass = t.normalized && normalizer != nullptr;
    if (normalized_pass) {
      NormalizedString s(t.content, 0);
      MG_RETURN_IF_ERROR(normalizer->Normalize(&s));
      t.match_content = s.text();
    }
    v.tokens_.push_back(std::move(t));
    if (normalized_pass && v.tokens_.back().match_content.empty()) continue;
    size_t index = v.tokens_.size() - 1;
    const std::string& key = v.tokens_.back().match_content;
    v.by_first_byte_[normalized_pass][static_cast<unsigned char>(key[0])].push_back(index);
  }
  for (size_t i = 0; i < v.tokens_.size(); ++i) {
    v.by_content_.emplace(v.tokens_[i].content, i);
    v.by_content_.emplace(v.tokens_[i].match_content, i);
  }
  for (auto& pass : v.by_first_byte_) {
    for (auto& [byte, indexes] : pass) {
      std::stable_sort(indexes.begin(), indexes.end(), [&](size_t a, size_t b) {
        return v.tokens_[a].match_content.size() > v.tokens_[b].match_content.size();
      });
    }
  }
  return v;
}

const AddedToken* AddedVocabulary::Find(std::string_view text) const {
  auto it = by_content_.find(std::string(text));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

namespace {

// Whether the character ending at byte `end` (exclusive) / starting at byte
// `begin` of `text` is a word character (for single_word).
bool WordCharBefore(std::string_view text, size_t end) {
  if (end == 0) return false;
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  char32_t c = NextCodePoint(text, &start);
  return IsWordChar(c) || c == '_';
}

bool WordCharAt(std::string_view text, size_t begin) {
  if (begin >= text.size()) return false;
  char32_t c = NextCodePoint(text, &begin);
  return IsWordChar(c) || c == '_';
}


}  // namespace

std::vector<Section> AddedVocabulary::Split(std::string_view text, bool normalized_pass) const {
  const auto& index = by_first_byte_[normalized_pass];
  std::vector<Section> sections;
  size_t start = 0;
  for (size_t i = 0; i < text.size() && !index.empty();) {
    auto it = index.find(static_cast<unsigned char>(text[i]));
    const AddedToken* match = nullptr;
    if (it != index.end()) {
      for (size_t k : it->second) {
        const AddedToken& t = tokens_[k];
        const std::string& c = t.match_content;
        if (text.compare(i, c.size(), c) != 0) continue;
        if (t.single_word && (WordCharBefore(text, i) || WordCharAt(text, i + c.size()))) continue;
        match = &t;
        break;
      }
    }
    if (match == nullptr) {
      ++i;
      continue;
    }
    if (i > start) sections.push_back({start, i, nullptr});
    sections.push_back({i, i + match->match_content.size(), match});
    i += match->match_content.size();
    start = i;
  }
  if (start < text.size()) sections.push_back({start, text.size(), nullptr});
  // lstrip / rstrip trim the neighbouring text sections (JS trimEnd / trimStart).
  for (size_t k = 0; k < sections.size(); ++k) {
    const AddedToken* t = sections[k].token;
    if (t == nullptr) continue;
    if (t->lstrip && k > 0 && sections[k - 1].token == nullptr) {
      Section& prev = sections[k - 1];
      prev.end = TrimJsWhitespaceEnd(text, prev.begin, prev.end);
    }
    if (t->rstrip && k + 1 < sections.size() && sections[k + 1].token == nullptr) {
      Section& next = sections[k + 1];
      next.begin = TrimJsWhitespaceStart(text, next.begin, next.end);
    }
  }
  std::vector<Section> out;
  for (const Section& s : sections) {
    if (s.end > s.begin) out.push_back(s);
  }
  return out;
}

}  // namespace modelgrid::tokenizer

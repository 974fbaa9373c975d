// Encoding: added tokens, normalizer, pre-tokenizer, model, truncation,
// post-processor, padding (Hugging Face's pipeline, with the JS reference's
// order of splitting: raw-text added tokens, then normalized ones).
#include <cstdio>

#include "modelgrid/utf8.h"
#include "tokenizer/tokenizer_impl.h"

namespace modelgrid::tokenizer {

namespace {

void AppendToken(const Token& t, Encoding* e) {
  e->ids.push_back(t.id);
  e->tokens.push_back(t.value);
  e->type_ids.push_back(0);
  e->attention_mask.push_back(1);
  e->special_tokens_mask.push_back(0);
  e->offsets.push_back({t.offsets.begin, t.offsets.end});
}

// Keeps `keep` tokens of `e`, dropping from the end or the start.
void Truncate(size_t keep, Direction direction, Encoding* e) {
  if (e->size() <= keep) return;
  auto cut = [&](auto& v) {
    if (direction == Direction::kRight) {
      v.resize(keep);
    } else {
      v.erase(v.begin(), v.end() - static_cast<std::ptrdiff_t>(keep));
    }
  };
  cut(e->ids);
  cut(e->tokens);
  cut(e->type_ids);
  cut(e->attention_mask);
  cut(e->special_tokens_mask);
  cut(e->offsets);
}

size_t PaddedLength(const Padding& p, size_t length) {
  if (p.pad_to_multiple_of && *p.pad_to_multiple_of > 0 && length % *p.pad_to_multiple_of != 0) {
    length += *p.pad_to_multiple_of - length % *p.pad_to_multiple_of;
  }
  return length;
}

}  // namespace

void PadEncoding(const Padding& p, size_t length, Encoding* e) {
  if (e->size() >= length) return;
  size_t n = length - e->size();
  auto pad = [&](auto& v, const auto& value) {
    if (p.direction == Direction::kRight) {
      v.insert(v.end(), n, value);
    } else {
      v.insert(v.begin(), n, value);
    }
  };
  pad(e->ids, p.pad_id);
  pad(e->tokens, p.pad_token);
  pad(e->type_ids, p.pad_type_id);
  pad(e->attention_mask, int64_t{0});
  pad(e->special_tokens_mask, int64_t{1});
  pad(e->offsets, std::pair<size_t, size_t>{0, 0});
}

Status Tokenizer::Impl::EncodeTokens(std::string_view text, Encoding* e) const {
  std::vector<Token> tokens;
  for (const Section& section : added.Split(text, false)) {
    std::string_view raw = text.substr(section.begin, section.end - section.begin);
    const AddedToken* token = section.token != nullptr ? section.token : added.Find(raw);
    if (token != nullptr) {
      tokens.push_back({token->id, token->content, {section.begin, section.end}});
      continue;
    }
    NormalizedString normalized(raw, section.begin);
    if (normalizer) MG_RETURN_IF_ERROR(normalizer->Normalize(&normalized));
    if (normalized.empty()) continue;
    for (const Section& sub : added.Split(normalized.text(), true)) {
      std::string_view part(normalized.text().data() + sub.begin, sub.end - sub.begin);
      const AddedToken* t = sub.token != nullptr ? sub.token : added.Find(part);
      if (t != nullptr) {
        tokens.push_back({t->id, t->content, normalized.SpanOf(sub.begin, sub.end)});
        continue;
      }
      std::vector<NormalizedString> pieces{normalized.Slice(sub.begin, sub.end)};
      if (pre_tokenizer) MG_RETURN_IF_ERROR(pre_tokenizer->PreTokenize(&pieces));
      for (const NormalizedString& piece : pieces) {
        MG_RETURN_IF_ERROR(model->Tokenize(piece, &tokens));
      }
    }
  }
  for (const Token& t : tokens) AppendToken(t, e);
  return Status::Ok();
}

Status Tokenizer::Impl::Finish(std::string_view text, const EncodeOptions& options,
                               Encoding* e) const {
  std::optional<size_t> max_length = options.max_length;
  Direction direction = options.truncation_direction;
  if (!max_length && truncation) {
    max_length = truncation->max_length;
    direction = truncation->direction;
  }
  size_t added_tokens =
      options.add_special_tokens && post_processor ? post_processor->AddedTokens() : 0;
  if (max_length) {
    if (*max_length < added_tokens) {
      return Status::InvalidArgument("max_length " + std::to_string(*max_length) +
                                     " leaves no room for the " + std::to_string(added_tokens) +
                                     " special tokens");
    }
    Truncate(*max_length - added_tokens, direction, e);
  }
  if (post_processor) post_processor->Process(text, options.add_special_tokens, e);
  if (options.apply_padding && padding && padding->length) {
    PadEncoding(*padding, PaddedLength(*padding, *padding->length), e);
  }
  return Status::Ok();
}

Result<Encoding> Tokenizer::Encode(std::string_view text, bool add_special_tokens) const {
  EncodeOptions options;
  options.add_special_tokens = add_special_tokens;
  return Encode(text, options);
}

Result<Encoding> Tokenizer::Encode(std::string_view text, const EncodeOptions& options) const {
  size_t bad = FindInvalidUtf8(text);
  if (bad != std::string_view::npos) {
    char byte[8];
    std::snprintf(byte, sizeof(byte), "0x%02X", static_cast<unsigned char>(text[bad]));
    return Status::InvalidArgument("text is not valid UTF-8: byte " + std::string(byte) +
                                   " at offset " + std::to_string(bad));
  }
  Encoding e;
  MG_RETURN_IF_ERROR(impl_->EncodeTokens(text, &e));
  MG_RETURN_IF_ERROR(impl_->Finish(text, options, &e));
  return e;
}

Result<std::vector<Encoding>> Tokenizer::EncodeBatch(std::span<const std::string> texts,
                                                     const EncodeOptions& options) const {
  std::vector<Encoding> out;
  out.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto e = Encode(texts[i], options);
    if (!e.ok()) return e.status().WithPrefix("text " + std::to_string(i));
    out.push_back(std::move(e).value());
  }
  const auto& padding = impl_->padding;
  if (options.apply_padding && padding && !padding->length) {
    size_t longest = 0;
    for (const Encoding& e : out) longest = std::max(longest, e.size());
    for (Encoding& e : out) PadEncoding(*padding, PaddedLength(*padding, longest), &e);
  }
  return out;
}

}  // namespace modelgrid::tokenizer

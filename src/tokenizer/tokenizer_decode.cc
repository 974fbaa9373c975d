// Decoding: ids to token strings, special tokens skipped on request, the
// decoder chain, then transformers' clean-up (as the JS reference's decode).
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace modelgrid::tokenizer {

namespace {

// JavaScript's String.prototype.trim.
std::string TrimJs(const std::string& s) {
  const size_t begin = TrimJsWhitespaceStart(s, 0, s.size());
  const size_t end = TrimJsWhitespaceEnd(s, begin, s.size());
  return s.substr(begin, end - begin);
}

}  // namespace

Result<std::string> Tokenizer::Decode(std::span<const int64_t> ids,
                                      bool skip_special_tokens) const {
  DecodeOptions options;
  options.skip_special_tokens = skip_special_tokens;
  return Decode(ids, options);
}

Result<std::string> Tokenizer::Decode(std::span<const int64_t> ids,
                                      const DecodeOptions& options) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    int64_t id = ids[i];
    if (id < 0 || static_cast<size_t>(id) >= impl_->assigned.size() || !impl_->assigned[id]) {
      return Status::InvalidArgument("id " + std::to_string(id) + " at position " +
                                     std::to_string(i) + " is not in the vocabulary (ids 0.." +
                                     std::to_string(impl_->assigned.size()) + ")");
    }
    if (options.skip_special_tokens && impl_->special[id]) continue;
    tokens.push_back(impl_->id_to_token[id]);
  }
  std::string text;
  if (impl_->decoder) {
    MG_RETURN_IF_ERROR(impl_->decoder->DecodeChain(&tokens));
    for (const std::string& t : tokens) text += t;
    std::string suffix = impl_->model->end_of_word_suffix();
    if (!suffix.empty()) {
      text = ReplaceAll(text, suffix, " ");
      if (options.skip_special_tokens) text = TrimJs(text);
    }
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) text += ' ';
      text += tokens[i];
    }
  }
  bool cleanup =
      options.clean_up_tokenization_spaces.value_or(impl_->config.clean_up_tokenization_spaces);
  if (cleanup) text = CleanUpTokenization(text);
  return text;
}

}  // namespace modelgrid::tokenizer

#include "modelgrid/tokenizer/incremental_decoder.h"

namespace modelgrid::tokenizer {

namespace {

bool EndsWithReplacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

// Where the new text starts in `full`: after `prefix`, moved forward to a
// character boundary in case a decoder rewrote the prefix.
size_t CutPoint(const std::string& prefix, const std::string& full) {
  size_t pos = prefix.size();
  while (pos < full.size() && (static_cast<unsigned char>(full[pos]) & 0xC0) == 0x80) ++pos;
  return pos;
}

}  // namespace

Result<std::string> IncrementalDecoder::DecodeRange(std::span<const int64_t> ids, size_t begin,
                                                    size_t end) const {
  DecodeOptions options;
  options.skip_special_tokens = skip_special_tokens_;
  options.clean_up_tokenization_spaces = false;
  return tokenizer_.Decode(ids.subspan(begin, end - begin), options);
}

Result<std::string> IncrementalDecoder::Step(std::span<const int64_t> all_ids) {
  if (all_ids.size() < seen_) {
    return Status::InvalidArgument("IncrementalDecoder: " + std::to_string(all_ids.size()) +
                                   " ids after " + std::to_string(seen_));
  }
  seen_ = all_ids.size();
  if (all_ids.size() == read_offset_) return std::string();
  MG_ASSIGN_OR_RETURN(std::string prefix, DecodeRange(all_ids, prefix_offset_, read_offset_));
  MG_ASSIGN_OR_RETURN(std::string full, DecodeRange(all_ids, prefix_offset_, all_ids.size()));
  size_t from = CutPoint(prefix, full) + emitted_;
  if (!EndsWithReplacement(full)) {
    std::string delta = from < full.size() ? full.substr(from) : std::string();
    read_offset_ = all_ids.size();
    prefix_offset_ = read_offset_ > kContextIds ? read_offset_ - kContextIds : 0;
    emitted_ = 0;
    return delta;
  }
  // The ids end inside a character: emit what comes before it, keep the window.
  size_t stable = full.size();
  while (EndsWithReplacement(full.substr(0, stable))) stable -= 3;
  if (stable <= from) return std::string();
  emitted_ += stable - from;
  return full.substr(from, stable - from);
}

Result<std::string> IncrementalDecoder::Flush(std::span<const int64_t> all_ids) {
  if (all_ids.size() < seen_) {
    return Status::InvalidArgument("IncrementalDecoder: " + std::to_string(all_ids.size()) +
                                   " ids after " + std::to_string(seen_));
  }
  seen_ = all_ids.size();
  MG_ASSIGN_OR_RETURN(std::string prefix, DecodeRange(all_ids, prefix_offset_, read_offset_));
  MG_ASSIGN_OR_RETURN(std::string full, DecodeRange(all_ids, prefix_offset_, all_ids.size()));
  size_t from = CutPoint(prefix, full) + emitted_;
  read_offset_ = all_ids.size();
  prefix_offset_ = read_offset_ > kContextIds ? read_offset_ - kContextIds : 0;
  emitted_ = 0;
  return from < full.size() ? full.substr(from) : std::string();
}

}  // namespace modelgrid::tokenizer

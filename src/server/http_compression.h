// HTTP content codings of the server (zlib): request bodies sent with
// Content-Encoding gzip or deflate are inflated as they arrive, bounded by
// the body limit (a small compressed body cannot inflate past it), and JSON
// or text answers are gzip-compressed for clients whose Accept-Encoding
// allows it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "modelgrid/status.h"

namespace modelgrid::server {

// Inflates one request body incrementally. Not thread-safe; one per request.
class BodyInflater {
 public:
  // An inflater for Content-Encoding `coding` ("gzip", "x-gzip" or
  // "deflate", case-insensitive; gzip and zlib streams are both accepted
  // for either, as cpp-httplib did). Errors: kUnsupported "Content-Encoding
  // 'br' is not supported (gzip, deflate or identity)".
  static Result<std::unique_ptr<BodyInflater>> Create(std::string_view coding);
  ~BodyInflater();
  BodyInflater(const BodyInflater&) = delete;
  BodyInflater& operator=(const BodyInflater&) = delete;

  // Inflates `data` (the next compressed bytes) and appends the result to
  // `out`. Errors: kResourceExhausted when `out` would grow past
  // `max_bytes` (nothing past the limit is kept); kInvalidArgument
  // "malformed gzip/deflate body: <zlib message>" for corrupt data, also
  // for bytes after the end of the stream that are not another gzip member.
  Status Feed(std::string_view data, uint64_t max_bytes, std::string* out);

  // The body ended. Errors: kInvalidArgument "compressed body is truncated"
  // when the stream did not reach its end.
  Status Finish() const;

 private:
  BodyInflater();
  struct State;
  std::unique_ptr<State> state_;
};

// True when an Accept-Encoding header value allows gzip ("gzip" or "*" with
// a q-value other than 0; RFC 9110 §12.5.3).
bool AcceptsGzip(std::string_view accept_encoding);

// True for content types worth compressing: application/json and text/*.
bool IsCompressibleType(std::string_view content_type);

// `data` as one gzip member (zlib level 1: fast, JSON shrinks well anyway).
// Errors: kInternal when zlib fails (out of memory).
Result<std::string> GzipCompress(std::string_view data);

}  // namespace modelgrid::server

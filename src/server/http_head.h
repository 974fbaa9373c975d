// Request heads (request line + header fields, RFC 9112 §2-§6) as the HTTP
// server checks them before any route runs: where a head ends in the bytes a
// client sent, its parts, the limits on its size and number of fields, and
// the framing headers (Content-Length, Transfer-Encoding) that a hostile
// client can make ambiguous. Pure functions without an HTTP library, so that
// http_server.cc can use them both on bytes it peeks from a new connection
// and on the header list libmicrohttpd parsed, and tests can call them alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::server {

// The limits a head is checked against (HttpServerOptions has the meaning
// and the defaults of each).
struct HeadLimits {
  uint64_t max_header_bytes = 32 << 10;   // request line + header lines, bytes
  int max_headers = 100;                  // header fields
  uint64_t max_body_bytes = 64ull << 20;  // body bytes, after decompression
};

// A request head split into its parts. Header names and values are as sent,
// values without surrounding spaces; duplicates are kept in order.
struct RequestHead {
  std::string method;   // "GET"
  std::string target;   // "/v2/models/m/infer?x=1" (not decoded)
  std::string version;  // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;
  size_t bytes = 0;  // length of the head, the empty line that ends it included
};

// Why a request is answered before routing: the HTTP status and the message
// of its {"error": "..."} body.
struct HeadRefusal {
  int status = 400;
  std::string message;
};

// The length of the head at the start of `data` (the bytes up to and
// including the empty line that ends it; lines end in CRLF or a bare LF; up
// to 8 empty lines before the request line are skipped as RFC 9112 §2.2
// allows), or std::string_view::npos when `data` does not hold a whole head.
size_t FindHeadEnd(std::string_view data);

// Parses a whole head (FindHeadEnd's prefix). Errors: kInvalidArgument
// naming what is malformed: the request line ("malformed request line
// 'GET'"), a header line without a colon, whitespace before the colon (RFC
// 9112 §5.1), a field name that is not a token, or a folded (obs-fold) line.
Result<RequestHead> ParseRequestHead(std::string_view head);

// 505 when `version` is not HTTP/1.0 or HTTP/1.1, nullopt otherwise.
std::optional<HeadRefusal> CheckVersion(std::string_view version);

// 431 when the head has more than limits.max_headers fields or more than
// limits.max_header_bytes bytes; the message names the limit and the flag
// that sets it. nullopt when within both.
std::optional<HeadRefusal> CheckHeadSize(size_t header_count, uint64_t head_bytes,
                                         const HeadLimits& limits);

// The 431 for a head that is still incomplete after `limit` bytes.
HeadRefusal HeadTooLarge(uint64_t limit);

// Framing a server must not guess at (RFC 9112 §6.1-§6.3): 400 for a
// Content-Length that is not a decimal byte count ("-1", "12abc", more than
// 19 digits), for several Content-Length values that disagree, for both
// Content-Length and Transfer-Encoding; 501 for a Transfer-Encoding other
// than "chunked". nullopt when the framing is unambiguous.
std::optional<HeadRefusal> CheckFraming(
    const std::vector<std::pair<std::string, std::string>>& headers);

// The value of the first header `name` (case-insensitive), if any.
std::optional<std::string> FindHeader(
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view name);

// The message of a 413 for a body over `max_body_bytes` (names the limit and
// --max-body-bytes).
std::string BodyTooLargeMessage(uint64_t max_body_bytes);

// The standard reason phrase of an HTTP status ("Request Header Fields Too
// Large" for 431), "Unknown" for a status it does not know.
const char* ReasonPhrase(int status);

// A whole HTTP/1.1 response that closes the connection: status line,
// Content-Type: application/json, Content-Length, Connection: close, the
// `extra` headers, and `body`. For answers written straight to a socket.
std::string SerializeClosingResponse(
    int status, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& extra = {});

}  // namespace modelgrid::server

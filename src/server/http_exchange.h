// One HTTP exchange as the route handlers see it, without the HTTP library:
// http_server.cc adapts libmicrohttpd's requests and responses to these, so the
// route files compile without httplib.h and stay small.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid::server {

// A request after routing. Header names are matched case-insensitively.
struct HttpRequest {
  std::string method;                 // "GET", "POST"
  std::string path;                   // decoded path, e.g. "/v2/models/digits/infer"
  std::vector<std::string> captures;  // the route pattern's groups ("" when a group did not match)
  std::string body;                   // at most HttpServerOptions::max_body_bytes
  std::map<std::string, std::string> query;  // query parameters (last value wins)
  std::vector<std::pair<std::string, std::string>> headers;

  // The first value of header `name` (case-insensitive), if present.
  std::optional<std::string> Header(const std::string& name) const;
  // The capture at `index`, "" when absent.
  const std::string& Capture(size_t index) const;
  // True when query parameter `name` is "1", "true" or "yes".
  bool QueryFlag(const std::string& name) const;
};

// Writes one piece of a streamed body; false once the client has gone away
// (the handler should then stop producing).
//
// Each piece is handed to the connection as it is written (one or more
// HTTP chunks; an empty piece sends nothing). The server holds at most
// 64 KiB a client has not taken yet: a write waits while that much is
// pending, for at most HttpServerOptions::idle_timeout without the client
// taking a byte, then returns false and the connection is closed. Also
// false, at once, when the client closed or reset the connection (noticed
// at the write after it), when the connection timed out, and when the
// server stops (HttpServer::Stop; the connection is then closed without
// the final chunk, so the client sees an incomplete body). Once false,
// every later write is false. Only valid during the call of
// HttpReply::stream that it was given to, and only from one thread at a
// time (normally that call's own thread).
using BodyWriter = std::function<bool(std::string_view piece)>;

// The answer a handler writes.
struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  // When set, `body` is ignored: the server sends the status and headers
  // (no Content-Length; HTTP/1.1 chunked transfer encoding) and then calls
  // `stream` on a server thread of its own (a stream thread, never an I/O
  // thread; it does not hold a handler-pool thread either) with a writer;
  // each piece is sent as it is written; the response ends when `stream`
  // returns (the final empty chunk; the connection stays open for the
  // client's next request). For server-sent events (`content_type`
  // "text/event-stream") and other answers produced piece by piece.
  //
  // - Not compressed (Accept-Encoding is ignored), no Content-Length (a
  //   Content-Length in `headers` is not honoured); an HTTP/1.0 client
  //   gets the body unchunked, ended by the connection's close.
  // - `stream` must return soon after a write returned false: HttpServer::Stop
  //   waits for it.
  // - An exception thrown by `stream` ends the response, after what was
  //   written, without the final chunk (the connection is closed; the
  //   client sees an incomplete body), and is logged.
  // - `stream` may be destroyed without ever being called, and its
  //   captures must then release what they hold: a HEAD request (status
  //   and headers only); past HttpServerOptions::max_streams streams in
  //   progress (the client gets 503 with Retry-After: 1 instead); while
  //   the server stops (503). The access log records the answer once the
  //   body ended, with the body bytes written (without chunk framing).
  std::function<void(const BodyWriter& write)> stream;
};

// How an asynchronous handler (AsyncRouteHandler, routes.h) answers, from
// any thread and at any time after it was called: exactly one of `send`
// and `build` is called, once.
//  - `send(reply)` answers with `reply` (a non-streamed one: a reply with
//    `stream` set is answered 500). Cheap on the calling thread when the
//    body is small; a body the server will compress (gzip, at least 1 KiB,
//    the client accepts it) is compressed on the handler pool, not on the
//    caller's thread.
//  - `build(make)` runs `make` on the handler pool and answers with what it
//    returns: for answers that take long to build (large JSON bodies), so
//    that the calling thread (an event thread, or the grid's scheduler
//    thread of a model) is not held by it.
// An exception thrown by `make` is answered 500. A sink whose every copy is
// destroyed without either call answers 500 ("the handler dropped its
// answer"); a second call is ignored (logged).
struct ReplySink {
  std::function<void(HttpReply reply)> send;
  std::function<void(std::function<HttpReply()> make)> build;
};

// `status` with `body` dumped as JSON (invalid UTF-8 replaced, never throws).
HttpReply JsonReply(int status, const nlohmann::json& body);
// The KServe error answer for a non-OK `status`: HttpStatusFromCode and
// {"error": message}; a queue-full kUnavailable (RetryAfterSeconds) adds the
// Retry-After header in seconds.
HttpReply ErrorReply(const Status& status);
// An error answer with an explicit HTTP status (413, 411, 415).
HttpReply ErrorReply(int http_status, const std::string& message);

// Parses an optional JSON object body (empty body = empty object).
// Errors: kInvalidArgument "malformed JSON at byte N: ..." or "request body
// must be a JSON object".
Result<nlohmann::json> ParseJsonObjectBody(const std::string& body);

}  // namespace modelgrid::server

// One HTTP exchange as the route handlers see it, without the HTTP library:
// http_server.cc adapts libmicrohttpd's requests and responses to these, so the
// route files compile without httplib.h and stay small.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
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

// The answer a handler writes.
struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
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

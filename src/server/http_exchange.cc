// Request/reply helpers of the route handlers (http_exchange.h).
#include "server/http_exchange.h"

#include <strings.h>

#include "kserve/json_text.h"
#include "modelgrid/kserve/errors.h"
#include "modelgrid/scheduler/batch_scheduler.h"

namespace modelgrid::server {

std::optional<std::string> HttpRequest::Header(const std::string& name) const {
  for (const auto& [key, value] : headers) {
    if (::strcasecmp(key.c_str(), name.c_str()) == 0) return value;
  }
  return std::nullopt;
}

const std::string& HttpRequest::Capture(size_t index) const {
  static const std::string kEmpty;
  return index < captures.size() ? captures[index] : kEmpty;
}

bool HttpRequest::QueryFlag(const std::string& name) const {
  auto it = query.find(name);
  return it != query.end() && (it->second == "1" || it->second == "true" || it->second == "yes");
}

HttpReply JsonReply(int status, const nlohmann::json& body) {
  HttpReply reply;
  reply.status = status;
  reply.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return reply;
}

HttpReply ErrorReply(const Status& status) {
  HttpReply reply = ErrorReply(HttpStatusFromCode(status.code()), status.message());
  if (auto seconds = RetryAfterSeconds(status)) {
    reply.headers.emplace_back("Retry-After", std::to_string(*seconds));
  }
  return reply;
}

HttpReply ErrorReply(int http_status, const std::string& message) {
  HttpReply reply;
  reply.status = http_status;
  reply.body = ErrorBody(message);
  return reply;
}

Result<nlohmann::json> ParseJsonObjectBody(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return nlohmann::json::object();
  MG_ASSIGN_OR_RETURN(nlohmann::json parsed, kserve_internal::ParseJson(body));
  if (!parsed.is_object()) return Status::InvalidArgument("request body must be a JSON object");
  return parsed;
}

}  // namespace modelgrid::server

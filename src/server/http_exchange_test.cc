// Error replies (status mapping, Retry-After), JSON bodies and request helpers.
#include "server/http_exchange.h"

#include "server/routes.h"

#include <gtest/gtest.h>

namespace modelgrid::server {
namespace {

using nlohmann::json;

TEST(HttpExchangeTest, ErrorRepliesMapCodesToStatuses) {
  const std::pair<Status, int> cases[] = {
      {Status::InvalidArgument("input 'x': bad"), 400},
      {Status::NotFound("unknown model 'm'"), 404},
      {Status::Unavailable("model 'm' is loading"), 503},
      {Status::ResourceExhausted("model 'm': over its memory limit"), 507},
      {Status::Unsupported("shared memory"), 501},
      {Status::Internal("bug"), 500},
  };
  for (const auto& [status, http] : cases) {
    HttpReply r = ErrorReply(status);
    EXPECT_EQ(r.status, http) << status.ToString();
    EXPECT_EQ(json::parse(r.body), json({{"error", status.message()}}));
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_TRUE(r.headers.empty()) << status.ToString();
  }
}

TEST(HttpExchangeTest, QueueFullCarriesRetryAfter) {
  // The scheduler's queue-full status carries the hint as a typed detail
  // (modelgrid/scheduler/batch_scheduler.h); the header comes from it.
  StatusDetail detail;
  detail.retry_after_seconds = 3;
  HttpReply r = ErrorReply(
      Status::Unavailable("queue full (256 requests) for model 'm'; retry after 3 s")
          .WithDetail(detail));
  EXPECT_EQ(r.status, 503);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"Retry-After", "3"}));
}

TEST(HttpExchangeTest, RetryAfterComesFromTheDetailNotTheText) {
  // The same words without the typed detail: no header (nobody parses text).
  HttpReply r =
      ErrorReply(Status::Unavailable("queue full (256 requests) for model 'm'; retry after 3 s"));
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(r.headers.empty());
}

TEST(HttpExchangeTest, JsonReplyNeverThrowsOnBadUtf8) {
  HttpReply r = JsonReply(200, {{"name", std::string("bad\xff")}});
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(json::accept(r.body)) << r.body;
}

TEST(HttpExchangeTest, JsonObjectBodies) {
  EXPECT_EQ(*ParseJsonObjectBody(""), json::object());
  EXPECT_EQ(*ParseJsonObjectBody("  \n"), json::object());
  EXPECT_EQ(*ParseJsonObjectBody(R"({"ready": true})"), json({{"ready", true}}));
  auto bad = ParseJsonObjectBody(R"({"ready": )");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("malformed JSON at byte 10"), std::string::npos)
      << bad.status().message();
  auto array = ParseJsonObjectBody("[1]");
  ASSERT_FALSE(array.ok());
  EXPECT_EQ(array.status().message(), "request body must be a JSON object");
}

TEST(HttpExchangeTest, RequestHelpers) {
  HttpRequest req;
  req.headers = {{"inference-header-content-length", "12"}};
  req.captures = {"digits", ""};
  req.query = {{"refresh", "1"}, {"other", "no"}};
  EXPECT_EQ(req.Header("Inference-Header-Content-Length"), "12");
  EXPECT_FALSE(req.Header("Retry-After").has_value());
  EXPECT_EQ(req.Capture(0), "digits");
  EXPECT_EQ(req.Capture(1), "");
  EXPECT_EQ(req.Capture(5), "");
  EXPECT_TRUE(req.QueryFlag("refresh"));
  EXPECT_FALSE(req.QueryFlag("other"));
  EXPECT_FALSE(req.QueryFlag("missing"));
}

TEST(RouteLiteralPrefixTest, StopsAtTheFirstMetacharacter) {
  EXPECT_EQ(RouteLiteralPrefix(std::string(kModelPath) + "/infer"), "/v2/models/");
  EXPECT_EQ(RouteLiteralPrefix("/v2/health/live"), "/v2/health/live");
  EXPECT_EQ(RouteLiteralPrefix("/v2/repository/models/([^/]+)/load"), "/v2/repository/models/");
  EXPECT_EQ(RouteLiteralPrefix("/v2/a\\.b"), "/v2/a");  // an escape ends it
  EXPECT_EQ(RouteLiteralPrefix("/v2/ab?"), "/v2/a");      // b may be absent
  EXPECT_EQ(RouteLiteralPrefix("/v2/ab*c"), "/v2/a");
  EXPECT_EQ(RouteLiteralPrefix("/v2/ab{0,1}"), "/v2/a");
  EXPECT_EQ(RouteLiteralPrefix("/v2/(a|b)"), "/v2/");
  EXPECT_EQ(RouteLiteralPrefix("/v2/a|/v3/b"), "");     // either branch may match
  EXPECT_EQ(RouteLiteralPrefix("/v2/[|]x|"), "");
  EXPECT_EQ(RouteLiteralPrefix("/v2/[|](a|b)"), "/v2/");
  EXPECT_EQ(RouteLiteralPrefix("a?"), "");
  EXPECT_EQ(RouteLiteralPrefix(".*"), "");
  EXPECT_EQ(RouteLiteralPrefix(""), "");
}

}  // namespace
}  // namespace modelgrid::server

// The server's routes: (method, path pattern, handler) triples that
// http_server.cc registers with the HTTP library, in the order returned by
// AllRoutes (first match wins, so literal paths such as /v2/models/stats come
// before the patterns they would also match). Handlers are called from many
// threads at once; they only call the thread-safe Grid.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "modelgrid/grid.h"
#include "modelgrid/service/inference_service.h"
#include "server/http_exchange.h"

namespace modelgrid::server {

using RouteHandler = std::function<HttpReply(const HttpRequest&)>;

// A handler that starts the work and returns at once; the answer goes
// through `reply` (http_exchange.h) when the work is done, from whatever
// thread finishes it (e.g. the grid's, once the model ran), so that no
// server thread waits for it. The request stays valid until the answer is
// sent (not after): the handler may move from it (its body), but a
// completion callback must capture by value what it needs.
using AsyncRouteHandler = std::function<void(HttpRequest& request, ReplySink reply)>;

// A route has `handler` (run on the handler pool, which waits for it) or
// `async`. An async handler runs on the event thread that read the
// request when `start_inline` is set and returns true for the request (it
// must then be quick and never block: bounded work on the head and small
// bodies, no waiting for a model), else on the handler pool; it is always
// called on the handler pool for compressed bodies (they are inflated
// there first).
struct Route {
  std::string method;   // "GET" or "POST"
  std::string pattern;  // ECMAScript regex matched against the whole path; groups become captures
  RouteHandler handler;
  AsyncRouteHandler async = nullptr;
  std::function<bool(const HttpRequest&)> start_inline = nullptr;
};

// The literal text every path matching `pattern` (an ECMAScript regex, as
// Route::pattern) starts with: the pattern's characters before its first
// regex metacharacter, less a last character that a quantifier makes
// optional; empty when a '|' outside any group offers another branch.
// "/v2/models/([^/]+)/infer" -> "/v2/models/"; "a\\.b" -> "a" (stops at an
// escape); "ab?" -> "a"; "a|b" -> "". The server skips a route whose prefix
// the path lacks without running its regex (the infer route comes after
// 14 other POST routes; trying all 15 patterns on an infer path took 1.8 µs
// with std::regex_match on the 2-core development VM, 2026-12-05).
std::string_view RouteLiteralPrefix(std::string_view pattern);

// The path pattern of a model with an optional version:
// /v2/models/{m}[/versions/{v}], captures 0 (model) and 1 (version, "" when absent).
inline constexpr const char* kModelPath = "/v2/models/([^/]+)(?:/versions/([^/]+))?";

// GET /v2/health/live, /v2/health/ready, /v2 (server metadata).
std::vector<Route> HealthRoutes(InferenceService* service);
// GET /v2/models/{m}[/versions/{v}] (metadata) and .../ready.
std::vector<Route> ModelRoutes(InferenceService* service);
// POST /v2/models/{m}[/versions/{v}]/infer.
std::vector<Route> InferRoutes(InferenceService* service);
// Triton's generate extension (routes_generate.cc): POST
// /v2/models/{m}[/versions/{v}]/generate and .../generate_stream
// (server-sent events, one per piece of the generation).
std::vector<Route> GenerateRoutes(InferenceService* service);
// POST /v2/repository/index, /v2/repository/models/{m}/load, .../unload.
std::vector<Route> RepositoryRoutes(InferenceService* service);
// GET /v2/models/stats, /v2/models/{m}[/versions/{v}]/stats.
std::vector<Route> StatsRoutes(InferenceService* service);
// GET /v2/modelgrid/devices, /v2/modelgrid/models, /v2/modelgrid/changes;
// POST /v2/modelgrid/models/{m}/config, /v2/modelgrid/strategy.
std::vector<Route> ModelGridRoutes(InferenceService* service);
// Triton's system shared memory extension (routes_shared_memory.cc):
// GET /v2/systemsharedmemory/status, .../region/{name}/status; POST
// .../region/{name}/register, .../region/{name}/unregister,
// /v2/systemsharedmemory/unregister.
std::vector<Route> SharedMemoryRoutes(InferenceService* service);
// OpenAI-compatible: GET /v1/models, POST /v1/embeddings, /v1/completions
// (stream: server-sent events), /v1/chat/completions (501) (routes_openai.cc).
std::vector<Route> OpenAiRoutes(InferenceService* service);
// Triton's trace extension (routes_trace.cc): GET and POST
// /v2/trace/setting and /v2/models/{m}/trace/setting.
std::vector<Route> TraceRoutes(InferenceService* service);
// Triton's logging extension (routes_logging.cc): GET and POST /v2/logging.
std::vector<Route> LoggingRoutes(InferenceService* service);
// GET /metrics (Prometheus text format, server/metrics.h).
std::vector<Route> MetricsRoutes(InferenceService* service);
// Every route above, literal paths first.
std::vector<Route> AllRoutes(InferenceService* service);

// The admin token a request presents: its `Authorization: Bearer <token>`
// header (BearerToken), "" when it has none.
std::string RequestToken(const HttpRequest& req);

// GET /v2/models/{m}[/versions/{v}]/config (Triton's model configuration
// extension, InferenceService::Config).
std::vector<Route> ConfigRoutes(InferenceService* service);

}  // namespace modelgrid::server

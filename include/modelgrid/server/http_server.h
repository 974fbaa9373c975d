// The KServe v2 / Open Inference Protocol HTTP server over a modelgrid::Grid
// (docs/design.md, "Interfaces"; ../shared/reference/kserve_v2.md). A thin layer:
// every route decodes the request, calls the grid, and encodes the answer.
// The routes, the request parameters, the error mapping and the limits are
// listed in src/server/README.md.
//
// Every answer is JSON (binary infer responses: JSON header plus raw tensor
// bytes, Triton's binary data extension). Every error is an HTTP status from
// the Status code (modelgrid/kserve/errors.h: 400/404/501/503/507/500) with
// the body {"error": "<message>"}; a queue-full 503 carries Retry-After
// (seconds); a body over max_body_bytes is 413.
//
// Built to stay up under hostile clients: connections are served by event
// threads (GNU libmicrohttpd, epoll) that never block on a route; route
// handlers run on a bounded pool of their own threads. A new connection's
// request line and headers must arrive within header_timeout and within
// max_header_bytes / max_headers (else 408 / 431), its framing must be
// unambiguous (else 400), its body must arrive within body_timeout; a silent
// connection is closed after idle_timeout; connections are bounded in all
// (max_connections) and per client address (max_connections_per_client),
// beyond which a connection is answered 503 and closed. Keep-alive
// connections are kept for any number of requests while they are not idle.
// A route may stream its answer (HttpReply::stream, src/server/http_exchange.h:
// chunked, e.g. server-sent events): the body is produced on a stream thread
// (at most max_streams at once) and sent as it is written, with bounded
// buffering and bounded waits on a client that does not read.
//
// Lifecycle: construct, Bind() (the port is open from then on: clients may
// connect and queue in the listen backlog), Run() on one thread (blocks,
// serving), Stop() from any other thread (or a signal-waiting thread) to end
// Run(). The grid is not owned and must outlive the server; the server never
// calls Grid::Shutdown.
//
// Thread-safety: Bind and Run are called once each, in that order, from one
// thread; Stop may be called from any thread at any time, more than once.
// The access_log hook is called from the server's threads, several at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "modelgrid/status.h"

namespace modelgrid {

class Grid;
class InferenceService;

namespace server {
struct HttpRequest;  // src/server/http_exchange.h
struct HttpReply;
}  // namespace server

// A route served besides the built-in ones (HttpServerOptions::extra_routes).
struct HttpRoute {
  std::string method;  // "GET", "POST" (HEAD is served as GET)
  // ECMAScript regular expression matched against the whole decoded path
  // (without the query); its groups become HttpRequest::captures.
  std::string pattern;
  // Called on the handler pool, several at once (src/server/http_exchange.h
  // declares HttpRequest and HttpReply; a reply may stream its body).
  std::function<server::HttpReply(const server::HttpRequest&)> handler;
};

// One answered request, as given to HttpServerOptions::access_log.
struct AccessRecord {
  std::string remote_address;       // the client's IP address, "127.0.0.1" or "::1"
  // "GET", "POST"; "" when not known (a 503 at accept, a 408 for a head
  // that never ended, a 400 for a malformed request line).
  std::string method;
  std::string path;                 // the decoded path without the query; "" as method
  int status = 0;                   // the HTTP status sent
  uint64_t request_body_bytes = 0;  // body bytes received, as sent (before decompression)
  // Body bytes of the answer (after compression); of a streamed answer
  // (HttpReply::stream), the bytes its writer handed to the connection,
  // without the chunked framing.
  uint64_t response_bytes = 0;
  // Microseconds from the end of the request headers (for answers given
  // before the headers were complete: from the connection's accept) until
  // the answer was handed to the socket (a streamed answer: its last byte).
  int64_t duration_us = 0;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // address to listen on (IPv4 or IPv6 literal, or a name)
  int port = 8000;                 // TCP port; 0 = let the kernel pick a free one
  // The largest request body accepted, in bytes, both as received and after
  // HTTP decompression (Content-Encoding gzip/deflate). A larger body is
  // answered 413 with an error naming this limit: at once when its
  // Content-Length says so (the body is not read), else when the limit is
  // passed. At least 1.
  uint64_t max_body_bytes = uint64_t{64} << 20;
  // The largest request line + header lines of a request, in bytes (up to
  // and including the empty line that ends them). More is answered 431.
  // 1 KiB..64 KiB (a new connection's head is inspected in the socket's
  // receive queue, which holds about 64 KiB).
  uint64_t max_header_bytes = uint64_t{32} << 10;
  // The most header fields one request may have; more is answered 431. 1..10000.
  int max_headers = 100;
  // Total time a request's line and headers may take to arrive, counted
  // from the connection's accept for its first request and from the
  // request line for later ones on a keep-alive connection (whose request
  // line must arrive within idle_timeout + header_timeout of the previous
  // answer). A client that trickles bytes past it gets 408 and the
  // connection is closed. At least 1 ms.
  std::chrono::milliseconds header_timeout{10'000};
  // Total time a request body may take to arrive after its headers; past it
  // the client gets 408 and the connection is closed. At least 1 ms.
  std::chrono::milliseconds body_timeout{60'000};
  // A connection on which nothing is received or sent for this long is
  // closed: an idle keep-alive connection between requests, a body or an
  // answer that stalls. Not while a route handler runs. Rounded up to whole
  // seconds (libmicrohttpd's granularity). At least 1 ms.
  std::chrono::milliseconds idle_timeout{30'000};
  // The most connections open at once, all clients together (connections
  // whose request is being handled included). A connection past it is
  // answered 503 (with Retry-After: 1) and closed. 1..1000000.
  int max_connections = 1024;
  // The most connections open at once from one client IP address; past it,
  // 503 and closed as above. 0 = no per-client limit.
  int max_connections_per_client = 256;
  // The listen backlog: connections the kernel completes and queues before
  // the server accepts them (capped by net.core.somaxconn). At least 1.
  int backlog = 1024;
  // Threads running route handlers (an infer request holds one until the
  // grid answers); requests past them wait in a queue, their connections
  // stay open. 0 = 2 × the machine's cores, at least 8.
  int threads = 0;
  // Event threads reading and writing connections (each an epoll loop over
  // its share of the connections; they never run a route). 0 = cores / 4,
  // 1..4.
  int io_threads = 0;
  // Gzip-compress JSON and text answers of at least 1 KiB for clients whose
  // Accept-Encoding allows gzip (never a streamed answer).
  bool compress_responses = true;
  // The most streamed answers (HttpReply::stream, e.g. server-sent events)
  // in progress at once, all clients together. Each runs on a thread of its
  // own (started when needed, kept for the next stream; not one of
  // `threads`), from the handler's return until its stream function
  // returns. A handler that returns a stream past it is answered 503 with
  // Retry-After: 1 (its stream function is not called). 1..65536.
  int max_streams = 64;
  // Routes served besides the built-in ones (src/server/routes.h), tried
  // before them in this order (the first whose method and pattern match
  // serves the request). For tests and embedders; `modelgrid serve` adds
  // none. A pattern that is not a valid regular expression makes Bind fail
  // (kInvalidArgument naming it).
  std::vector<HttpRoute> extra_routes;
  // Called once per answered request (also for the 400/408/431/503 answers
  // given before routing), after the answer was handed to the socket, from
  // the server's threads (several at once). Must not block or throw. Null =
  // no access log.
  std::function<void(const AccessRecord&)> access_log;
};

class HttpServer {
 public:
  // Serves `service` (modelgrid/service/inference_service.h), which is not
  // owned and must outlive the server.
  HttpServer(InferenceService* service, HttpServerOptions options);
  // Serves `grid` through a service of its own with default ServiceOptions
  // (no admin token). `grid` is not owned and must outlive the server.
  HttpServer(Grid* grid, HttpServerOptions options);
  // Stops the server (as Stop) and waits for Run to return when it runs on
  // another thread.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Checks the options and opens the listening socket on
  // options.host:options.port with options.backlog (SO_REUSEADDR only, so a
  // port another socket listens on is an error). Raises the process's
  // open-file soft limit when it is below 2 × max_connections + 256 (each
  // connection may briefly hold two descriptors) and the hard limit allows. Returns the bound port (the picked one when options.port
  // is 0). Errors: kInvalidArgument for a port outside 0..65535 or an
  // option outside its range (the message names the option, its value and
  // the range); kUnavailable "cannot listen on HOST:PORT: <reason>" (port
  // taken, bad address); kInternal when called twice.
  Result<int> Bind();

  // Serves until Stop(). Returns once the listening socket is closed and
  // every request whose handler started has been answered (requests still
  // receiving their body or sending their answer get up to 5 s more; idle
  // connections are closed at once) and every stream function returned:
  // streamed answers in progress are cut at once (their writers return
  // false, their connections close without the final chunk). Returns at
  // once (OK) when Stop() came first. Errors: kInternal when Bind() did not
  // succeed, when called twice, or when the event threads cannot start.
  Status Run();

  // Stops accepting connections; requests in flight finish (answered with
  // Connection: close; streamed answers are cut) and Run returns after them. Does not wait for Run to
  // return. Safe before Run starts (Run then returns at once), from any
  // thread, any number of times.
  void Stop();

  // The bound port, or 0 before a successful Bind().
  int port() const;

 private:
  HttpServer(InferenceService* service, HttpServerOptions options, Grid* grid);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelgrid

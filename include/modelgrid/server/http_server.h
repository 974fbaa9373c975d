// The KServe v2 / Open Inference Protocol HTTP server over a modelgrid::Grid
// (docs/design.md, "Interfaces"; ../shared/reference/kserve_v2.md). A thin layer:
// every route decodes the request, calls the grid, and encodes the answer.
// The routes, the request parameters and the error mapping are listed in
// src/server/README.md.
//
// Every answer is JSON (binary infer responses: JSON header plus raw tensor
// bytes, Triton's binary data extension). Every error is an HTTP status from
// the Status code (modelgrid/kserve/errors.h: 400/404/501/503/507/500) with
// the body {"error": "<message>"}; a queue-full 503 carries Retry-After
// (seconds); a body over max_body_bytes is 413.
//
// Lifecycle: construct, Bind() (the port is open from then on: clients may
// connect and queue), Run() on one thread (blocks, serving with `threads`
// worker threads), Stop() from any other thread (or a signal-waiting thread)
// to end Run(). The grid is not owned and must outlive the server; the server
// never calls Grid::Shutdown.
//
// Thread-safety: Bind and Run are called once each, in that order, from one
// thread; Stop may be called from any thread at any time, more than once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "modelgrid/status.h"

namespace modelgrid {

class Grid;

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // address to listen on
  int port = 8000;                 // TCP port; 0 = let the kernel pick a free one
  // The largest request body accepted, in bytes (after HTTP decompression).
  // A larger body is answered 413 with an error naming this limit.
  uint64_t max_body_bytes = uint64_t{64} << 20;
  // Threads serving connections (one request at a time each; an infer
  // request holds its thread until the grid answers). 0 = 2 × the machine's
  // cores, at least 8.
  int threads = 0;
  // Seconds an idle keep-alive connection is kept open. Stop() waits at most
  // this long for idle connections to close.
  int keep_alive_seconds = 2;
};

class HttpServer {
 public:
  // `grid` is not owned and must outlive the server.
  HttpServer(Grid* grid, HttpServerOptions options);
  // Stops the server (as Stop) and waits for Run to return when it runs on
  // another thread.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Opens the listening socket on options.host:options.port. Returns the
  // bound port (the picked one when options.port is 0). Errors:
  // kUnavailable "cannot listen on HOST:PORT" (port taken, bad address);
  // kInvalidArgument for a port outside 0..65535; kInternal when called twice.
  Result<int> Bind();

  // Serves until Stop(). Returns once the listening socket is closed and
  // every request in flight has been answered. Returns at once (OK) when
  // Stop() came first. Errors: kInternal when Bind() did not succeed, or
  // when accepting connections failed.
  Status Run();

  // Stops accepting connections; requests in flight finish and Run returns
  // after them. Does not wait for Run to return. Safe before Run starts (Run
  // then returns at once), from any thread, any number of times.
  void Stop();

  // The bound port, or 0 before a successful Bind().
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace modelgrid

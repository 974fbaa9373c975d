// HttpServer (modelgrid/server/http_server.h): cpp-httplib underneath. The
// only file of the server that includes httplib.h; the routes see
// HttpRequest/HttpReply (http_exchange.h).
#include "modelgrid/server/http_server.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "modelgrid/bytes.h"
#include "server/routes.h"

namespace modelgrid {

namespace {

using server::HttpReply;
using server::HttpRequest;

// Why the request's framing headers are refused, or "" when they are
// fine: a Content-Length that is not a plain decimal number (e.g. "-1",
// "12abc"), several Content-Length headers that disagree, or a
// Content-Length next to a Transfer-Encoding (RFC 9112 §6.3: a request
// smuggling vector).
std::string FramingError(const httplib::Request& req) {
  const size_t count = req.get_header_value_count("Content-Length");
  std::string first;
  for (size_t i = 0; i < count; ++i) {
    const std::string v = req.get_header_value("Content-Length", i);
    if (v.empty() || v.size() > 19 ||
        !std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return "Content-Length '" + v + "' is not a byte count (a decimal number)";
    }
    if (i == 0) {
      first = v;
    } else if (v != first) {
      return "conflicting Content-Length headers: '" + first + "' and '" + v + "'";
    }
  }
  if (count > 0 && req.has_header("Transfer-Encoding")) {
    return "both Content-Length and Transfer-Encoding are set; send one of them";
  }
  return "";
}

// httplib::Server with access to its listening socket, to close it when Run
// never ran (httplib closes it only when listening ends).
class ListeningServer : public httplib::Server {
 public:
  void CloseUnusedSocket() {
    const socket_t sock = svr_sock_.exchange(INVALID_SOCKET);
    if (sock != INVALID_SOCKET) ::close(sock);
  }
};

HttpRequest ToRequest(const httplib::Request& req, std::string body) {
  HttpRequest r;
  r.method = req.method;
  r.path = req.path;
  for (size_t i = 1; i < req.matches.size(); ++i) r.captures.push_back(req.matches[i].str());
  r.body = std::move(body);
  for (const auto& [key, value] : req.params) r.query[key] = value;
  r.headers.assign(req.headers.begin(), req.headers.end());
  return r;
}

void WriteReply(HttpReply reply, httplib::Response& res) {
  res.status = reply.status;
  for (const auto& [key, value] : reply.headers) res.set_header(key, value);
  res.set_header("Content-Type", reply.content_type);
  res.body = std::move(reply.body);
}

// Runs a route handler; an exception (a bug) becomes a 500 JSON error.
void Dispatch(const server::RouteHandler& handler, HttpRequest request, httplib::Response& res) {
  try {
    WriteReply(handler(request), res);
  } catch (const std::exception& e) {
    WriteReply(server::ErrorReply(500, std::string("internal error: ") + e.what()), res);
  } catch (...) {
    WriteReply(server::ErrorReply(500, "internal error"), res);
  }
}

std::string TooLargeMessage(uint64_t max_body_bytes) {
  return "request body is larger than the limit of " + std::to_string(max_body_bytes) + " bytes (" +
         FormatBytes(max_body_bytes) + ", --max-body-bytes)";
}

// The body of a request, read through `reader` and bounded by
// `max_body_bytes` after decompression (httplib bounds only the
// Content-Length it is told). Past the limit the rest is read and dropped,
// so the connection stays usable. nullopt with `*error` set on failure.
std::optional<std::string> ReadBody(const httplib::Request& req, httplib::Response& res,
                                    const httplib::ContentReader& reader, uint64_t max_body_bytes,
                                    HttpReply* error) {
  if (req.is_multipart_form_data()) {
    reader([](const httplib::MultipartFormData&) { return true; },
           [](const char*, size_t) { return true; });
    *error = server::ErrorReply(415, "multipart bodies are not accepted: send JSON");
    return std::nullopt;
  }
  // A POST with neither Content-Length nor chunked encoding (curl -X POST)
  // has an empty body; httplib would fail to read it.
  const bool chunked =
      req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos;
  if (!chunked && !req.has_header("Content-Length")) return std::string();
  std::string body;
  bool too_large = false;
  const bool read = reader([&](const char* data, size_t n) {
    if (too_large || body.size() + n > max_body_bytes) {
      too_large = true;
      body.clear();
      return true;
    }
    body.append(data, n);
    return true;
  });
  if (too_large || res.status == 413) {
    *error = server::ErrorReply(413, TooLargeMessage(max_body_bytes));
    return std::nullopt;
  }
  if (!read) {
    *error = server::ErrorReply(400, "could not read the request body");
    return std::nullopt;
  }
  return body;
}

// Messages for errors httplib answers itself (no route, bad request line, ...).
std::string LibraryErrorMessage(const httplib::Request& req, int status, uint64_t max_body_bytes) {
  switch (status) {
    case 404:
      return "no route for " + req.method + " " + req.path;
    case 413:
      return TooLargeMessage(max_body_bytes);
    case 414:
      return "request URI too long";
    case 400:
      return "malformed HTTP request";
    default:
      return "HTTP error " + std::to_string(status);
  }
}

}  // namespace

struct HttpServer::Impl {
  Grid* grid = nullptr;
  HttpServerOptions options;
  ListeningServer http;
  int port = 0;

  std::mutex mu;
  std::condition_variable changed;  // `running` went false
  bool bound = false;
  bool ran = false;
  bool running = false;
  bool stop_requested = false;
  bool stop_sent = false;

  void Configure();
  void RegisterRoutes();
  void RegisterNotFound();
};

void HttpServer::Impl::Configure() {
  const int threads = options.threads > 0
                          ? options.threads
                          : std::max(8, 2 * static_cast<int>(std::thread::hardware_concurrency()));
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_keep_alive_timeout(std::max(1, options.keep_alive_seconds));
  http.set_payload_max_length(static_cast<size_t>(options.max_body_bytes));
  // Without TCP_NODELAY a response's second write waits for the client's
  // delayed ACK (about 40 ms on Linux): measured by bench/serving_bench.
  http.set_tcp_nodelay(true);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let
  // a second server bind a port that is already taken.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // Framing the library would accept or answer late (RFC 9112 §6.3):
  // refused with 400 before any body is read.
  http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    const std::string why = FramingError(req);
    if (why.empty()) return httplib::Server::HandlerResponse::Unhandled;
    WriteReply(server::ErrorReply(400, why), res);
    res.set_header("Connection", "close");
    return httplib::Server::HandlerResponse::Handled;
  });
  const uint64_t max_body = options.max_body_bytes;
  http.set_error_handler(httplib::Server::HandlerWithResponse(
      [max_body](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        WriteReply(server::ErrorReply(res.status, LibraryErrorMessage(req, res.status, max_body)),
                   res);
        return httplib::Server::HandlerResponse::Handled;
      }));
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        WriteReply(server::ErrorReply(500, "internal error: " + what), res);
      });
  http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    spdlog::debug("http {} {} -> {}", req.method, req.path, res.status);
  });
  RegisterRoutes();
  RegisterNotFound();
}

void HttpServer::Impl::RegisterRoutes() {
  const uint64_t max_body = options.max_body_bytes;
  for (server::Route& route : server::AllRoutes(grid)) {
    auto handler = std::make_shared<server::RouteHandler>(std::move(route.handler));
    if (route.method == "GET") {
      http.Get(route.pattern, [handler](const httplib::Request& req, httplib::Response& res) {
        Dispatch(*handler, ToRequest(req, {}), res);
      });
      continue;
    }
    http.Post(route.pattern,
              [handler, max_body](const httplib::Request& req, httplib::Response& res,
                                  const httplib::ContentReader& reader) {
                HttpReply error;
                std::optional<std::string> body = ReadBody(req, res, reader, max_body, &error);
                if (!body) return WriteReply(std::move(error), res);
                Dispatch(*handler, ToRequest(req, std::move(*body)), res);
              });
  }
}

// Unknown paths answer 404 JSON; bodies sent to them are read (bounded) and dropped.
void HttpServer::Impl::RegisterNotFound() {
  const uint64_t max_body = options.max_body_bytes;
  auto not_found = [](const httplib::Request& req, httplib::Response& res) {
    WriteReply(server::ErrorReply(404, "no route for " + req.method + " " + req.path), res);
  };
  auto drain_not_found = [max_body, not_found](const httplib::Request& req, httplib::Response& res,
                                               const httplib::ContentReader& reader) {
    HttpReply error;
    if (!ReadBody(req, res, reader, max_body, &error)) return WriteReply(std::move(error), res);
    not_found(req, res);
  };
  http.Get(".*", not_found);
  http.Post(".*", drain_not_found);
  http.Put(".*", drain_not_found);
  http.Patch(".*", drain_not_found);
  http.Delete(".*", drain_not_found);
}

HttpServer::HttpServer(Grid* grid, HttpServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->grid = grid;
  impl_->options = std::move(options);
  impl_->Configure();
}

HttpServer::~HttpServer() {
  Stop();
  std::unique_lock lock(impl_->mu);
  impl_->changed.wait(lock, [this] { return !impl_->running; });
  if (impl_->bound && !impl_->ran) impl_->http.CloseUnusedSocket();
}

Result<int> HttpServer::Bind() {
  std::lock_guard lock(impl_->mu);
  const HttpServerOptions& o = impl_->options;
  if (impl_->bound) return Status::Internal("HttpServer::Bind called twice");
  if (o.port < 0 || o.port > 65535) {
    return Status::InvalidArgument("HTTP port " + std::to_string(o.port) + " is not in 0..65535");
  }
  const int port = o.port == 0 ? impl_->http.bind_to_any_port(o.host)
                               : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port <= 0) {
    return Status::Unavailable("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                               " (address in use or not available)");
  }
  impl_->bound = true;
  impl_->port = port;
  return port;
}

Status HttpServer::Run() {
  {
    std::lock_guard lock(impl_->mu);
    if (!impl_->bound) return Status::Internal("HttpServer::Run called without a successful Bind");
    if (impl_->ran) return Status::Internal("HttpServer::Run called twice");
    impl_->ran = true;
    if (impl_->stop_requested) {
      impl_->http.CloseUnusedSocket();
      return Status::Ok();
    }
    impl_->running = true;
  }
  const bool ok = impl_->http.listen_after_bind();
  {
    std::lock_guard lock(impl_->mu);
    impl_->running = false;
  }
  impl_->changed.notify_all();
  if (!ok) {
    return Status::Internal("accepting connections on " + impl_->options.host + ":" +
                            std::to_string(impl_->port) + " failed");
  }
  return Status::Ok();
}

void HttpServer::Stop() {
  std::unique_lock lock(impl_->mu);
  impl_->stop_requested = true;
  if (impl_->stop_sent) return;
  // Run may be between its check and httplib's loop start: httplib::stop()
  // acts only once listening began, so wait for that (or for Run to end).
  while (impl_->running && !impl_->http.is_running()) {
    impl_->changed.wait_for(lock, std::chrono::milliseconds(1));
  }
  if (impl_->http.is_running()) {
    impl_->http.stop();
    impl_->stop_sent = true;
  }
}

int HttpServer::port() const {
  std::lock_guard lock(impl_->mu);
  return impl_->port;
}

}  // namespace modelgrid

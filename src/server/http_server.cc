// HttpServer (modelgrid/server/http_server.h) over GNU libmicrohttpd: the
// only file of the server that includes microhttpd.h; the routes see
// HttpRequest/HttpReply (http_exchange.h).
//
// Threads:
//  - the guard (one thread, epoll): owns the listening socket; accepts;
//    enforces max_connections and max_connections_per_client (503 past
//    them); holds each new connection until its first request line and
//    headers are in the socket's receive queue (peeked with MSG_PEEK, not
//    consumed), checks them (http_head.h: size, field count, framing,
//    version, header_timeout) and then hands the connection to an event
//    thread (MHD_add_connection), or answers 400/408/431/501/505 itself.
//    libmicrohttpd 0.9.75 answers a malformed Content-Length with its own
//    HTML page (its status line written twice), so a new connection's first
//    request never reaches it unchecked. The guard also sweeps the event
//    threads' connections for passed header/body deadlines (408, then
//    shutdown(2): the event thread sees the socket end and closes it), and
//    drains the sockets closed on a client that may still be sending
//    (lingering close: shutdown(SHUT_WR), read and drop for up to 2 s) so
//    that the client reads the answer instead of a reset; and it notices
//    clients that ended their side (FIN) mid-request, which libmicrohttpd's
//    edge-triggered reads miss when the FIN comes with the last bytes.
//  - event threads (io_threads libmicrohttpd daemons without listening
//    sockets, one epoll thread each): parse, read bodies, write answers,
//    keep-alive, idle timeout. Later requests on a keep-alive connection are
//    checked in OnAccess (size, fields, framing). A complete request's
//    connection is suspended (MHD_suspend_connection) and its request queued
//    to
//  - the handler pool (`threads` threads): inflates the body, routes, runs
//    the handler, compresses the answer, then MHD_resume_connection; the
//    event thread queues the answer in the access handler's next call.
//  - stream threads (up to max_streams, started as needed, idle ones kept):
//    run HttpReply::stream for answers whose body is produced piece by
//    piece (below).
//
// Streamed answers (HttpReply::stream). The handler returns on its pool
// thread; Handle admits the stream (at most max_streams in progress, else
// 503 Retry-After: 1; 503 while stopping), resumes the connection as for
// any answer, and gives the stream function to a stream thread, so that a
// stream lasting minutes holds neither a handler-pool thread nor an event
// thread. The event thread queues a response of unknown size
// (MHD_create_response_from_callback with MHD_SIZE_UNKNOWN: libmicrohttpd
// sends it chunked to HTTP/1.1 clients) whose content reader takes what the
// writer put in the StreamState's buffer (at most kStreamBufferBytes; a
// writer waits for room). When the buffer is empty the reader suspends the
// connection (MHD_suspend_connection from the content reader, as
// libmicrohttpd requires) and returns 0; the next write, the stream's end or
// Stop resumes it (MHD_resume_connection, exactly once per suspension: the
// reader sets StreamState::suspended under its lock after suspending, and
// whoever clears the flag resumes). libmicrohttpd's own pipe response
// (MHD_create_response_from_pipe, 0.9.75) does not fit: it reads the pipe
// with a blocking read(2) on the event thread and never polls it, so a
// slow producer (a model between two tokens) would stall every connection
// of that event thread.
//   Bounded waits: a writer waits for room at most idle_timeout without
// the client taking a byte, then fails and cuts the socket (shutdown(2));
// a connection blocked on a client that does not read is also closed by
// libmicrohttpd's idle timeout (a suspended one is not: it waits for the
// producer). A client gone away is noticed when a write to its socket
// fails (libmicrohttpd does not watch a suspended connection); the request's
// end (OnCompleted) and the response's release mark the stream gone, and
// the writer returns false. Stop cancels every stream first (writers fail
// at once, suspended connections resume and close without the final chunk,
// the others are cut), then waits for the stream functions to return.
//
// Bookkeeping shared by these threads (Impl::mu): the connections handed to
// event threads by socket (Conn: deadline, phase), the counts per client
// address, the requests in flight, the handlers running and the streams in
// progress (for Stop). A StreamState has its own lock, never held together
// with Impl::mu nor while calling MHD_resume_connection.
#include "modelgrid/server/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "modelgrid/kserve/errors.h"
#include "modelgrid/service/inference_service.h"
#include "server/http_compression.h"
#include "server/http_head.h"
#include "server/routes.h"

namespace modelgrid {

namespace {

using Clock = std::chrono::steady_clock;
using Headers = std::vector<std::pair<std::string, std::string>>;
using server::HttpReply;
using server::HttpRequest;

constexpr Clock::time_point kNoDeadline = Clock::time_point::max();
// How often the guard sweeps deadlines (their precision).
constexpr auto kTick = std::chrono::milliseconds(100);
// How long a socket closed on a client that may still be sending is drained.
constexpr auto kLinger = std::chrono::seconds(2);
// How long Stop waits for requests still receiving a body or sending an answer.
constexpr auto kDrainIo = std::chrono::seconds(5);
// Peeks at a new connection's receive queue on each arrival of bytes; past
// this many (a client trickling its head in small segments), once per sweep
// tick, so that a trickler cannot make the guard copy its head over and
// over.
constexpr int kEagerPeeks = 32;
// Answers smaller than this are not compressed.
constexpr size_t kMinCompressBytes = 1024;
// libmicrohttpd's per-connection memory pool: the head, a record per header
// field, and room for the read and write buffers. libmicrohttpd 0.9.75 gives
// the read buffer half of the pool's free bytes (connection.c,
// try_grow_read_buffer) and reads a body one buffer per event-loop turn:
// with a pool sized for headers alone (75,136 bytes) a 602,112-byte binary
// tensor took 17 recv calls of 37,568 bytes, each after an epoll_wait (perf
// trace, 2026-12-05). But it also zeroes the whole pool between the requests
// of a keep-alive connection (memorypool.c, MHD_pool_reset), which makes the
// pool resident and costs every request: measured with perf on the event
// thread (transport_bench raw-shm, 2026-12-05), 1.0 µs of memset a request
// with no read room, 4.5 µs with 256 KiB, 53 µs with 2 MiB. 256 KiB reads
// that tensor in 4 recv calls for 3.5 µs a request and at most 331 KB
// resident per connection (docs/benchmarks.md, "The socket floors").
constexpr size_t kPoolPerHeaderBytes = 96;
constexpr size_t kPoolSlackBytes = 32 << 10;
constexpr size_t kPoolBodyReadBytes = size_t{256} << 10;
// Connections accepted per wake-up of the guard (others wait for the next).
constexpr int kAcceptBatch = 256;
// Bytes of a streamed body written and not yet taken by the connection,
// at most (a writer waits for room past it).
constexpr size_t kStreamBufferBytes = 64 << 10;
// The block size libmicrohttpd is told for a streamed body (advisory).
constexpr size_t kStreamBlockBytes = 16 << 10;

int64_t Micros(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

// "10 s" or "1500 ms".
std::string DurationText(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

// The IP address of `sa` as text; IPv4-mapped IPv6 addresses as IPv4.
std::string AddressText(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof(buf));
  } else if (sa->sa_family == AF_INET6) {
    const auto* a6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
      ::inet_ntop(AF_INET, &a6->sin6_addr.s6_addr[12], buf, sizeof(buf));
    } else {
      ::inet_ntop(AF_INET6, &a6->sin6_addr, buf, sizeof(buf));
    }
  }
  return buf;
}

// The inode of the socket open as `fd` (0 when `fd` is not open): tells a
// socket from a later one that reuses its descriptor number.
uint64_t SocketInode(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_ino) : 0;
}

// Writes what the socket takes now of `data` (answers written here are
// small and the socket's send buffer is empty).
void SendNow(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return;
    }
  }
}

// Threads running queued jobs in order: `start` of them from the outset,
// more when a job finds no idle thread, up to `max`; idle threads wait for
// the next job until Stop. The handler pool is a fixed set (start = max);
// stream functions (HttpReply::stream) get a thread each as they come (the
// server admits at most max_streams streams at once, so a stream never
// waits for a busy thread).
class JobThreads {
 public:
  JobThreads(int start, int max) : max_(static_cast<size_t>(max)) {
    for (int i = 0; i < start; ++i) workers_.emplace_back([this] { Loop(); });
  }
  ~JobThreads() { Stop(); }
  // Queues `job`, starting a thread when none is idle. False (the job is
  // dropped) when a thread was needed and could not be started.
  bool Submit(std::function<void()> job) {
    std::lock_guard lock(mu_);
    if (idle_ <= jobs_.size() && workers_.size() < max_) {
      try {
        workers_.emplace_back([this] { Loop(); });
      } catch (const std::system_error& e) {
        spdlog::warn("http: cannot start a stream thread: {}", e.what());
        return false;
      }
    }
    jobs_.push_back(std::move(job));
    cv_.notify_one();
    return true;
  }
  // Runs the queued jobs, then joins the threads.
  void Stop() {
    std::vector<std::thread> workers;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      workers.swap(workers_);
    }
    cv_.notify_all();
    for (std::thread& t : workers) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        ++idle_;
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        --idle_;
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  const size_t max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  size_t idle_ = 0;  // threads waiting for a job
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

// A connection handed to an event thread. Fields after `ip` are guarded by
// Impl::mu.
struct Conn {
  int fd = -1;
  uint64_t inode = 0;
  std::string ip;
  // kHead: waiting for or reading a request line and headers; kBody: its
  // body; kHandling: its handler runs; kAnswering: the answer is being sent.
  enum class Phase { kHead, kBody, kHandling, kAnswering } phase = Phase::kHead;
  Clock::time_point deadline = kNoDeadline;  // when the head or body must be complete
  bool request_started = false;              // bytes of a request arrived: a 408 is meaningful
  bool swept = false;                        // the guard shut it down
  bool drain_on_close = false;               // a request was answered before its body arrived
  bool half_closed = false;                  // the last sweep saw the client's end, nothing unread
  bool released = false;                     // no longer counted in the connection limits
};

// One streamed answer, shared by its stream thread (the writer), the event
// thread (the content reader), the request (OnCompleted) and Stop. Fields
// are guarded by `mu`.
struct StreamState {
  std::mutex mu;
  std::condition_variable room;  // the buffer shrank, or the stream can no longer be written
  std::string buffer;            // written, not yet taken by the connection
  MHD_Connection* connection = nullptr;  // set before the response is queued
  std::shared_ptr<Conn> conn;            // its socket, for cutting it
  // The reader suspended the connection for want of data: whoever clears
  // this resumes it (a write, the stream's end, Stop).
  bool suspended = false;
  bool finished = false;   // the stream function returned: end the body once drained
  bool failed = false;     // it threw: once drained, close the connection without the final chunk
  bool gone = false;       // the request ended, or a write gave up: writes fail
  bool cancelled = false;  // the server stops: writes fail, the connection closes
  uint64_t handed = 0;     // body bytes taken by the connection (access log)
};

// libmicrohttpd's content reader of a streamed answer; `cls` is a
// std::shared_ptr<StreamState>*. Runs on the connection's event thread.
ssize_t StreamRead(void* cls, uint64_t /*pos*/, char* buf, size_t max) {
  StreamState& s = **static_cast<std::shared_ptr<StreamState>*>(cls);
  std::lock_guard lock(s.mu);
  if (s.cancelled || s.gone) return MHD_CONTENT_READER_END_WITH_ERROR;
  if (!s.buffer.empty()) {
    const size_t n = std::min(max, s.buffer.size());
    std::memcpy(buf, s.buffer.data(), n);
    s.buffer.erase(0, n);
    s.handed += n;
    s.room.notify_all();
    return static_cast<ssize_t>(n);
  }
  // What was written went out; a producer that threw ends without the
  // final chunk (libmicrohttpd closes the connection).
  if (s.failed) return MHD_CONTENT_READER_END_WITH_ERROR;
  if (s.finished) return MHD_CONTENT_READER_END_OF_STREAM;
  // Nothing to send yet: wait, out of the event loop, for the next write.
  // Suspending here, under the lock, before the flag is seen, guarantees
  // that the one who clears the flag resumes a suspended connection.
  MHD_suspend_connection(s.connection);
  s.suspended = true;
  return 0;
}

// libmicrohttpd is done with a streamed answer's reader (the response is
// released: the body ended, or the connection closed).
void StreamFree(void* cls) {
  auto* holder = static_cast<std::shared_ptr<StreamState>*>(cls);
  {
    std::lock_guard lock((*holder)->mu);
    (*holder)->gone = true;
  }
  (*holder)->room.notify_all();
  delete holder;
}

// A new connection the guard holds until its first head is complete.
struct Pending {
  std::string ip;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  Clock::time_point accepted;
  size_t peeked = 0;  // bytes seen in the receive queue
  int peeks = 0;      // times the receive queue was peeked at
};

// One request on an event thread (libmicrohttpd's per-request pointer).
struct CompiledRoute;

struct Request {
  std::shared_ptr<Conn> conn;
  HttpRequest http;
  std::string coding;  // Content-Encoding to undo, "" = identity
  bool accepts_gzip = false;
  Clock::time_point started;
  uint64_t wire_bytes = 0;
  bool over_limit = false;  // the body passed max_body_bytes: the rest is dropped, 413 at the end
  bool body_done = false;   // the whole body arrived (the access handler's final call)
  bool dispatched = false;
  // Set once the routes were matched on the event thread (Dispatch): the
  // route, or null for none; `http.captures` hold its groups. The handler
  // pool then does not match again.
  std::optional<const CompiledRoute*> route;
  std::atomic<bool> reply_ready{false};
  HttpReply reply;  // written by the handler pool before reply_ready
  // A streamed answer's state, set with `reply` (null otherwise).
  std::shared_ptr<StreamState> stream;
  bool answered = false;
  int status = 0;
  uint64_t response_bytes = 0;
};

struct CompiledRoute {
  std::string method;
  std::string literal_prefix;  // server::RouteLiteralPrefix of the pattern
  std::regex pattern;
  std::shared_ptr<server::RouteHandler> handler;
  std::shared_ptr<server::AsyncRouteHandler> async;  // set: the route answers through a ReplySink
  std::function<bool(const HttpRequest&)> start_inline;
};

}  // namespace

struct HttpServer::Impl {
  InferenceService* service = nullptr;
  std::unique_ptr<InferenceService> owned_service;  // the Grid* constructor's
  HttpServerOptions options;
  server::HeadLimits limits;
  std::vector<CompiledRoute> routes;
  Status route_error;  // an extra route whose pattern does not compile (Bind reports it)
  int handler_threads = 0;
  int io_threads = 0;

  // Lifecycle (life_mu).
  std::mutex life_mu;
  std::condition_variable life_cv;
  int listen_fd = -1;
  int port = 0;
  bool bound = false;
  bool ran = false;
  bool running = false;
  bool stop_requested = false;

  // Shared by the guard, the event threads and the handler pool (mu).
  std::mutex mu;
  std::condition_variable drained;                       // active_requests or handlers_running fell
  std::unordered_map<int, std::shared_ptr<Conn>> conns;  // handed to event threads, by socket
  std::unordered_map<std::string, int> per_client;       // open connections by address
  int open_connections = 0;
  int active_requests = 0;   // headers received, not yet completed
  int handlers_running = 0;  // suspended connections whose handler runs
  bool no_more_handlers = false;
  // Streamed answers whose request has not ended (for Stop), the stream
  // functions running, and whether new ones are refused (Stop began).
  std::unordered_map<StreamState*, std::shared_ptr<StreamState>> streams;
  int streams_running = 0;
  bool streams_closed = false;
  std::vector<int> linger_inbox;  // dup'ed sockets to drain, from event threads
  std::atomic<int> lingering{0};
  std::atomic<bool> stopping{false};  // answers carry Connection: close

  std::vector<MHD_Daemon*> daemons;
  size_t next_daemon = 0;
  std::unique_ptr<JobThreads> pool;
  std::unique_ptr<JobThreads> stream_threads;

  // The guard thread and its own state.
  std::thread guard;
  int epoll_fd = -1;
  int wake_fd = -1;
  std::atomic<bool> stop_listening{false};
  std::atomic<bool> guard_exit{false};
  std::unordered_map<int, Pending> pending;
  std::unordered_map<int, Clock::time_point> linger_deadlines;
  std::vector<char> scratch;
  Clock::time_point accept_paused_until{};
  Clock::time_point last_sweep{};

  Status Validate() const;
  void CompileRoutes();
  Status Start();
  void Shutdown();
  void Wake();

  // Guard.
  void GuardLoop();
  void AcceptAll();
  void Examine(int fd, bool peer_closed, bool on_tick = false);
  void HandOver(int fd);
  void Refuse(int fd, int status, const std::string& message, const std::string& method,
              const std::string& path, Clock::time_point since, const Headers& extra = {});
  void ClosePending(int fd);
  void StartLinger(int fd);
  void DrainLinger(int fd);
  void Sweep();
  void Release(Conn& conn);                    // mu held
  void ReleaseAddress(const std::string& ip);  // mu held
  void Log(AccessRecord record) const;

  // Event threads.
  MHD_Result OnAccess(MHD_Connection* c, const char* url, const char* method,
                      const char* upload_data, size_t* upload_size, void** req_cls);
  MHD_Result Begin(MHD_Connection* c, Request* r, const char* url, const char* method);
  MHD_Result Answer(MHD_Connection* c, Request* r, HttpReply reply, bool close);
  MHD_Result Dispatch(MHD_Connection* c, Request* r);
  void OnCompleted(Request* r);
  void OnConnection(MHD_Connection* c, void** socket_context, MHD_ConnectionNotificationCode toe);
  void OnRequestLine(MHD_Connection* c);

  // Handler pool.
  void Handle(Request* r, MHD_Connection* c);
  std::optional<HttpReply> Process(Request& r, const CompiledRoute** async_route);
  const CompiledRoute* Match(Request& r);
  bool NeedsCompression(const Request& r, const HttpReply& reply) const;
  void Compress(const Request& r, HttpReply& reply) const;
  void Resume(Request* r, MHD_Connection* c, HttpReply reply);

  // Asynchronous handlers (Route::async).
  struct AsyncCall;
  std::optional<HttpReply> StartAsync(Request* r, MHD_Connection* c, const CompiledRoute& route,
                                      bool on_event_thread);
  // Marks `call` answered; false (the second answer is logged and dropped)
  // when it was already.
  bool ClaimAnswer(AsyncCall& call, const char* what);
  void Deliver(const std::shared_ptr<AsyncCall>& call, HttpReply reply);
  void DeliverLater(const std::shared_ptr<AsyncCall>& call, std::function<HttpReply()> make);
  void Complete(AsyncCall& call, HttpReply reply);

  // Streamed answers.
  void RunStream(const std::shared_ptr<StreamState>& s,
                 std::function<void(const server::BodyWriter&)> stream);
  bool StreamWrite(StreamState& s, std::string_view piece);
  void CutConnection(const StreamState& s);
  void CancelStreams();

  // libmicrohttpd's callbacks; `cls` is the Impl.
  static MHD_Result AccessCb(void* cls, MHD_Connection* c, const char* url, const char* method,
                             const char* version, const char* upload_data, size_t* upload_size,
                             void** req_cls);
  static void CompletedCb(void* cls, MHD_Connection* c, void** req_cls,
                          MHD_RequestTerminationCode toe);
  static void ConnectionCb(void* cls, MHD_Connection* c, void** socket_context,
                           MHD_ConnectionNotificationCode toe);
  static void* RequestLineCb(void* cls, const char* uri, MHD_Connection* c);
  static void LogCb(void* cls, const char* fmt, va_list ap);
};

// One request answered by an asynchronous handler (Route::async), shared by
// the thread that started the handler and the copies of its ReplySink.
// `starting` is true while the starting thread runs the handler: an answer
// given meanwhile is left in `early` for it (an event thread then answers
// without suspending the connection); afterwards the answer resumes the
// suspended connection. Fields after `mu` are guarded by it.
struct HttpServer::Impl::AsyncCall {
  Impl* impl = nullptr;
  Request* r = nullptr;
  MHD_Connection* c = nullptr;
  std::mutex mu;
  bool starting = true;
  bool delivered = false;  // send or build was called
  std::optional<HttpReply> early;
  ~AsyncCall();
};

// ---------------------------------------------------------------------------
// Options, routes, start and stop.

Status HttpServer::Impl::Validate() const {
  const HttpServerOptions& o = options;
  auto range = [](const std::string& name, int64_t value, int64_t min, int64_t max) -> Status {
    if (value < min || value > max) {
      return Status::InvalidArgument("HttpServerOptions." + name + " is " + std::to_string(value) +
                                     ", not in " + std::to_string(min) + ".." +
                                     std::to_string(max));
    }
    return Status::Ok();
  };
  if (o.port < 0 || o.port > 65535) {
    return Status::InvalidArgument("HTTP port " + std::to_string(o.port) + " is not in 0..65535");
  }
  if (o.max_body_bytes == 0)
    return Status::InvalidArgument("HttpServerOptions.max_body_bytes is 0");
  MG_RETURN_IF_ERROR(
      range("max_header_bytes",
            static_cast<int64_t>(std::min<uint64_t>(o.max_header_bytes, uint64_t{1} << 40)), 1024,
            65536));
  MG_RETURN_IF_ERROR(range("max_headers", o.max_headers, 1, 10000));
  MG_RETURN_IF_ERROR(range("header_timeout (ms)", o.header_timeout.count(), 1, 86'400'000));
  MG_RETURN_IF_ERROR(range("body_timeout (ms)", o.body_timeout.count(), 1, 86'400'000));
  MG_RETURN_IF_ERROR(range("idle_timeout (ms)", o.idle_timeout.count(), 1, 86'400'000));
  MG_RETURN_IF_ERROR(range("max_connections", o.max_connections, 1, 1'000'000));
  MG_RETURN_IF_ERROR(
      range("max_connections_per_client", o.max_connections_per_client, 0, 1'000'000));
  MG_RETURN_IF_ERROR(range("backlog", o.backlog, 1, 1'000'000));
  MG_RETURN_IF_ERROR(range("threads", o.threads, 0, 4096));
  MG_RETURN_IF_ERROR(range("io_threads", o.io_threads, 0, 64));
  MG_RETURN_IF_ERROR(range("max_streams", o.max_streams, 1, 65536));
  return route_error;
}

void HttpServer::Impl::CompileRoutes() {
  for (const HttpRoute& route : options.extra_routes) {
    try {
      routes.push_back({route.method, std::string(server::RouteLiteralPrefix(route.pattern)),
                        std::regex(route.pattern, std::regex::ECMAScript),
                        std::make_shared<server::RouteHandler>(route.handler), nullptr, nullptr});
    } catch (const std::regex_error& e) {
      if (route_error.ok()) {
        route_error = Status::InvalidArgument("HttpServerOptions.extra_routes: pattern '" +
                                              route.pattern + "' of " + route.method +
                                              " is not a valid regular expression: " + e.what());
      }
    }
  }
  for (server::Route& route : server::AllRoutes(service)) {
    routes.push_back({route.method, std::string(server::RouteLiteralPrefix(route.pattern)),
                      std::regex(route.pattern, std::regex::ECMAScript),
                      std::make_shared<server::RouteHandler>(std::move(route.handler)),
                      route.async ? std::make_shared<server::AsyncRouteHandler>(route.async)
                                  : nullptr,
                      std::move(route.start_inline)});
  }
}

void HttpServer::Impl::Wake() {
  const uint64_t one = 1;
  if (wake_fd >= 0) (void)!::write(wake_fd, &one, sizeof(one));
}

MHD_Result HttpServer::Impl::AccessCb(void* cls, MHD_Connection* c, const char* url,
                                      const char* method, const char* /*version*/,
                                      const char* upload_data, size_t* upload_size,
                                      void** req_cls) {
  return static_cast<Impl*>(cls)->OnAccess(c, url, method, upload_data, upload_size, req_cls);
}

void HttpServer::Impl::CompletedCb(void* cls, MHD_Connection* /*c*/, void** req_cls,
                                   MHD_RequestTerminationCode /*toe*/) {
  auto* r = static_cast<Request*>(*req_cls);
  *req_cls = nullptr;
  if (r) static_cast<Impl*>(cls)->OnCompleted(r);
}

void HttpServer::Impl::ConnectionCb(void* cls, MHD_Connection* c, void** socket_context,
                                    MHD_ConnectionNotificationCode toe) {
  static_cast<Impl*>(cls)->OnConnection(c, socket_context, toe);
}

void* HttpServer::Impl::RequestLineCb(void* cls, const char* /*uri*/, MHD_Connection* c) {
  static_cast<Impl*>(cls)->OnRequestLine(c);
  return nullptr;
}

void HttpServer::Impl::LogCb(void* /*cls*/, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string text(buf);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  spdlog::debug("libmicrohttpd: {}", text);
}

Status HttpServer::Impl::Start() {
  pool = std::make_unique<JobThreads>(handler_threads, handler_threads);
  stream_threads = std::make_unique<JobThreads>(0, options.max_streams);
  const size_t pool_bytes = options.max_header_bytes +
                            static_cast<size_t>(options.max_headers) * kPoolPerHeaderBytes +
                            kPoolSlackBytes + kPoolBodyReadBytes;
  const auto idle_seconds = static_cast<unsigned>((options.idle_timeout.count() + 999) / 1000);
  // A backstop only: the guard counts connections before handing them over.
  const auto mhd_limit = static_cast<unsigned>(options.max_connections + 64);
  for (int i = 0; i < io_threads; ++i) {
    MHD_Daemon* d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                                         MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG,
                                     0, nullptr, nullptr, &AccessCb, this,               //
                                     MHD_OPTION_CONNECTION_LIMIT, mhd_limit,             //
                                     MHD_OPTION_CONNECTION_TIMEOUT, idle_seconds,        //
                                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool_bytes,     //
                                     MHD_OPTION_NOTIFY_COMPLETED, &CompletedCb, this,    //
                                     MHD_OPTION_NOTIFY_CONNECTION, &ConnectionCb, this,  //
                                     MHD_OPTION_URI_LOG_CALLBACK, &RequestLineCb, this,  //
                                     MHD_OPTION_EXTERNAL_LOGGER, &LogCb, this,           //
                                     MHD_OPTION_END);
    if (d == nullptr) {
      return Status::Internal("cannot start the HTTP event threads (libmicrohttpd " +
                              std::string(MHD_get_version()) + " refused its options)");
    }
    daemons.push_back(d);
  }
  epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd < 0 || wake_fd < 0) {
    return Status::Internal(std::string("cannot create the HTTP guard's epoll: ") +
                            std::strerror(errno));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wake_fd;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev);
  ev.data.fd = listen_fd;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
    return Status::Internal(std::string("cannot watch the listening socket: ") +
                            std::strerror(errno));
  }
  scratch.resize(options.max_header_bytes + 1);
  guard = std::thread([this] { GuardLoop(); });
  return Status::Ok();
}

void HttpServer::Impl::Shutdown() {
  stop_listening = true;
  stopping = true;
  Wake();
  // Streams in progress end now (writers fail, connections close); new
  // ones are refused (503).
  CancelStreams();
  {
    std::unique_lock lock(mu);
    drained.wait_until(lock, Clock::now() + kDrainIo,
                       [this] { return active_requests == 0 && handlers_running == 0; });
    // From here no connection is suspended anew; those suspended resume
    // when their handler ends (libmicrohttpd must not stop with one suspended).
    no_more_handlers = true;
    drained.wait(lock, [this] { return handlers_running == 0; });
    // Stream functions return once their writes fail (cancelled above). A
    // streamed answer's reader no longer suspends its connection.
    drained.wait(lock, [this] { return streams_running == 0; });
  }
  for (MHD_Daemon* d : daemons) MHD_stop_daemon(d);
  daemons.clear();
  guard_exit = true;
  Wake();
  if (guard.joinable()) guard.join();
  if (pool) pool->Stop();
  if (stream_threads) stream_threads->Stop();
  for (int fd : {epoll_fd, wake_fd, listen_fd}) {
    if (fd >= 0) ::close(fd);
  }
  epoll_fd = wake_fd = listen_fd = -1;
  for (int fd : linger_inbox) ::close(fd);
  linger_inbox.clear();
}

// ---------------------------------------------------------------------------
// The guard: accept, first heads, deadlines, lingering closes.

void HttpServer::Impl::GuardLoop() {
  epoll_event events[64];
  bool listening = true;
  last_sweep = Clock::now();
  while (!guard_exit) {
    const int n = ::epoll_wait(epoll_fd, events, 64, static_cast<int>(kTick.count()));
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd) {
        uint64_t v;
        (void)!::read(wake_fd, &v, sizeof(v));
      } else if (fd == listen_fd) {
        if (listening && !stop_listening) AcceptAll();
      } else if (pending.count(fd)) {
        Examine(fd, (events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
      } else if (linger_deadlines.count(fd)) {
        DrainLinger(fd);
      }
    }
    if (stop_listening && listening) {
      listening = false;
      ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
      ::shutdown(listen_fd, SHUT_RDWR);
      std::vector<int> fds;
      for (const auto& [fd, p] : pending) fds.push_back(fd);
      for (int fd : fds) ClosePending(fd);
    }
    if (listening && accept_paused_until != Clock::time_point{} &&
        Clock::now() >= accept_paused_until) {
      accept_paused_until = {};
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = listen_fd;
      ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, listen_fd, &ev);
    }
    {
      std::vector<int> inbox;
      {
        std::lock_guard lock(mu);
        inbox.swap(linger_inbox);
      }
      for (int fd : inbox) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.fd = fd;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
        linger_deadlines[fd] = Clock::now() + kLinger;
      }
    }
    if (Clock::now() - last_sweep >= kTick) {
      last_sweep = Clock::now();
      Sweep();
    }
  }
  std::vector<int> fds;
  for (const auto& [fd, p] : pending) fds.push_back(fd);
  for (int fd : fds) ClosePending(fd);
  for (const auto& [fd, deadline] : linger_deadlines) ::close(fd);
  lingering -= static_cast<int>(linger_deadlines.size());
  linger_deadlines.clear();
}

void HttpServer::Impl::AcceptAll() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    const int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      // Out of descriptors or memory: stop watching the socket for a tick
      // rather than spin; the clients wait in the backlog.
      spdlog::warn("http: accept failed: {} (pausing accepts for {} ms)", std::strerror(errno),
                   kTick.count());
      accept_paused_until = Clock::now() + kTick;
      epoll_event ev{};
      ev.data.fd = listen_fd;
      ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, listen_fd, &ev);
      return;
    }
    const Clock::time_point now = Clock::now();
    const std::string ip = AddressText(reinterpret_cast<const sockaddr*>(&addr));
    std::string refusal;
    {
      std::lock_guard lock(mu);
      int& from_client = per_client[ip];
      if (open_connections >= options.max_connections) {
        refusal = "the server has " + std::to_string(open_connections) +
                  " connections open, its limit (--http-max-connections " +
                  std::to_string(options.max_connections) + "); retry later";
      } else if (options.max_connections_per_client > 0 &&
                 from_client >= options.max_connections_per_client) {
        refusal = "too many connections from " + ip + ": " + std::to_string(from_client) +
                  " open, the limit per client is " +
                  std::to_string(options.max_connections_per_client) +
                  " (--http-max-connections-per-client)";
      } else {
        ++open_connections;
        ++from_client;
      }
      if (from_client == 0) per_client.erase(ip);
    }
    if (!refusal.empty()) {
      Refuse(fd, 503, refusal, "", "", now, {{"Retry-After", "1"}});
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Pending& p = pending[fd];
    p.ip = ip;
    p.addr = addr;
    p.addr_len = len;
    p.accepted = now;
    epoll_event ev{};
    // Edge-triggered: the head is peeked, not read, so a level-triggered
    // watch would report it again at once; an edge comes with each arrival.
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    Examine(fd, false);
  }
}

void HttpServer::Impl::Examine(int fd, bool peer_closed, bool on_tick) {
  auto it = pending.find(fd);
  if (it == pending.end()) return;
  Pending& p = it->second;
  if (!on_tick && !peer_closed && p.peeks >= kEagerPeeks) return;  // the sweep looks
  ++p.peeks;
  const ssize_t n = ::recv(fd, scratch.data(), scratch.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    ClosePending(fd);  // closed or reset before a whole head
    return;
  }
  if (n < 0) return;
  p.peeked = static_cast<size_t>(n);
  const std::string_view data(scratch.data(), static_cast<size_t>(n));
  const size_t end = server::FindHeadEnd(data);
  if (end == std::string_view::npos) {
    if (data.size() > options.max_header_bytes) {
      const server::HeadRefusal r = server::HeadTooLarge(options.max_header_bytes);
      Refuse(fd, r.status, r.message, "", "", p.accepted);
    } else if (peer_closed) {
      ClosePending(fd);  // the client stopped sending before the head ended
    }
    return;
  }
  auto head = server::ParseRequestHead(data.substr(0, end));
  if (!head.ok()) {
    Refuse(fd, 400, "malformed request head: " + head.status().message(), "", "", p.accepted);
    return;
  }
  std::string path = head->target.substr(0, head->target.find('?'));
  std::optional<server::HeadRefusal> refusal = server::CheckVersion(head->version);
  if (!refusal) refusal = server::CheckHeadSize(head->headers.size(), end, limits);
  if (!refusal) refusal = server::CheckFraming(head->headers);
  if (refusal) {
    Refuse(fd, refusal->status, refusal->message, head->method, path, p.accepted);
    return;
  }
  HandOver(fd);
}

void HttpServer::Impl::HandOver(int fd) {
  Pending p = std::move(pending.at(fd));
  pending.erase(fd);
  ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  auto conn = std::make_shared<Conn>();
  conn->fd = fd;
  conn->inode = SocketInode(fd);
  conn->ip = p.ip;
  conn->deadline = p.accepted + options.header_timeout;
  conn->request_started = true;
  {
    std::lock_guard lock(mu);
    conns[fd] = conn;
  }
  MHD_Daemon* d = daemons[next_daemon++ % daemons.size()];
  if (MHD_add_connection(d, fd, reinterpret_cast<const sockaddr*>(&p.addr), p.addr_len) !=
      MHD_YES) {
    // libmicrohttpd closed the socket; its close notice may have come or not.
    spdlog::warn("http: cannot hand a connection from {} to an event thread: {}", p.ip,
                 std::strerror(errno));
    std::lock_guard lock(mu);
    auto it = conns.find(fd);
    if (it != conns.end() && it->second == conn) {
      Release(*conn);
      conns.erase(it);
    }
  }
}

void HttpServer::Impl::Refuse(int fd, int status, const std::string& message,
                              const std::string& method, const std::string& path,
                              Clock::time_point since, const Headers& extra) {
  const std::string body = ErrorBody(message);
  SendNow(fd, server::SerializeClosingResponse(status, body, extra));
  spdlog::debug("http {} {} -> {} ({})", method, path, status, message);
  AccessRecord record;
  if (auto it = pending.find(fd); it != pending.end()) record.remote_address = it->second.ip;
  record.method = method;
  record.path = path;
  record.status = status;
  record.response_bytes = body.size();
  record.duration_us = Micros(Clock::now() - since);
  if (record.remote_address.empty()) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      record.remote_address = AddressText(reinterpret_cast<const sockaddr*>(&addr));
    }
  }
  Log(std::move(record));
  if (auto it = pending.find(fd); it != pending.end()) {
    {
      std::lock_guard lock(mu);
      ReleaseAddress(it->second.ip);
    }
    pending.erase(it);
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  }
  StartLinger(fd);
}

void HttpServer::Impl::ClosePending(int fd) {
  auto it = pending.find(fd);
  if (it == pending.end()) return;
  {
    std::lock_guard lock(mu);
    ReleaseAddress(it->second.ip);
  }
  pending.erase(it);
  ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
}

// After an answer to a client that may still be sending: drop what it sent,
// end our side (FIN after the answer), and keep reading for up to kLinger so
// that closing with unread bytes does not reset the connection under the
// answer. Past max_connections lingering sockets, closes at once.
void HttpServer::Impl::StartLinger(int fd) {
  if (lingering.load() >= options.max_connections) {
    ::close(fd);
    return;
  }
  ++lingering;
  ::shutdown(fd, SHUT_WR);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = fd;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
  linger_deadlines[fd] = Clock::now() + kLinger;
  DrainLinger(fd);
}

void HttpServer::Impl::DrainLinger(int fd) {
  // Bounded per wake-up so one fast sender cannot hold the guard; the
  // socket stays readable and comes back in the next epoll_wait.
  for (int i = 0;; ++i) {
    if (i == 16) return;
    const ssize_t n = ::recv(fd, scratch.data(), scratch.size(), MSG_DONTWAIT);
    if (n > 0) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    break;  // end of stream or error: done
  }
  if (linger_deadlines.erase(fd) > 0) {
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    --lingering;
  }
}

void HttpServer::Impl::Sweep() {
  const Clock::time_point now = Clock::now();
  // New connections whose first head is late: 408 when some of it came.
  // Those that trickled past kEagerPeeks are looked at here.
  std::vector<int> late, trickling;
  for (const auto& [fd, p] : pending) {
    if (now >= p.accepted + options.header_timeout) {
      late.push_back(fd);
    } else if (p.peeks >= kEagerPeeks) {
      trickling.push_back(fd);
    }
  }
  for (int fd : trickling) Examine(fd, false, /*on_tick=*/true);
  for (int fd : late) {
    const Pending& p = pending.at(fd);
    if (p.peeked == 0) {
      ClosePending(fd);
    } else {
      Refuse(fd, 408,
             "request line and headers not complete after " + DurationText(options.header_timeout) +
                 " (--http-header-timeout)",
             "", "", p.accepted);
    }
  }
  // Connections of the event threads past a header or body deadline.
  std::vector<AccessRecord> records;  // answers written here, logged after the lock
  // Answers `status` with `message` (JSON error body, Connection: close)
  // when the connection had begun a request, records it, and shuts the
  // socket down; the event thread then closes it.
  auto AnswerAndShutDown = [&](int fd, Conn& conn, int status, const std::string& message) {
    if (conn.phase == Conn::Phase::kBody || conn.request_started) {
      const std::string error = ErrorBody(message);
      SendNow(fd, server::SerializeClosingResponse(status, error));
      AccessRecord record;
      record.remote_address = conn.ip;
      record.status = status;
      record.response_bytes = error.size();
      records.push_back(std::move(record));
    }
    ::shutdown(fd, SHUT_RDWR);
    conn.swept = true;
  };
  {
    std::lock_guard lock(mu);
    for (auto& [fd, conn] : conns) {
      if (conn->swept) continue;
      if (conn->deadline > now) {
        // libmicrohttpd 0.9.75 watches its sockets edge-triggered and stops
        // reading after a short read: a client that sent its last bytes and
        // its FIN together is never seen to end. Seen here instead: the
        // client's end arrived, nothing is left unread, and no request is
        // being handled or answered, twice in a row (a tick apart).
        if (conn->phase != Conn::Phase::kHead && conn->phase != Conn::Phase::kBody) {
          conn->half_closed = false;
          continue;
        }
        pollfd p{fd, POLLRDHUP, 0};
        int unread = 0;
        const bool ended = ::poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP)) &&
                           ::ioctl(fd, FIONREAD, &unread) == 0 && unread == 0;
        if (!ended || !conn->half_closed) {
          conn->half_closed = ended;
          continue;
        }
        if (SocketInode(fd) != conn->inode) continue;
        AnswerAndShutDown(fd, *conn, 400,
                          conn->phase == Conn::Phase::kBody
                              ? "the client closed its side before the request body ended"
                              : "the client closed its side before the request headers ended");
        continue;
      }
      if (SocketInode(fd) != conn->inode) continue;  // not the same socket (cannot happen)
      AnswerAndShutDown(fd, *conn, 408,
                        conn->phase == Conn::Phase::kBody
                            ? "request body not complete after " +
                                  DurationText(options.body_timeout) + " (--http-body-timeout)"
                            : "request line and headers not complete after " +
                                  DurationText(options.header_timeout) +
                                  " (--http-header-timeout)");
    }
  }
  for (AccessRecord& r : records) Log(std::move(r));
  // Lingering sockets past their time.
  std::vector<int> expired;
  for (const auto& [fd, deadline] : linger_deadlines) {
    if (now >= deadline) expired.push_back(fd);
  }
  for (int fd : expired) {
    linger_deadlines.erase(fd);
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    --lingering;
  }
}

void HttpServer::Impl::ReleaseAddress(const std::string& ip) {
  --open_connections;
  auto it = per_client.find(ip);
  if (it != per_client.end() && --it->second <= 0) per_client.erase(it);
}

void HttpServer::Impl::Release(Conn& conn) {
  if (conn.released) return;
  conn.released = true;
  ReleaseAddress(conn.ip);
}

void HttpServer::Impl::Log(AccessRecord record) const {
  if (!options.access_log) return;
  try {
    options.access_log(record);
  } catch (...) {
    // The hook must not throw; an exception must not take a server thread down.
  }
}

// ---------------------------------------------------------------------------
// Event threads (libmicrohttpd callbacks).

void HttpServer::Impl::OnConnection(MHD_Connection* c, void** socket_context,
                                    MHD_ConnectionNotificationCode toe) {
  const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  const int fd = info ? info->connect_fd : -1;
  std::lock_guard lock(mu);
  auto it = conns.find(fd);
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    *socket_context = it != conns.end() ? it->second.get() : nullptr;
    return;
  }
  // MHD_CONNECTION_NOTIFY_CLOSED: called before libmicrohttpd closes the socket.
  if (it == conns.end() || (*socket_context != nullptr && it->second.get() != *socket_context)) {
    return;
  }
  Conn& conn = *it->second;
  int unread = 0;
  ::ioctl(fd, FIONREAD, &unread);
  const bool mid_request =
      conn.phase == Conn::Phase::kBody || conn.request_started || conn.drain_on_close;
  if ((unread > 0 || mid_request) && !conn.swept && lingering.load() < options.max_connections &&
      SocketInode(fd) == conn.inode) {
    const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (copy >= 0) {
      ::shutdown(copy, SHUT_WR);
      linger_inbox.push_back(copy);
      ++lingering;
      Wake();
    }
  }
  Release(conn);
  conns.erase(it);
  *socket_context = nullptr;
}

void HttpServer::Impl::OnRequestLine(MHD_Connection* c) {
  const MHD_ConnectionInfo* info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  auto* conn = info ? static_cast<Conn*>(info->socket_context) : nullptr;
  if (!conn) return;
  std::lock_guard lock(mu);
  conn->request_started = true;
  conn->deadline = std::min(conn->deadline, Clock::now() + options.header_timeout);
}

MHD_Result HttpServer::Impl::OnAccess(MHD_Connection* c, const char* url, const char* method,
                                      const char* upload_data, size_t* upload_size,
                                      void** req_cls) {
  auto* r = static_cast<Request*>(*req_cls);
  if (r == nullptr) {
    r = new Request();
    *req_cls = r;
    return Begin(c, r, url, method);
  }
  if (r->answered) {
    *upload_size = 0;  // answered early: nothing more is kept
    return MHD_YES;
  }
  if (*upload_size > 0) {
    r->wire_bytes += *upload_size;
    if (!r->over_limit && r->http.body.size() + *upload_size > options.max_body_bytes) {
      r->over_limit = true;  // drop the rest as it comes, answer 413 at the end
      std::string().swap(r->http.body);
    }
    if (!r->over_limit) r->http.body.append(upload_data, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  r->body_done = true;
  if (r->reply_ready.load(std::memory_order_acquire)) {
    return Answer(c, r, std::move(r->reply), /*close=*/false);
  }
  if (r->dispatched) return MHD_YES;
  if (r->over_limit) {
    return Answer(c, r,
                  server::ErrorReply(413, server::BodyTooLargeMessage(options.max_body_bytes)),
                  /*close=*/false);
  }
  return Dispatch(c, r);
}

MHD_Result HttpServer::Impl::Begin(MHD_Connection* c, Request* r, const char* url,
                                   const char* method) {
  r->started = Clock::now();
  r->http.method = method ? method : "";
  r->http.path = url ? url : "";
  MHD_get_connection_values(
      c, MHD_HEADER_KIND,
      [](void* cls, MHD_ValueKind, const char* key, const char* value) -> MHD_Result {
        static_cast<Headers*>(cls)->emplace_back(key ? key : "", value ? value : "");
        return MHD_YES;
      },
      &r->http.headers);
  MHD_get_connection_values(
      c, MHD_GET_ARGUMENT_KIND,
      [](void* cls, MHD_ValueKind, const char* key, const char* value) -> MHD_Result {
        if (key) (*static_cast<std::map<std::string, std::string>*>(cls))[key] = value ? value : "";
        return MHD_YES;
      },
      &r->http.query);
  const Headers& headers = r->http.headers;
  const std::optional<std::string> length = server::FindHeader(headers, "Content-Length");
  const bool has_body =
      (length && *length != "0") || server::FindHeader(headers, "Transfer-Encoding").has_value();
  if (length) {
    // Room for the body up front, but not more than 1 MiB on a client's word.
    const uint64_t announced = std::strtoull(length->c_str(), nullptr, 10);
    if (announced <= options.max_body_bytes) {
      r->http.body.reserve(static_cast<size_t>(std::min<uint64_t>(announced, 1 << 20)));
    }
  }
  const MHD_ConnectionInfo* ctx = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  {
    std::lock_guard lock(mu);
    ++active_requests;
    auto* conn = ctx ? static_cast<Conn*>(ctx->socket_context) : nullptr;
    if (conn) {
      auto it = conns.find(conn->fd);
      if (it != conns.end() && it->second.get() == conn) r->conn = it->second;
    }
    if (r->conn) {
      r->conn->phase = Conn::Phase::kBody;
      r->conn->request_started = true;
      r->conn->deadline = has_body ? r->started + options.body_timeout : kNoDeadline;
    }
  }
  // Later requests on a keep-alive connection were not seen by the guard.
  const MHD_ConnectionInfo* size_info =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
  uint64_t head_bytes = size_info ? size_info->header_size : 0;
  if (!size_info) {
    head_bytes = r->http.method.size() + r->http.path.size() + 12;
    for (const auto& [k, v] : headers) head_bytes += k.size() + v.size() + 4;
  }
  std::optional<server::HeadRefusal> refusal =
      server::CheckHeadSize(headers.size(), head_bytes, limits);
  if (!refusal) refusal = server::CheckFraming(headers);
  if (!refusal) {
    const std::string type = server::FindHeader(headers, "Content-Type").value_or("");
    if (type.rfind("multipart/form-data", 0) == 0) {
      refusal = server::HeadRefusal{415, "multipart bodies are not accepted: send JSON"};
    }
  }
  if (!refusal) {
    if (auto coding = server::FindHeader(headers, "Content-Encoding");
        coding && !coding->empty() && ::strcasecmp(coding->c_str(), "identity") != 0) {
      auto inflater = server::BodyInflater::Create(*coding);
      if (!inflater.ok()) {
        refusal = server::HeadRefusal{415, inflater.status().message()};
      } else {
        r->coding = *coding;
      }
    }
  }
  if (!refusal && length && std::strtoull(length->c_str(), nullptr, 10) > options.max_body_bytes) {
    refusal = server::HeadRefusal{413, server::BodyTooLargeMessage(options.max_body_bytes)};
  }
  if (refusal) {
    return Answer(c, r, server::ErrorReply(refusal->status, refusal->message), /*close=*/true);
  }
  r->accepts_gzip =
      options.compress_responses &&
      server::AcceptsGzip(server::FindHeader(headers, "Accept-Encoding").value_or(""));
  return MHD_YES;
}

MHD_Result HttpServer::Impl::Dispatch(MHD_Connection* c, Request* r) {
  {
    std::lock_guard lock(mu);
    if (!no_more_handlers) {
      ++handlers_running;
      r->dispatched = true;
      if (r->conn) {
        r->conn->phase = Conn::Phase::kHandling;
        r->conn->deadline = kNoDeadline;
      }
    }
  }
  if (!r->dispatched) {
    return Answer(c, r, server::ErrorReply(503, "server is shutting down"), /*close=*/true);
  }
  // An asynchronous route that may start here (a plain body, a quick
  // start): no handler-pool thread on the way in or out.
  if (r->coding.empty()) {
    const CompiledRoute* route = nullptr;
    try {
      r->route = route = Match(*r);
      if (route && (!route->async || !route->start_inline || !route->start_inline(r->http))) {
        route = nullptr;
      }
    } catch (...) {
      route = nullptr;  // the handler pool answers it (500)
    }
    if (route) {
      std::optional<HttpReply> early = StartAsync(r, c, *route, /*on_event_thread=*/true);
      if (!early) return MHD_YES;  // suspended until the answer
      {
        std::lock_guard lock(mu);
        --handlers_running;
      }
      drained.notify_all();
      return Answer(c, r, std::move(*early), /*close=*/false);
    }
  }
  MHD_suspend_connection(c);
  pool->Submit([this, r, c] { Handle(r, c); });
  return MHD_YES;
}

MHD_Result HttpServer::Impl::Answer(MHD_Connection* c, Request* r, HttpReply reply, bool close) {
  MHD_Response* response = nullptr;
  uint64_t body_bytes = 0;
  if (r->stream) {
    // A streamed body: chunked (size unknown), taken from the stream's
    // buffer as the stream thread writes it.
    {
      std::lock_guard lock(r->stream->mu);
      r->stream->connection = c;
    }
    auto* holder = new std::shared_ptr<StreamState>(r->stream);
    response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, kStreamBlockBytes, &StreamRead,
                                                 holder, &StreamFree);
    if (response == nullptr) {
      StreamFree(holder);  // the stream's writes fail; the request ends below
      return MHD_NO;
    }
  } else {
    auto* body = new std::string(std::move(reply.body));
    body_bytes = body->size();
    response = MHD_create_response_from_buffer_with_free_callback_cls(
        body->size(), body->data(), [](void* p) { delete static_cast<std::string*>(p); }, body);
    if (response == nullptr) {
      delete body;
      return MHD_NO;
    }
  }
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, reply.content_type.c_str());
  for (const auto& [name, value] : reply.headers) {
    MHD_add_response_header(response, name.c_str(), value.c_str());
  }
  if (close || stopping.load()) {
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
  }
  r->answered = true;
  r->status = reply.status;
  r->response_bytes = body_bytes;
  const MHD_Result queued = MHD_queue_response(c, static_cast<unsigned>(reply.status), response);
  MHD_destroy_response(response);
  if (r->conn) {
    std::lock_guard lock(mu);
    // The answer is being written: the idle timeout watches it. A body
    // answered before it arrived (413) is drained at the close
    // (drain_on_close, set when the request completes).
    r->conn->deadline = kNoDeadline;
    r->conn->phase = Conn::Phase::kAnswering;
  }
  return queued;
}

void HttpServer::Impl::OnCompleted(Request* r) {
  const Clock::time_point now = Clock::now();
  if (r->stream) {
    // The request ended (body complete, client gone, timed out, cut): the
    // stream's writes fail from now on.
    {
      std::lock_guard lock(r->stream->mu);
      r->stream->gone = true;
      r->response_bytes = r->stream->handed;
    }
    r->stream->room.notify_all();
  }
  if (r->answered) {
    spdlog::debug("http {} {} -> {}", r->http.method, r->http.path, r->status);
    AccessRecord record;
    record.remote_address = r->conn ? r->conn->ip : "";
    record.method = r->http.method;
    record.path = r->http.path;
    record.status = r->status;
    record.request_body_bytes = r->wire_bytes;
    record.response_bytes = r->response_bytes;
    record.duration_us = Micros(now - r->started);
    Log(std::move(record));
  }
  {
    std::lock_guard lock(mu);
    --active_requests;
    if (r->stream) streams.erase(r->stream.get());
    if (r->conn && !r->conn->released) {
      // Until the next request line: the idle timeout, then header_timeout.
      r->conn->phase = Conn::Phase::kHead;
      r->conn->request_started = false;
      r->conn->deadline = now + options.idle_timeout + options.header_timeout;
      if (!r->body_done) r->conn->drain_on_close = true;
    }
  }
  drained.notify_all();
  delete r;
}

// ---------------------------------------------------------------------------
// Handler pool.

void HttpServer::Impl::Handle(Request* r, MHD_Connection* c) {
  const CompiledRoute* async_route = nullptr;
  std::optional<HttpReply> processed = Process(*r, &async_route);
  if (!processed) {
    // The connection stays suspended until the answer.
    if (auto early = StartAsync(r, c, *async_route, /*on_event_thread=*/false)) {
      Resume(r, c, std::move(*early));
    }
    return;
  }
  HttpReply reply = std::move(*processed);
  std::function<void(const server::BodyWriter&)> stream = std::move(reply.stream);
  reply.stream = nullptr;
  std::shared_ptr<StreamState> state;
  if (stream) {
    reply.body.clear();
    if (r->http.method == "HEAD") {
      stream = nullptr;  // the status and headers only
    } else {
      std::lock_guard lock(mu);
      if (streams_closed) {
        reply = server::ErrorReply(503, "server is shutting down");
      } else if (streams_running >= options.max_streams) {
        reply = server::ErrorReply(
            503, "too many streamed answers in progress: " + std::to_string(streams_running) +
                     ", the limit (HttpServerOptions.max_streams " +
                     std::to_string(options.max_streams) + "); retry later");
        reply.headers.emplace_back("Retry-After", "1");
      } else {
        ++streams_running;
        state = std::make_shared<StreamState>();
        state->conn = r->conn;
        streams.emplace(state.get(), state);
      }
    }
    if (!state) stream = nullptr;  // destroyed here, never called
  } else {
    Compress(*r, reply);
  }
  // The stream may start writing before its answer is queued: the buffer
  // holds what it writes.
  if (state && !stream_threads->Submit([this, state, stream = std::move(stream)]() mutable {
        RunStream(state, std::move(stream));
      })) {
    {
      std::lock_guard lock(mu);
      --streams_running;
      streams.erase(state.get());
    }
    state.reset();
    reply = server::ErrorReply(503, "cannot start a thread for a streamed answer; retry later");
    reply.headers.emplace_back("Retry-After", "1");
  }
  r->stream = state;
  Resume(r, c, std::move(reply));
}

void HttpServer::Impl::Resume(Request* r, MHD_Connection* c, HttpReply reply) {
  r->reply = std::move(reply);
  r->reply_ready.store(true, std::memory_order_release);
  // After this the event thread may answer and free `r`.
  MHD_resume_connection(c);
  {
    std::lock_guard lock(mu);
    --handlers_running;
  }
  drained.notify_all();
}

// ---------------------------------------------------------------------------
// Asynchronous handlers.

HttpServer::Impl::AsyncCall::~AsyncCall() {
  if (!delivered) {
    // Every sink was dropped unanswered (starting is over: the starter's
    // reference is gone). The error body is small: never compressed.
    delivered = true;
    impl->Complete(*this, server::ErrorReply(500, "internal error: the handler dropped its answer"));
  }
}

std::optional<HttpReply> HttpServer::Impl::StartAsync(Request* r, MHD_Connection* c,
                                                      const CompiledRoute& route,
                                                      bool on_event_thread) {
  auto call = std::make_shared<AsyncCall>();
  call->impl = this;
  call->r = r;
  call->c = c;
  server::ReplySink sink;
  sink.send = [this, call](HttpReply reply) { Deliver(call, std::move(reply)); };
  sink.build = [this, call](std::function<HttpReply()> make) {
    DeliverLater(call, std::move(make));
  };
  try {
    (*route.async)(r->http, std::move(sink));
  } catch (const std::exception& e) {
    Deliver(call, server::ErrorReply(500, std::string("internal error: ") + e.what()));
  } catch (...) {
    Deliver(call, server::ErrorReply(500, "internal error"));
  }
  std::optional<HttpReply> early;
  {
    std::lock_guard lock(call->mu);
    call->starting = false;
    early = std::move(call->early);
    // On an event thread the connection is suspended only now, under the
    // call's lock: an answer cannot resume it before.
    if (!early && on_event_thread) MHD_suspend_connection(c);
  }
  return early;
}

bool HttpServer::Impl::ClaimAnswer(AsyncCall& call, const char* what) {
  std::lock_guard lock(call.mu);
  if (call.delivered) {
    spdlog::error("http {} {}: an asynchronous handler answered twice; the second answer ({}) "
                  "is dropped",
                  call.r->http.method, call.r->http.path, what);
    return false;
  }
  call.delivered = true;
  return true;
}

namespace {

// An asynchronous handler cannot stream: such an answer becomes a 500.
void RefuseAsyncStream(HttpReply& reply) {
  if (reply.stream) {
    reply = server::ErrorReply(500, "internal error: an asynchronous handler answered a stream");
  }
}

}  // namespace

void HttpServer::Impl::Deliver(const std::shared_ptr<AsyncCall>& call, HttpReply reply) {
  const std::string status = std::to_string(reply.status);
  if (!ClaimAnswer(*call, status.c_str())) return;
  RefuseAsyncStream(reply);
  if (NeedsCompression(*call->r, reply)) {
    pool->Submit([this, call, reply = std::move(reply)]() mutable {
      Compress(*call->r, reply);
      Complete(*call, std::move(reply));
    });
    return;
  }
  Complete(*call, std::move(reply));
}

void HttpServer::Impl::DeliverLater(const std::shared_ptr<AsyncCall>& call,
                                    std::function<HttpReply()> make) {
  if (!ClaimAnswer(*call, "built later")) return;
  pool->Submit([this, call, make = std::move(make)] {
    HttpReply reply;
    try {
      reply = make();
    } catch (const std::exception& e) {
      reply = server::ErrorReply(500, std::string("internal error: ") + e.what());
    } catch (...) {
      reply = server::ErrorReply(500, "internal error");
    }
    RefuseAsyncStream(reply);
    Compress(*call->r, reply);
    Complete(*call, std::move(reply));
  });
}

void HttpServer::Impl::Complete(AsyncCall& call, HttpReply reply) {
  {
    std::lock_guard lock(call.mu);
    if (call.starting) {
      call.early = std::move(reply);  // the starting thread answers it
      return;
    }
  }
  Resume(call.r, call.c, std::move(reply));
}

void HttpServer::Impl::RunStream(const std::shared_ptr<StreamState>& s,
                                 std::function<void(const server::BodyWriter&)> stream) {
  bool threw = false;
  {
    const server::BodyWriter write = [this, s](std::string_view piece) {
      return StreamWrite(*s, piece);
    };
    try {
      stream(write);
    } catch (const std::exception& e) {
      spdlog::warn("http: a streamed answer's producer threw: {}", e.what());
      threw = true;
    } catch (...) {
      spdlog::warn("http: a streamed answer's producer threw");
      threw = true;
    }
    stream = nullptr;  // its captures go before the stream counts as ended
  }
  bool resume = false;
  MHD_Connection* c = nullptr;
  {
    std::lock_guard lock(s->mu);
    s->finished = true;
    s->failed = threw;
    resume = s->suspended;
    s->suspended = false;
    c = s->connection;
  }
  s->room.notify_all();
  // The reader ends the body (or closes the connection after a throw).
  if (resume) MHD_resume_connection(c);
  {
    std::lock_guard lock(mu);
    --streams_running;
  }
  drained.notify_all();
}

bool HttpServer::Impl::StreamWrite(StreamState& s, std::string_view piece) {
  std::unique_lock lock(s.mu);
  for (;;) {
    if (s.gone || s.cancelled || s.finished) return false;
    if (piece.empty()) return true;
    if (s.buffer.size() >= kStreamBufferBytes) {
      // Full: wait for the connection to take some, at most idle_timeout
      // without progress (a client that does not read).
      const bool progressed = s.room.wait_for(lock, options.idle_timeout, [&s] {
        return s.gone || s.cancelled || s.buffer.size() < kStreamBufferBytes;
      });
      if (!progressed) {
        s.gone = true;
        lock.unlock();
        spdlog::debug("http: a streamed answer's client took nothing for {}; closing it",
                      DurationText(options.idle_timeout));
        CutConnection(s);
        return false;
      }
      continue;
    }
    const size_t n = std::min(kStreamBufferBytes - s.buffer.size(), piece.size());
    s.buffer.append(piece.data(), n);
    piece.remove_prefix(n);
    if (s.suspended) {
      s.suspended = false;
      MHD_Connection* c = s.connection;
      lock.unlock();
      MHD_resume_connection(c);
      lock.lock();
    }
  }
}

// Shuts the stream's socket down (both ways) when it is still the same
// connection: libmicrohttpd sees the socket end and closes it. The
// connection must not be suspended (it would not look).
void HttpServer::Impl::CutConnection(const StreamState& s) {
  if (!s.conn) return;
  std::lock_guard lock(mu);
  auto it = conns.find(s.conn->fd);
  if (it == conns.end() || it->second != s.conn || s.conn->swept ||
      SocketInode(s.conn->fd) != s.conn->inode) {
    return;
  }
  ::shutdown(s.conn->fd, SHUT_RDWR);
  s.conn->swept = true;
}

void HttpServer::Impl::CancelStreams() {
  std::vector<std::shared_ptr<StreamState>> live;
  {
    std::lock_guard lock(mu);
    streams_closed = true;
    for (const auto& [key, state] : streams) live.push_back(state);
  }
  for (const std::shared_ptr<StreamState>& s : live) {
    bool resume = false;
    MHD_Connection* c = nullptr;
    {
      std::lock_guard lock(s->mu);
      s->cancelled = true;
      resume = s->suspended;
      s->suspended = false;
      c = s->connection;
    }
    s->room.notify_all();
    if (resume) {
      MHD_resume_connection(c);  // the reader closes it
    } else {
      CutConnection(*s);  // maybe blocked on a client that does not read
    }
  }
}

const CompiledRoute* HttpServer::Impl::Match(Request& r) {
  const std::string& method = r.http.method == "HEAD" ? std::string("GET") : r.http.method;
  for (const CompiledRoute& route : routes) {
    if (route.method != method || !r.http.path.starts_with(route.literal_prefix)) continue;
    std::smatch m;
    if (!std::regex_match(r.http.path, m, route.pattern)) continue;
    r.http.captures.clear();
    for (size_t i = 1; i < m.size(); ++i) r.http.captures.push_back(m[i].str());
    return &route;
  }
  return nullptr;
}

std::optional<HttpReply> HttpServer::Impl::Process(Request& r, const CompiledRoute** async_route) {
  try {
    if (!r.coding.empty()) {
      auto inflater = server::BodyInflater::Create(r.coding);
      if (!inflater.ok()) return server::ErrorReply(415, inflater.status().message());
      std::string plain;
      Status s = (*inflater)->Feed(r.http.body, options.max_body_bytes, &plain);
      if (s.code() == StatusCode::kResourceExhausted) {
        return server::ErrorReply(413, server::BodyTooLargeMessage(options.max_body_bytes) +
                                           " (after " + r.coding + " decompression)");
      }
      if (s.ok()) s = (*inflater)->Finish();
      if (!s.ok()) return server::ErrorReply(400, s.message());
      r.http.body = std::move(plain);
    }
    const CompiledRoute* route = r.route ? *r.route : Match(r);
    if (route == nullptr) {
      return server::ErrorReply(404, "no route for " + r.http.method + " " + r.http.path);
    }
    if (route->async) {
      *async_route = route;
      return std::nullopt;
    }
    return (*route->handler)(r.http);
  } catch (const std::exception& e) {
    return server::ErrorReply(500, std::string("internal error: ") + e.what());
  } catch (...) {
    return server::ErrorReply(500, "internal error");
  }
}

bool HttpServer::Impl::NeedsCompression(const Request& r, const HttpReply& reply) const {
  if (reply.stream || !r.accepts_gzip || reply.body.size() < kMinCompressBytes ||
      !server::IsCompressibleType(reply.content_type)) {
    return false;
  }
  for (const auto& [name, value] : reply.headers) {
    if (::strcasecmp(name.c_str(), "Content-Encoding") == 0) return false;
  }
  return true;
}

void HttpServer::Impl::Compress(const Request& r, HttpReply& reply) const {
  if (!NeedsCompression(r, reply)) return;
  auto gz = server::GzipCompress(reply.body);
  if (!gz.ok()) return;  // send it as it is
  reply.body = std::move(*gz);
  reply.headers.emplace_back("Content-Encoding", "gzip");
  reply.headers.emplace_back("Vary", "Accept-Encoding");
}

// ---------------------------------------------------------------------------
// HttpServer.

HttpServer::HttpServer(Grid* grid, HttpServerOptions options)
    : HttpServer(static_cast<InferenceService*>(nullptr), std::move(options), grid) {}

HttpServer::HttpServer(InferenceService* service, HttpServerOptions options)
    : HttpServer(service, std::move(options), nullptr) {}

HttpServer::HttpServer(InferenceService* service, HttpServerOptions options, Grid* grid)
    : impl_(std::make_unique<Impl>()) {
  if (service == nullptr) {
    impl_->owned_service = std::make_unique<InferenceService>(grid, ServiceOptions{});
    service = impl_->owned_service.get();
  }
  impl_->service = service;
  impl_->options = std::move(options);
  const HttpServerOptions& o = impl_->options;
  impl_->limits.max_header_bytes = o.max_header_bytes;
  impl_->limits.max_headers = o.max_headers;
  impl_->limits.max_body_bytes = o.max_body_bytes;
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  impl_->handler_threads = o.threads > 0 ? o.threads : std::max(8, 2 * cores);
  impl_->io_threads = o.io_threads > 0 ? o.io_threads : std::clamp(cores / 4, 1, 4);
  impl_->CompileRoutes();
}

HttpServer::~HttpServer() {
  Stop();
  std::unique_lock lock(impl_->life_mu);
  impl_->life_cv.wait(lock, [this] { return !impl_->running; });
  if (impl_->listen_fd >= 0) {
    ::close(impl_->listen_fd);
    impl_->listen_fd = -1;
  }
}

Result<int> HttpServer::Bind() {
  std::lock_guard lock(impl_->life_mu);
  const HttpServerOptions& o = impl_->options;
  if (impl_->bound) return Status::Internal("HttpServer::Bind called twice");
  MG_RETURN_IF_ERROR(impl_->Validate());
  const std::string where = o.host + ":" + std::to_string(o.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(o.port);
  if (const int rc = ::getaddrinfo(o.host.c_str(), port_text.c_str(), &hints, &found); rc != 0) {
    return Status::Unavailable("cannot listen on " + where + ": " + ::gai_strerror(rc));
  }
  std::string why = "no address";
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      why = std::strerror(errno);
      continue;
    }
    const int yes = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, o.backlog) != 0) {
      why = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) return Status::Unavailable("cannot listen on " + where + ": " + why);
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = addr.ss_family == AF_INET6
                       ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                       : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  // Every connection, lingering socket and worker pipe is a descriptor.
  rlimit files{};
  const rlim_t wanted = static_cast<rlim_t>(2 * o.max_connections + 256);
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < wanted) {
    const rlim_t before = files.rlim_cur;
    files.rlim_cur = std::min(wanted, files.rlim_max);
    if (files.rlim_cur > before && ::setrlimit(RLIMIT_NOFILE, &files) == 0) {
      spdlog::info("http: raised the open-file limit from {} to {}", before, files.rlim_cur);
    }
    if (files.rlim_cur < wanted) {
      spdlog::warn("http: the open-file limit {} is below {} (2 × max_connections + 256)",
                   files.rlim_cur, wanted);
    }
  }
  impl_->listen_fd = fd;
  impl_->bound = true;
  impl_->port = port;
  return port;
}

Status HttpServer::Run() {
  {
    std::lock_guard lock(impl_->life_mu);
    if (!impl_->bound) return Status::Internal("HttpServer::Run called without a successful Bind");
    if (impl_->ran) return Status::Internal("HttpServer::Run called twice");
    impl_->ran = true;
    if (impl_->stop_requested) {
      ::close(impl_->listen_fd);
      impl_->listen_fd = -1;
      return Status::Ok();
    }
    impl_->running = true;
  }
  Status started = impl_->Start();
  if (started.ok()) {
    std::unique_lock lock(impl_->life_mu);
    impl_->life_cv.wait(lock, [this] { return impl_->stop_requested; });
  }
  impl_->Shutdown();
  {
    std::lock_guard lock(impl_->life_mu);
    impl_->running = false;
  }
  impl_->life_cv.notify_all();
  return started;
}

void HttpServer::Stop() {
  {
    std::lock_guard lock(impl_->life_mu);
    impl_->stop_requested = true;
  }
  impl_->life_cv.notify_all();
}

int HttpServer::port() const {
  std::lock_guard lock(impl_->life_mu);
  return impl_->port;
}

}  // namespace modelgrid

// transport_bench: what each way into ModelGrid adds to a call through a
// worker: the service layer, HTTP with JSON, HTTP with binary tensor data,
// HTTP with the input in system shared memory, and gRPC (issue 11).
//
//   transport_bench [--zoo DIR] [--iterations N] [--warmup N] [--round N]
//                   [--spin-us S] [--worker PATH]
//
// The models and inputs of dispatch_bench: echo_image (a nearly free forward
// on a 1x3x224x224 FP32 input, 602,112 bytes) and digits (1x64 FP32, 256
// bytes), copied from the zoo into a temporary folder whose config.yaml gets
// `dynamic_batching: {max_queue_delay_us: 0}` (model_copy.h): one
// sequential caller never has a partner to wait for.
//
// The process's heap tuned as `modelgrid serve` tunes it
// (TuneHeapForTensors). One Grid with isolation `model` (modelgrid-worker
// processes, device cpu, worker_threads 1), one InferenceService over it,
// and an HttpServer and a GrpcServer on 127.0.0.1 (kernel-picked ports)
// over that service, all in this process. The columns, each called
// sequentially from one thread (`--columns` picks some; grid always runs):
//   grid        Grid::Infer: the worker path without any transport (the
//               baseline; dispatch_bench's `worker` column);
//   service     InferenceService::Infer (request parameters, output
//               selection) over the same grid;
//   http-json   POST /v2/models/{m}/infer, input and output as JSON numbers;
//   http-binary the same with Triton's binary data extension: the input as
//               raw bytes after the JSON header (Inference-Header-Content-
//               Length), binary_data_output true;
//   http-shm    the input in a POSIX shared memory object registered with
//               the server (POST /v2/systemsharedmemory/region/{r}/register,
//               key "/modelgrid_..."), written there before each call; the
//               output returned as binary data;
//   grpc        ModelInfer with raw_input_contents, one channel reused;
//   raw-binary  http-binary's request from a minimal raw-socket client (one
//               writev for head and body, recv until Content-Length);
//   raw-shm     http-shm's request from that client;
//   tcp-floor   raw-binary's request from that client to a bare loopback
//               server in this process (LoopbackFloorServer) that reads the
//               head and the body into a buffer and sends back the bytes the
//               HTTP server sent for raw-binary (captured at the first
//               call): the kernel's cost of moving the same bytes both ways
//               over loopback TCP, which no server on a socket avoids.
//               "over floor" = p50 - grid p50 - tcp-floor p50: what the
//               server itself adds for the copy path;
//   grpc-floor  grpc's request to a bare gRPC server in this process
//               (GrpcFloorService: the same grpc++ library, message size
//               limits and callback API, whose ModelInfer answers the
//               message the real server gave, captured at the first call):
//               what grpc++ itself costs for these messages. For grpc, "over floor" =
//               p50 - grid p50 - grpc-floor p50.
// HTTP calls use one keep-alive cpp-httplib client (TCP_NODELAY, no
// Accept-Encoding: answers are not compressed), or the raw client (its own
// keep-alive connection): the two pairs of columns differ only by the
// client, which shares the machine's cores with the server in this process.
//
// What is timed: the call from the request being handed over until the
// answer is back in this process. Building the request is done before the
// clock (the InferCall's / InferRequest's copy of the input, the HTTP body,
// the ModelInferRequest message, the write into shared memory: a client that
// owns its input has it ready); decoding the answer after it. HTTP bodies
// are sent from that buffer without another copy (a content provider);
// gRPC's synchronous stub serializes the message and parses the reply inside
// the call, which is part of every gRPC client's cost.
//
// The columns are interleaved in rounds (`--round` calls each) so that a
// busy spell of the shared machine hits all columns alike. Every answer
// (warm-up included) is checked: each column's output tensors must equal the
// grid column's byte for byte, with the same names, datatypes and shapes.
// Prints the machine, load average before and after, inputs, per model and
// column p50/p99/mean latency and what each column adds over the grid column
// at p50, and the goal: ≤ 50 µs added at p50 for echo_image's 602,112-byte
// input through http-binary, http-shm and grpc (and the raw columns). Exit status 1 on any error
// (a failed call, an HTTP status other than 200, an answer that differs); a
// missed goal is reported, not an error.

#include <httplib.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "grpc/grpc_client.h"
#include "grpc/grpc_convert.h"
#include "model_copy.h"
#include "modelgrid/grid.h"
#include "modelgrid/grpc/grpc_server.h"
#include "modelgrid/heap.h"
#include "modelgrid/kserve/infer_codec.h"
#include "modelgrid/repository.h"
#include "modelgrid/server/http_server.h"
#include "modelgrid/service/inference_service.h"
#include "testing/posix_shm.h"

namespace {

using namespace modelgrid;
using grpc_internal::GrpcClient;
using Clock = std::chrono::steady_clock;

constexpr double kGoalAddedP50Us = 50.0;  // issue 11 (issue 3, section 9, for the copy path)
const char* const kModels[] = {"echo_image", "digits"};
enum Column {
  kGrid,
  kService,
  kHttpJson,
  kHttpBinary,
  kHttpShm,
  kGrpc,
  kRawBinary,
  kRawShm,
  kTcpFloor,
  kGrpcFloor,
  kColumnCount
};
const char* const kColumns[] = {"grid",     "service", "http-json",  "http-binary", "http-shm",
                                "grpc",     "raw-binary", "raw-shm", "tcp-floor", "grpc-floor"};
// The columns the goal applies to (the copy path and shared memory).
const Column kGoalColumns[] = {kHttpBinary, kHttpShm, kGrpc, kRawBinary, kRawShm};

// A minimal HTTP/1.1 keep-alive client on a raw socket (TCP_NODELAY): the
// request's head and body go out in one writev, the answer is read with
// recv until its Content-Length. What a lean client costs, next to
// cpp-httplib's (which polls before each read and write and sends the head
// and the body in separate writes), so that the bench shows how much of a
// column is the client's.
class RawHttpClient {
 public:
  struct Response {
    int status = 0;
    std::optional<size_t> json_header_length;
    std::string body;
    std::string wire;  // head and body as received, when capturing (SetCapture)
  };

  explicit RawHttpClient(int port) : port_(port) {}
  // Whether Post keeps the answer's bytes as received in Response::wire.
  void SetCapture(bool capture) { capture_ = capture; }
  ~RawHttpClient() {
    if (fd_ >= 0) ::close(fd_);
  }

  // POSTs `body` to `path` with `content_type` and `headers`. Errors:
  // kUnavailable when the socket fails or closes.
  Result<Response> Post(const std::string& path, const httplib::Headers& headers,
                        const std::string& content_type, const std::string& body) {
    if (fd_ < 0) MG_RETURN_IF_ERROR(Connect());
    std::string head = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " +
                       content_type + "\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\n";
    for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
    head += "\r\n";
    iovec iov[2] = {{head.data(), head.size()}, {const_cast<char*>(body.data()), body.size()}};
    size_t total = head.size() + body.size();
    int first = 0;
    while (total > 0) {
      const ssize_t n = ::writev(fd_, iov + first, 2 - first);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Fail("writev");
      total -= static_cast<size_t>(n);
      size_t left = static_cast<size_t>(n);
      while (first < 2 && left >= iov[first].iov_len) left -= iov[first++].iov_len;
      if (first < 2) {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
        iov[first].iov_len -= left;
      }
    }
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) MG_RETURN_IF_ERROR(Read());
    Response r;
    size_t length = 0;
    std::string_view lines(buf_.data(), end);
    r.status = std::atoi(std::string(lines.substr(9, 3)).c_str());
    for (size_t pos = lines.find("\r\n"); pos != std::string_view::npos;) {
      const size_t next = lines.find("\r\n", pos + 2);
      std::string_view line = lines.substr(pos + 2, next == std::string_view::npos
                                                         ? std::string_view::npos
                                                         : next - pos - 2);
      const size_t colon = line.find(':');
      if (colon != std::string_view::npos) {
        std::string name(line.substr(0, colon));
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        const std::string value(line.substr(colon + 1));
        if (name == "content-length") length = std::strtoull(value.c_str(), nullptr, 10);
        if (name == "inference-header-content-length")
          r.json_header_length = std::strtoull(value.c_str(), nullptr, 10);
      }
      pos = next;
    }
    while (buf_.size() < end + 4 + length) MG_RETURN_IF_ERROR(Read());
    r.body = buf_.substr(end + 4, length);
    if (capture_) r.wire = buf_.substr(0, end + 4 + length);
    buf_.erase(0, end + 4 + length);
    return r;
  }

 private:
  Status Connect() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return Fail("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return Fail("connect");
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return Status::Ok();
  }
  Status Read() {
    char chunk[64 << 10];
    for (;;) {
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Fail("recv");
      buf_.append(chunk, static_cast<size_t>(n));
      return Status::Ok();
    }
  }
  Status Fail(const char* what) {
    const std::string message = std::string(what) + ": " + std::strerror(errno);
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    buf_.clear();
    return Status::Unavailable(message);
  }

  int port_;
  int fd_ = -1;
  bool capture_ = false;
  std::string buf_;
};

[[noreturn]] void Fail(const std::string& what, const Status& status);

// The tcp-floor column's server: on 127.0.0.1 (kernel-picked port), one
// thread, one connection at a time. For each request it reads the head into
// a buffer, then the Content-Length body into a buffer allocated once (as
// large recv calls as the kernel gives), and sends the answer set for the
// request's path with one send. Nothing is parsed beyond the request line
// and Content-Length: what any server on a socket must at least do.
class LoopbackFloorServer {
 public:
  LoopbackFloorServer() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
        ::listen(listen_fd_, 4) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      Fail("tcp-floor server", Status::Unavailable(std::strerror(errno)));
    }
    port_ = ntohs(addr.sin_port);
  }
  ~LoopbackFloorServer() { Stop(); }

  int port() const { return port_; }
  // Sets the bytes sent back for requests to `path` (before Start).
  void SetAnswer(const std::string& path, std::string wire) { answers_[path] = std::move(wire); }
  void Start() {
    thread_ = std::thread([this] { Loop(); });
  }
  // Ends the thread: the listening socket is shut down, the connection
  // being served is shut down and closed.
  void Stop() {
    if (!thread_.joinable()) return;
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    if (const int fd = conn_fd_.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }

 private:
  void Loop() {
    std::string head;
    std::vector<char> body;
    while (!stopping_) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      conn_fd_ = fd;
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      head.clear();
      while (Serve(fd, head, body)) {
      }
      conn_fd_ = -1;
      ::close(fd);
    }
  }
  // One request on `fd`; false when the connection ends.
  bool Serve(int fd, std::string& head, std::vector<char>& body) {
    size_t end;
    char chunk[16 << 10];
    while ((end = head.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0) return false;
      head.append(chunk, static_cast<size_t>(n));
    }
    const size_t path_start = head.find(' ') + 1;
    const std::string path = head.substr(path_start, head.find(' ', path_start) - path_start);
    size_t length = 0;
    const size_t cl = head.find("Content-Length: ");
    if (cl != std::string::npos && cl < end) length = std::strtoull(head.c_str() + cl + 16, nullptr, 10);
    if (body.size() < length) body.resize(length);
    size_t have = std::min(length, head.size() - end - 4);
    std::memcpy(body.data(), head.data() + end + 4, have);
    head.erase(0, end + 4 + have);
    while (have < length) {
      const ssize_t n = ::recv(fd, body.data() + have, length - have, 0);
      if (n <= 0) return false;
      have += static_cast<size_t>(n);
    }
    auto it = answers_.find(path);
    if (it == answers_.end()) return false;
    const std::string& wire = it->second;
    for (size_t sent = 0; sent < wire.size();) {
      const ssize_t n = ::send(fd, wire.data() + sent, wire.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  int listen_fd_ = -1;
  int port_ = 0;
  std::map<std::string, std::string> answers_;
  std::atomic<int> conn_fd_{-1};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// The floor column of `c`, for the columns that carry the input's bytes
// through a socket (the copy path); kColumnCount for the others.
Column FloorOf(Column c) {
  if (c == kHttpBinary || c == kRawBinary) return kTcpFloor;
  if (c == kGrpc) return kGrpcFloor;
  return kColumnCount;
}
bool IsFloor(Column c) { return c == kTcpFloor || c == kGrpcFloor; }

// The grpc-floor column's service: ModelInfer answers the response set for
// the request's model (the real server's, captured), nothing else; the
// request is parsed by grpc++ as for the real server.
class GrpcFloorService final : public inference::GRPCInferenceService::CallbackService {
 public:
  // Sets the answer for `model` (before the server starts).
  void SetAnswer(const std::string& model, inference::ModelInferResponse answer) {
    answers_[model] = std::move(answer);
  }
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const inference::ModelInferRequest* in,
                                       inference::ModelInferResponse* out) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    auto it = answers_.find(in->model_name());
    if (it == answers_.end()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "no answer for " + in->model_name()));
    } else {
      *out = it->second;
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }

 private:
  std::map<std::string, inference::ModelInferResponse> answers_;
};

// One HTTP request, made before the clock.
struct HttpRequest {
  httplib::Headers headers;
  std::string content_type;
  std::string body;
};

// One model under test: its entry, its input, each column's prepared
// request, and the answer every column must give.
struct Subject {
  ModelEntry entry;
  std::vector<InferTensor> inputs;
  std::vector<InferTensor> expected;  // the grid column's outputs
  std::string path;                   // /v2/models/{m}/infer
  HttpRequest json, binary, shm;
  inference::ModelInferRequest grpc_request;
  // http-shm: one object per input, registered with the server as region
  // shm_regions[i]; each call writes the input there before the clock.
  std::vector<std::unique_ptr<testing::PosixSharedMemory>> shm_objects;
  std::vector<std::string> shm_regions;
  std::vector<double> samples_us[kColumnCount];
};

// The ways in.
struct Transports {
  Grid* grid;
  InferenceService* service;
  httplib::Client* http;
  GrpcClient* grpc;
  RawHttpClient* raw;
  RawHttpClient* floor;    // to the LoopbackFloorServer
  GrpcClient* grpc_floor;  // to the GrpcFloorService
};

[[noreturn]] void Fail(const std::string& what, const Status& status) {
  std::fprintf(stderr, "transport_bench: %s: %s\n", what.c_str(), status.ToString().c_str());
  std::exit(1);
}

// The directory of this executable (for the modelgrid-worker next to it).
std::filesystem::path ExecutableDir() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) Fail("/proc/self/exe", Status::Internal(ec.message()));
  return self.parent_path();
}

// Creates the worker grid on the CPU and loads every subject into it.
std::unique_ptr<Grid> StartGrid(const std::string& worker, std::chrono::microseconds spin,
                                const std::vector<std::unique_ptr<Subject>>& subjects) {
  GridOptions options;
  options.spin = spin;
  options.isolation = Isolation::kModel;
  options.devices = {"cpu"};
  options.worker_threads = 1;
  options.worker_executable = worker;
  auto grid = Grid::Create(options);
  if (!grid.ok()) Fail("grid (isolation model)", grid.status());
  for (const auto& s : subjects) {
    Status added = (*grid)->AddModel({s->entry.name, s->entry.dir, {}, {}});
    if (!added.ok()) Fail("adding " + s->entry.name, added);
  }
  auto plan = (*grid)->LoadAll();
  if (!plan.ok()) Fail("LoadAll", plan.status());
  for (const auto& s : subjects) {
    auto status = (*grid)->Model(s->entry.name);
    if (!status.ok()) Fail(s->entry.name, status.status());
    if (status->state != ModelState::kReady) {
      Fail(s->entry.name,
           Status::Unavailable(std::string("not ready: ") + ModelStateName(status->state) + ": " +
                               status->reason));
    }
  }
  return std::move(grid).value();
}

// The Inference-Header-Content-Length of `headers` when present.
std::optional<size_t> JsonHeaderLength(const httplib::Headers& headers) {
  auto it = headers.find("Inference-Header-Content-Length");
  if (it == headers.end()) return std::nullopt;
  return static_cast<size_t>(std::strtoull(it->second.c_str(), nullptr, 10));
}

// Creates and registers (over HTTP) one shared memory object per input of
// `s`, and builds the three HTTP requests and the gRPC message of `s`.
void PrepareRequests(Subject& s, httplib::Client& http) {
  s.path = "/v2/models/" + s.entry.name + "/infer";
  InferRequest request;
  request.inputs = s.inputs;

  auto json = EncodeInferRequest(request, /*binary_inputs=*/false);
  if (!json.ok()) Fail(s.entry.name + ": encoding the JSON request", json.status());
  s.json.body = std::move(json->body);
  s.json.content_type = "application/json";

  request.binary_data_output = true;
  auto binary = EncodeInferRequest(request, /*binary_inputs=*/true);
  if (!binary.ok()) Fail(s.entry.name + ": encoding the binary request", binary.status());
  s.binary.body = std::move(binary->body);
  s.binary.content_type = "application/octet-stream";
  s.binary.headers.emplace("Inference-Header-Content-Length",
                           std::to_string(binary->json_header_length.value()));

  // http-shm: the regions, then a JSON body that points at them.
  nlohmann::json inputs = nlohmann::json::array();
  for (const InferTensor& in : s.inputs) {
    const std::string key = "/modelgrid_transport_bench-" + std::to_string(::getpid()) + "-" +
                            s.entry.name + "-" + in.name;
    const std::string region = "transport_bench-" + s.entry.name + "-" + in.name;
    auto shm = testing::PosixSharedMemory::Create(key, std::max<size_t>(in.data.size(), 1));
    if (!shm.ok()) Fail("shared memory for " + s.entry.name, shm.status());
    const nlohmann::json reg = {{"key", key}, {"offset", 0}, {"byte_size", (*shm)->bytes()}};
    auto res = http.Post("/v2/systemsharedmemory/region/" + region + "/register", reg.dump(),
                         "application/json");
    if (!res) {
      Fail("registering " + key,
           Status::Unavailable("HTTP transport: " + httplib::to_string(res.error())));
    }
    if (res->status != 200) {
      Fail("registering " + key,
           Status::Internal("HTTP " + std::to_string(res->status) + ": " + res->body));
    }
    s.shm_objects.push_back(std::move(shm).value());
    s.shm_regions.push_back(region);
    inputs.push_back(
        {{"name", in.name},
         {"datatype", std::string(DataTypeName(in.datatype))},
         {"shape", in.shape},
         {"parameters",
          {{"shared_memory_region", region}, {"shared_memory_byte_size", in.data.size()}}}});
  }
  const nlohmann::json shm_request = {{"parameters", {{"binary_data_output", true}}},
                                      {"inputs", inputs}};
  s.shm.body = shm_request.dump();
  s.shm.content_type = "application/json";

  request.binary_data_output = false;
  Status encoded =
      grpc_internal::EncodeModelInferRequest(s.entry.name, "", request, &s.grpc_request);
  if (!encoded.ok()) Fail(s.entry.name + ": encoding the gRPC request", encoded);
}

// Keeps the round trip t0..t1 of `column` on `s` when `record` is set.
void Record(Subject& s, Column column, Clock::time_point t0, Clock::time_point t1, bool record) {
  if (record) {
    s.samples_us[column].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
}

// The client's write of the inputs of `s` into its shared memory objects
// (the shm columns; before the clock, as the other columns' copies).
void WriteSharedInputs(Subject& s) {
  for (size_t i = 0; i < s.inputs.size(); ++i) {
    std::memcpy(s.shm_objects[i]->data(), s.inputs[i].data.data(), s.inputs[i].data.size());
  }
}

// One HTTP call of `r` on `s`; returns the decoded outputs. Only the round
// trip is timed.
std::vector<InferTensor> HttpCall(Subject& s, Column column, const HttpRequest& r,
                                  httplib::Client& http, bool record) {
  const std::string& body = r.body;
  httplib::ContentProvider provider = [&body](size_t offset, size_t length,
                                              httplib::DataSink& sink) {
    return sink.write(body.data() + offset, length);
  };
  const auto t0 = Clock::now();
  auto res = http.Post(s.path, r.headers, body.size(), provider, r.content_type);
  const auto t1 = Clock::now();
  const std::string what = s.entry.name + " (" + kColumns[column] + ")";
  if (!res) Fail(what, Status::Unavailable("HTTP transport: " + httplib::to_string(res.error())));
  if (res->status != 200) {
    Fail(what,
         Status::Internal("HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 300)));
  }
  auto decoded = DecodeInferResponse(res->body, JsonHeaderLength(res->headers));
  if (!decoded.ok()) Fail(what + ": decoding the answer", decoded.status());
  Record(s, column, t0, t1, record);
  return std::move(decoded->outputs);
}

// One call of `r` on `s` through the raw-socket client; only the round trip
// is timed.
std::vector<InferTensor> RawCall(Subject& s, Column column, const HttpRequest& r,
                                 RawHttpClient& raw, bool record) {
  const auto t0 = Clock::now();
  auto res = raw.Post(s.path, r.headers, r.content_type, r.body);
  const auto t1 = Clock::now();
  const std::string what = s.entry.name + " (" + kColumns[column] + ")";
  if (!res.ok()) Fail(what, res.status());
  if (res->status != 200) {
    Fail(what, Status::Internal("HTTP " + std::to_string(res->status) + ": " +
                                res->body.substr(0, 300)));
  }
  auto decoded = DecodeInferResponse(res->body, res->json_header_length);
  if (!decoded.ok()) Fail(what + ": decoding the answer", decoded.status());
  Record(s, column, t0, t1, record);
  return std::move(decoded->outputs);
}

// One call of `column` on `s`; returns the outputs.
std::vector<InferTensor> CallOnce(Subject& s, Column column, const Transports& t, bool record) {
  const std::string what = s.entry.name + " (" + kColumns[column] + ")";
  switch (column) {
    case kGrid: {
      InferCall call;
      call.inputs = s.inputs;  // before the clock: a caller that owns its input moves it in
      const auto t0 = Clock::now();
      auto out = t.grid->Infer(s.entry.name, std::move(call));
      const auto t1 = Clock::now();
      if (!out.ok()) Fail(what, out.status());
      Record(s, column, t0, t1, record);
      return std::move(out).value();
    }
    case kService: {
      InferRequest request;
      request.inputs = s.inputs;
      const auto t0 = Clock::now();
      auto out = t.service->Infer(s.entry.name, "", std::move(request));
      const auto t1 = Clock::now();
      if (!out.ok()) Fail(what, out.status());
      Record(s, column, t0, t1, record);
      return std::move(out->outputs);
    }
    case kHttpJson:
      return HttpCall(s, column, s.json, *t.http, record);
    case kHttpBinary:
      return HttpCall(s, column, s.binary, *t.http, record);
    case kHttpShm:
      WriteSharedInputs(s);
      return HttpCall(s, column, s.shm, *t.http, record);
    case kRawBinary:
      return RawCall(s, column, s.binary, *t.raw, record);
    case kRawShm:
      WriteSharedInputs(s);
      return RawCall(s, column, s.shm, *t.raw, record);
    case kTcpFloor:
      return RawCall(s, column, s.binary, *t.floor, record);
    case kGrpc:
    case kGrpcFloor: {
      GrpcClient* client = column == kGrpc ? t.grpc : t.grpc_floor;
      auto context = client->Context();
      inference::ModelInferResponse reply;
      const auto t0 = Clock::now();
      const grpc::Status status = client->stub().ModelInfer(context.get(), s.grpc_request, &reply);
      const auto t1 = Clock::now();
      Status st = grpc_internal::FromGrpcStatus(status);
      if (!st.ok()) Fail(what, st);
      auto decoded = grpc_internal::DecodeModelInferResponse(&reply);
      if (!decoded.ok()) Fail(what + ": decoding the answer", decoded.status());
      Record(s, column, t0, t1, record);
      return std::move(decoded->outputs);
    }
    case kColumnCount:
      break;
  }
  Fail(what, Status::Internal("unknown column"));
}

// Fails unless `got` equals the grid's outputs of `s` byte for byte.
void CheckEqual(const Subject& s, Column column, const std::vector<InferTensor>& got) {
  const std::string what = s.entry.name + " (" + kColumns[column] + ")";
  if (got.size() != s.expected.size()) {
    Fail(what, Status::Internal(std::to_string(got.size()) + " outputs, the grid gave " +
                                std::to_string(s.expected.size())));
  }
  for (size_t i = 0; i < got.size(); ++i) {
    const InferTensor& a = got[i];
    const InferTensor& b = s.expected[i];
    if (a.name != b.name || a.datatype != b.datatype || a.shape != b.shape || a.data != b.data) {
      Fail(what, Status::Internal("output " + std::to_string(i) + " '" + a.name + "' " +
                                  bench::DescribeTensors({a}) + " differs from the grid's '" +
                                  b.name + "' " + bench::DescribeTensors({b}) + " (max abs diff " +
                                  std::to_string(bench::MaxAbsDiffFp32(a, b)) + ")"));
    }
  }
}

// One call of `column`, its answer checked.
void CallAndCheck(Subject& s, Column column, const Transports& t, bool record) {
  CheckEqual(s, column, CallOnce(s, column, t, record));
}

}  // namespace

int main(int argc, char** argv) {
  std::string zoo = MODELGRID_DEFAULT_ZOO;
  if (const char* env = std::getenv("MODELGRID_TEST_ZOO"); env != nullptr && *env != '\0')
    zoo = env;
  std::string worker = (ExecutableDir() / "modelgrid-worker").string();
  int iterations = 2000;
  int warmup = 200;
  int round = 100;
  CLI::App app{"Latency of a call through each transport vs Grid::Infer (echo_image, digits)"};
  app.add_option("--zoo", zoo,
                 "model repository holding echo_image and digits (default: $MODELGRID_TEST_ZOO, "
                 "else the build's small zoo)");
  app.add_option("--iterations", iterations, "timed calls per model and column")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup, "untimed calls per model and column first")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--round", round, "calls per column before switching to the next")
      ->check(CLI::PositiveNumber);
  app.add_option("--worker", worker, "modelgrid-worker executable (default: next to this one)");
  int64_t spin_us = GridOptions{}.spin.count();
  app.add_option("--spin-us", spin_us, "GridOptions::spin of the grid (0 = always sleep)")
      ->check(CLI::Range(int64_t{0}, int64_t{1'000'000}));
  std::vector<std::string> column_names;
  app.add_option("--columns", column_names,
                 "columns to run besides grid (default: all): service, http-json, http-binary, "
                 "http-shm, grpc, raw-binary, raw-shm, tcp-floor");
  CLI11_PARSE(app, argc, argv);
  bool selected[kColumnCount];
  for (int c = 0; c < kColumnCount; ++c) selected[c] = column_names.empty() || c == kGrid;
  for (const std::string& name : column_names) {
    const auto* it = std::find(std::begin(kColumns), std::end(kColumns), name);
    if (it == std::end(kColumns)) {
      std::fprintf(stderr, "transport_bench: --columns: unknown column '%s'\n", name.c_str());
      return 2;
    }
    selected[it - std::begin(kColumns)] = true;
  }
  // tcp-floor sends back what raw-binary got, and "over floor" needs both.
  if (selected[kTcpFloor]) selected[kRawBinary] = true;
  if (selected[kGrpcFloor]) selected[kGrpc] = true;
  // The grid's and servers' log lines go to stderr: stdout carries the table.
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "transport_bench", std::make_shared<spdlog::sinks::stderr_sink_mt>()));

  char tmpl[] = "/tmp/transport_bench-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) Fail("mkdtemp", Status::Internal("failed"));
  const std::filesystem::path tmp = tmpl;
  std::vector<std::unique_ptr<Subject>> subjects;
  for (const char* name : kModels) {
    auto s = std::make_unique<Subject>();
    Status copied = bench::CopyWithQueueDelay(std::filesystem::path(zoo) / name, tmp / name, 0);
    if (!copied.ok())
      Fail(std::string(name) + " (generate the zoo with tools/zoo/generate.py)", copied);
    auto entry = OpenModel(tmp / name);
    if (!entry.ok())
      Fail(std::string(name) + " (generate the zoo with tools/zoo/generate.py)", entry.status());
    s->entry = std::move(entry).value();
    auto inputs = bench::MakeInputs(s->entry, 1, 8, 42);
    if (!inputs.ok()) Fail(name, inputs.status());
    s->inputs = std::move(inputs).value();
    subjects.push_back(std::move(s));
  }

  TuneHeapForTensors();  // as `modelgrid serve` does for its own process
  std::unique_ptr<Grid> grid = StartGrid(worker, std::chrono::microseconds(spin_us), subjects);
  auto service = std::make_unique<InferenceService>(grid.get(), ServiceOptions{});

  HttpServerOptions http_options;
  http_options.host = "127.0.0.1";
  http_options.port = 0;
  auto http_server = std::make_unique<HttpServer>(service.get(), http_options);
  auto http_port = http_server->Bind();
  if (!http_port.ok()) Fail("HTTP server", http_port.status());
  Status http_run = Status::Ok();
  std::thread http_thread([&] { http_run = http_server->Run(); });

  GrpcServerOptions grpc_options;
  grpc_options.host = "127.0.0.1";
  grpc_options.port = 0;
  auto grpc_server = std::make_unique<GrpcServer>(service.get(), grpc_options);
  auto grpc_port = grpc_server->Start();
  if (!grpc_port.ok()) Fail("gRPC server", grpc_port.status());

  httplib::Client http("127.0.0.1", *http_port);
  http.set_keep_alive(true);
  // Headers and body go out in two writes: without TCP_NODELAY the body
  // waits for the server's delayed ACK (about 40 ms on Linux).
  http.set_tcp_nodelay(true);
  http.set_decompress(false);  // no Accept-Encoding: the server sends bytes as they are
  http.set_read_timeout(120, 0);
  http.set_write_timeout(120, 0);
  GrpcClient grpc_client("127.0.0.1:" + std::to_string(*grpc_port));
  RawHttpClient raw(*http_port);
  LoopbackFloorServer floor_server;
  RawHttpClient floor_client(floor_server.port());
  // grpc-floor's server: the real server's message size limits, its answers the
  // real server's (captured below, before it starts).
  GrpcFloorService floor_service;
  std::unique_ptr<grpc::Server> grpc_floor_server;
  int grpc_floor_port = 0;
  const auto start_grpc_floor = [&] {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &grpc_floor_port);
    builder.SetMaxReceiveMessageSize(static_cast<int>(grpc_options.max_message_bytes));
    builder.SetMaxSendMessageSize(static_cast<int>(grpc_options.max_message_bytes));
    builder.RegisterService(&floor_service);
    grpc_floor_server = builder.BuildAndStart();
    if (!grpc_floor_server || grpc_floor_port == 0)
      Fail("grpc-floor server", Status::Unavailable("cannot listen on 127.0.0.1"));
  };
  std::unique_ptr<GrpcClient> grpc_floor_client;
  Transports transports{grid.get(), service.get(), &http, &grpc_client, &raw, &floor_client,
                        nullptr};

  for (auto& s : subjects) PrepareRequests(*s, http);
  // The floor server's answers: the HTTP server's own, byte for byte.
  raw.SetCapture(true);
  for (auto& s : subjects) {
    auto res = raw.Post(s->path, s->binary.headers, s->binary.content_type, s->binary.body);
    if (!res.ok()) Fail(s->entry.name + " (capturing raw-binary's answer)", res.status());
    floor_server.SetAnswer(s->path, std::move(res->wire));
  }
  raw.SetCapture(false);
  floor_server.Start();
  for (auto& s : subjects) {
    auto context = grpc_client.Context();
    inference::ModelInferResponse reply;
    const grpc::Status status = grpc_client.stub().ModelInfer(context.get(), s->grpc_request, &reply);
    if (!status.ok()) {
      Fail(s->entry.name + " (capturing grpc's answer)", grpc_internal::FromGrpcStatus(status));
    }
    floor_service.SetAnswer(s->entry.name, std::move(reply));
  }
  start_grpc_floor();
  grpc_floor_client = std::make_unique<GrpcClient>("127.0.0.1:" + std::to_string(grpc_floor_port));
  transports.grpc_floor = grpc_floor_client.get();
  // The reference answer, then one checked call per column.
  for (auto& s : subjects) {
    s->expected = CallOnce(*s, kGrid, transports, false);
    for (int c = 0; c < kColumnCount; ++c) {
      if (selected[c]) CallAndCheck(*s, Column(c), transports, false);
    }
  }

  const std::string load_before = bench::LoadAverage();
  const auto started = Clock::now();
  for (auto& s : subjects) {
    for (int c = 0; c < kColumnCount; ++c) {
      for (int i = 0; selected[c] && i < warmup; ++i) CallAndCheck(*s, Column(c), transports, false);
    }
    for (int done = 0; done < iterations; done += round) {
      const int n = std::min(round, iterations - done);
      for (int c = 0; c < kColumnCount; ++c) {
        for (int i = 0; selected[c] && i < n; ++i) CallAndCheck(*s, Column(c), transports, true);
      }
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  const std::string load_after = bench::LoadAverage();
  int64_t worker_pid = 0;
  if (auto st = grid->Model("echo_image"); st.ok()) worker_pid = st->worker_pid;

  floor_server.Stop();
  grpc_floor_server->Shutdown();
  grpc_floor_server->Wait();
  grpc_server->Stop();
  http_server->Stop();
  http_thread.join();
  if (!http_run.ok()) Fail("HTTP server", http_run);
  grpc_server.reset();
  http_server.reset();
  service.reset();
  grid.reset();  // stops the workers before the copies and the shared memory go
  for (auto& s : subjects) s->shm_objects.clear();
  std::filesystem::remove_all(tmp);

  std::printf(
      "transport_bench — one model called through a worker: Grid::Infer, InferenceService, HTTP "
      "(JSON, binary,\nshared memory) and gRPC\n");
  std::printf("machine: %s\n", bench::MachineLine().c_str());
  std::printf("date:    %s\n", bench::NowUtc().c_str());
  std::printf("load:    %s before, %s after (load average 1, 5, 15 min; /proc/loadavg)\n",
              load_before.c_str(), load_after.c_str());
  std::printf("zoo:     %s\n", zoo.c_str());
  for (const auto& s : subjects) {
    std::printf("input:   %-11s %s; JSON body %zu bytes, binary body %zu bytes\n",
                s->entry.name.c_str(), bench::DescribeTensors(s->inputs).c_str(),
                s->json.body.size(), s->binary.body.size());
  }
  std::printf(
      "setup:   one Grid isolation model (modelgrid-worker, echo_image's pid %lld), device cpu,\n"
      "         worker_threads 1, spin %lld us, dynamic_batching.max_queue_delay_us 0;\n"
      "         InferenceService, HttpServer and GrpcServer on 127.0.0.1 in this process;\n"
      "         one caller thread, sequential calls; per model and column %d warm-up + %d timed\n"
      "         calls, columns interleaved in rounds of %d; every answer checked byte for byte\n"
      "         against the grid column's\n",
      static_cast<long long>(worker_pid), static_cast<long long>(spin_us), warmup, iterations,
      round);
  std::printf(
      "columns: grid        = Grid::Infer (input copied into the InferCall before the clock)\n"
      "         service     = InferenceService::Infer\n"
      "         http-json   = POST /v2/models/m/infer, JSON input and output (keep-alive "
      "cpp-httplib client)\n"
      "         http-binary = the same, binary data extension for input and output\n"
      "         http-shm    = the input in a registered POSIX shared memory region (written "
      "before the clock),\n"
      "                       the output as binary data\n"
      "         grpc        = ModelInfer with raw_input_contents, one channel (message built "
      "before the clock)\n"
      "         raw-binary  = http-binary from a minimal raw-socket keep-alive client (one writev,\n"
      "                       recv to Content-Length): the same server path with less client cost\n"
      "         raw-shm     = http-shm from that client\n"
      "         tcp-floor   = raw-binary's request and the HTTP server's answer bytes between that "
      "client and a\n"
      "                       bare loopback server (read head and body, send the bytes back): the "
      "kernel's cost\n"
      "                       of the bytes both ways; over floor = p50 - grid p50 - tcp-floor p50\n"
      "         grpc-floor  = grpc's request to a bare grpc++ server (callback ModelInfer answering "
      "the real\n"
      "                       server's captured reply): grpc++'s own cost; for grpc, over floor =\n"
      "                       p50 - grid p50 - grpc-floor p50\n");
  for (const auto& s : subjects) {
    std::printf("check:   %s: outputs %s, all columns equal byte for byte\n", s->entry.name.c_str(),
                bench::DescribeTensors(s->expected).c_str());
  }
  std::vector<bench::LatencyStats> stats[2];
  for (size_t m = 0; m < subjects.size(); ++m) {
    const Subject& s = *subjects[m];
    std::printf("\n%s (%zu-byte input)\n", s.entry.name.c_str(), s.inputs.at(0).data.size());
    std::printf("%-12s %7s %10s %10s %10s %14s %14s\n", "column", "calls", "p50 us", "p99 us",
                "mean us", "added p50 us", "over floor us");
    for (int c = 0; c < kColumnCount; ++c) stats[m].push_back(bench::Summarize(s.samples_us[c]));
    for (int c = 0; c < kColumnCount; ++c) {
      if (!selected[c]) continue;
      const bench::LatencyStats& st = stats[m][c];
      char added[32] = "-";
      char over[32] = "-";
      if (c != kGrid && !IsFloor(Column(c)))
        std::snprintf(added, sizeof(added), "%+.1f", st.p50 - stats[m][kGrid].p50);
      if (const Column f = FloorOf(Column(c)); f != kColumnCount && selected[f]) {
        std::snprintf(over, sizeof(over), "%+.1f",
                      st.p50 - stats[m][kGrid].p50 - stats[m][f].p50);
      }
      std::printf("%-12s %7llu %10.1f %10.1f %10.1f %14s %14s\n", kColumns[c],
                  static_cast<unsigned long long>(st.count), st.p50, st.p99, st.mean, added, over);
    }
  }
  const size_t large = subjects[0]->inputs.at(0).data.size();
  std::printf(
      "\ngoal: <= %.0f us added over the grid column at p50 for the %zu-byte input "
      "(echo_image)\n",
      kGoalAddedP50Us, large);
  for (Column c : kGoalColumns) {
    if (!selected[c]) continue;
    const double added = stats[0][c].p50 - stats[0][kGrid].p50;
    std::printf("  %-11s %+.1f us -> %s", kColumns[c], added,
                added <= kGoalAddedP50Us ? "PASS" : "FAIL");
    if (const Column f = FloorOf(c); f != kColumnCount && selected[f]) {
      const double over = added - stats[0][f].p50;
      std::printf("; over %s %+.1f us -> %s", kColumns[f], over,
                  over <= kGoalAddedP50Us ? "PASS" : "FAIL");
    }
    std::printf("\n");
  }
  std::printf("total bench time: %.1f s\n", seconds);
  return 0;
}

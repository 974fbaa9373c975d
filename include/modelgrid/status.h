// Status and Result<T>: how every ModelGrid library function reports errors.
//
// Errors never cross the library API as exceptions. Exceptions thrown by
// third-party libraries (LibTorch, nlohmann::json, yaml-cpp, libzip) are caught
// where they are called and turned into a Status whose message names the
// model, the file or the field. Codes are mapped to HTTP/gRPC codes only at
// the server edge (see ../shared/reference/kserve_v2.md, "Errors").
#pragma once

#include <cassert>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace modelgrid {

// What went wrong, in the vocabulary of Triton's status codes plus the
// memory-specific kResourceExhausted (HTTP 507 / gRPC RESOURCE_EXHAUSTED).
enum class StatusCode {
  kOk,
  kInvalidArgument,    // the caller's input is malformed or out of range (HTTP 400)
  kNotFound,           // a named model, file, input or device does not exist (404)
  kCorruption,         // a file exists but its content is invalid or truncated (400)
  kUnavailable,        // temporarily cannot serve: not ready, queue full, worker died (503)
  kResourceExhausted,  // a memory limit or capacity would be exceeded (507)
  kUnsupported,        // a valid request ModelGrid does not implement (501)
  kAlreadyExists,      // creating something that is already there (400)
  kInternal,           // a bug or an unexpected library failure (500)
  kPermissionDenied,   // a management call without the admin token (HTTP 403 / gRPC PERMISSION_DENIED)
};

// Returns the upper-case name of `code`, e.g. "INVALID_ARGUMENT".
const char* StatusCodeName(StatusCode code);

// A memory limit that refused an allocation (bytes): who, where, and the
// figures at the moment of refusal.
struct MemoryLimitDetail {
  std::string model;            // "" when not known at the point of refusal
  std::string device;           // "cpu", "cuda:0", ...; "" when not known
  uint64_t limit_bytes = 0;     // the cap in force (request + granted bytes)
  uint64_t in_use_bytes = 0;    // held by the model when it asked
  uint64_t requested_bytes = 0; // what it asked for
};

// One holder of device bytes named in a collision (bytes held on the device).
struct CollisionHolder {
  std::string instance;  // "model#replica"
  uint64_t bytes = 0;
  int priority = 0;
};

// A collision (docs/design.md, "Memory model"): bytes asked of the device memory
// ledger that it could not give from free bytes, and how the model's
// resolver settled it.
struct CollisionDetail {
  std::string model;                    // who asked
  std::string device;                   // where
  std::string resolver;                 // "wait", "priority" or "swap"
  uint64_t asked_bytes = 0;             // what it asked for
  uint64_t free_bytes = 0;              // free on the device at the end
  std::vector<CollisionHolder> holders; // who held the device's bytes then
  std::string preempted_by;             // set when a higher priority took the bytes
};

// Typed facts an error carries beside its message, so that callers branch on
// them instead of parsing the message text.
struct StatusDetail {
  // Seconds after which a retry may succeed (HTTP Retry-After): queue full.
  std::optional<uint64_t> retry_after_seconds;
  std::optional<MemoryLimitDetail> memory_limit;
  std::optional<CollisionDetail> collision;
};

// The outcome of an operation: OK, or an error code with a human message and
// an optional typed detail. Cheap to copy (the detail is shared, immutable).
// Thread-compatible.
class Status {
 public:
  // An OK status.
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status ResourceExhausted(std::string m) {
    return {StatusCode::kResourceExhausted, std::move(m)};
  }
  static Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
  static Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "OK" or "<CODE>: <message>".
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>" (OK stays OK).
  // Used to add context (a model or file name) as an error travels upward.
  // The detail is kept.
  Status WithPrefix(const std::string& prefix) const;

  // Returns a copy carrying `detail` (OK stays OK, without a detail).
  Status WithDetail(StatusDetail detail) const;
  // The typed detail, or nullptr when the error carries none.
  const StatusDetail* detail() const { return detail_.get(); }
  // Shorthands for the detail's fields (nullopt / nullptr when absent).
  std::optional<uint64_t> retry_after_seconds() const {
    return detail_ ? detail_->retry_after_seconds : std::nullopt;
  }
  const MemoryLimitDetail* memory_limit() const {
    return detail_ && detail_->memory_limit ? &*detail_->memory_limit : nullptr;
  }
  const CollisionDetail* collision() const {
    return detail_ && detail_->collision ? &*detail_->collision : nullptr;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::shared_ptr<const StatusDetail> detail_;
};

// Either a value of type T or a non-OK Status. Accessing value() of an error
// Result is a programming error (asserts in debug builds).
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // The error; an OK Status when the Result holds a value.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace modelgrid

#define MG_CONCAT_INNER_(a, b) a##b
#define MG_CONCAT_(a, b) MG_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define MG_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::modelgrid::Status mg_status_ = (expr);      \
    if (!mg_status_.ok()) return mg_status_;      \
  } while (0)

// Evaluates `rexpr` (a Result<T>); on error returns its Status, else moves the
// value into `lhs` (which may be a declaration, e.g. `auto x`). It expands to
// several statements: use it inside braces, never as an unbraced if-body.
#define MG_ASSIGN_OR_RETURN(lhs, rexpr) \
  MG_ASSIGN_OR_RETURN_IMPL_(MG_CONCAT_(mg_result_, __LINE__), lhs, rexpr)
#define MG_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                              \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

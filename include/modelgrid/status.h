// Status and Result<T>: how every ModelGrid library function reports errors.
//
// Errors never cross the library API as exceptions. Exceptions thrown by
// third-party libraries (LibTorch, nlohmann::json, yaml-cpp, libzip) are caught
// where they are called and turned into a Status whose message names the
// model, the file or the field. Codes are mapped to HTTP/gRPC codes only at
// the server edge (see ../shared/reference/kserve_v2.md, "Errors").
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

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
};

// Returns the upper-case name of `code`, e.g. "INVALID_ARGUMENT".
const char* StatusCodeName(StatusCode code);

// The outcome of an operation: OK, or an error code with a human message.
// Cheap to copy when OK. Thread-compatible.
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

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "OK" or "<CODE>: <message>".
  std::string ToString() const;

  // Returns a copy whose message is "<prefix>: <message>" (OK stays OK).
  // Used to add context (a model or file name) as an error travels upward.
  Status WithPrefix(const std::string& prefix) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
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

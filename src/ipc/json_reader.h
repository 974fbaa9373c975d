// Internal: reading one JSON object of a message payload field by field,
// keeping the first error (kCorruption naming the message and the field),
// so decoders read straight through and check status() once.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "modelgrid/status.h"

namespace modelgrid::ipc::internal {

// Parses `text` as a JSON object. Errors: kCorruption "<context>: ...".
Result<nlohmann::json> ParseObject(std::string_view text, const std::string& context);

class JsonReader {
 public:
  // `object` must outlive the reader; `context` prefixes every error
  // (e.g. "'load' message", "'infer' message: inputs[2]").
  JsonReader(const nlohmann::json& object, std::string context);

  // Required fields: a missing or mistyped one records an error and returns
  // a default value.
  std::string String(const char* field);
  uint64_t Uint64(const char* field);
  uint32_t Uint32(const char* field);
  int64_t Int64(const char* field);
  bool Bool(const char* field);
  // Arrays and objects: nullptr (and an error unless optional) when missing
  // or of another type.
  const nlohmann::json* Array(const char* field, bool optional = false);
  const nlohmann::json* Object(const char* field, bool optional = false);

  // Optional fields: `fallback` when absent; an error when present but mistyped.
  uint64_t OptionalUint64(const char* field, uint64_t fallback);
  uint32_t OptionalUint32(const char* field, uint32_t fallback);
  bool OptionalBool(const char* field, bool fallback);
  std::string OptionalString(const char* field, const std::string& fallback);

  bool Has(const char* field) const { return object_.contains(field); }

  // Records an error about `field` (or the whole object when `field` is empty).
  void Fail(const std::string& field, const std::string& what);
  // Records `status` (an error of a nested reader) unless an error is already kept.
  void Adopt(const Status& status) {
    if (status_.ok()) status_ = status;
  }
  // Records an error for every member not in `known`.
  void RejectUnknown(std::initializer_list<const char*> known);

  const std::string& context() const { return context_; }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

 private:
  const nlohmann::json* Find(const char* field, bool optional);

  const nlohmann::json& object_;
  std::string context_;
  Status status_;
};

}  // namespace modelgrid::ipc::internal

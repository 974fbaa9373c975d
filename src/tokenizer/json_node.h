// Typed reads of tokenizer.json / tokenizer_config.json values that name the
// file and the JSON path (RFC 6901 pointer, e.g. /pre_tokenizer/pretokenizers/1)
// in every error: kCorruption for a missing field or a value of the wrong
// type, kUnsupported (through Unsupported()) for a component type that is not
// implemented. A JsonNode refers to a json value it does not own.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "modelgrid/status.h"

namespace modelgrid::tokenizer {

class JsonNode {
 public:
  JsonNode(const nlohmann::json* value, std::string file, std::string path)
      : value_(value), file_(std::move(file)), path_(std::move(path)) {}

  const nlohmann::json& value() const { return *value_; }
  const std::string& file() const { return file_; }
  // The pointer of this node; "/" for the root.
  std::string path() const { return path_.empty() ? "/" : path_; }
  bool IsNull() const { return value_->is_null(); }
  bool Has(std::string_view key) const;

  // The member `key` (a null node when absent: callers treat absent as null).
  JsonNode At(std::string_view key) const;
  // Element `index` of an array.
  JsonNode At(size_t index) const;

  // Errors naming this node: "<file>: <path>: <what>".
  Status Error(const std::string& what) const;
  Status Unsupported(const std::string& kind, const std::string& type) const;

  // This node must be an object / an array / a string.
  Status ExpectObject() const;
  Status ExpectArray() const;
  Result<std::string> AsString() const;
  Result<int64_t> AsInt() const;

  // Member reads. Required*: absent or null is an error. Optional*: absent or
  // null gives nullopt / the default.
  Result<std::string> RequiredString(std::string_view key) const;
  Result<std::optional<std::string>> OptionalString(std::string_view key) const;
  Result<std::string> StringOr(std::string_view key, std::string fallback) const;
  Result<bool> BoolOr(std::string_view key, bool fallback) const;
  Result<std::optional<bool>> OptionalBool(std::string_view key) const;
  Result<int64_t> IntOr(std::string_view key, int64_t fallback) const;
  Result<std::optional<int64_t>> OptionalInt(std::string_view key) const;
  // The component "type" string (required).
  Result<std::string> Type() const { return RequiredString("type"); }

 private:
  static const nlohmann::json& Null();
  const nlohmann::json* value_;
  std::string file_;
  std::string path_;
};

// The JSON type name of `v` for error messages ("string", "number", ...).
const char* JsonTypeName(const nlohmann::json& v);

}  // namespace modelgrid::tokenizer

// Internal: writing JSON text by hand (fast, exact number formatting) and
// parsing JSON safely into nlohmann::json with positioned error messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "modelgrid/status.h"

namespace modelgrid::kserve_internal {

// The deepest array/object nesting ParseJson accepts. Deeper documents are
// rejected before parsing, so that copying, comparing or printing a parsed
// document (all recursive in nlohmann::json) cannot exhaust the stack.
inline constexpr int kMaxJsonDepth = 64;

// Returns the offset of the first byte of `s` that does not start a
// well-formed UTF-8 sequence (no overlongs, surrogates or code points past
// U+10FFFF), or std::string_view::npos when `s` is valid UTF-8.
size_t FindInvalidUtf8(std::string_view s);

// `s` with every byte that does not start a well-formed UTF-8 sequence
// replaced by U+FFFD.
std::string ToValidUtf8(std::string_view s);

// Appends `s` as a JSON string literal (quotes included). `s` must be valid
// UTF-8 unless `lossy`, in which case each invalid byte becomes U+FFFD.
void AppendJsonString(std::string* out, std::string_view s, bool lossy = false);

// Appends the shortest decimal that reads back as exactly `v` when parsed as
// a float / double; integral values get ".0" so they read as floats; NaN and
// infinities become null (JSON has no such numbers).
void AppendFloat(std::string* out, float v);
void AppendDouble(std::string* out, double v);
void AppendInt(std::string* out, int64_t v);
void AppendUInt(std::string* out, uint64_t v);

// Appends a parsed JSON value (e.g. a parameters object) as compact text.
// Never throws: strings are valid UTF-8 by construction, and any invalid
// bytes are replaced.
void AppendJsonValue(std::string* out, const nlohmann::json& value);

// Parses `text` as one JSON document. Errors: kInvalidArgument
// "malformed JSON at byte N: <reason>" where N is the 0-based offset at which
// parsing failed (for nesting past kMaxJsonDepth, of the bracket too deep).
Result<nlohmann::json> ParseJson(std::string_view text);

}  // namespace modelgrid::kserve_internal

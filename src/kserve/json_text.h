// Internal: writing JSON text by hand (fast, exact number formatting) and
// parsing JSON safely into nlohmann::json with positioned error messages.
#pragma once

#include "modelgrid/utf8.h"

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

using ::modelgrid::FindInvalidUtf8;  // modelgrid/utf8.h
using ::modelgrid::Utf8SequenceLength;

// `s` with every byte that does not start a well-formed UTF-8 sequence
// replaced by U+FFFD.
std::string ToValidUtf8(std::string_view s);

// Appends `s` as a JSON string literal (quotes included). `s` must be valid
// UTF-8 unless `lossy`, in which case each invalid byte becomes U+FFFD.
void AppendJsonString(std::string* out, std::string_view s, bool lossy = false);

// Appends the shortest decimal that reads back as exactly `v` when parsed as
// a float / double; integral values get ".0" so they read as floats. NaN and
// the infinities become the tokens NaN, Infinity and -Infinity, which strict
// JSON lacks but Triton's HTTP server (rapidjson's kWriteNanAndInfFlag) and
// Python's json module write and read; ParseInferJson reads them back. A
// NaN's sign and payload are not kept. Used only for tensor "data".
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

// ParseJson for infer request and response bodies (modelgrid/kserve/
// infer_codec.h), which also accepts the tokens NaN, Infinity and -Infinity,
// exactly so spelled (as AppendFloat writes them), as the value of a
// tensor's "data" or as an element of it at any nesting: the tensor being an
// object of the top-level "inputs" or "outputs" array. They become
// number_float NaN / +infinity / -infinity in the result. Anywhere else (a
// parameter, a shape, a string's text is never touched), and other
// spellings (nan, Inf, -NaN, +Infinity), are malformed JSON.
// How: a linear scan outside strings replaces each such token that stands
// alone (whitespace or , : [ ] { } or the text's ends on both sides) by "0"
// and spaces of the same length, so byte offsets are unchanged, and records
// its place among the number tokens; the document is then built from
// nlohmann's SAX events, and the recorded numbers are swapped for the
// non-finite values. Errors: those of ParseJson, and "malformed JSON at
// byte N: NaN is accepted only in a tensor's \"data\"" (likewise Infinity,
// -Infinity) where N is the token's offset.
Result<nlohmann::json> ParseInferJson(std::string_view text);

}  // namespace modelgrid::kserve_internal

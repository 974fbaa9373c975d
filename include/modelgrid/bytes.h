// Byte quantities at the edges (CLI, YAML, display). Inside the code every
// memory figure is an integer count of bytes (uint64_t).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "modelgrid/status.h"

namespace modelgrid {

inline constexpr uint64_t kKiB = 1024ULL;
inline constexpr uint64_t kMiB = 1024ULL * kKiB;
inline constexpr uint64_t kGiB = 1024ULL * kMiB;

// Parses a byte quantity: a non-negative number (integer or decimal) followed
// by an optional unit. Binary units: B, KiB, MiB, GiB, TiB (also K, M, G, T);
// decimal units: kB/KB, MB, GB, TB. Units are case-sensitive except that the
// "B" suffix is optional for the single-letter forms. Examples: "1024",
// "512MiB", "80GiB", "1.5GB". Whitespace between number and unit is allowed.
// Errors: kInvalidArgument naming the text and what was expected.
Result<uint64_t> ParseBytes(std::string_view text);

// Formats bytes for humans with a binary unit and two decimals, e.g.
// 1610612736 -> "1.50 GiB", 512 -> "512 B".
std::string FormatBytes(uint64_t bytes);

// Rounds `bytes` up to a multiple of `alignment` (alignment > 0).
constexpr uint64_t RoundUp(uint64_t bytes, uint64_t alignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

}  // namespace modelgrid

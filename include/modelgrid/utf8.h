// UTF-8 well-formedness (Unicode 15, section 3.9, table 3-7): what the
// JSON codec, config readers and views use to refuse or replace bytes that
// are not text. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace modelgrid {

// Length of the well-formed UTF-8 sequence starting at s[i] (1 to 4), or 0
// when none starts there (a stray continuation byte, an overlong form, a
// surrogate, a code point past U+10FFFF, a sequence cut short). `i` must be
// below s.size().
size_t Utf8SequenceLength(std::string_view s, size_t i);

// The offset of the first byte of `s` that does not start a well-formed
// UTF-8 sequence, or std::string_view::npos when `s` is valid UTF-8.
size_t FindInvalidUtf8(std::string_view s);

}  // namespace modelgrid

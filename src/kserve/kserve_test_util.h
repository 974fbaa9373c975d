// Test helpers: little-endian byte strings built with shifts (independently
// of the codec's memcpy), and short-hands for the codec's calls.
#pragma once

#include <bit>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>

namespace modelgrid::kserve_test {

// The little-endian bytes of each value, back to back.
template <typename T>
std::string Le(std::initializer_list<T> values) {
  using U = std::conditional_t<
      sizeof(T) == 1, uint8_t,
      std::conditional_t<sizeof(T) == 2, uint16_t,
                         std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
  std::string out;
  for (T v : values) {
    const U bits = std::bit_cast<U>(v);
    for (size_t i = 0; i < sizeof(T); ++i) {
      out.push_back(static_cast<char>((static_cast<uint64_t>(bits) >> (8 * i)) & 0xFF));
    }
  }
  return out;
}

// BYTES serialization: 4-byte little-endian length, then the bytes.
inline std::string BytesElements(std::initializer_list<std::string> elements) {
  std::string out;
  for (const std::string& e : elements) {
    out += Le<uint32_t>({static_cast<uint32_t>(e.size())});
    out += e;
  }
  return out;
}

}  // namespace modelgrid::kserve_test

// binary16 / bfloat16 conversions (modelgrid/kserve/half.h), done on the bit
// patterns so the rounding is exactly IEEE 754 round-to-nearest-even.
#include "modelgrid/kserve/half.h"

#include <bit>
#include <cstdint>

namespace modelgrid {

namespace {

constexpr int kDoubleFractionBits = 52;
constexpr int kDoubleExponentBias = 1023;

// m / 2^shift rounded to nearest, ties to even; shift in [1, 63].
uint64_t RoundShiftRightEven(uint64_t m, int shift) {
  const uint64_t q = m >> shift;
  const uint64_t rem = m & ((uint64_t{1} << shift) - 1);
  const uint64_t half = uint64_t{1} << (shift - 1);
  return (rem > half || (rem == half && (q & 1))) ? q + 1 : q;
}

// A narrow IEEE-style binary format: `fraction_bits` stored fraction bits and
// an exponent field of `exponent_bits` bits.
struct NarrowFormat {
  int exponent_bits;
  int fraction_bits;
};

// Rounds `value` to the nearest value of `fmt` (ties to even) and returns its
// bits without the sign in the low bits, with the sign at bit 15.
uint16_t DoubleToNarrow(double value, NarrowFormat fmt) {
  const uint64_t bits = std::bit_cast<uint64_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 63) << 15);
  const int exp_field = static_cast<int>((bits >> kDoubleFractionBits) & 0x7FF);
  const uint64_t fraction = bits & ((uint64_t{1} << kDoubleFractionBits) - 1);

  const int bias = (1 << (fmt.exponent_bits - 1)) - 1;
  const uint16_t inf = static_cast<uint16_t>(((1 << fmt.exponent_bits) - 1) << fmt.fraction_bits);
  if (exp_field == 0x7FF) {  // infinity or NaN
    if (fraction == 0) return sign | inf;
    return sign | inf | static_cast<uint16_t>(1 << (fmt.fraction_bits - 1));  // quiet NaN
  }
  // A zero or subnormal double is below 2^-1022: zero in any narrow format.
  if (exp_field == 0) return sign;

  const int e = exp_field - kDoubleExponentBias;  // value = m * 2^(e - 52)
  const uint64_t m = fraction | (uint64_t{1} << kDoubleFractionBits);
  const int min_normal_exp = 1 - bias;
  uint64_t magnitude;
  if (e >= min_normal_exp) {
    // Normal: keep fraction_bits bits of m. A rounding carry into bit
    // fraction_bits + 1 bumps the exponent through the addition below.
    const uint64_t r = RoundShiftRightEven(m, kDoubleFractionBits - fmt.fraction_bits);
    const int64_t biased = int64_t{e} + bias;
    if (biased >= (1 << fmt.exponent_bits) - 1) return sign | inf;
    magnitude = (static_cast<uint64_t>(biased - 1) << fmt.fraction_bits) + r;
    if (magnitude >= inf) return sign | inf;
  } else {
    // Subnormal: value = k * 2^(min_normal_exp - fraction_bits).
    const int shift = kDoubleFractionBits - fmt.fraction_bits + (min_normal_exp - e);
    if (shift > kDoubleFractionBits + 2) return sign;  // below half the smallest subnormal
    magnitude = RoundShiftRightEven(m, shift);  // a carry to 1 << fraction_bits is min normal
  }
  return sign | static_cast<uint16_t>(magnitude);
}

constexpr NarrowFormat kHalf{5, 10};
constexpr NarrowFormat kBF16{8, 7};

}  // namespace

uint16_t DoubleToHalfBits(double value) { return DoubleToNarrow(value, kHalf); }

uint16_t FloatToHalfBits(float value) { return DoubleToNarrow(static_cast<double>(value), kHalf); }

float HalfBitsToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t exp = (bits >> 10) & 0x1F;
  uint32_t fraction = bits & 0x3FF;
  uint32_t out;
  if (exp == 0x1F) {
    out = sign | 0x7F800000u | (fraction << 13);
  } else if (exp != 0) {
    out = sign | ((exp - 15 + 127) << 23) | (fraction << 13);
  } else if (fraction == 0) {
    out = sign;
  } else {
    // Subnormal half: fraction * 2^-24; normalize into a float.
    int e = -14;
    while ((fraction & 0x400) == 0) {
      fraction <<= 1;
      --e;
    }
    fraction &= 0x3FF;
    out = sign | (static_cast<uint32_t>(e + 127) << 23) | (fraction << 13);
  }
  return std::bit_cast<float>(out);
}

uint16_t DoubleToBF16Bits(double value) { return DoubleToNarrow(value, kBF16); }

uint16_t FloatToBF16Bits(float value) { return DoubleToNarrow(static_cast<double>(value), kBF16); }

float BF16BitsToFloat(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

}  // namespace modelgrid

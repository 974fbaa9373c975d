// FP16 / BF16 conversions against hand-computed bit patterns and against an
// independent oracle (nearest value by search over every finite pattern).
#include "modelgrid/kserve/half.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

namespace modelgrid {
namespace {

float FloatFromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

TEST(HalfTest, HandComputedPatterns) {
  EXPECT_EQ(DoubleToHalfBits(1.0), 0x3C00);
  EXPECT_EQ(DoubleToHalfBits(-2.0), 0xC000);
  EXPECT_EQ(DoubleToHalfBits(0.5), 0x3800);
  EXPECT_EQ(DoubleToHalfBits(0.0), 0x0000);
  EXPECT_EQ(DoubleToHalfBits(-0.0), 0x8000);
  EXPECT_EQ(DoubleToHalfBits(65504.0), 0x7BFF);   // largest finite
  EXPECT_EQ(DoubleToHalfBits(65519.99), 0x7BFF);  // below the tie with 2^16
  EXPECT_EQ(DoubleToHalfBits(65520.0), 0x7C00);   // tie: 2^16 has the even mantissa -> inf
  EXPECT_EQ(DoubleToHalfBits(-1e9), 0xFC00);
  EXPECT_EQ(DoubleToHalfBits(0.1), 0x2E66);
  EXPECT_EQ(DoubleToHalfBits(1.0 / 3.0), 0x3555);
  EXPECT_EQ(DoubleToHalfBits(M_PI), 0x4248);
  EXPECT_EQ(DoubleToHalfBits(std::ldexp(1.0, -14)), 0x0400);     // smallest normal
  EXPECT_EQ(DoubleToHalfBits(std::ldexp(1.0, -24)), 0x0001);     // smallest subnormal
  EXPECT_EQ(DoubleToHalfBits(std::ldexp(1023.0, -24)), 0x03FF);  // largest subnormal
  EXPECT_EQ(DoubleToHalfBits(1e-8), 0x0000);                     // below 2^-25: flushes to zero
  EXPECT_EQ(DoubleToHalfBits(-1e-8), 0x8000);
  EXPECT_EQ(DoubleToHalfBits(std::ldexp(1.0, -25)), 0x0000);     // tie with 0 -> even 0
  EXPECT_EQ(DoubleToHalfBits(std::ldexp(1.5, -25)), 0x0001);     // above the tie
  EXPECT_EQ(DoubleToHalfBits(std::ldexp(3.0, -25)), 0x0002);     // tie 1|2 -> even 2
  EXPECT_EQ(DoubleToHalfBits(6e-8), 0x0001);                     // 6e-8 / 2^-24 = 1.007
  EXPECT_EQ(DoubleToHalfBits(std::ldexp(1023.5, -24)), 0x0400);  // rounds up into min normal
  EXPECT_EQ(DoubleToHalfBits(std::numeric_limits<double>::infinity()), 0x7C00);
  EXPECT_EQ(DoubleToHalfBits(-std::numeric_limits<double>::infinity()), 0xFC00);
  const uint16_t nan = DoubleToHalfBits(std::nan(""));
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);
  EXPECT_EQ(DoubleToHalfBits(std::numeric_limits<double>::denorm_min()), 0x0000);
}

TEST(HalfTest, RoundsTiesToEven) {
  // Between 1.0 (0x3C00) and 1 + 2^-10 (0x3C01) the tie is 1 + 2^-11.
  EXPECT_EQ(DoubleToHalfBits(1.0 + std::ldexp(1.0, -11)), 0x3C00);
  EXPECT_EQ(DoubleToHalfBits(1.0 + 3 * std::ldexp(1.0, -11)), 0x3C02);
  EXPECT_EQ(DoubleToHalfBits(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -30)), 0x3C01);
  EXPECT_EQ(DoubleToHalfBits(2049.0), 0x6800);  // 2048|2050 -> 2048
  EXPECT_EQ(DoubleToHalfBits(2051.0), 0x6802);  // 2050|2052 -> 2052
  EXPECT_EQ(FloatToHalfBits(2049.0f), 0x6800);
  // Rounded once from the double: going through float first would drop the
  // 2^-40 and land on the tie, giving 0x3C00.
  EXPECT_EQ(DoubleToHalfBits(1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40)), 0x3C01);
}

TEST(HalfTest, HalfToFloat) {
  EXPECT_EQ(HalfBitsToFloat(0x3C00), 1.0f);
  EXPECT_EQ(HalfBitsToFloat(0xC000), -2.0f);
  EXPECT_EQ(HalfBitsToFloat(0x7BFF), 65504.0f);
  EXPECT_EQ(HalfBitsToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfBitsToFloat(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(HalfBitsToFloat(0x0400), std::ldexp(1.0f, -14));
  EXPECT_EQ(HalfBitsToFloat(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::signbit(HalfBitsToFloat(0x8000)));
  EXPECT_EQ(HalfBitsToFloat(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(HalfBitsToFloat(0x7E00)));
}

TEST(HalfTest, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h <= 0xFFFF; ++h) {
    const bool nan = (h & 0x7C00) == 0x7C00 && (h & 0x3FF) != 0;
    if (nan) continue;
    ASSERT_EQ(FloatToHalfBits(HalfBitsToFloat(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

TEST(BF16Test, HandComputedPatterns) {
  EXPECT_EQ(DoubleToBF16Bits(1.0), 0x3F80);
  EXPECT_EQ(DoubleToBF16Bits(3.0), 0x4040);
  EXPECT_EQ(DoubleToBF16Bits(-2.0), 0xC000);
  EXPECT_EQ(DoubleToBF16Bits(-0.0), 0x8000);
  EXPECT_EQ(FloatToBF16Bits(FloatFromBits(0x40490FDB)), 0x4049);          // pi: low half < tie
  EXPECT_EQ(FloatToBF16Bits(FloatFromBits(0x3F808000)), 0x3F80);          // tie -> even
  EXPECT_EQ(FloatToBF16Bits(FloatFromBits(0x3F818000)), 0x3F82);          // tie -> even
  EXPECT_EQ(FloatToBF16Bits(FloatFromBits(0x3F808001)), 0x3F81);          // above the tie
  EXPECT_EQ(FloatToBF16Bits(std::numeric_limits<float>::max()), 0x7F80);  // rounds to inf
  EXPECT_EQ(FloatToBF16Bits(FloatFromBits(0x7F7F0000)), 0x7F7F);          // largest finite
  EXPECT_EQ(FloatToBF16Bits(FloatFromBits(0x00000001)), 0x0000);          // tiny float
  EXPECT_EQ(FloatToBF16Bits(FloatFromBits(0x00010000)), 0x0001);          // smallest subnormal
  EXPECT_EQ(FloatToBF16Bits(FloatFromBits(0x00018000)), 0x0002);          // subnormal tie
  EXPECT_EQ(DoubleToBF16Bits(1e300), 0x7F80);
  EXPECT_EQ(DoubleToBF16Bits(1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40)), 0x3F81);
  const uint16_t nan = FloatToBF16Bits(std::nanf(""));
  EXPECT_EQ(nan & 0x7F80, 0x7F80);
  EXPECT_NE(nan & 0x007F, 0);
  EXPECT_EQ(BF16BitsToFloat(0x3F80), 1.0f);
  EXPECT_EQ(BF16BitsToFloat(0x4040), 3.0f);
  EXPECT_EQ(BF16BitsToFloat(0x0001), std::ldexp(1.0f, -133));
  EXPECT_EQ(BF16BitsToFloat(0x7F7F), 3.38953139e38f);
}

// The nearest finite pattern to v >= 0 by binary search over the monotonic
// sequence decode(0..max_finite), deciding with the exact midpoint (a double),
// ties to the even pattern; next_power is the value the pattern after
// max_finite would have if the format had more exponent (it stands for inf).
uint16_t Oracle(double v, const std::function<float(uint16_t)>& decode, uint16_t max_finite,
                double next_power, uint16_t inf) {
  const double mag = std::fabs(v);
  const uint16_t sign = std::signbit(v) ? 0x8000 : 0;
  uint32_t lo = 0, hi = max_finite;  // largest pattern with value <= mag
  if (mag >= decode(max_finite)) {
    lo = max_finite;
  } else {
    while (lo < hi) {
      const uint32_t mid = (lo + hi + 1) / 2;
      if (decode(static_cast<uint16_t>(mid)) <= mag)
        lo = mid;
      else
        hi = mid - 1;
    }
  }
  const double below = decode(static_cast<uint16_t>(lo));
  const double above = lo == max_finite ? next_power : decode(static_cast<uint16_t>(lo + 1));
  const double midpoint = (below + above) / 2;
  uint32_t pick;
  if (mag < midpoint)
    pick = lo;
  else if (mag > midpoint)
    pick = lo + 1;
  else
    pick = (lo % 2 == 0) ? lo : lo + 1;
  if (pick > max_finite) return sign | inf;
  return sign | static_cast<uint16_t>(pick);
}

double RandomDoubleNear(int min_exp, int max_exp) {
  const int e = *rc::gen::inRange(min_exp, max_exp + 1);
  const uint64_t mant = *rc::gen::arbitrary<uint64_t>();
  // Sometimes land exactly on a tie or a representable value.
  const int keep = *rc::gen::element(52, 52, 12, 11, 9, 8);
  const uint64_t m = (mant >> 12) & ~((uint64_t{1} << (52 - keep)) - 1);
  const double v = std::ldexp(1.0 + std::ldexp(static_cast<double>(m), -52), e);
  return *rc::gen::arbitrary<bool>() ? -v : v;
}

RC_GTEST_PROP(HalfProperty, MatchesNearestEvenOracle, ()) {
  const double v = RandomDoubleNear(-27, 16);
  RC_ASSERT(DoubleToHalfBits(v) == Oracle(v, HalfBitsToFloat, 0x7BFF, 65536.0, 0x7C00));
}

RC_GTEST_PROP(BF16Property, MatchesNearestEvenOracle, ()) {
  const double v = RandomDoubleNear(-135, 128);
  RC_ASSERT(DoubleToBF16Bits(v) ==
            Oracle(v, BF16BitsToFloat, 0x7F7F, std::ldexp(1.0, 128), 0x7F80));
}

}  // namespace
}  // namespace modelgrid

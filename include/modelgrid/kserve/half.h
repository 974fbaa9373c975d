// 16-bit floating point conversions for the KServe v2 datatypes "FP16"
// (IEEE 754-2008 binary16: 1 sign, 5 exponent, 10 fraction bits) and "BF16"
// (bfloat16: the upper 16 bits of an IEEE binary32: 1 sign, 8 exponent,
// 7 fraction bits). Values travel as their bit patterns (uint16_t), stored
// little-endian in tensor data (reference/kserve_v2.md, "Datatypes").
//
// Narrowing conversions round to nearest, ties to even (IEEE 754 default),
// handle subnormals of the narrow format, turn values past the largest finite
// one into infinity and NaN into a quiet NaN of the same sign. They are
// correctly rounded from the given double or float in one step (no double
// rounding through float). All functions are pure and thread-safe.
#pragma once

#include <cstdint>

namespace modelgrid {

// Rounds `value` to the nearest binary16 and returns its bit pattern.
// Examples: 1.0 -> 0x3C00, 65504.0 -> 0x7BFF, 65520.0 -> 0x7C00 (+inf),
// 2^-24 -> 0x0001 (smallest subnormal), 1e-8 -> 0x0000.
uint16_t DoubleToHalfBits(double value);
// Same as DoubleToHalfBits (a float converts to double exactly).
uint16_t FloatToHalfBits(float value);
// The exact float value of a binary16 bit pattern (every binary16 is a float).
float HalfBitsToFloat(uint16_t bits);

// Rounds `value` to the nearest bfloat16 and returns its bit pattern.
// Examples: 1.0 -> 0x3F80, 3.0 -> 0x4040, -2.0 -> 0xC000.
uint16_t DoubleToBF16Bits(double value);
// Same as DoubleToBF16Bits (a float converts to double exactly).
uint16_t FloatToBF16Bits(float value);
// The exact float value of a bfloat16 bit pattern (`bits` << 16 as binary32).
float BF16BitsToFloat(uint16_t bits);

}  // namespace modelgrid

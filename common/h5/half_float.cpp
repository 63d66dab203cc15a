#include "common/h5/half_float.hpp"

#include <cmath>
#include <cstring>

namespace lpi::h5 {

namespace {

uint32_t bits_of(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  return x;
}

float float_of(uint32_t x) {
  float f;
  std::memcpy(&f, &x, sizeof f);
  return f;
}

// `full` >> `shift`, rounded to nearest, ties to even.
uint32_t shift_round(uint32_t full, int shift) {
  const uint32_t kept = full >> shift, rest = full & ((1u << shift) - 1), half = 1u << (shift - 1);
  return kept + (rest > half || (rest == half && (kept & 1)));
}

uint16_t to_ieee_half(float f) {
  const uint32_t x = bits_of(f);
  const auto sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const int exp = static_cast<int>((x >> 23) & 0xff);
  const uint32_t mant = x & 0x7fffff;
  if (exp == 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);  // infinity, NaN (quiet)
  const int e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;  // beyond 65504: infinity
  if (e >= 1) {
    // Normal: a carry out of the mantissa raises the exponent (to infinity at the top).
    return static_cast<uint16_t>(sign | shift_round((static_cast<uint32_t>(e) << 23) | mant, 13));
  }
  // Subnormal in half precision: m x 2^-24.
  const int shift = 126 - exp;
  if (shift >= 25) return sign;  // below half the smallest subnormal
  return static_cast<uint16_t>(sign | shift_round(0x800000 | mant, shift));
}

float from_ieee_half(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const int e = (h >> 10) & 0x1f;
  const uint32_t m = h & 0x3ff;
  if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);
    return sign ? -v : v;
  }
  if (e == 31) return float_of(sign | 0x7f800000 | (m << 13));
  return float_of(sign | (static_cast<uint32_t>(e - 15 + 127) << 23) | (m << 13));
}

uint16_t to_bfloat(float f) {
  const uint32_t x = bits_of(f);
  if (std::isnan(f)) return static_cast<uint16_t>((x >> 16) | 0x40);  // stays a (quiet) NaN
  return static_cast<uint16_t>((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

}  // namespace

uint16_t to_half(float value, Half kind) {
  return kind == Half::ieee ? to_ieee_half(value) : to_bfloat(value);
}

float from_half(uint16_t bits, Half kind) {
  return kind == Half::ieee ? from_ieee_half(bits) : float_of(static_cast<uint32_t>(bits) << 16);
}

void to_half(const float* in, std::size_t n, Half kind, uint16_t* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = to_half(in[i], kind);
}

void from_half(const uint16_t* in, std::size_t n, Half kind, float* out) {
  for (std::size_t i = 0; i < n; ++i) out[i] = from_half(in[i], kind);
}

}  // namespace lpi::h5

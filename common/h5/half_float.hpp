// float32 <-> the two 16-bit float formats of the stores (IEEE half and
// bfloat16), rounding to nearest, ties to even. HDF5's own float-to-float
// conversion misrounds to a custom 16-bit type (measured with 1.10.8: a
// float32 just below 2^-4 became 2^-5 in half precision, whenever rounding
// carried into the exponent), so the h5 layer converts 16-bit float data
// itself (h5_dataset.cpp) and hands HDF5 the bits.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lpi::h5 {

enum class Half { ieee, bfloat };

uint16_t to_half(float value, Half kind);
float from_half(uint16_t bits, Half kind);
void to_half(const float* in, std::size_t n, Half kind, uint16_t* out);
void from_half(const uint16_t* in, std::size_t n, Half kind, float* out);

}  // namespace lpi::h5

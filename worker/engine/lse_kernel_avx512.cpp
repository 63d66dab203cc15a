// The CPU kernels compiled with AVX-512 (see worker/CMakeLists.txt); called
// only when the CPU has it. A 16-lane vector is one register; the arithmetic
// is the AVX2 build's, lane for lane, so the two give the same bits.
#include "worker/engine/lse_kernel.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace lpi::engine::kernels::avx512 {
#define LPI_PRODUCT_ROWS 8
#define LPI_PRODUCT_VECS 3
#define LPI_SMALL_NEURONS 4
#include "worker/engine/lse_kernel_impl.inc"
}  // namespace lpi::engine::kernels::avx512

// The CPU kernels compiled with AVX2 and FMA (see worker/CMakeLists.txt);
// called only when the CPU has them. A 16-lane vector is two registers.
#include "worker/engine/lse_kernel.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace lpi::engine::kernels::avx2 {
#define LPI_PRODUCT_ROWS 6
#define LPI_PRODUCT_VECS 1
#include "worker/engine/lse_kernel_impl.inc"
}  // namespace lpi::engine::kernels::avx2

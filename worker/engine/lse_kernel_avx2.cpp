// The fused log-sum-exp kernel compiled with AVX2 and FMA (see
// worker/CMakeLists.txt); called only when the CPU has them.
#include "worker/engine/lse_kernel.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace lpi::engine::kernels::avx2 {
#define LPI_KERNEL_NAME affine_logsumexp_avx2
#define LPI_DOTS_NAME row_dots_avx2
#include "worker/engine/lse_kernel_impl.inc"
#undef LPI_KERNEL_NAME
#undef LPI_DOTS_NAME
}  // namespace lpi::engine::kernels::avx2

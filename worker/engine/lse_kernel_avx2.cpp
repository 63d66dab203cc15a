// The CPU kernels compiled with AVX2 and FMA (see worker/CMakeLists.txt);
// called only when the CPU has them.
#include "worker/engine/lse_kernel.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace lpi::engine::kernels::avx2 {
#include "worker/engine/lse_kernel_impl.inc"
}  // namespace lpi::engine::kernels::avx2

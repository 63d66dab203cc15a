#include "worker/engine/lse_kernel.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace lpi::engine::kernels {

namespace generic {
#define LPI_KERNEL_NAME affine_logsumexp_generic
#define LPI_DOTS_NAME row_dots_generic
#include "worker/engine/lse_kernel_impl.inc"
#undef LPI_KERNEL_NAME
#undef LPI_DOTS_NAME
}  // namespace generic

#if defined(__x86_64__) && defined(__GNUC__)
namespace avx2 {
float affine_logsumexp_avx2(const float* a, const float* p, int64_t n, float alpha, float beta,
                            float bound);  // lse_kernel_avx2.cpp
void row_dots_avx2(const float* x, int64_t rows, const float* w, int64_t n, int64_t d, int64_t v0,
                   int64_t v1, float* out);
}  // namespace avx2
#endif

float exp_approx(float x) {
  return generic::exp_scalar(x);
}

float affine_logsumexp(const float* a, const float* p, int64_t n, float alpha, float beta,
                       float bound) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (has_avx2) return avx2::affine_logsumexp_avx2(a, p, n, alpha, beta, bound);
#endif
  return generic::affine_logsumexp_generic(a, p, n, alpha, beta, bound);
}

void row_dots(const float* x, int64_t rows, const float* w, int64_t n, int64_t d, int64_t v0,
              int64_t v1, float* out) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (has_avx2) return avx2::row_dots_avx2(x, rows, w, n, d, v0, v1, out);
#endif
  generic::row_dots_generic(x, rows, w, n, d, v0, v1, out);
}

}  // namespace lpi::engine::kernels

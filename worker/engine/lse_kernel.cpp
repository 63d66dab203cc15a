#include "worker/engine/lse_kernel.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace lpi::engine::kernels {

namespace generic {
#include "worker/engine/lse_kernel_impl.inc"
}  // namespace generic

#if defined(__x86_64__) && defined(__GNUC__)
namespace avx2 {  // lse_kernel_avx2.cpp
double relative_lse(const float* q, const float* s, const float* p, int64_t n, float eps,
                    float beta, float radius, float upper, double total);
BaseDistribution base_distribution(const float* s, int64_t n, float* q);
void row_dots(const float* x, int64_t rows, const float* w, int64_t n, int64_t d, int64_t v0,
              int64_t v1, float* out);
}  // namespace avx2
#endif

namespace {
bool use_avx2() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
#else
  return false;
#endif
}
}  // namespace

#if defined(__x86_64__) && defined(__GNUC__)
#define LPI_DISPATCH(call) return use_avx2() ? avx2::call : generic::call
#else
#define LPI_DISPATCH(call) return generic::call
#endif

float exp_approx(float x) {
  return generic::exp_approx(x);
}

BaseDistribution base_distribution(const float* s, int64_t n, float* q) {
  LPI_DISPATCH(base_distribution(s, n, q));
}

double relative_lse(const float* q, const float* s, const float* p, int64_t n, float eps,
                    float beta, float radius, float upper, double total) {
  LPI_DISPATCH(relative_lse(q, s, p, n, eps, beta, radius, upper, total));
}

void row_dots(const float* x, int64_t rows, const float* w, int64_t n, int64_t d, int64_t v0,
              int64_t v1, float* out) {
  LPI_DISPATCH(row_dots(x, rows, w, n, d, v0, v1, out));
}

}  // namespace lpi::engine::kernels

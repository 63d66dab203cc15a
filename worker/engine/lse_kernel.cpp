#include "worker/engine/lse_kernel.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace lpi::engine::kernels {

namespace generic {
#include "worker/engine/lse_kernel_impl.inc"
}  // namespace generic

#if defined(__x86_64__) && defined(__GNUC__)
#define LPI_KERNEL_PROTOTYPES                                                               \
  void lens_product(const float* a, int64_t lda, int64_t rows, const float* w, int64_t d,   \
                    int64_t v0, int64_t v1, float* out, int64_t ldo);                       \
  BaseDistribution base_distribution(const float* s, int64_t n, float* q);                  \
  double relative_lse(const float* q, const float* s, const float* p, int64_t n, float eps, \
                      float beta, float radius, float upper, double total);                 \
  void small_sums(const SmallSums& args, int64_t b0, int64_t b1, int64_t i0, int64_t i1);   \
  double probe_terms(int64_t reps, bool small);
namespace avx2 {  // lse_kernel_avx2.cpp
LPI_KERNEL_PROTOTYPES
}
namespace avx512 {  // lse_kernel_avx512.cpp
LPI_KERNEL_PROTOTYPES
}
#endif

namespace {
enum class Isa { Generic, Avx2, Avx512 };
Isa cpu_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f")) return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
  return Isa::Generic;
}
Isa& chosen_isa() {
  static Isa isa = cpu_isa();
  return isa;
}
Isa best_isa() {
  return chosen_isa();
}
}  // namespace

#if defined(__x86_64__) && defined(__GNUC__)
#define LPI_DISPATCH(call)  \
  switch (best_isa()) {     \
    case Isa::Avx512:       \
      return avx512::call;  \
    case Isa::Avx2:         \
      return avx2::call;    \
    default:                \
      return generic::call; \
  }
#else
#define LPI_DISPATCH(call) return generic::call
#endif

const char* isa() {
  switch (best_isa()) {
    case Isa::Avx512:
      return "avx512";
    case Isa::Avx2:
      return "avx2";
    default:
      return "generic";
  }
}

bool use_isa(const char* name) {
  const std::string n = name;
  const Isa want = n == "avx512" ? Isa::Avx512 : n == "avx2" ? Isa::Avx2 : Isa::Generic;
  if (n != "avx512" && n != "avx2" && n != "generic") return false;
  if (static_cast<int>(want) > static_cast<int>(cpu_isa())) return false;
  chosen_isa() = want;
  return true;
}

float exp_approx(float x) {
  return generic::exp_approx(x);
}

void lens_product(const float* a, int64_t lda, int64_t rows, const float* w, int64_t d, int64_t v0,
                  int64_t v1, float* out, int64_t ldo) {
  LPI_DISPATCH(lens_product(a, lda, rows, w, d, v0, v1, out, ldo));
}

BaseDistribution base_distribution(const float* s, int64_t n, float* q) {
  LPI_DISPATCH(base_distribution(s, n, q));
}

double relative_lse(const float* q, const float* s, const float* p, int64_t n, float eps,
                    float beta, float radius, float upper, double total) {
  LPI_DISPATCH(relative_lse(q, s, p, n, eps, beta, radius, upper, total));
}

void small_sums(const SmallSums& args, int64_t b0, int64_t b1, int64_t i0, int64_t i1) {
  LPI_DISPATCH(small_sums(args, b0, b1, i0, i1));
}

double probe_terms(int64_t reps, bool small) {
  LPI_DISPATCH(probe_terms(reps, small));
}

}  // namespace lpi::engine::kernels

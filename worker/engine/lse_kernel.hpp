// The inner loops of the Gated-LPI fast path on the CPU (docs/METHOD.md,
// section 2), vectorised with the compiler's vector extensions and built for
// several instruction sets (the best the CPU has is chosen at run time):
// products with the unembedding in a fixed order, the base distribution of
// a prompt's lens logits, and for each (prompt, neuron) the log of the mean
// of exp(delta) under it, blocked so that a tile of P rows and a block of
// prompts stay in cache. Every result depends on its own inputs only, to the
// last bit: not on the other rows of a call, the blocking or the thread
// count. (On a GPU the same reductions run as tensor ops.)
#pragma once

#include <cmath>
#include <cstdint>

namespace lpi::engine::kernels {

// The instruction set the kernels run with: "avx512", "avx2" or "generic"
// (the best the CPU has).
const char* isa();
// Runs the kernels with the named instruction set instead, for tests and
// benchmarks (not while kernels run); false when the CPU lacks it.
bool use_isa(const char* name);

// Rows of the vocabulary are padded to a multiple of this with zeros.
constexpr int64_t kRowAlign = 16;

// out[r * ldo + v] = sum_k a[k * lda + r] * w[v * d + k] for rows r < rows and
// v in [v0, v1): the products of rows (stored k-major) with the rows of w
// [n, d], each entry's d terms added in order, one multiply-add each (the
// lens logits of residuals and the projection P of output columns).
void lens_product(const float* a, int64_t lda, int64_t rows, const float* w, int64_t d, int64_t v0,
                  int64_t v1, float* out, int64_t ldo);

struct BaseDistribution {
  double lse = 0;    // log sum_v exp(s[v])
  double total = 0;  // sum_v q[v] of the float q written, in the kernels' order (about 1)
};

// q[v] = exp(s[v] - lse) for the base logits s [n] of one prompt.
BaseDistribution base_distribution(const float* s, int64_t n, float* q);

// Upper bound of |delta| under which the polynomial sums apply.
constexpr float kSmallRadius = 0.5f;

// log(sum_v q[v] exp(delta[v]) / total), delta[v] = eps * s[v] + beta * p[v]
// (s may be null when eps is 0), for a distribution q [n] of sum `total`.
// `radius` bounds |delta[v]| and `upper` bounds delta[v] from above (from the
// extremes of s and p): with radius <= kSmallRadius it is
// log1p(small sum / total), else the sum of exp(delta - upper), and where that
// nears underflow an exact two-pass sum in double.
double relative_lse(const float* q, const float* s, const float* p, int64_t n, float eps,
                    float beta, float radius, float upper, double total);

// The blocked kernel: sums[b * ldc + i] += sum_v q_b[v] (exp(delta[v]) - 1)
// for prompts b in [b0, b1) and neurons i in [i0, i1), delta = beta[b * ldc +
// i] p_i + eps[b * ldc + i] s_b (eps and s null for the frozen lens), rows
// of n entries (a multiple of kRowAlign, zeros past the vocabulary). Valid
// for pairs with |delta| <= kSmallRadius; the bits equal relative_lse's.
struct SmallSums {
  const float* q = nullptr;  // [*, ldq]
  const float* s = nullptr;  // [*, ldq] or null
  int64_t ldq = 0;
  const float* p = nullptr;  // [*, ldp]
  int64_t ldp = 0;
  int64_t n = 0;
  const float* beta = nullptr;  // [*, ldc]
  const float* eps = nullptr;   // [*, ldc] or null
  double* sums = nullptr;       // [*, ldc]
  int64_t ldc = 0;
};
void small_sums(const SmallSums& args, int64_t b0, int64_t b1, int64_t i0, int64_t i1);

// reps x 128 terms of the kernel's sums (exp_poly, or the small-delta
// polynomial, of a multiply-add, then a multiply-add into the sum) on
// L1-resident data: the core's limit for this arithmetic (lpi-bench --kernel).
double probe_terms(int64_t reps, bool small);

// exp(x) for x in float range, branch-free (vectorisable), relative error
// about 2e-7; x below -87.3 gives about 1e-38 instead of a denormal or 0.
float exp_approx(float x);

}  // namespace lpi::engine::kernels

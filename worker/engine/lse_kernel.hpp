// The inner loops of the Gated-LPI fast path on the CPU (docs/METHOD.md,
// section 2), vectorised with the compiler's vector extensions and built for
// several instruction sets (chosen at run time): the base distribution of a
// prompt's lens logits, and for one (prompt, neuron) the log of the mean of
// exp(delta) under it, in one fused pass over the vocabulary with no
// temporary of vocabulary size. (On a GPU the same reduction runs as tensor
// ops.) Every result depends on its own inputs only, to the last bit.
#pragma once

#include <cmath>
#include <cstdint>

namespace lpi::engine::kernels {

struct BaseDistribution {
  double lse = 0;    // log sum_v exp(s[v])
  double total = 0;  // sum_v q[v] of the float q written, in the kernel's order (about 1)
};

// q[v] = exp(s[v] - lse) for the base logits s [n] of one prompt.
BaseDistribution base_distribution(const float* s, int64_t n, float* q);

// log(sum_v q[v] exp(delta[v]) / total), delta[v] = eps * s[v] + beta * p[v]
// (s may be null when eps is 0), for a distribution q [n] of sum `total`.
// `radius` bounds |delta[v]| and `upper` bounds delta[v] from above (from the
// extremes of s and p): with radius <= 1/2 the sum is 1 + sum q (e^delta - 1)
// by a polynomial, else exp(delta - upper), and where that nears underflow
// an exact two-pass sum in double.
double relative_lse(const float* q, const float* s, const float* p, int64_t n, float eps,
                    float beta, float radius, float upper, double total);

// out[r * n + v] = dot(x[r], w[v]) for rows x [rows, d] and w [n, d], v in
// [v0, v1): each dot in a fixed order, so a row's bits do not depend on the
// other rows (the batch-invariant lens logits on the CPU).
void row_dots(const float* x, int64_t rows, const float* w, int64_t n, int64_t d, int64_t v0,
              int64_t v1, float* out);

// exp(x) for x in float range, branch-free (vectorisable), relative error
// about 2e-7; x below -87.3 gives about 1e-38 instead of a denormal or 0.
float exp_approx(float x);

}  // namespace lpi::engine::kernels

// The inner loop of the Gated-LPI fast path on the CPU: for one prompt and one
// neuron, log sum_v exp(alpha * a[v] + beta * p[v]) over the vocabulary, in
// one or two fused passes that the compiler vectorises; no temporary of
// vocabulary size. (On a GPU the same reduction runs as tensor ops.)
#pragma once

#include <cmath>
#include <cstdint>

namespace lpi::engine::kernels {

// `bound`, when finite, is an upper bound of alpha * a[v] + beta * p[v] (from
// the maxima of a and p): one pass then suffices unless the bound overshoots
// so far that the shifted sum nears underflow, where the two-pass method runs.
float affine_logsumexp(const float* a, const float* p, int64_t n, float alpha, float beta,
                       float bound = INFINITY);

// out[r * n + v] = dot(x[r], w[v]) for rows x [rows, d] and w [n, d], v in
// [v0, v1): each dot in a fixed order, so a row's bits do not depend on the
// other rows (the batch-invariant lens logits on the CPU).
void row_dots(const float* x, int64_t rows, const float* w, int64_t n, int64_t d, int64_t v0,
              int64_t v1, float* out);

// exp(x) for x in float range, branch-free (vectorisable), relative error
// about 2e-7; x below -87.3 gives about 1e-38 instead of a denormal or 0.
float exp_approx(float x);

}  // namespace lpi::engine::kernels

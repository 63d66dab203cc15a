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

// exp(x) for x in float range, branch-free (vectorisable), relative error
// about 2e-7; x below -87.3 gives about 1e-38 instead of a denormal or 0.
float exp_approx(float x);

}  // namespace lpi::engine::kernels

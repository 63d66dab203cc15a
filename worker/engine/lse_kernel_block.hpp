// The CPU fast path of one Gated-LPI block on tensors (docs/METHOD.md,
// section 2): the products with the unembedding (lens logits of residuals,
// projection tiles P of output columns) and the relative log-sum-exp of
// every (prompt, neuron), each cut into work items that at::parallel_for
// spreads over the threads. The items are fixed by the shapes alone and every
// result is computed by the same code whichever item or thread holds it, so
// the bits do not depend on the thread count or on the other rows of a call
// (lse_kernel.hpp).
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace lpi::engine::kernels {

// Rows of the vocabulary rounded up to the kernels' alignment.
int64_t padded(int64_t vocab);

// y W^T for rows y [m, d] and the unembedding w [V, d] (float32): [m, cols],
// cols >= V, the columns past V zero.
torch::Tensor unembed_rows(const torch::Tensor& y, const torch::Tensor& w, int64_t cols);

// (W g)^T for columns g [d, n] (k-major, as stored): [n, cols], zero past V.
torch::Tensor unembed_columns(const torch::Tensor& g, const torch::Tensor& w, int64_t cols);

// The base distribution of base logits s [m, cols] (zero past V): q [m,
// cols] (zero past V) and the sum of each row of q in float64 [m].
std::pair<torch::Tensor, torch::Tensor> base_distributions(const torch::Tensor& s, int64_t vocab);

// Bounds of delta = beta[b, i] p_i + eps[b, i] s_b over v < vocab, from the
// extremes of each p row (and s row; eps undefined for the frozen lens):
// {radius >= |delta|, upper >= delta}, [m, n] each, contiguous. Tensor ops
// on any device: the CPU kernel below and the GPU kernel take the same.
std::pair<torch::Tensor, torch::Tensor> delta_bounds(const torch::Tensor& p, int64_t vocab,
                                                     const torch::Tensor& beta,
                                                     const torch::Tensor& s,
                                                     const torch::Tensor& eps);

// log(sum_v q_b[v] exp(delta) / total_b), delta = beta[b, i] p_i + eps[b, i]
// s_b (eps undefined for the frozen lens), for q, s [m, cols], p [n, cols]
// (zero past `vocab`), totals [m] float64: [m, n] float32.
torch::Tensor relative_lse_block(const torch::Tensor& q, const torch::Tensor& totals,
                                 const torch::Tensor& s, const torch::Tensor& p, int64_t vocab,
                                 const torch::Tensor& beta, const torch::Tensor& eps);

}  // namespace lpi::engine::kernels

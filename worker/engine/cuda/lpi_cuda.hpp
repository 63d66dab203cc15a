// The Gated-LPI GPU kernels (lpi_cuda.cu), behind a header free of CUDA
// types so that the engine compiles the same with and without them. Every
// pointer is device memory (float32, row-major) on the current device; the
// kernels run on the legacy default stream, the one libtorch's own default
// stream synchronises with, and return when they are queued.
//
// Both are batch-invariant: each output is summed in the same order whatever
// the other rows or pairs of the call (row_dots: a warp's fixed stride over
// the hidden size, then a fixed butterfly; relative_lse: one thread per pair,
// over the vocabulary in order), so a prompt's scores are the same bits in
// any lease, as on the CPU (whose order differs: the two agree within
// rounding, not bit for bit).
#pragma once

#include <cstdint>
#include <string>

namespace lpi::engine::cuda {

// Whether the kernels were compiled in and a device is visible ("" when so,
// else why not).
std::string unavailable();

// out[r * n + v] = dot(x[r], w[v]) for rows x [rows, d] and w [n, d]: the
// lens logits of a block's prompts in one launch, without a matrix product
// whose blocking follows the batch.
void row_dots(const float* x, int64_t rows, const float* w, int64_t n, int64_t d, float* out);

// For each (prompt b < m, neuron i < n): log(sum_v q[b, v] exp(delta) / total[b]),
// delta = eps[b, i] * s[b, v] + beta[b, i] * p[i, v], over v < V (docs/METHOD.md,
// section 2): q the prompt's base distribution, s its base lens logits (null
// when every eps is 0: the frozen lens), p the neuron's projection row.
// `radius[b * n + i]` bounds |delta| and `upper[b * n + i]` bounds delta
// from above (from the extremes of s and p). With radius <= 1/2 the sum is
// 1 + sum_v q (e^delta - 1) (expm1 keeps the small terms exact); else the
// terms are q e^(delta - upper). Tiles of prompts x neurons share their rows
// of q, s and p through shared memory: one exp per (pair, v), no [m, n, V]
// temporary; out [m, n].
void relative_lse(const float* q, const float* s, const float* total, const float* p,
                  const float* eps, const float* beta, const float* radius, const float* upper,
                  int64_t m, int64_t n, int64_t V, float* out);

// Waits for the kernels queued so far; throws std::runtime_error with CUDA's
// message when one failed.
void synchronize();

// The current device's memory in use (total - free, every process's, which
// includes what libtorch's caching allocator holds: after a lease, about its
// peak) and its total, in bytes; false when CUDA cannot say.
bool device_memory(int64_t& used, int64_t& total);

}  // namespace lpi::engine::cuda

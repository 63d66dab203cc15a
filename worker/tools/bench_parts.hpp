// Parts of lpi-bench (worker/tools/lpi_bench.cpp): the PyTorch formulation a
// researcher would write, as the peer the fast path is measured against, and
// the micro-benchmarks of the CPU kernel against the core's limit.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/engine/gated_lpi.hpp"

namespace lpi::bench {

struct PeerRun {
  double seconds = 0;   // scoring only: no forward pass, no projection
  double max_diff = 0;  // against `fast`
};

// Gated-LPI with libtorch tensor ops as one writes it in PyTorch: forward
// passes in batches and the projection P = W_U diag(g) U of each block (both
// not timed), then per block z = alpha[:, :, None] * a[:, None, :] + beta[:,
// :, None] * P[None] in chunks of prompts (each neuron's V values contiguous)
// and torch.logsumexp over V.
PeerRun run_peer(engine::Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                 const std::vector<int32_t>& gold, const engine::LpiOptions& options,
                 const engine::Importance& fast);

// Seconds of the forward passes gated_lpi runs (one prompt per pass, spread
// over the threads, OpenBLAS on one thread), with its captures.
double time_forward(engine::Transformer& model, const std::vector<std::vector<int32_t>>& prompts);

struct KernelRun {
  double limit_small = 0;  // terms/s of the polynomial term on L1-resident data, all threads
  double limit_exp = 0;    // the same with exp_poly (the shifted path)
  double kernel = 0;       // terms/s of kernels::relative_lse_block on a block of that shape
  double product = 0;      // GFLOP/s of kernels::unembed_columns (projection tiles)
};

// The kernel alone on random data of vocabulary `vocab`, width d, on the
// current threads.
KernelRun run_kernel(int64_t vocab, int64_t d);

}  // namespace lpi::bench

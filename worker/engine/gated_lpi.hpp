// Gated-LPI (docs/METHOD.md, section 2): the log-probability increase of the target
// token when one neuron's output c * u is added to the residual x its block
// writes into, read through the final-norm lens, for every attention, dense
// FFN and expert neuron of every layer, for a batch of prompts.
//
// Two implementations that must agree: gated_lpi_reference() materialises
// x + c u for every neuron and runs the lens and a log-softmax; gated_lpi()
// projects the output columns once, P = W_U diag(g) C U (prompt-independent,
// tiled to a memory budget), so that each (prompt, neuron) costs one pass of
// multiply-add and exp over the vocabulary.
#pragma once

#include <cstdint>
#include <vector>

#include "worker/engine/model.hpp"

namespace lpi::engine {

enum class Lens {
  Frozen,  // the final norm's scale at t is frozen: the lens is linear (reference code's reading)
  Exact,   // the real final norm is applied to x + c u
};
enum class TargetKind {
  Gold,  // the first token of the gold object
  Top1,  // the model's own top-1 prediction at t
};

const char* lens_name(Lens lens);
const char* target_name(TargetKind target);

struct LpiOptions {
  Lens lens = Lens::Frozen;
  TargetKind target = TargetKind::Gold;
  int64_t batch_size = 32;  // prompts per forward pass (when not batch-invariant)
  // Every prompt's scores bit for bit independent of the other prompts in the
  // call: one prompt per forward pass and per-prompt lens products (matrix
  // products pick their blocking from the shape). The sweep relies on it so
  // that a store equals lpi-attribute whatever the units; costs little on
  // the CPU, more on a GPU, where false batches the forward passes.
  bool batch_invariant = true;
  int64_t memory_budget_mb = 256;  // largest temporary of the fast path, in MiB
  // On the CPU, the fused log-sum-exp kernel (lse_kernel.hpp); false runs the
  // tensor-op formulation that GPUs use, tiled to the memory budget.
  bool fused_cpu_kernel = true;
  // Time the call's parts (Importance::profile); on a GPU each part is
  // followed by a device synchronisation, which costs a little.
  bool profile = false;
};

// Where a gated_lpi() call's time went, in seconds (LpiOptions::profile).
struct LpiProfile {
  struct Part {
    double lens = 0;        // the lens logits and base distributions of the blocks' inputs
    double projection = 0;  // the projection tiles P = W_U diag(g) C U
    double lse = 0;         // the passes over the vocabulary, one per (prompt, neuron)
    double total() const { return lens + projection + lse; }
  };
  struct Layer {
    Part attn, ffn;
  };
  double forward = 0;  // the forward passes with their captures, the targets and gold ranks
  std::vector<Layer> layers;
  Part sum() const;  // over layers and blocks
};

// Importance of one layer's neurons, float32 on the CPU.
struct LayerImportance {
  torch::Tensor attn;        // [B, H*dh]: attention neuron (head j, dim k) at j*dh+k
  torch::Tensor ffn;         // dense [B, I]; MoE [B, k, I]: the neurons of expert_ids[b, s]
  torch::Tensor expert_ids;  // MoE [B, k] int64 (by descending router weight); undefined for dense
};

struct Importance {
  std::vector<LayerImportance> layers;
  torch::Tensor targets;       // [B] int64: the target token of each prompt
  torch::Tensor base_logprob;  // [B]: logp(target | lens(x)) of the final residual (the model's own
                               // for Frozen)
  torch::Tensor gold_rank;     // [B] int64: tokens whose logit beats the gold target's (0 = top-1;
                               // HIT@10 is rank < 10); undefined when no gold ids were given
  // Projection tiles P (products of W_U with a tile of output columns) the
  // call computed: one per (layer, block, expert, column tile).
  int64_t projection_tiles = 0;
  LpiProfile profile;  // filled when LpiOptions::profile
};

// Fast path. `gold` holds one target id per prompt (ignored for Top1).
Importance gated_lpi(Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                     const std::vector<int32_t>& gold, const LpiOptions& options = {});

// The formula, literally, one prompt at a time: for every neuron build
// x + c u, apply the lens, log-softmax. Slow; the reference for tests and
// the benchmark.
Importance gated_lpi_reference(Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                               const std::vector<int32_t>& gold, const LpiOptions& options = {});

// MoE importance laid out over all experts: [B, E, I], zero for experts that
// were not chosen.
torch::Tensor expand_experts(const LayerImportance& layer, int64_t num_experts);

// The frozen lens W_U (g . C y) / scale: logits [B, V] of residuals y [B, d].
torch::Tensor frozen_lens(Transformer& model, const torch::Tensor& y, const torch::Tensor& scale);

}  // namespace lpi::engine

// The masking experiment's choices (docs/METHOD.md, section 3): which heads
// and FFN/expert neurons one checkpoint masks, ranked from its own mean
// importance, and the per-layer lists the engine's ablation takes.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "common/core/layout.hpp"

namespace lpi::core {

// K, the number of FFN/expert neurons an `ffn:F` condition masks: floor(F N),
// at least 1 (0 when F <= 0).
int64_t ablation_ffn_count(const ModelShape& shape, double fraction);

// Head scores: the summed |mean importance| of each head's neurons, [L * H]
// (layer-major), from attn_mean [L, H*dh].
std::vector<double> head_scores(const ModelShape& shape, const std::vector<float>& attn_mean);

// What one checkpoint masks, best first.
struct AblationMasks {
  std::vector<std::pair<int32_t, int32_t>> heads;  // (layer, head)
  std::vector<float> head_score;
  std::vector<int64_t> ffn_neurons;  // flat FFN indices (layout.hpp)
};
// The `max_heads` heads with the largest head score and the
// ablation_ffn_count(fraction) FFN/expert neurons with the largest
// |mean importance|, ties to the lower index. attn_mean [L, H*dh], ffn_mean
// [L, I] or [L, E, I]. Throws LayoutError when the sizes do not fit the shape.
AblationMasks rank_for_ablation(const std::vector<float>& attn_mean,
                                const std::vector<float>& ffn_mean, const ModelShape& shape,
                                int32_t max_heads, double ffn_fraction);

// One masking condition in the engine's terms: layer -> heads, and layer ->
// FFN neurons within the layer (ffn_index_in_layer).
struct LayerMasks {
  std::map<int64_t, std::vector<int64_t>> heads, ffn_neurons;
};
// The first `n` ranked heads.
LayerMasks head_masks(const AblationMasks& masks, int32_t n);
// Every ranked FFN/expert neuron.
LayerMasks ffn_masks(const AblationMasks& masks, const ModelShape& shape);

}  // namespace lpi::core

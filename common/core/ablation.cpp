#include "common/core/ablation.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/core/ranking.hpp"

namespace lpi::core {

int64_t ablation_ffn_count(const ModelShape& sh, double fraction) {
  if (!(fraction > 0)) return 0;
  return std::max<int64_t>(
      1, static_cast<int64_t>(std::floor(fraction * static_cast<double>(sh.ffn_neurons()))));
}

std::vector<double> head_scores(const ModelShape& sh, const std::vector<float>& attn_mean) {
  const int64_t dh = sh.head_dim;
  std::vector<double> head(static_cast<std::size_t>(sh.heads()), 0.0);
  for (int64_t i = 0; i < sh.attn_neurons(); ++i) head[i / dh] += std::fabs(attn_mean[i]);
  return head;
}

AblationMasks rank_for_ablation(const std::vector<float>& attn_mean,
                                const std::vector<float>& ffn_mean, const ModelShape& sh,
                                int32_t max_heads, double ffn_fraction) {
  if (static_cast<int64_t>(attn_mean.size()) != sh.attn_neurons() ||
      static_cast<int64_t>(ffn_mean.size()) != sh.ffn_neurons())
    throw LayoutError("rank_for_ablation: " + std::to_string(attn_mean.size()) + " attention and " +
                      std::to_string(ffn_mean.size()) + " FFN means for " + sh.describe());
  AblationMasks m;
  const auto head = head_scores(sh, attn_mean);
  const int64_t H = sh.num_heads;
  for (auto h : top_k_indices(head, max_heads, false)) {
    m.heads.emplace_back(static_cast<int32_t>(h / H), static_cast<int32_t>(h % H));
    m.head_score.push_back(static_cast<float>(head[h]));
  }
  std::vector<double> ffn(ffn_mean.size());
  for (std::size_t i = 0; i < ffn.size(); ++i) ffn[i] = std::fabs(ffn_mean[i]);
  m.ffn_neurons = top_k_indices(ffn, ablation_ffn_count(sh, ffn_fraction), false);
  return m;
}

LayerMasks head_masks(const AblationMasks& m, int32_t n) {
  LayerMasks out;
  for (std::size_t i = 0; i < static_cast<std::size_t>(std::max(0, n)) && i < m.heads.size(); ++i)
    out.heads[m.heads[i].first].push_back(m.heads[i].second);
  return out;
}

LayerMasks ffn_masks(const AblationMasks& m, const ModelShape& sh) {
  LayerMasks out;
  for (auto n : m.ffn_neurons)
    out.ffn_neurons[n / sh.ffn_width()].push_back(ffn_index_in_layer(sh, n));
  return out;
}

}  // namespace lpi::core

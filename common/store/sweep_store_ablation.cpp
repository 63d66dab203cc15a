// The sweep store's ablation phase (docs/STORE.md, "Ablation datasets"):
// ranking a checkpoint's heads and FFN/expert neurons from its aggregates,
// the masks, the per-unit results and the per-checkpoint HIT@10. Raw writes
// into datasets created with the store, like every other write.
#include <algorithm>
#include <cmath>

#include "common/core/aggregate.hpp"
#include "common/store/sweep_schema.hpp"
#include "common/store/sweep_store.hpp"

namespace lpi::store {
using namespace schema;

void SweepStore::write_masks(int32_t c) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  const auto& sh = d_.shape;
  const int64_t L = sh.num_layers, A = sh.attn_width();
  const int64_t N = sh.ffn_neurons();
  std::vector<float> attn(static_cast<std::size_t>(L * A)), ffn(static_cast<std::size_t>(N));
  ds(kAttnMean).select({c, 0, 0}, {1, L, A}).read(attn.data(), attn.size());
  if (sh.is_moe()) {
    ds(kFfnMean)
        .select({c, 0, 0, 0}, {1, L, sh.num_experts, sh.intermediate_size})
        .read(ffn.data(), ffn.size());
  } else {
    ds(kFfnMean).select({c, 0, 0}, {1, L, sh.intermediate_size}).read(ffn.data(), ffn.size());
  }
  const auto m =
      core::rank_for_ablation(attn, ffn, sh, d_.ablation.max_heads(), d_.ablation.ffn_fraction);
  const int64_t Hmax = std::max<int32_t>(1, d_.ablation.max_heads());
  std::vector<int32_t> heads(static_cast<std::size_t>(Hmax * 2), -1);
  std::vector<float> score(static_cast<std::size_t>(Hmax), 0.0f);
  for (std::size_t i = 0; i < m.heads.size(); ++i) {
    heads[2 * i] = m.heads[i].first;
    heads[2 * i + 1] = m.heads[i].second;
    score[i] = m.head_score[i];
  }
  ds(kAblHeads).select({c, 0, 0}, {1, Hmax, 2}).write(heads);
  ds(kAblHeadScore).select({c, 0}, {1, Hmax}).write(score);
  const int64_t K = std::max<int64_t>(1, core::ablation_ffn_count(sh, d_.ablation.ffn_fraction));
  std::vector<int64_t> neurons(static_cast<std::size_t>(K), -1);
  std::copy(m.ffn_neurons.begin(), m.ffn_neurons.end(), neurons.begin());
  ds(kAblFfnNeurons).select({c, 0}, {1, K}).write(neurons);
  const uint8_t one = 1;
  ds(kAblMaskDone).select({c}, {1}).write(&one, 1);
}

std::vector<uint8_t> SweepStore::mask_flags() {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  return flags(kAblMaskDone, d_.grid.checkpoints.size());
}

AblationMasks SweepStore::read_masks(int32_t c) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  const auto& sh = d_.shape;
  const std::string what =
      "ablation masks of checkpoint " + d_.grid.checkpoints[c].name + " in " + path_;
  uint8_t done = 0;
  ds(kAblMaskDone).select({c}, {1}).read(&done, 1);
  if (!done) throw StoreError(what + " are not written yet");
  const int64_t Hmax = std::max<int32_t>(1, d_.ablation.max_heads());
  const int64_t K = std::max<int64_t>(1, core::ablation_ffn_count(sh, d_.ablation.ffn_fraction));
  std::vector<int32_t> heads(static_cast<std::size_t>(Hmax * 2));
  std::vector<float> score(static_cast<std::size_t>(Hmax));
  std::vector<int64_t> neurons(static_cast<std::size_t>(K));
  ds(kAblHeads).select({c, 0, 0}, {1, Hmax, 2}).read(heads.data(), heads.size());
  ds(kAblHeadScore).select({c, 0}, {1, Hmax}).read(score.data(), score.size());
  ds(kAblFfnNeurons).select({c, 0}, {1, K}).read(neurons.data(), neurons.size());
  AblationMasks m;
  for (int64_t i = 0; i < Hmax; ++i) {
    if (heads[2 * i] < 0) break;
    m.heads.emplace_back(heads[2 * i], heads[2 * i + 1]);
    m.head_score.push_back(score[i]);
  }
  for (auto n : neurons)
    if (n >= 0) m.ffn_neurons.push_back(n);
  return m;
}

void SweepStore::write_ablation_unit(const sweep::WorkUnit& u, const AblationUnitResult& r) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  const int64_t n = u.prompt_count;
  const auto M = static_cast<int64_t>(d_.ablation.conditions().size());
  const std::string what = "ablation of unit " + std::to_string(u.id) + " in " + path_;
  if (static_cast<int64_t>(r.gold_rank.size()) != n * M ||
      static_cast<int64_t>(r.target_logprob.size()) != n * M)
    throw StoreError(what + ": " + std::to_string(r.gold_rank.size()) + " ranks and " +
                     std::to_string(r.target_logprob.size()) + " log-probabilities, expected " +
                     std::to_string(n * M) + " of each");
  const auto hit = core::hits_of_ranks(r.gold_rank);
  ds(kAblGoldRank).select({u.checkpoint, u.first_prompt, 0}, {1, n, M}).write(r.gold_rank);
  ds(kAblLogprob).select({u.checkpoint, u.first_prompt, 0}, {1, n, M}).write(r.target_logprob);
  ds(kAblHit).select({u.checkpoint, u.first_prompt, 0}, {1, n, M}).write(hit);
}

void SweepStore::mark_ablation_done(int32_t unit) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  const uint8_t one = 1;
  ds(kAblUnitDone).select({unit}, {1}).write(&one, 1);
}

std::vector<uint8_t> SweepStore::ablation_unit_flags() {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  return flags(kAblUnitDone, d_.grid.units.size());
}

std::vector<uint8_t> SweepStore::ablation_flags() {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  return flags(kAblDone, d_.grid.checkpoints.size());
}

void SweepStore::aggregate_ablation(int32_t c) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  const auto P = static_cast<int64_t>(d_.prompt_relation.size());
  const auto R = static_cast<int64_t>(d_.relation_ids.size());
  const auto M = static_cast<int64_t>(d_.ablation.conditions().size());
  std::vector<uint8_t> hit(static_cast<std::size_t>(P * M));
  ds(kAblHit).select({c, 0, 0}, {1, P, M}).read(hit.data(), hit.size());
  const auto rates = core::hit_rates(hit, M, d_.prompt_relation, R);
  std::vector<float> all, by;  // [M], [R, M]
  for (int64_t m = 0; m < M; ++m) all.push_back(rates[m].all);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t m = 0; m < M; ++m) by.push_back(rates[m].by_relation[r]);
  ds(kAblHitAll).select({c, 0}, {1, M}).write(all);
  ds(kAblHitByRelation).select({c, 0, 0}, {1, R, M}).write(by);
  const uint8_t one = 1;
  ds(kAblDone).select({c}, {1}).write(&one, 1);
}

}  // namespace lpi::store

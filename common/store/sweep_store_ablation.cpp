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
  const std::string what =
      "ablation masks of checkpoint " + d_.grid.checkpoints[c].name + " in " + path_;
  const hid_t x = independent_.id();
  std::vector<float> attn(static_cast<std::size_t>(L * A)), ffn(static_cast<std::size_t>(N));
  read_slab(ds_.at(kAttnMean).id(), H5T_NATIVE_FLOAT, {c, 0, 0}, {1, L, A}, attn.data(), x, what);
  if (sh.is_moe()) {
    read_slab(ds_.at(kFfnMean).id(), H5T_NATIVE_FLOAT, {c, 0, 0, 0},
              {1, L, sh.num_experts, sh.intermediate_size}, ffn.data(), x, what);
  } else {
    read_slab(ds_.at(kFfnMean).id(), H5T_NATIVE_FLOAT, {c, 0, 0}, {1, L, sh.intermediate_size},
              ffn.data(), x, what);
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
  write_slab(ds_.at(kAblHeads).id(), H5T_NATIVE_INT32, {c, 0, 0}, {1, Hmax, 2}, heads.data(), x,
             what);
  write_slab(ds_.at(kAblHeadScore).id(), H5T_NATIVE_FLOAT, {c, 0}, {1, Hmax}, score.data(), x,
             what);
  const int64_t K = std::max<int64_t>(1, core::ablation_ffn_count(sh, d_.ablation.ffn_fraction));
  std::vector<int64_t> neurons(static_cast<std::size_t>(K), -1);
  std::copy(m.ffn_neurons.begin(), m.ffn_neurons.end(), neurons.begin());
  write_slab(ds_.at(kAblFfnNeurons).id(), H5T_NATIVE_INT64, {c, 0}, {1, K}, neurons.data(), x,
             what);
  const uint8_t one = 1;
  write_slab(ds_.at(kAblMaskDone).id(), H5T_NATIVE_UINT8, {c}, {1}, &one, x, what);
}

std::vector<uint8_t> SweepStore::mask_flags() {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  return flags(kAblMaskDone, d_.grid.checkpoints.size(), "ablation mask flags");
}

AblationMasks SweepStore::read_masks(int32_t c) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  const auto& sh = d_.shape;
  const std::string what =
      "ablation masks of checkpoint " + d_.grid.checkpoints[c].name + " in " + path_;
  const hid_t x = independent_.id();
  uint8_t done = 0;
  read_slab(ds_.at(kAblMaskDone).id(), H5T_NATIVE_UINT8, {c}, {1}, &done, x, what);
  if (!done) throw StoreError(what + " are not written yet");
  const int64_t Hmax = std::max<int32_t>(1, d_.ablation.max_heads());
  const int64_t K = std::max<int64_t>(1, core::ablation_ffn_count(sh, d_.ablation.ffn_fraction));
  std::vector<int32_t> heads(static_cast<std::size_t>(Hmax * 2));
  std::vector<float> score(static_cast<std::size_t>(Hmax));
  std::vector<int64_t> neurons(static_cast<std::size_t>(K));
  read_slab(ds_.at(kAblHeads).id(), H5T_NATIVE_INT32, {c, 0, 0}, {1, Hmax, 2}, heads.data(), x,
            what);
  read_slab(ds_.at(kAblHeadScore).id(), H5T_NATIVE_FLOAT, {c, 0}, {1, Hmax}, score.data(), x, what);
  read_slab(ds_.at(kAblFfnNeurons).id(), H5T_NATIVE_INT64, {c, 0}, {1, K}, neurons.data(), x, what);
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
  const hid_t x = independent_.id();
  write_slab(ds_.at(kAblGoldRank).id(), H5T_NATIVE_INT32, {u.checkpoint, u.first_prompt, 0},
             {1, n, M}, r.gold_rank.data(), x, what);
  write_slab(ds_.at(kAblLogprob).id(), H5T_NATIVE_FLOAT, {u.checkpoint, u.first_prompt, 0},
             {1, n, M}, r.target_logprob.data(), x, what);
  write_slab(ds_.at(kAblHit).id(), H5T_NATIVE_UINT8, {u.checkpoint, u.first_prompt, 0}, {1, n, M},
             hit.data(), x, what);
}

void SweepStore::mark_ablation_done(int32_t unit) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  const uint8_t one = 1;
  write_slab(ds_.at(kAblUnitDone).id(), H5T_NATIVE_UINT8, {unit}, {1}, &one, independent_.id(),
             "ablation flag of unit " + std::to_string(unit) + " in " + path_);
}

std::vector<uint8_t> SweepStore::ablation_unit_flags() {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  return flags(kAblUnitDone, d_.grid.units.size(), "ablation unit flags");
}

std::vector<uint8_t> SweepStore::ablation_flags() {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  return flags(kAblDone, d_.grid.checkpoints.size(), "ablation flags");
}

void SweepStore::aggregate_ablation(int32_t c) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  const auto P = static_cast<int64_t>(d_.prompt_relation.size());
  const auto R = static_cast<int64_t>(d_.relation_ids.size());
  const auto M = static_cast<int64_t>(d_.ablation.conditions().size());
  const std::string what = "ablation of checkpoint " + d_.grid.checkpoints[c].name + " in " + path_;
  const hid_t x = independent_.id();
  std::vector<uint8_t> hit(static_cast<std::size_t>(P * M));
  read_slab(ds_.at(kAblHit).id(), H5T_NATIVE_UINT8, {c, 0, 0}, {1, P, M}, hit.data(), x, what);
  const auto rates = core::hit_rates(hit, M, d_.prompt_relation, R);
  std::vector<float> all, by;  // [M], [R, M]
  for (int64_t m = 0; m < M; ++m) all.push_back(rates[m].all);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t m = 0; m < M; ++m) by.push_back(rates[m].by_relation[r]);
  write_slab(ds_.at(kAblHitAll).id(), H5T_NATIVE_FLOAT, {c, 0}, {1, M}, all.data(), x, what);
  write_slab(ds_.at(kAblHitByRelation).id(), H5T_NATIVE_FLOAT, {c, 0, 0}, {1, R, M}, by.data(), x,
             what);
  const uint8_t one = 1;
  write_slab(ds_.at(kAblDone).id(), H5T_NATIVE_UINT8, {c}, {1}, &one, x, what);
}

}  // namespace lpi::store

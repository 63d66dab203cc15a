// A tiny real sweep store for the store fuzz targets and their seeds: the
// description of a two-checkpoint, two-relation, three-prompt sweep (dense
// or MoE, with or without the ablation phase and the per-prompt tensors),
// and the store lpi-sweep would write for it (SweepStore::create, the first
// checkpoint's units written, marked and aggregated, its masks and ablation
// units too). Needs MPI initialised.
#pragma once

#include <mpi.h>

#include <string>
#include <vector>

#include "common/store/sweep_store.hpp"

namespace lpi::fuzz {

inline lpi::store::SweepDescription tiny_description(bool moe, bool ablation, bool per_prompt) {
  lpi::store::SweepDescription d;
  d.job = {{"job.name", "fuzz-seed"}, {"model.name", moe ? "tiny-olmoe" : "tiny-olmo"}};
  d.job_name = "fuzz-seed";
  d.model_name = moe ? "tiny-olmoe" : "tiny-olmo";
  d.lens = "frozen";
  d.target = "gold";
  d.shape = {
      moe ? "OlmoeForCausalLM" : "OlmoForCausalLM", 2, 4, 2, 2, 3, moe ? 4 : 0, moe ? 2 : 0, 16};
  d.per_prompt_attn = d.per_prompt_ffn = per_prompt;
  d.ablation.enabled = ablation;
  d.ablation.heads = {1, 2};
  d.ablation.ffn_fraction = 0.25;
  d.relation_ids = {"country_capital_city", "adjective_antonym"};
  d.relation_files = {"/relations/factual/country_capital_city.json",
                      "/relations/linguistic/adjective_antonym.json"};
  d.prompt_relation = {0, 0, 1};
  d.prompt_sample = {0, 1, 0};
  d.prompt_gold = {5, 6, 7};
  d.prompt_text = {"The capital city of Norland is", "The capital city of Ostria is",
                   "The opposite of hot is"};
  d.prompt_ids = {{1, 2, 3}, {1, 2, 4, 5}, {8, 9}};
  d.grid = lpi::sweep::build_grid({{"step0-tokens0", "/runs/step0-tokens0", 0, 0},
                                   {"step10-tokens41K", "/runs/step10-tokens41K", 10, 41000}},
                                  {2, 1}, 2);
  d.checkpoint_hashes = {"0123456789abcdef", "fedcba9876543210"};
  d.checkpoint_bytes = {1234, 5678};
  return d;
}

inline void write_tiny_store(const std::string& path, bool moe, bool ablation, bool per_prompt) {
  namespace st = lpi::store;
  const st::SweepDescription d = tiny_description(moe, ablation, per_prompt);
  auto store = st::SweepStore::create(MPI_COMM_SELF, path, d, "start fuzz-seed");
  const auto& sh = d.shape;
  for (const auto& u : d.grid.units) {
    if (u.checkpoint != 0) continue;
    const int64_t n = u.prompt_count, L = sh.num_layers;
    st::UnitResult r;
    r.target.assign(n, 5);
    r.base_logprob.assign(n, -1.5f);
    r.gold_rank.assign(n, 3);
    for (int64_t i = 0; i < n * L * sh.attn_width(); ++i) r.attn.push_back(0.01f * i);
    for (int64_t i = 0; i < n * L * sh.ffn_active_width(); ++i) r.ffn.push_back(-0.02f * i);
    if (moe)
      for (int64_t i = 0; i < n * L * sh.experts_per_token; ++i) r.expert_ids.push_back(i % 4);
    store.write_unit(u, r);
    store.mark_done(u.id, 0, 0.5f);
  }
  store.aggregate(0);
  if (ablation) {
    store.write_masks(0);
    const auto M = static_cast<int64_t>(d.ablation.conditions().size());
    for (const auto& u : d.grid.units) {
      if (u.checkpoint != 0) continue;
      store.write_ablation_unit(u, {std::vector<int32_t>(u.prompt_count * M, 4),
                                    std::vector<float>(u.prompt_count * M, -2.0f)});
      store.mark_ablation_done(u.id);
    }
    store.aggregate_ablation(0);
  }
  store.close("end fuzz-seed");
}

}  // namespace lpi::fuzz

// Per-checkpoint aggregates (docs/METHOD.md, section 4): the mean importance over the
// prompts from sums, and HIT@10 per relation and over all prompts.
#pragma once

#include <cstdint>
#include <vector>

namespace lpi::core {

// sum[i] / count, as float.
std::vector<float> means_of_sums(const std::vector<double>& sum, int64_t count);

// HIT@10 of one checkpoint under one condition: per relation (NaN for a
// relation without prompts) and over all prompts.
struct HitRates {
  std::vector<float> by_relation;
  float all = 0;
};
// hits[p * conditions + m] (0 or 1) for P = prompt_relation.size() prompts;
// one HitRates per condition m.
std::vector<HitRates> hit_rates(const std::vector<uint8_t>& hits, int64_t conditions,
                                const std::vector<int32_t>& prompt_relation, int64_t relations);
// The hits of gold ranks (is_hit).
std::vector<uint8_t> hits_of_ranks(const std::vector<int32_t>& gold_rank);

}  // namespace lpi::core

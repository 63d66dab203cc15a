#include "common/core/aggregate.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include "common/core/ranking.hpp"

namespace lpi::core {

std::vector<float> means_of_sums(const std::vector<double>& sum, int64_t count) {
  std::vector<float> out(sum.size());
  for (std::size_t i = 0; i < sum.size(); ++i) out[i] = static_cast<float>(sum[i] / count);
  return out;
}

std::vector<HitRates> hit_rates(const std::vector<uint8_t>& hits, int64_t M,
                                const std::vector<int32_t>& prompt_relation, int64_t R) {
  const auto P = static_cast<int64_t>(prompt_relation.size());
  if (static_cast<int64_t>(hits.size()) != P * M)
    throw std::invalid_argument("hit_rates: " + std::to_string(hits.size()) + " hits for " +
                                std::to_string(P) + " prompts x " + std::to_string(M) +
                                " conditions");
  std::vector<int64_t> count(static_cast<std::size_t>(R), 0), n(static_cast<std::size_t>(R * M), 0);
  for (int64_t p = 0; p < P; ++p) {
    const auto r = prompt_relation[p];
    ++count[r];
    for (int64_t m = 0; m < M; ++m) n[r * M + m] += hits[p * M + m] != 0;
  }
  // float(double(hits) / count): the correctly rounded fraction.
  std::vector<HitRates> out(static_cast<std::size_t>(M));
  for (int64_t m = 0; m < M; ++m) {
    int64_t total = 0;
    for (int64_t r = 0; r < R; ++r) {
      total += n[r * M + m];
      out[m].by_relation.push_back(
          count[r] ? static_cast<float>(static_cast<double>(n[r * M + m]) / count[r]) : NAN);
    }
    out[m].all = static_cast<float>(static_cast<double>(total) / static_cast<double>(P));
  }
  return out;
}

std::vector<uint8_t> hits_of_ranks(const std::vector<int32_t>& gold_rank) {
  std::vector<uint8_t> hit(gold_rank.size());
  for (std::size_t i = 0; i < hit.size(); ++i) hit[i] = is_hit(gold_rank[i]);
  return hit;
}

}  // namespace lpi::core

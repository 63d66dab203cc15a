// Rankings the whole product shares: top-k by value or |value| with ties to
// the lower index, and the HIT@10 decision on a gold rank.
#pragma once

#include <cstdint>
#include <vector>

namespace lpi::core {

// The indices of the k largest values (by |value| when `absolute`; all when
// k exceeds the size), best first, ties to the lower index.
std::vector<int64_t> top_k_indices(const std::vector<double>& values, int64_t k, bool absolute);

// HIT@10: the gold token is among the 10 highest logits, i.e. fewer than 10
// tokens have a strictly larger logit. A negative rank (not computed) is no hit.
constexpr int32_t kHitK = 10;
constexpr bool is_hit(int64_t gold_rank) {
  return gold_rank >= 0 && gold_rank < kHitK;
}

}  // namespace lpi::core

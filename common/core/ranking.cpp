#include "common/core/ranking.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace lpi::core {

std::vector<int64_t> top_k_indices(const std::vector<double>& values, int64_t k, bool absolute) {
  std::vector<int64_t> idx(values.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::clamp<int64_t>(k, 0, static_cast<int64_t>(idx.size()));
  auto key = [&](int64_t i) { return absolute ? std::fabs(values[i]) : values[i]; };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
    return key(a) > key(b) || (key(a) == key(b) && a < b);
  });
  idx.resize(static_cast<std::size_t>(k));
  return idx;
}

}  // namespace lpi::core

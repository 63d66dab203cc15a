// Seeded random numbers that are the same on every platform: SplitMix64, our
// own generator, not <random>'s implementation-defined distributions. Used
// by the synthetic world, the bootstrap resamples and the random baselines.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace lpi::core {

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  uint64_t below(uint64_t n);  // uniform in [0, n), n > 0
  double uniform();            // uniform in [0, 1)
  template <class T>
  void shuffle(std::vector<T>& items) {
    for (std::size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[below(i)]);
  }

 private:
  uint64_t state_;
};

}  // namespace lpi::core

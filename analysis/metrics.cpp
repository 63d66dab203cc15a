#include "analysis/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

#include "common/core/ranking.hpp"

namespace lpi::analysis {

std::vector<int64_t> top_fraction(const std::vector<double>& values, double fraction,
                                  bool absolute) {
  if (values.empty()) return {};
  if (!(fraction > 0 && fraction <= 1))
    throw std::invalid_argument("top_fraction: fraction " + std::to_string(fraction) +
                                " is not in (0, 1]");
  const auto n = static_cast<int64_t>(values.size());
  auto idx = core::top_k_indices(
      values, std::max<int64_t>(1, static_cast<int64_t>(std::floor(fraction * n))), absolute);
  std::sort(idx.begin(), idx.end());
  return idx;
}

double jaccard(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  if (a.empty() && b.empty()) return NAN;
  auto x = a, y = b;
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  std::vector<int64_t> common;
  std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(common));
  const double inter = static_cast<double>(common.size());
  return inter / (static_cast<double>(x.size() + y.size()) - inter);
}

std::vector<double> jaccard_trajectory(const std::vector<std::vector<double>>& scores,
                                       double fraction) {
  std::vector<double> out;
  for (std::size_t t = 0; t + 1 < scores.size(); ++t)
    out.push_back(
        jaccard(top_fraction(scores[t], fraction), top_fraction(scores[t + 1], fraction)));
  return out;
}

double gain_concentration(const std::vector<double>& prev, const std::vector<double>& cur,
                          double fraction) {
  if (prev.size() != cur.size())
    throw std::invalid_argument("gain_concentration: " + std::to_string(prev.size()) + " and " +
                                std::to_string(cur.size()) + " neurons");
  std::vector<double> gain(cur.size());
  double total = 0;
  for (std::size_t i = 0; i < cur.size(); ++i) {
    gain[i] = std::max(0.0, std::fabs(cur[i]) - std::fabs(prev[i]));
    total += gain[i];
  }
  if (!(total > 0)) return NAN;
  double top = 0;
  for (auto i : top_fraction(gain, fraction, false)) top += gain[i];
  return top / total;
}

std::vector<double> layer_profile(const std::vector<double>& scores, int64_t layers) {
  if (layers < 1 || scores.size() % static_cast<std::size_t>(layers) != 0)
    throw std::invalid_argument("layer_profile: " + std::to_string(scores.size()) +
                                " scores do not split into " + std::to_string(layers) + " layers");
  const auto per = scores.size() / static_cast<std::size_t>(layers);
  std::vector<double> out(static_cast<std::size_t>(layers), 0.0);
  for (std::size_t i = 0; i < scores.size(); ++i) out[i / per] += scores[i];
  return out;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.size() < 2) return NAN;
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n;
  const double mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  if (saa == 0 || sbb == 0) return NAN;
  return sab / std::sqrt(saa * sbb);
}

double mean_pairwise_pearson(const std::vector<std::vector<double>>& profiles) {
  double sum = 0;
  int64_t pairs = 0;
  for (std::size_t s = 0; s < profiles.size(); ++s) {
    for (std::size_t t = s + 1; t < profiles.size(); ++t) {
      const double r = pearson(profiles[s], profiles[t]);
      if (std::isnan(r)) continue;
      sum += r;
      ++pairs;
    }
  }
  return pairs ? sum / static_cast<double>(pairs) : NAN;
}

double mean_coefficient_of_variation(const std::vector<std::vector<double>>& profiles) {
  if (profiles.size() < 2) return NAN;
  const std::size_t layers = profiles[0].size();
  const double steps = static_cast<double>(profiles.size());
  double sum = 0;
  int64_t used = 0;
  for (std::size_t l = 0; l < layers; ++l) {
    double mean = 0;
    for (const auto& p : profiles) mean += p.at(l);
    mean /= steps;
    if (mean == 0) continue;
    double var = 0;
    for (const auto& p : profiles) var += (p[l] - mean) * (p[l] - mean);
    sum += std::sqrt(var / steps) / std::fabs(mean);
    ++used;
  }
  return used ? sum / static_cast<double>(used) : NAN;
}

double mean_over_steps(const std::vector<double>& values, const std::vector<int64_t>& steps,
                       int64_t first, int64_t last) {
  double sum = 0;
  int64_t n = 0;
  for (std::size_t t = 0; t < values.size() && t < steps.size(); ++t) {
    if (steps[t] < first || steps[t] > last || std::isnan(values[t])) continue;
    sum += values[t];
    ++n;
  }
  return n ? sum / static_cast<double>(n) : NAN;
}

}  // namespace lpi::analysis

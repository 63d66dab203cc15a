// The paper's temporal metrics (docs/METHOD.md, section 4) on plain vectors, without
// HDF5 or libtorch: top-1% sets and their Jaccard stability, the positive-gain
// concentration R_t, layer importance profiles, their mean pairwise Pearson
// correlation rho_avg and the cross-step coefficient of variation sigma_rel.
// The reduction phase (lpi-analyze) feeds them from the store's aggregates.
// Every reading the paper leaves open is a parameter with its reading as the
// default.
#pragma once

#include <cstdint>
#include <vector>

namespace lpi::analysis {

// Indices of the top `fraction` of `values` (at least one), by |value| when
// `absolute`, ties to the lower index; ascending.
std::vector<int64_t> top_fraction(const std::vector<double>& values, double fraction = 0.01,
                                  bool absolute = true);

// |a & b| / |a | b| of two index sets (any order, no duplicates); NaN when both are empty.
double jaccard(const std::vector<int64_t>& a, const std::vector<int64_t>& b);

// J_stab,t for consecutive checkpoints: Jaccard(top(S[t]), top(S[t+1])), C-1 values.
std::vector<double> jaccard_trajectory(const std::vector<std::vector<double>>& scores,
                                       double fraction = 0.01);

// R_t: with gain_i = max(0, |cur_i| - |prev_i|), the share of the total gain
// held by the top `fraction` of neurons by gain; NaN when nothing gained.
double gain_concentration(const std::vector<double>& prev, const std::vector<double>& cur,
                          double fraction = 0.01);

// Layer importance I(s, l): the sum over each layer's neurons of `scores`,
// laid out layer-major ([layers, n / layers]).
std::vector<double> layer_profile(const std::vector<double>& scores, int64_t layers);

// Pearson correlation of two vectors; NaN when either is constant.
double pearson(const std::vector<double>& a, const std::vector<double>& b);

// rho_avg: the mean Pearson correlation over all pairs of profiles (one per checkpoint).
double mean_pairwise_pearson(const std::vector<std::vector<double>>& profiles);

// sigma_rel: the mean over layers of std_s / |mean_s| of I(s, l) across the
// profiles (population std; layers with mean 0 are left out).
double mean_coefficient_of_variation(const std::vector<std::vector<double>>& profiles);

// Mean of values[t] over the t whose step lies in [first, last] (NaN if none,
// NaN entries skipped): a trajectory's mean over the paper's step ranges.
double mean_over_steps(const std::vector<double>& values, const std::vector<int64_t>& steps,
                       int64_t first, int64_t last);

}  // namespace lpi::analysis

// The temporal metrics on cases small enough to compute by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "analysis/metrics.hpp"

namespace lpi::analysis {
namespace {

TEST(Metrics, TopFractionByMagnitudeWithTiesToTheLowerIndex) {
  EXPECT_EQ(top_fraction({1, -1, 1, 0.5}, 0.5), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(top_fraction({1, -3, 2, 0.5}, 0.5), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(top_fraction({1, -3, 2, 0.5}, 0.5, false), (std::vector<int64_t>{0, 2}));
  // 1% of 150 neurons rounds down to 1, never to 0.
  std::vector<double> v(150, 0.0);
  v[42] = -1;
  EXPECT_EQ(top_fraction(v), (std::vector<int64_t>{42}));
  EXPECT_THROW(top_fraction(v, 0.0), std::invalid_argument);
}

TEST(Metrics, JaccardAndItsTrajectory) {
  EXPECT_DOUBLE_EQ(jaccard({1, 2, 3}, {4, 3, 2}), 0.5);
  EXPECT_DOUBLE_EQ(jaccard({1}, {2}), 0.0);
  EXPECT_TRUE(std::isnan(jaccard({}, {})));
  // 200 neurons: the top 1% is 2 of them.
  std::vector<std::vector<double>> s(3, std::vector<double>(200, 0.1));
  s[0][3] = -9, s[0][7] = 8;
  s[1][7] = 10, s[1][50] = -11;
  s[2][50] = 12, s[2][51] = 13;
  const auto j = jaccard_trajectory(s);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_DOUBLE_EQ(j[0], 1.0 / 3);  // {3, 7} vs {7, 50}
  EXPECT_DOUBLE_EQ(j[1], 1.0 / 3);  // {7, 50} vs {50, 51}
}

TEST(Metrics, PositiveGainConcentration) {
  // gains: max(0, 3-1) = 2, max(0, 1-2) = 0, 4, 0.5; the top 25% (1 neuron) holds 4 of 6.5.
  EXPECT_DOUBLE_EQ(gain_concentration({1, -2, 0, 5}, {3, -1, -4, 5.5}, 0.25), 4 / 6.5);
  EXPECT_TRUE(std::isnan(gain_concentration({1, 2}, {1, -2}, 0.5)));  // nothing gained
  EXPECT_THROW(gain_concentration({1}, {1, 2}), std::invalid_argument);
}

TEST(Metrics, LayerProfilesCorrelationAndVariation) {
  EXPECT_EQ(layer_profile({1, 2, 3, 4, 5, 6}, 3), (std::vector<double>{3, 7, 11}));
  EXPECT_THROW(layer_profile({1, 2, 3}, 2), std::invalid_argument);
  EXPECT_DOUBLE_EQ(pearson({1, 2, 3}, {2, 4, 6}), 1.0);
  EXPECT_DOUBLE_EQ(pearson({1, 2, 3}, {3, 2, 1}), -1.0);
  EXPECT_TRUE(std::isnan(pearson({1, 1, 1}, {1, 2, 3})));
  // Pairs: (0,1) = 1, (0,2) = -1, (1,2) = -1.
  EXPECT_NEAR(mean_pairwise_pearson({{1, 2, 3}, {2, 4, 6}, {3, 2, 1}}), -1.0 / 3, 1e-15);
  // Layer 0 over two steps: 1, 3 (mean 2, std 1); layer 1: 2, 2 (std 0).
  EXPECT_DOUBLE_EQ(mean_coefficient_of_variation({{1, 2}, {3, 2}}), 0.25);
  EXPECT_DOUBLE_EQ(mean_coefficient_of_variation({{-1, 2}, {-3, 2}}), 0.25);  // |mean|
}

TEST(Metrics, MeanOverAStepRange) {
  EXPECT_DOUBLE_EQ(mean_over_steps({0.1, 0.2, NAN, 0.4}, {10, 20, 30, 40}, 15, 40), 0.3);
  EXPECT_TRUE(std::isnan(mean_over_steps({0.1}, {10}, 20, 30)));
}

}  // namespace
}  // namespace lpi::analysis

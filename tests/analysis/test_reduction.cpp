// The reduction's statistics on cases small enough to work out by hand (the
// numbers in the comments), plus the structure of the bootstrap and the
// random baselines.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>

#include "analysis/metrics.hpp"
#include "analysis/reduction.hpp"

namespace an = lpi::analysis;

namespace {

// One prompt of one relation per checkpoint: its vector is the score itself.
an::FamilyResult run(const std::vector<std::vector<double>>& checkpoints, an::ReductionOptions o,
                     const std::vector<int64_t>& steps, const std::vector<an::StepRange>& ranges,
                     int64_t layers = 2) {
  static an::PromptDesign design;
  design = an::make_design({0}, 1, o.bootstrap, o.seed);
  an::FamilyReduction r(static_cast<int64_t>(checkpoints[0].size()), layers, design, o);
  for (const auto& v : checkpoints)
    r.add_checkpoint([&](int32_t, double w, double* acc) {
      for (std::size_t i = 0; i < v.size(); ++i) acc[i] += w * v[i];
    });
  return r.finish(steps, ranges);
}

// S1 = 0; S2 has layer sums -0.2 and 0.3; S3 has layer sums 0.1 and 0.5.
const std::vector<std::vector<double>> kScores = {
    {0, 0, 0, 0, 0, 0, 0, 0}, {-0.3, 0.1, 0.1, -0.1, 0.2, 0.1, 0, 0}, {0.1, 0, 0, 0, 0, 0, 0, 0.5}};
const std::vector<int64_t> kSteps = {10, 20, 30};

}  // namespace

TEST(Quantile, InterpolatesLikeNumpyAndSkipsNaN) {
  EXPECT_DOUBLE_EQ(an::quantile({3, 1, 2, NAN}, 0.5), 2.0);
  EXPECT_DOUBLE_EQ(an::quantile({3, 1, 2}, 0.25), 1.5);  // h = 0.5 between 1 and 2
  EXPECT_DOUBLE_EQ(an::quantile({4, 1}, 0.975), 1 + 0.975 * 3);
  EXPECT_DOUBLE_EQ(an::quantile({7}, 0.025), 7.0);
  EXPECT_TRUE(std::isnan(an::quantile({NAN, INFINITY}, 0.5)));
  EXPECT_TRUE(std::isnan(an::quantile({}, 0.5)));
}

TEST(Design, ResamplesStayWithinTheirRelation) {
  const std::vector<int32_t> relation = {0, 0, 0, 1, 2, 2};
  const auto d = an::make_design(relation, 4, 200, 7);
  ASSERT_EQ(d.resamples.size(), 200u);
  std::set<int32_t> drawn_for_0;
  for (const auto& row : d.resamples) {
    ASSERT_EQ(row.size(), relation.size());
    for (std::size_t j = 0; j < row.size(); ++j) EXPECT_EQ(relation[row[j]], relation[j]);
    EXPECT_EQ(row[3], 3);  // relation 1 has one prompt
    drawn_for_0.insert(row[0]);
  }
  EXPECT_EQ(drawn_for_0.size(), 3u);  // every member of relation 0 gets drawn
  EXPECT_EQ(an::make_design(relation, 4, 200, 7).resamples, d.resamples);  // seeded
  EXPECT_NE(an::make_design(relation, 4, 200, 8).resamples, d.resamples);
}

TEST(FamilyReduction, HandComputedTrajectory) {
  an::ReductionOptions o;
  o.fraction = 0.25;  // 2 of 8 neurons over the family, 1 of 4 per layer
  o.bootstrap = 0;
  const auto f = run(kScores, o, kSteps, {{10, 20}, {10, 30}});
  ASSERT_EQ(f.top_count, 2);
  // T(S1) = {0, 1} (all ties: lowest indices), T(S2) = {0, 4}, T(S3) = {7, 0}.
  EXPECT_DOUBLE_EQ(f.jaccard.at(0, 0), 1.0 / 3);
  EXPECT_DOUBLE_EQ(f.jaccard.at(0, 1), 1.0 / 3);
  // R_t per layer: gains of pair 0 are |S2|: layer 0 {.3,.1,.1,.1} -> .3/.6,
  // layer 1 {.2,.1,0,0} -> .2/.3; pair 1 only gains .5 in layer 1 -> 1.
  EXPECT_NEAR(f.gain_concentration.at(0, 0), (0.5 + 2.0 / 3) / 2, 1e-12);
  EXPECT_DOUBLE_EQ(f.gain_concentration.at(0, 1), 1.0);
  // Layer profiles and their mean over layers.
  EXPECT_NEAR(f.layer_profile.at(0, 2), -0.2, 1e-12);
  EXPECT_NEAR(f.layer_profile.at(0, 3), 0.3, 1e-12);
  EXPECT_NEAR(f.layer_profile.at(0, 5), 0.5, 1e-12);
  EXPECT_NEAR(f.layer_mean.at(0, 1), 0.05, 1e-12);
  // Range means: [10, 20] holds pair 0 only, [10, 30] both; the whole trajectory is ranges[1].
  EXPECT_DOUBLE_EQ(f.jaccard_mean.at(0, 0), 1.0 / 3);
  EXPECT_NEAR(f.gain_mean.at(0, 1), ((0.5 + 2.0 / 3) / 2 + 1) / 2, 1e-12);
  // rho_avg: the constant profile of S1 is skipped; S2 and S3 both rise -> 1.
  EXPECT_NEAR(f.rho_avg.at(0, 1), 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(f.rho_avg.at(0, 0)));  // S1 and S2: the only pair has a constant profile
  // sigma_rel over S1..S3: layer 0 values 0, -.2, .1; layer 1 values 0, .3, .5.
  const double cv0 = std::sqrt(0.42 / 27) / (0.1 / 3), cv1 = std::sqrt(1.14 / 27) / (0.8 / 3);
  EXPECT_NEAR(f.sigma_rel.at(0, 1), (cv0 + cv1) / 2, 1e-12);
}

TEST(FamilyReduction, ScopeOptions) {
  an::ReductionOptions o;
  o.fraction = 0.25;
  o.bootstrap = 0;
  o.top_scope = an::SetScope::Layer;
  o.gain_scope = an::SetScope::Family;
  const auto f = run(kScores, o, kSteps, {});
  // Per-layer top sets: {0, 4}, {0, 4}, {0, 7}.
  EXPECT_DOUBLE_EQ(f.jaccard.at(0, 0), 1.0);
  EXPECT_DOUBLE_EQ(f.jaccard.at(0, 1), 1.0 / 3);
  // Family share of pair 0's gain: the top 2 gains .3 and .2 of .9 in all.
  EXPECT_NEAR(f.gain_concentration.at(0, 0), 0.5 / 0.9, 1e-12);
}

TEST(FamilyReduction, RandomBaselineAndRelations) {
  an::ReductionOptions o;
  o.fraction = 0.01;
  o.bootstrap = 20;
  const int64_t N = 4000, L = 4;
  // Two relations; relation 1's scores grow on a fixed set of neurons.
  const auto design = an::make_design({0, 0, 1}, 2, o.bootstrap, o.seed);
  an::FamilyReduction r(N, L, design, o);
  for (int c = 0; c < 3; ++c)
    r.add_checkpoint([&](int32_t p, double w, double* acc) {
      for (int64_t i = 0; i < N; ++i)
        acc[i] += w * std::sin(1.0 + i * (p + 1) + c * 0.1 * (p == 2 ? 0 : 1));
    });
  const auto f = r.finish({1, 2, 3}, {});
  ASSERT_EQ(f.random_sets.size(), static_cast<std::size_t>(3 * 40));
  for (int c = 0; c < 3; ++c) {
    const std::vector<int64_t> set(f.random_sets.begin() + c * 40,
                                   f.random_sets.begin() + (c + 1) * 40);
    EXPECT_TRUE(std::is_sorted(set.begin(), set.end()));
    EXPECT_EQ(std::set<int64_t>(set.begin(), set.end()).size(), 40u);
    EXPECT_GE(set.front(), 0);
    EXPECT_LT(set.back(), N);
    if (c > 0) {
      const std::vector<int64_t> prev(f.random_sets.begin() + (c - 1) * 40,
                                      f.random_sets.begin() + c * 40);
      EXPECT_DOUBLE_EQ(f.jaccard_random[c - 1], an::jaccard(prev, set));
    }
  }
  // Relation 1 (one prompt, the same at every checkpoint): J = 1, no gain,
  // and every resample equals the point estimate.
  EXPECT_DOUBLE_EQ(f.jaccard.at(2, 0), 1.0);
  EXPECT_TRUE(std::isnan(f.gain_concentration.at(2, 0)));
  EXPECT_DOUBLE_EQ(f.jaccard.lo[2 * 2 + 0], 1.0);
  EXPECT_DOUBLE_EQ(f.jaccard.hi[2 * 2 + 0], 1.0);
  for (std::size_t i = 0; i < f.layer_mean.value.size(); ++i) {
    if (std::isnan(f.layer_mean.lo[i])) continue;
    EXPECT_LE(f.layer_mean.lo[i], f.layer_mean.hi[i]);
  }
}

TEST(FamilyReduction, ThreadsDoNotChangeTheResults) {
  const auto design = an::make_design({0, 1, 1, 2, 2, 2}, 3, 30, 5);
  const auto reduce = [&](int threads) {
    an::ReductionOptions o;
    o.fraction = 0.05;
    o.bootstrap = 30;
    o.threads = threads;
    an::FamilyReduction r(600, 3, design, o);
    for (int c = 0; c < 4; ++c)
      r.add_checkpoint([&](int32_t p, double w, double* acc) {
        for (int64_t i = 0; i < 600; ++i) acc[i] += w * std::cos(0.37 * i * (p + 1) + c * (p % 2));
      });
    return r.finish({1, 2, 3, 4}, {{1, 3}});
  };
  const auto a = reduce(1), b = reduce(4);
  const auto same = [](const an::Stat& x, const an::Stat& y) {
    const auto bits = [](const std::vector<double>& v) {
      std::vector<uint64_t> out(v.size());
      std::memcpy(out.data(), v.data(), v.size() * sizeof(double));
      return out;
    };
    return bits(x.value) == bits(y.value) && bits(x.lo) == bits(y.lo) && bits(x.hi) == bits(y.hi);
  };
  EXPECT_TRUE(same(a.jaccard, b.jaccard));
  EXPECT_TRUE(same(a.gain_concentration, b.gain_concentration));
  EXPECT_TRUE(same(a.layer_profile, b.layer_profile));
  EXPECT_TRUE(same(a.rho_avg, b.rho_avg));
  EXPECT_TRUE(same(a.sigma_rel, b.sigma_rel));
  EXPECT_EQ(a.random_sets, b.random_sets);
}

TEST(Ablation, DropPerCheckpointAndMean) {
  const auto design = an::make_design({0, 0, 1, 1}, 2, 0, 1);
  // [checkpoint][prompt][condition]: condition 0 is the unmasked model.
  const std::vector<std::vector<std::vector<uint8_t>>> hits = {
      {{1, 1}, {1, 0}, {1, 0}, {0, 0}},   // before 3/4, after 1/4
      {{0, 0}, {0, 0}, {0, 0}, {0, 0}}};  // before 0: no drop defined
  const auto a = an::reduce_ablation(hits, design, {});
  EXPECT_DOUBLE_EQ(a.hit_before.at(0, 0), 0.75);
  EXPECT_DOUBLE_EQ(a.hit_after.at(0, 0), 0.25);
  EXPECT_NEAR(a.drop_percent.at(0, 0), 100 * 0.5 / 0.75, 1e-12);
  EXPECT_TRUE(std::isnan(a.drop_percent.at(0, 1)));
  EXPECT_NEAR(a.drop_mean.at(0, 0), 100 * 0.5 / 0.75, 1e-12);
  EXPECT_DOUBLE_EQ(a.drop_percent.at(1, 0), 50.0);   // relation 0: 1 -> 0.5
  EXPECT_DOUBLE_EQ(a.drop_percent.at(2, 0), 100.0);  // relation 1: 0.5 -> 0
}

TEST(Ablation, MinimumHitLeavesOutCheckpointsThatKnowLittle) {
  const auto design = an::make_design({0, 0, 0, 0}, 1, 0, 1);
  const std::vector<std::vector<std::vector<uint8_t>>> hits = {
      {{1, 0}, {0, 0}, {0, 0}, {0, 0}},   // before 1/4: a drop of 100%, but below 0.5
      {{1, 1}, {1, 0}, {1, 1}, {1, 1}}};  // before 1, after 3/4: 25%
  an::ReductionOptions o;
  o.ablation_min_hit = 0.5;
  const auto a = an::reduce_ablation(hits, design, o);
  EXPECT_TRUE(std::isnan(a.drop_percent.at(0, 0)));
  EXPECT_DOUBLE_EQ(a.hit_before.at(0, 0), 0.25);  // still reported
  EXPECT_DOUBLE_EQ(a.drop_percent.at(0, 1), 25.0);
  EXPECT_DOUBLE_EQ(a.drop_mean.at(0, 0), 25.0);
  EXPECT_DOUBLE_EQ(an::reduce_ablation(hits, design, {}).drop_mean.at(0, 0), (100.0 + 25.0) / 2);
}

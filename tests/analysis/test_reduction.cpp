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
    r.add_checkpoint([&](int32_t, const an::Accumulator& to) {
      to.add(v.data(), static_cast<int64_t>(v.size()));
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

TEST(FamilyReduction, LayerImportanceOfAbsoluteScores) {
  an::ReductionOptions o;
  o.fraction = 0.25;
  o.bootstrap = 0;
  o.layer_importance = an::LayerImportance::Absolute;
  const auto f = run(kScores, o, kSteps, {});
  // |S2| sums to .6 and .3 per layer, |S3| to .1 and .5 (signed: -.2, .3; .1, .5).
  EXPECT_NEAR(f.layer_profile.at(0, 2), 0.6, 1e-12);
  EXPECT_NEAR(f.layer_profile.at(0, 3), 0.3, 1e-12);
  EXPECT_NEAR(f.layer_profile.at(0, 4), 0.1, 1e-12);
  EXPECT_NEAR(f.layer_mean.at(0, 1), 0.45, 1e-12);
  EXPECT_DOUBLE_EQ(f.jaccard.at(0, 0), 1.0 / 3);  // the sets do not depend on it
}

TEST(FamilyReduction, GainRankedByScoreOrByGain) {
  // One layer of 4 neurons, a top set of 1: S1 = (1, 0, 0, 0), S2 = (1.1, .5, 0, 0).
  // Gains (.1, .5, 0, 0): by gain the top neuron is 1 (.5 of .6), by |S2| neuron 0 (.1 of .6).
  const std::vector<std::vector<double>> scores = {{1, 0, 0, 0}, {1.1, 0.5, 0, 0}};
  an::ReductionOptions o;
  o.fraction = 0.25;
  o.bootstrap = 0;
  EXPECT_NEAR(run(scores, o, {1, 2}, {}, 1).gain_concentration.at(0, 0), 0.5 / 0.6, 1e-12);
  o.gain_rank = an::GainRank::Score;
  EXPECT_NEAR(run(scores, o, {1, 2}, {}, 1).gain_concentration.at(0, 0), 0.1 / 0.6, 1e-12);
}

TEST(FamilyReduction, AbsoluteAggregateKeepsWhatSignsCancel) {
  // Two prompts, one layer of 4 neurons, a top set of 1. Checkpoint 1: the
  // prompts disagree in sign on neuron 0 (signed mean (0, 0, 0, .2), absolute
  // (1, 0, 0, .2)); checkpoint 2: they agree ((1, 0, 0, .2) either way).
  const std::vector<std::vector<std::vector<double>>> v = {{{1, 0, 0, 0.2}, {-1, 0, 0, 0.2}},
                                                           {{1, 0, 0, 0.2}, {1, 0, 0, 0.2}}};
  const auto reduce = [&](an::Aggregate aggregate) {
    an::ReductionOptions o;
    o.fraction = 0.25;
    o.bootstrap = 0;
    o.aggregate = aggregate;
    const auto design = an::make_design({0, 0}, 1, 0, 1);
    an::FamilyReduction r(4, 1, design, o);
    for (const auto& checkpoint : v)
      r.add_checkpoint(
          [&](int32_t p, const an::Accumulator& to) { to.add(checkpoint[p].data(), 4); });
    return r.finish({1, 2}, {});
  };
  const auto signed_ = reduce(an::Aggregate::Signed), absolute = reduce(an::Aggregate::Absolute);
  EXPECT_DOUBLE_EQ(signed_.jaccard.at(0, 0), 0.0);   // {3} then {0}
  EXPECT_DOUBLE_EQ(absolute.jaccard.at(0, 0), 1.0);  // {0} both times
  EXPECT_NEAR(signed_.layer_profile.at(0, 0), 0.2, 1e-12);
  EXPECT_NEAR(absolute.layer_profile.at(0, 0), 1.2, 1e-12);
}

TEST(FamilyReduction, RoutedExpertMeanDividesByThePromptsRoutedToTheExpert) {
  // One layer, 2 experts of 2 neurons (group 2); prompt 0 goes to expert 0
  // with (1, 2), prompt 1 to expert 1 with (3, 4). Over all prompts the
  // means are (.5, 1, 1.5, 2); over the routed prompts (1, 2, 3, 4).
  const auto reduce = [&](an::ExpertMean mean, int64_t experts_used) {
    an::ReductionOptions o;
    o.fraction = 0.25;
    o.bootstrap = 0;
    o.expert_mean = mean;
    const auto design = an::make_design({0, 0}, 1, 0, 1);
    an::FamilyReduction r(4, 1, design, o, 2);
    r.add_checkpoint([&](int32_t p, const an::Accumulator& to) {
      const int64_t e = p % experts_used;
      const std::vector<double> v = {p == 0 ? 1.0 : 3.0, p == 0 ? 2.0 : 4.0};
      to.add(v.data(), 2, e * 2);
      if (to.routed) to.routed[e] += to.weight;
    });
    r.add_checkpoint([&](int32_t, const an::Accumulator&) {});
    return r.finish({1, 2}, {});
  };
  EXPECT_NEAR(reduce(an::ExpertMean::AllPrompts, 2).layer_profile.at(0, 0), 5.0, 1e-12);
  EXPECT_NEAR(reduce(an::ExpertMean::Routed, 2).layer_profile.at(0, 0), 10.0, 1e-12);
  // Both prompts on expert 0: its neurons (4, 6) / 2; expert 1, chosen by none, scores 0.
  EXPECT_NEAR(reduce(an::ExpertMean::Routed, 1).layer_profile.at(0, 0), 5.0, 1e-12);
  EXPECT_NEAR(reduce(an::ExpertMean::AllPrompts, 1).layer_profile.at(0, 0), 5.0, 1e-12);
  // The second checkpoint has no routed prompt at all: every score is 0, not NaN.
  EXPECT_NEAR(reduce(an::ExpertMean::Routed, 2).layer_profile.at(0, 1), 0.0, 1e-12);
}

TEST(FamilyReduction, GainBaselineAtTheScopeOfTheGain) {
  an::ReductionOptions o;
  o.fraction = 0.25;  // per layer 1 of 4 neurons
  o.bootstrap = 0;
  const auto f = run(kScores, o, kSteps, {});
  ASSERT_EQ(f.gain_top_count, 2);
  ASSERT_EQ(f.gain_random_sets.size(), 6u);  // [3 checkpoints, one neuron of each layer]
  for (int c = 0; c < 3; ++c) {
    EXPECT_LT(f.gain_random_sets[2 * c], 4);
    EXPECT_GE(f.gain_random_sets[2 * c + 1], 4);
  }
  // Pair 0's gains are |S2|: layer 0 (.3, .1, .1, .1) of .6, layer 1 (.2, .1, 0, 0) of .3.
  const std::vector<double> gain = {0.3, 0.1, 0.1, 0.1, 0.2, 0.1, 0, 0};
  const double expected =
      (gain[f.gain_random_sets[2]] / 0.6 + gain[f.gain_random_sets[3]] / 0.3) / 2;
  EXPECT_NEAR(f.gain_random[0], expected, 1e-12);
  // The former reading: the family's gain (.9) held by the Jaccard's random set of 2.
  o.gain_baseline = an::BaselineScope::Family;
  const auto g = run(kScores, o, kSteps, {});
  EXPECT_NEAR(g.gain_random[0], (gain[g.random_sets[2]] + gain[g.random_sets[3]]) / 0.9, 1e-12);
  EXPECT_EQ(g.random_sets, f.random_sets) << "the Jaccard's random sets do not depend on it";
}

TEST(FamilyReduction, OverlapOfTopSetsBetweenChosenCheckpoints) {
  an::ReductionOptions o;
  o.fraction = 0.25;
  o.bootstrap = 10;
  static an::PromptDesign design;
  design = an::make_design({0}, 1, o.bootstrap, o.seed);
  an::FamilyReduction r(8, 2, design, o);
  r.keep_top_sets({2, 0});
  for (const auto& v : kScores)
    r.add_checkpoint([&](int32_t, const an::Accumulator& to) { to.add(v.data(), 8); });
  const auto f = r.finish(kSteps, {}, {{0, 2}, {2, 2}});
  // T(S1) = {0, 1}, T(S3) = {0, 7}: J 1/3, survival 1/2; a set with itself: 1 and 1.
  EXPECT_DOUBLE_EQ(f.overlap_jaccard.at(0, 0), 1.0 / 3);
  EXPECT_DOUBLE_EQ(f.overlap_survival.at(0, 0), 0.5);
  EXPECT_DOUBLE_EQ(f.overlap_jaccard.at(0, 1), 1.0);
  EXPECT_DOUBLE_EQ(f.overlap_survival.at(0, 1), 1.0);
  // One prompt: every resample is the prompt itself, so the interval is the point.
  EXPECT_DOUBLE_EQ(f.overlap_jaccard.lo[0], 1.0 / 3);
  EXPECT_DOUBLE_EQ(f.overlap_jaccard.hi[0], 1.0 / 3);
  const std::vector<int64_t> a(f.random_sets.begin(), f.random_sets.begin() + 2),
      b(f.random_sets.begin() + 4, f.random_sets.begin() + 6);
  EXPECT_DOUBLE_EQ(f.overlap_jaccard_random[0], an::jaccard(a, b));
  EXPECT_THROW(r.finish(kSteps, {}, {{0, 1}}), std::invalid_argument) << "position 1 was not kept";
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
    r.add_checkpoint([&](int32_t p, const an::Accumulator& to) {
      std::vector<double> v(N);
      for (int64_t i = 0; i < N; ++i)
        v[i] = std::sin(1.0 + i * (p + 1) + c * 0.1 * (p == 2 ? 0 : 1));
      to.add(v.data(), N);
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
      r.add_checkpoint([&](int32_t p, const an::Accumulator& to) {
        std::vector<double> v(600);
        for (int64_t i = 0; i < 600; ++i) v[i] = std::cos(0.37 * i * (p + 1) + c * (p % 2));
        to.add(v.data(), 600);
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

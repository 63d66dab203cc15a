// The domain core (common/core): the neuron layout, the expert scatter,
// rankings, HIT@10, the seeded generator, the ablation masks and the
// per-checkpoint aggregates, each on cases worked out by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "common/core/ablation.hpp"
#include "common/core/aggregate.hpp"
#include "common/core/layout.hpp"
#include "common/core/ranking.hpp"
#include "common/core/rng.hpp"

namespace lpi::core {
namespace {

// 2 layers, 3 heads x 2 dims, 4 experts x 5 neurons, top-2.
// Fields: architecture, layers, d, heads, head_dim, I, experts, top-k, vocab.
ModelShape moe() {
  return {"OlmoeForCausalLM", 2, 6, 3, 2, 5, 4, 2, 11};
}

ModelShape dense() {
  return {"OlmoForCausalLM", 2, 6, 3, 2, 5, 0, 0, 11};
}

TEST(CoreLayout, FamilySizes) {
  const auto m = moe(), d = dense();
  EXPECT_EQ(m.attn_width(), 6);
  EXPECT_EQ(m.ffn_width(), 20);
  EXPECT_EQ(m.ffn_active_width(), 10);
  EXPECT_EQ(m.ffn_neurons(), 40);
  EXPECT_EQ(m.attn_neurons(), 12);
  EXPECT_EQ(m.heads(), 6);
  EXPECT_EQ(d.ffn_width(), 5);
  EXPECT_EQ(d.ffn_active_width(), 5);
  EXPECT_EQ(d.ffn_neurons(), 10);
  EXPECT_EQ(neuron_count(m, Family::ffn), 40);
  EXPECT_EQ(neuron_count(d, Family::attn), 12);
  EXPECT_EQ(std::string(family_name(Family::attn)), "attn");
}

TEST(CoreLayout, FlatIndicesRoundTrip) {
  const auto m = moe();
  // layer 1, expert 2, neuron 3: 1 * 20 + 2 * 5 + 3.
  EXPECT_EQ(ffn_index(m, 1, 2, 3), 33);
  EXPECT_EQ(ffn_index_in_layer(m, 33), 13);
  // layer 1, head 2, dim 1: 1 * 6 + 2 * 2 + 1.
  EXPECT_EQ(attn_index(m, 1, 2, 1), 11);
  for (int64_t i = 0; i < m.ffn_neurons(); ++i) {
    const auto c = coords_of(m, Family::ffn, i);
    EXPECT_EQ(ffn_index(m, c.layer, c.expert, c.neuron), i);
  }
  for (int64_t i = 0; i < m.attn_neurons(); ++i) {
    const auto c = coords_of(m, Family::attn, i);
    EXPECT_EQ(attn_index(m, c.layer, c.head, c.dim), i);
  }
  const auto c = coords_of(dense(), Family::ffn, 7);
  EXPECT_EQ(c.layer, 1);
  EXPECT_EQ(c.expert, 0);
  EXPECT_EQ(c.neuron, 2);
}

TEST(CoreLayout, ExpertScatter) {
  const auto m = moe();
  // Layer 0 chose experts 3 and 1, layer 1 chose 0 and 3; values v = 1..20.
  std::vector<float> v(20);
  for (int i = 0; i < 20; ++i) v[i] = static_cast<float>(i + 1);
  const std::vector<int32_t> ids = {3, 1, 0, 3};
  std::vector<double> full(40, 0.0);
  add_ffn_values(m, v.data(), ids.data(), 2.0, full.data(), "test");
  // layer 0 expert 3 = slot 0 (1..5), expert 1 = slot 1 (6..10); layer 1
  // expert 0 = slot 0 (11..15), expert 3 = slot 1 (16..20); all times 2.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(full[15 + i], 2.0 * (1 + i));
    EXPECT_EQ(full[5 + i], 2.0 * (6 + i));
    EXPECT_EQ(full[20 + i], 2.0 * (11 + i));
    EXPECT_EQ(full[35 + i], 2.0 * (16 + i));
    EXPECT_EQ(full[0 + i], 0.0);   // layer 0 expert 0: not chosen
    EXPECT_EQ(full[30 + i], 0.0);  // layer 1 expert 2: not chosen
  }
  const std::vector<int32_t> bad = {3, 4, 0, 3};
  try {
    add_ffn_values(m, v.data(), bad.data(), 1.0, full.data(), "store x.h5, prompt 7");
    FAIL() << "an expert id of 4 of 4 experts was accepted";
  } catch (const LayoutError& e) {
    EXPECT_NE(std::string(e.what()).find("store x.h5, prompt 7: layer 0 holds expert id 4, "
                                         "expected 0..3"),
              std::string::npos)
        << e.what();
  }
  // Dense: added in place.
  std::vector<double> d(10, 1.0);
  add_ffn_values(dense(), v.data(), nullptr, 1.0, d.data(), "test");
  EXPECT_EQ(d[9], 11.0);
}

TEST(CoreLayout, ExpertScatterOfAbsoluteValuesCountsTheRouting) {
  const auto m = moe();  // 2 layers, 4 experts of 5 neurons, top-2
  std::vector<float> v(20);
  for (int i = 0; i < 20; ++i) v[i] = static_cast<float>(i % 2 ? -(i + 1) : i + 1);
  const std::vector<int32_t> ids = {3, 1, 0, 3};
  std::vector<double> full(40, 0.0), routed(8, 0.0);
  add_ffn_values(m, v.data(), ids.data(), 0.5, full.data(), "test", FfnAdd{true, routed.data()});
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(full[15 + i], 0.5 * (1 + i));   // |v| of layer 0, expert 3
    EXPECT_EQ(full[35 + i], 0.5 * (16 + i));  // layer 1, expert 3
  }
  // routed[l * E + e]: the weight once per chosen expert.
  EXPECT_EQ(routed, (std::vector<double>{0, 0.5, 0, 0.5, 0.5, 0, 0, 0.5}));
  std::vector<double> d(10, 0.0);
  add_ffn_values(dense(), v.data(), nullptr, 1.0, d.data(), "test", FfnAdd{true, nullptr});
  EXPECT_EQ(d[1], 2.0);  // |-2|
}

TEST(CoreRanking, TopKTiesAndHits) {
  const std::vector<double> v = {1.0, -3.0, 3.0, 0.5, -3.0};
  EXPECT_EQ(top_k_indices(v, 3, true), (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(top_k_indices(v, 2, false), (std::vector<int64_t>{2, 0}));
  EXPECT_EQ(top_k_indices(v, 9, false).size(), 5u);
  EXPECT_TRUE(top_k_indices(v, 0, true).empty());
  EXPECT_TRUE(is_hit(0));
  EXPECT_TRUE(is_hit(9));
  EXPECT_FALSE(is_hit(10));
  EXPECT_FALSE(is_hit(-1));
}

TEST(CoreRng, SplitMix64ReferenceSequence) {
  // The published SplitMix64 outputs for seed 0.
  Rng r(0);
  EXPECT_EQ(r.next(), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(r.next(), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(r.next(), 0x06c45d188009454fULL);
  Rng a(42), b(42);
  for (int i = 0; i < 100; ++i) {
    const auto x = a.below(7);
    EXPECT_LT(x, 7u);
    EXPECT_EQ(x, b.below(7));
  }
}

TEST(CoreAblation, MasksRankedByHand) {
  const auto m = moe();
  // attn_mean [2, 6]: head sums of |.|: L0 H0 = 3, L0 H1 = 1, L0 H2 = 5,
  // L1 H0 = 5, L1 H1 = 0, L1 H2 = 2.
  const std::vector<float> attn = {1, -2, 0.5f, 0.5f, -5, 0, 4, 1, 0, 0, 2, 0};
  std::vector<float> ffn(40, 0.0f);
  ffn[33] = -9;  // layer 1, expert 2, neuron 3
  ffn[2] = 4;
  const auto masks = rank_for_ablation(attn, ffn, m, 3, 0.05);  // floor(0.05 * 40) = 2
  ASSERT_EQ(masks.heads.size(), 3u);
  // 5 and 5 tie: the lower index (L0 H2 = 2) before L1 H0 (= 3); then 3.
  EXPECT_EQ(masks.heads[0], std::make_pair(0, 2));
  EXPECT_EQ(masks.heads[1], std::make_pair(1, 0));
  EXPECT_EQ(masks.heads[2], std::make_pair(0, 0));
  EXPECT_FLOAT_EQ(masks.head_score[0], 5.0f);
  EXPECT_EQ(masks.ffn_neurons, (std::vector<int64_t>{33, 2}));
  EXPECT_EQ(ablation_ffn_count(m, 0.05), 2);
  EXPECT_EQ(ablation_ffn_count(m, 0.0001), 1);
  EXPECT_EQ(ablation_ffn_count(m, 0.0), 0);
  const auto h = head_masks(masks, 2);
  EXPECT_EQ(h.heads.at(0), (std::vector<int64_t>{2}));
  EXPECT_EQ(h.heads.at(1), (std::vector<int64_t>{0}));
  const auto f = ffn_masks(masks, m);
  EXPECT_EQ(f.ffn_neurons.at(1), (std::vector<int64_t>{13}));
  EXPECT_EQ(f.ffn_neurons.at(0), (std::vector<int64_t>{2}));
  EXPECT_THROW(rank_for_ablation(attn, std::vector<float>(39), m, 1, 0.01), LayoutError);
}

TEST(CoreAggregate, HitRatesAndMeans) {
  // 5 prompts: relations 0, 0, 1, 1, 1 (relation 2 has none); 2 conditions.
  const std::vector<int32_t> rel = {0, 0, 1, 1, 1};
  const std::vector<uint8_t> hits = {1, 0, 1, 1, 0, 0, 1, 0, 1, 1};
  const auto r = hit_rates(hits, 2, rel, 3);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_FLOAT_EQ(r[0].by_relation[0], 1.0f);
  EXPECT_FLOAT_EQ(r[0].by_relation[1], 2.0f / 3.0f);
  EXPECT_TRUE(std::isnan(r[0].by_relation[2]));
  EXPECT_FLOAT_EQ(r[0].all, 0.8f);
  EXPECT_FLOAT_EQ(r[1].by_relation[0], 0.5f);
  EXPECT_FLOAT_EQ(r[1].by_relation[1], 1.0f / 3.0f);
  EXPECT_FLOAT_EQ(r[1].all, 0.4f);
  EXPECT_THROW(hit_rates(hits, 3, rel, 3), std::invalid_argument);
  EXPECT_EQ(hits_of_ranks({0, 9, 10, -1}), (std::vector<uint8_t>{1, 1, 0, 0}));
  const auto m = means_of_sums({3.0, -1.5}, 3);
  EXPECT_EQ(m, (std::vector<float>{1.0f, -0.5f}));
}

TEST(CoreLayout, ShapeDescribesItself) {
  EXPECT_EQ(moe().describe(),
            "OlmoeForCausalLM (layers 2, d 6, heads 3x2, FFN 5, experts 4 top-2, vocab 11)");
  EXPECT_TRUE(moe() == moe());
  EXPECT_FALSE(moe() == dense());
}

}  // namespace
}  // namespace lpi::core

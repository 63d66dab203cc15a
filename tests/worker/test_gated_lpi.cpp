// Gated-LPI: the fast path (projection P = W_U diag(g) C U reused across
// prompts, tiled) against the literal formula (x + c u through the lens and a
// log-softmax, per prompt and neuron), for both lenses and both targets, on
// tiny random OLMoE and OLMo models of several shapes; and the analytic facts
// the scores must satisfy.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "tiny_models.hpp"
#include "worker/engine/evaluate.hpp"
#include "worker/engine/gated_lpi.hpp"
#include "worker/engine/lse_kernel.hpp"

namespace lpi::engine::testing {
namespace {

struct Case {
  std::string name;
  TinySpec spec;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

std::vector<Case> cases() {
  auto wide_dense = tiny_dense();
  wide_dense.hidden = 48;
  wide_dense.heads = 3;
  wide_dense.kv_heads = 3;
  wide_dense.vocab = 211;
  wide_dense.vocab_used = 211;
  wide_dense.seed = 5;
  auto many_experts = tiny_olmoe();
  many_experts.experts = 16;
  many_experts.top_k = 4;
  many_experts.layers = 3;
  many_experts.seed = 9;
  return {{"olmoe", tiny_olmoe()},
          {"olmoe_gqa_clip", tiny_olmoe_gqa_clip()},
          {"olmoe_16x4", many_experts},
          {"dense", tiny_dense()},
          {"dense_tied_gqa_clip", tiny_dense_tied_gqa_clip()},
          {"dense_wide", wide_dense}};
}

Transformer load(const ScratchDir& dir, const TinySpec& spec) {
  write_tiny_model(dir.path(), spec);
  return load_model(dir.path());
}

double max_diff(const Importance& a, const Importance& b) {
  double worst = 0;
  for (std::size_t l = 0; l < a.layers.size(); ++l) {
    worst = std::max(worst, max_abs_diff(a.layers[l].attn, b.layers[l].attn));
    worst = std::max(worst, max_abs_diff(a.layers[l].ffn, b.layers[l].ffn));
    if (a.layers[l].expert_ids.defined()) {
      EXPECT_TRUE(torch::equal(a.layers[l].expert_ids, b.layers[l].expert_ids));
    }
  }
  return worst;
}

double max_abs(const Importance& a) {
  double m = 0;
  for (const auto& l : a.layers) {
    m = std::max({m, l.attn.abs().max().item<double>(), l.ffn.abs().max().item<double>()});
  }
  return m;
}

class GatedLpi : public ::testing::TestWithParam<Case> {};

TEST_P(GatedLpi, FastPathEqualsTheFormula) {
  const auto& spec = GetParam().spec;
  ScratchDir dir("lpi_gated_lpi");
  auto model = load(dir, spec);
  const auto prompts = make_prompts({4, 1, 7, 3, 6}, spec.vocab_used, 11);
  const std::vector<int32_t> gold = {5, 9, 17, 2, 40};
  for (Lens lens : {Lens::Frozen, Lens::Exact}) {
    for (TargetKind target : {TargetKind::Gold, TargetKind::Top1}) {
      LpiOptions options;
      options.lens = lens;
      options.target = target;
      options.batch_size = 2;        // several forward batches, padding included
      options.memory_budget_mb = 0;  // the smallest tiles: every tiling branch runs
      const auto fast = gated_lpi(model, prompts, gold, options);
      options.memory_budget_mb = 256;  // one tile
      const auto fast_one_tile = gated_lpi(model, prompts, gold, options);
      options.fused_cpu_kernel = false;  // the tensor-op path (GPUs), small and large tiles
      const auto tensor_ops = gated_lpi(model, prompts, gold, options);
      options.memory_budget_mb = 0;
      const auto tensor_ops_small = gated_lpi(model, prompts, gold, options);
      const auto ref = gated_lpi_reference(model, prompts, gold, options);
      const double diff = max_diff(fast, ref);
      EXPECT_LE(diff, 1e-5) << lens_name(lens) << "/" << target_name(target);
      EXPECT_LE(max_diff(fast, fast_one_tile), 1e-5);
      EXPECT_LE(max_diff(tensor_ops, ref), 1e-5);
      EXPECT_LE(max_diff(tensor_ops_small, ref), 1e-5);
      EXPECT_GT(max_abs(ref), 1e-2) << "scores must not be trivially zero";
      EXPECT_TRUE(torch::equal(fast.targets, ref.targets));
      if (target == TargetKind::Gold) {
        EXPECT_EQ(fast.targets[2].item<int64_t>(), 17);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(TinyModels, GatedLpi, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

TEST(GatedLpiFacts, UnchosenExpertsScoreExactlyZero) {
  const auto spec = tiny_olmoe();
  ScratchDir dir("lpi_gated_lpi");
  auto model = load(dir, spec);
  const auto prompts = make_prompts({5, 3}, spec.vocab_used, 3);
  const auto imp = gated_lpi(model, prompts, {3, 4});
  const auto expanded = expand_experts(imp.layers[1], spec.experts);
  ASSERT_EQ(expanded.sizes(), (std::vector<int64_t>{2, spec.experts, spec.intermediate}));
  for (int64_t b = 0; b < 2; ++b) {
    std::set<int64_t> chosen;
    for (int64_t s = 0; s < spec.top_k; ++s)
      chosen.insert(imp.layers[1].expert_ids[b][s].item<int64_t>());
    for (int64_t e = 0; e < spec.experts; ++e) {
      const double mag = expanded[b][e].abs().max().item<double>();
      if (chosen.count(e)) {
        EXPECT_GT(mag, 0.0) << "chosen expert " << e;
      } else {
        EXPECT_EQ(mag, 0.0) << "expert " << e << " was not chosen";
      }
    }
  }
}

TEST(GatedLpiFacts, ZeroCoefficientGivesExactlyZeroInBothLenses) {
  auto spec = tiny_dense();
  ScratchDir dir("lpi_gated_lpi");
  auto weights = make_tiny_weights(spec);
  // Zero the value rows of head 2 in layer 1: its o_proj input is 0 for every prompt.
  const int64_t dh = spec.hidden / spec.heads;
  weights["model.layers.1.self_attn.v_proj.weight"].narrow(0, 2 * dh, dh).zero_();
  write_checkpoint(dir.path(), hf_config_json(spec), weights);
  auto model = load_model(dir.path());
  const auto prompts = make_prompts({6, 2, 4}, spec.vocab_used, 8);
  for (Lens lens : {Lens::Frozen, Lens::Exact}) {
    LpiOptions options;
    options.lens = lens;
    const auto imp = gated_lpi(model, prompts, {3, 4, 5}, options);
    EXPECT_EQ(imp.layers[1].attn.narrow(1, 2 * dh, dh).abs().max().item<float>(), 0.0f);
    EXPECT_GT(imp.layers[1].attn.narrow(1, 0, dh).abs().max().item<float>(), 0.0f);
  }
}

TEST(GatedLpiFacts, FrozenLensOfTheLastLayerOutputIsTheModelsLogits) {
  for (const auto& spec : {tiny_olmoe(), tiny_dense()}) {
    ScratchDir dir("lpi_gated_lpi");
    auto model = load(dir, spec);
    torch::NoGradGuard no_grad;
    ForwardOptions fo;
    fo.capture = {"final_resid", "final_scale"};
    const auto out = model->forward(make_batch(make_prompts({3, 8, 5}, spec.vocab_used, 2), 1), fo);
    const auto lens =
        frozen_lens(model, out.captures.get("final_resid"), out.captures.get("final_scale"));
    EXPECT_LE(max_abs_diff(lens, out.logits), 1e-4);
  }
}

TEST(GatedLpiFacts, ScoresAreDeterministicAndBaseIsTheModelsLogProb) {
  const auto spec = tiny_olmoe();
  ScratchDir dir("lpi_gated_lpi");
  auto model = load(dir, spec);
  const auto prompts = make_prompts({4, 6}, spec.vocab_used, 4);
  const auto a = gated_lpi(model, prompts, {7, 8});
  const auto b = gated_lpi(model, prompts, {7, 8});
  EXPECT_EQ(max_diff(a, b), 0.0);
  torch::NoGradGuard no_grad;
  // The batch-invariant default runs one prompt per forward pass: the same bits.
  for (int b = 0; b < 2; ++b) {
    const auto logits = model->forward(make_batch({prompts[b]}, 1)).logits;
    const auto logp = torch::log_softmax(logits, -1);
    EXPECT_EQ(a.base_logprob[b].item<float>(), logp[0][7 + b].item<float>());
  }
  // gold_rank is evaluate()'s rank of the gold token.
  const auto scores = evaluate(model, prompts, {7, 8});
  for (int b = 0; b < 2; ++b) EXPECT_EQ(a.gold_rank[b].item<int64_t>(), scores[b].target_rank);
}

// The profile times the call's parts without changing a bit of its scores.
TEST(GatedLpiFacts, ProfileTimesThePartsAndChangesNoScore) {
  for (const auto& spec : {tiny_olmoe(), tiny_dense()}) {
    ScratchDir dir("lpi_gated_lpi");
    auto model = load(dir, spec);
    const auto prompts = make_prompts({4, 6, 5}, spec.vocab_used, 4);
    LpiOptions o;
    const auto plain = gated_lpi(model, prompts, {7, 8, 9}, o);
    EXPECT_TRUE(plain.profile.layers.empty());
    o.profile = true;
    const auto timed = gated_lpi(model, prompts, {7, 8, 9}, o);
    EXPECT_EQ(max_diff(plain, timed), 0.0);
    ASSERT_EQ(timed.profile.layers.size(), static_cast<std::size_t>(spec.layers));
    EXPECT_GT(timed.profile.forward, 0.0);
    const auto sum = timed.profile.sum();
    EXPECT_GT(sum.projection, 0.0);
    EXPECT_GT(sum.lse, 0.0);
    for (const auto& l : timed.profile.layers) {
      for (const auto* p : {&l.attn, &l.ffn}) {
        EXPECT_GE(p->lens, 0.0);
        EXPECT_GT(p->projection, 0.0);
        EXPECT_GT(p->lse, 0.0);
      }
    }
  }
}

// A prompt's scores do not depend, to the last bit, on the other prompts of
// the call (the sweep cuts prompts into units; lpi-attribute takes them all).
TEST_P(GatedLpi, ScoresAreBatchInvariantBitForBit) {
  ScratchDir dir("lpi_gated_lpi");
  auto model = load(dir, GetParam().spec);
  const auto prompts = make_prompts({3, 9, 5, 7, 4, 8}, GetParam().spec.vocab_used, 6);
  const std::vector<int32_t> gold = {5, 6, 7, 8, 9, 10};
  for (auto lens : {Lens::Frozen, Lens::Exact}) {
    LpiOptions o;
    o.lens = lens;
    const auto all = gated_lpi(model, prompts, gold, o);
    for (const auto& [first, count] : std::vector<std::pair<int, int>>{{0, 1}, {1, 3}, {4, 2}}) {
      const std::vector<std::vector<int32_t>> part(prompts.begin() + first,
                                                   prompts.begin() + first + count);
      const std::vector<int32_t> part_gold(gold.begin() + first, gold.begin() + first + count);
      const auto some = gated_lpi(model, part, part_gold, o);
      for (std::size_t l = 0; l < all.layers.size(); ++l) {
        EXPECT_TRUE(torch::equal(all.layers[l].attn.narrow(0, first, count), some.layers[l].attn));
        EXPECT_TRUE(torch::equal(all.layers[l].ffn.narrow(0, first, count), some.layers[l].ffn));
      }
      EXPECT_TRUE(torch::equal(all.base_logprob.narrow(0, first, count), some.base_logprob));
      EXPECT_TRUE(torch::equal(all.gold_rank.narrow(0, first, count), some.gold_rank));
    }
    // Batched forward passes give the same scores up to rounding.
    o.batch_invariant = false;
    o.batch_size = 4;
    EXPECT_LT(max_diff(all, gated_lpi(model, prompts, gold, o)), 1e-5);
  }
}

TEST(GatedLpiFacts, RefusesBadTargets) {
  const auto spec = tiny_dense();
  ScratchDir dir("lpi_gated_lpi");
  auto model = load(dir, spec);
  const auto prompts = make_prompts({4}, spec.vocab_used, 4);
  EXPECT_THROW(gated_lpi(model, prompts, {}), EngineError);
  EXPECT_THROW(gated_lpi(model, prompts, {static_cast<int32_t>(spec.vocab)}), EngineError);
  EXPECT_THROW(gated_lpi(model, {}, {}), EngineError);
}

}  // namespace
}  // namespace lpi::engine::testing

namespace lpi::engine::kernels {
namespace {

// The fused kernel against log(sum_v q_v exp(delta_v)) in double: small
// deltas (the polynomial), large ones (shifted by the bound), a bound so
// loose that the shifted sum underflows (the exact fallback), and the base
// distribution of logits of a real model's size.
TEST(LseKernel, MatchesDoublePrecisionInEveryMode) {
  torch::manual_seed(3);
  for (int64_t n : {1, 7, 16, 17, 1000, 12289}) {
    const auto s = torch::randn({n}) * 8, p = torch::randn({n});
    auto q = torch::empty({n});
    const auto dist = base_distribution(s.data_ptr<float>(), n, q.data_ptr<float>());
    const auto s64 = s.to(torch::kFloat64);
    EXPECT_NEAR(dist.lse, torch::logsumexp(s64, 0).item<double>(), 1e-5);
    EXPECT_NEAR(dist.total, 1.0, 1e-6);
    EXPECT_LE(lpi::engine::testing::max_abs_diff(q, torch::softmax(s64, 0)), 1e-6);
    const auto log_q = torch::log(q.to(torch::kFloat64));
    const double log_total = std::log(dist.total);
    for (float eps : {0.0f, -0.004f, 0.03f}) {
      for (float beta : {-3.0f, -0.1f, 0.0f, 0.02f, 0.4f}) {
        const auto delta = s64 * eps + p.to(torch::kFloat64) * beta;
        const double expected = torch::logsumexp(log_q + delta, 0).item<double>() - log_total;
        const float s_max = s.max().item<float>(), s_min = s.min().item<float>();
        const float p_max = p.max().item<float>(), p_min = p.min().item<float>();
        const float upper =
            std::max(eps * s_max, eps * s_min) + std::max(beta * p_max, beta * p_min);
        const float radius = std::abs(eps) * std::max(std::abs(s_max), std::abs(s_min)) +
                             std::abs(beta) * std::max(std::abs(p_max), std::abs(p_min));
        for (float loose : {0.0f, 200.0f}) {
          const double got = relative_lse(
              q.data_ptr<float>(), eps == 0 ? nullptr : s.data_ptr<float>(), p.data_ptr<float>(), n,
              eps, beta, radius + loose, upper + loose, dist.total);
          EXPECT_NEAR(got, expected, 1e-6 * std::max(1.0, std::abs(expected)))
              << "n " << n << " eps " << eps << " beta " << beta << " loose " << loose;
        }
      }
    }
  }
  for (float x : {-100.0f, -80.0f, -1.0f, 0.0f, 0.5f, 10.0f, 80.0f}) {
    EXPECT_NEAR(exp_approx(x) / std::exp(std::max(x, -87.3f)), 1.0, 1e-6) << x;
  }
}

}  // namespace
}  // namespace lpi::engine::kernels

namespace lpi::engine::testing {
namespace {

// bf16 weights (computation in bf16, the lens in fp32 on the captured values)
// against fp32: the error is measured and bounded, relative to the largest
// score (measured: 1.6% for the tiny OLMoE, 2.8% for the dense model; also in
// docs/PERFORMANCE.md). A layer where bf16 routes some prompt to other experts
// is compared on its attention neurons only.
TEST(GatedLpiFacts, Bf16ErrorAgainstFloat32IsSmall) {
  for (const auto& spec : {tiny_olmoe(), tiny_dense()}) {
    ScratchDir dir("lpi_gated_lpi");
    write_tiny_model(dir.path(), spec);
    auto fp32 = load_model(dir.path());
    LoadOptions bf16_load;
    bf16_load.dtype = torch::kBFloat16;
    auto bf16 = load_model(dir.path(), bf16_load);
    const auto prompts = make_prompts({4, 7, 3, 6}, spec.vocab_used, 21);
    const std::vector<int32_t> gold = {5, 9, 17, 30};
    const auto a = gated_lpi(fp32, prompts, gold);
    const auto b = gated_lpi(bf16, prompts, gold);
    double err = 0, scale = 0;
    for (std::size_t l = 0; l < a.layers.size(); ++l) {
      err = std::max({err, max_abs_diff(a.layers[l].attn, b.layers[l].attn)});
      scale = std::max({scale, a.layers[l].attn.abs().max().item<double>(),
                        a.layers[l].ffn.abs().max().item<double>()});
      if (a.layers[l].expert_ids.defined() &&
          !torch::equal(a.layers[l].expert_ids, b.layers[l].expert_ids))
        continue;
      err = std::max(err, max_abs_diff(a.layers[l].ffn, b.layers[l].ffn));
    }
    std::printf("%s: bf16 vs fp32 Gated-LPI max |diff| %.4f, max |score| %.4f (%.1f%%)\n",
                spec.kind == TinyKind::Olmoe ? "olmoe" : "dense", err, scale, 100 * err / scale);
    EXPECT_LT(err, 0.1 * scale);
  }
}

}  // namespace
}  // namespace lpi::engine::testing

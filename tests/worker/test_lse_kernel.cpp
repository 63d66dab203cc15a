// The CPU kernels of the fast path (lse_kernel.hpp, lse_kernel_block.hpp):
// against float64, and the invariances the sweep relies on: a result's bits
// do not depend on the tiling, the other rows of a call, the thread count or
// the instruction set (AVX2 and AVX-512 builds); and the projection tiles
// are counted one per (layer, block, expert, column tile).
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <set>

#include "tiny_models.hpp"
#include "worker/engine/gated_lpi.hpp"
#include "worker/engine/lse_kernel.hpp"
#include "worker/engine/lse_kernel_block.hpp"

namespace lpi::engine::testing {
namespace {
namespace k = lpi::engine::kernels;

bool equal_scores(const Importance& a, const Importance& b) {
  bool same = a.layers.size() == b.layers.size();
  for (std::size_t l = 0; same && l < a.layers.size(); ++l) {
    same = torch::equal(a.layers[l].attn, b.layers[l].attn) &&
           torch::equal(a.layers[l].ffn, b.layers[l].ffn);
  }
  return same;
}

// Rows of q, s (prompts) and p (neurons), padded with zeros past the vocabulary.
struct Block {
  int64_t vocab = 0, cols = 0;
  torch::Tensor s, q, totals, p, beta, eps;
};

Block random_block(int64_t m, int64_t n, int64_t vocab, double p_scale, uint64_t seed) {
  torch::manual_seed(seed);
  Block b;
  b.vocab = vocab;
  b.cols = k::padded(vocab);
  b.s = torch::zeros({m, b.cols});
  b.s.narrow(1, 0, vocab).copy_(torch::randn({m, vocab}) * 8);
  std::tie(b.q, b.totals) = k::base_distributions(b.s, vocab);
  b.p = torch::zeros({n, b.cols});
  b.p.narrow(1, 0, vocab).copy_(torch::randn({n, vocab}) * p_scale);
  b.beta = torch::randn({m, n});
  b.eps = torch::randn({m, n}) * 0.002;
  return b;
}

// log(sum q exp(delta) / total) in float64.
torch::Tensor expected(const Block& b, bool exact) {
  const auto q = b.q.narrow(1, 0, b.vocab).to(torch::kFloat64);
  const auto p = b.p.narrow(1, 0, b.vocab).to(torch::kFloat64);
  auto delta = b.beta.to(torch::kFloat64).unsqueeze(2) * p.unsqueeze(0);  // [m, n, V]
  if (exact) {
    delta = delta + b.eps.to(torch::kFloat64).unsqueeze(2) *
                        b.s.narrow(1, 0, b.vocab).to(torch::kFloat64).unsqueeze(1);
  }
  return torch::logsumexp(torch::log(q).unsqueeze(1) + delta, -1) -
         torch::log(b.totals).unsqueeze(1);
}

TEST(LseKernel, BlockMatchesFloat64AndTheOnePairKernelBitForBit) {
  // Small deltas (the polynomial), large ones (the shifted exp) and a mix.
  for (double p_scale : {0.02, 0.3, 3.0}) {
    const auto b = random_block(11, 37, 1000, p_scale, 7);
    for (bool exact : {false, true}) {
      const auto s = exact ? b.s : torch::Tensor();
      const auto eps = exact ? b.eps : torch::Tensor();
      const auto got = k::relative_lse_block(b.q, b.totals, s, b.p, b.vocab, b.beta, eps);
      const auto want = expected(b, exact);
      EXPECT_LE(((got - want).abs() / want.abs().clamp_min(1)).max().item<double>(), 1e-6)
          << p_scale << " " << exact;
      // Every pair alone through relative_lse (bounds from the same extremes): the same bits.
      const auto pmax = b.p.narrow(1, 0, b.vocab).amax(1), pmin = b.p.narrow(1, 0, b.vocab).amin(1);
      const auto smax = b.s.narrow(1, 0, b.vocab).amax(1), smin = b.s.narrow(1, 0, b.vocab).amin(1);
      int64_t same = 0;
      for (int64_t i = 0; i < 11; ++i) {
        for (int64_t j = 0; j < 37; ++j) {
          const float bt = b.beta[i][j].item<float>(), ep = exact ? b.eps[i][j].item<float>() : 0;
          const float px = pmax[j].item<float>(), pn = pmin[j].item<float>();
          float radius = std::abs(bt) * std::max(std::abs(px), std::abs(pn));
          float upper = std::max(bt * px, bt * pn);
          if (exact) {
            const float sx = smax[i].item<float>(), sn = smin[i].item<float>();
            radius += std::abs(ep) * std::max(std::abs(sx), std::abs(sn));
            upper += std::max(ep * sx, ep * sn);
          }
          const double one = k::relative_lse(
              b.q[i].data_ptr<float>(), exact ? b.s[i].data_ptr<float>() : nullptr,
              b.p[j].data_ptr<float>(), b.cols, ep, bt, radius, upper, b.totals[i].item<double>());
          same += static_cast<float>(one) == got[i][j].item<float>();
        }
      }
      EXPECT_EQ(same, 11 * 37) << p_scale << " " << exact;
      // Any subset of the prompts and neurons: the same bits.
      const auto sub = k::relative_lse_block(b.q.narrow(0, 3, 5), b.totals.narrow(0, 3, 5),
                                             exact ? s.narrow(0, 3, 5) : s, b.p.narrow(0, 9, 20),
                                             b.vocab, b.beta.narrow(0, 3, 5).narrow(1, 9, 20),
                                             exact ? eps.narrow(0, 3, 5).narrow(1, 9, 20) : eps);
      EXPECT_TRUE(torch::equal(sub, got.narrow(0, 3, 5).narrow(1, 9, 20)));
    }
  }
}

TEST(LseKernel, ProductsAddTheirTermsInOrderWhateverTheRows) {
  torch::manual_seed(11);
  const int64_t V = 1001, d = 70;
  const auto w = torch::randn({V, d}), y = torch::randn({13, d});
  const auto all = k::unembed_rows(y, w, k::padded(V));
  EXPECT_LE(max_abs_diff(all.narrow(1, 0, V),
                         torch::matmul(y.to(torch::kFloat64), w.to(torch::kFloat64).t())),
            1e-4);
  EXPECT_EQ(all.narrow(1, V, k::padded(V) - V).abs().max().item<float>(), 0.0f);
  for (const auto& [first, count] : std::vector<std::pair<int, int>>{{0, 1}, {3, 7}, {12, 1}}) {
    EXPECT_TRUE(torch::equal(k::unembed_rows(y.narrow(0, first, count), w, V),
                             all.narrow(0, first, count).narrow(1, 0, V)));
  }
  // Columns (k-major) give the rows' bits.
  EXPECT_TRUE(torch::equal(k::unembed_columns(y.t().contiguous(), w, k::padded(V)), all));
}

TEST(LseKernel, AvxBuildsGiveTheSameBits) {
  if (std::string(k::isa()) != "avx512") GTEST_SKIP() << "the CPU has no AVX-512";
  const auto b = random_block(9, 21, 700, 0.3, 3);
  const auto w = torch::randn({700, 40}), y = torch::randn({5, 40});
  const auto got512 = k::relative_lse_block(b.q, b.totals, b.s, b.p, b.vocab, b.beta, b.eps);
  const auto prod512 = k::unembed_rows(y, w, 704);
  ASSERT_TRUE(k::use_isa("avx2"));
  const auto got2 = k::relative_lse_block(b.q, b.totals, b.s, b.p, b.vocab, b.beta, b.eps);
  const auto prod2 = k::unembed_rows(y, w, 704);
  ASSERT_TRUE(k::use_isa("avx512"));
  EXPECT_TRUE(torch::equal(got512, got2));
  EXPECT_TRUE(torch::equal(prod512, prod2));
}

TEST(GatedLpiThreads, ScoresDoNotDependOnTheThreadCount) {
  for (const auto& spec : {tiny_olmoe(), tiny_dense()}) {
    ScratchDir dir("lpi_lse_kernel");
    write_tiny_model(dir.path(), spec);
    auto model = load_model(dir.path());
    const auto prompts = make_prompts({5, 8, 3, 6, 7}, spec.vocab_used, 12);
    const std::vector<int32_t> gold = {3, 4, 5, 6, 7};
    const int before = at::get_num_threads();
    for (Lens lens : {Lens::Frozen, Lens::Exact}) {
      LpiOptions o;
      o.lens = lens;
      at::set_num_threads(1);
      const auto one = gated_lpi(model, prompts, gold, o);
      at::set_num_threads(2);
      const auto two = gated_lpi(model, prompts, gold, o);
      EXPECT_TRUE(equal_scores(one, two)) << lens_name(lens);
      EXPECT_TRUE(torch::equal(one.base_logprob, two.base_logprob));
    }
    at::set_num_threads(before);
  }
}

TEST(GatedLpiFacts, ProjectionTilesAreCountedOncePerLayerBlockExpertAndTile) {
  for (const auto& spec : {tiny_olmoe(), tiny_dense()}) {
    ScratchDir dir("lpi_lse_kernel");
    write_tiny_model(dir.path(), spec);
    auto model = load_model(dir.path());
    const auto prompts = make_prompts({5, 8, 3}, spec.vocab_used, 13);
    for (bool fused : {true, false}) {
      LpiOptions o;
      o.fused_cpu_kernel = fused;
      const auto imp = gated_lpi(model, prompts, {3, 4, 5}, o);
      int64_t blocks = 0;  // one tile per block with the default budget
      for (const auto& layer : imp.layers) {
        if (!layer.expert_ids.defined()) {
          blocks += 2;
          continue;
        }
        const auto ids = layer.expert_ids.flatten();
        std::set<int64_t> experts(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
        blocks += 1 + static_cast<int64_t>(experts.size());
      }
      EXPECT_EQ(imp.projection_tiles, blocks);
      o.memory_budget_mb = 0;  // the smallest tiles: one output column each
      const int64_t width = spec.hidden + (spec.kind == TinyKind::Olmoe ? 0 : spec.intermediate);
      const auto small = gated_lpi(model, prompts, {3, 4, 5}, o);
      if (spec.kind != TinyKind::Olmoe) {
        EXPECT_EQ(small.projection_tiles, spec.layers * width);
      }
      EXPECT_GT(small.projection_tiles, imp.projection_tiles);
    }
  }
}

}  // namespace
}  // namespace lpi::engine::testing

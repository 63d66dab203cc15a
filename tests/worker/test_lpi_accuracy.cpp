// The accuracy of Gated-LPI in float32 (docs/METHOD.md, section 2): the fast
// path and the literal formula in float32 (gated_lpi_reference) against the
// formula evaluated in float64 on the same captured x and c, on tiny random
// OLMoE and OLMo models whose unembedding is scaled so that the logits have
// the size of a real model's (|logit| up to about 30). The fast path computes
// each score relative to the base distribution, so it must be at least as
// accurate as the formula in float32, which subtracts two log-sum-exps of
// that size.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "tiny_models.hpp"
#include "worker/engine/gated_lpi.hpp"

namespace lpi::engine::testing {
namespace {

// The formula in float64 for one prompt and one block, from float32 captures:
// logp(w | x + c_i u_i) - logp(w | x) for every column i of u [d, n].
torch::Tensor formula_f64(Transformer& model, Lens lens, const torch::Tensor& x,
                          const torch::Tensor& c, const torch::Tensor& u, int64_t w, double sf) {
  const auto f64 = torch::kFloat64;
  const auto& cfg = model->config();
  const bool center = cfg.norm == checkpoint::NormKind::LayerNormNoAffine;
  const auto wu = model->lm_head().detach().to(f64);
  const auto g = center ? torch::ones({cfg.hidden_size}, wu.options())
                        : model->final_norm_weight().detach().to(f64);
  auto logp = [&](const torch::Tensor& y) {  // rows [r, d] -> logp(w) [r]
    const auto cy = center ? y - y.mean(-1, true) : y;
    const auto s = lens == Lens::Frozen ? torch::full({y.size(0), 1}, sf, y.options())
                                        : torch::sqrt(cy.pow(2).mean(-1, true) + cfg.norm_eps);
    return torch::log_softmax(torch::matmul(cy / s * g, wu.t()), -1).select(1, w);
  };
  const auto xd = x.to(f64).unsqueeze(0);
  const auto y = xd + c.to(f64).unsqueeze(1) * u.to(f64).t();
  return logp(y) - logp(xd);
}

struct Errors {
  double fast = 0, tensor_ops = 0, naive = 0, scale = 0;
  int64_t count = 0;
};

void add(Errors& e, const torch::Tensor& fast, const torch::Tensor& tensor_ops,
         const torch::Tensor& naive, const torch::Tensor& exact) {
  e.fast = std::max(e.fast, (fast.to(torch::kFloat64) - exact).abs().max().item<double>());
  e.tensor_ops =
      std::max(e.tensor_ops, (tensor_ops.to(torch::kFloat64) - exact).abs().max().item<double>());
  e.naive = std::max(e.naive, (naive.to(torch::kFloat64) - exact).abs().max().item<double>());
  e.scale = std::max(e.scale, exact.abs().max().item<double>());
  e.count += exact.numel();
}

// Scores of every block of every prompt against the float64 formula.
void measure(const TinySpec& spec, double unembed_scale, Lens lens, Errors& errors) {
  ScratchDir dir("lpi_accuracy");
  auto weights = make_tiny_weights(spec);
  weights["lm_head.weight"] = weights["lm_head.weight"] * unembed_scale;
  // Output columns smaller than the residual they write into, as in a real
  // model, so that one neuron moves the logits by a fraction of a unit.
  for (auto& [name, tensor] : weights) {
    const auto ends = [&](const std::string& tail) {
      return name.size() > tail.size() &&
             name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    };
    if (ends("o_proj.weight") || ends("down_proj.weight")) tensor = tensor * 0.02;
    if (ends("gate_proj.weight") || ends("up_proj.weight") || ends("v_proj.weight")) {
      tensor = tensor * 0.3;
    }
  }
  write_checkpoint(dir.path(), hf_config_json(spec), weights);
  auto model = load_model(dir.path());
  const auto prompts =
      make_prompts({5, 9, 3, 7, 6, 8, 4, 10, 2, 7, 5, 6}, spec.vocab_used, spec.seed + 40);
  std::vector<int32_t> gold;
  for (std::size_t b = 0; b < prompts.size(); ++b) gold.push_back(static_cast<int32_t>(2 + 7 * b));
  LpiOptions options;
  options.lens = lens;
  const auto fast = gated_lpi(model, prompts, gold, options);
  const auto naive = gated_lpi_reference(model, prompts, gold, options);
  options.fused_cpu_kernel = false;  // the tensor-op formulation (GPUs)
  const auto tensor_ops = gated_lpi(model, prompts, gold, options);

  torch::NoGradGuard no_grad;
  ForwardOptions fo;
  fo.capture = {"attn_in", "head_out", "ffn_in", "ffn_coef", "expert_ids", "final_scale"};
  double max_logit = 0;
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    const auto out = model->forward(make_batch({prompts[b]}, 1), fo);
    const auto& cap = out.captures;
    max_logit = std::max(max_logit, out.logits.abs().max().item<double>());
    const double sf = cap.get("final_scale")[0].item<double>();
    const int64_t w = gold[b];
    for (int64_t l = 0; l < spec.layers; ++l) {
      const auto& fl = fast.layers[l];
      const auto& tl = tensor_ops.layers[l];
      const auto& nl = naive.layers[l];
      add(errors, fl.attn[b], tl.attn[b], nl.attn[b],
          formula_f64(model, lens, cap.get("attn_in", l)[0], cap.get("head_out", l)[0],
                      model->o_proj(l), w, sf));
      if (spec.kind != TinyKind::Olmoe) {
        add(errors, fl.ffn[b], tl.ffn[b], nl.ffn[b],
            formula_f64(model, lens, cap.get("ffn_in", l)[0], cap.get("ffn_coef", l)[0],
                        model->down_proj(l), w, sf));
        continue;
      }
      const auto ids = cap.get("expert_ids", l)[0];
      for (int64_t s = 0; s < spec.top_k; ++s) {
        add(errors, fl.ffn[b][s], tl.ffn[b][s], nl.ffn[b][s],
            formula_f64(model, lens, cap.get("ffn_in", l)[0], cap.get("ffn_coef", l)[0][s],
                        model->down_proj(l)[ids[s].item<int64_t>()], w, sf));
      }
    }
  }
  std::printf("  max |logit| %.1f\n", max_logit);
  EXPECT_GT(max_logit, 10.0) << "the logits must have a real model's size";
  EXPECT_LT(max_logit, 40.0);
}

TEST(GatedLpiAccuracy, FastPathIsAtLeastAsAccurateAsTheFormulaInFloat32) {
  auto olmoe = tiny_olmoe();
  olmoe.hidden = 64;
  olmoe.layers = 3;
  olmoe.intermediate = 32;
  olmoe.vocab = olmoe.vocab_used = 1500;
  olmoe.seed = 31;
  auto olmoe_wide = olmoe;
  olmoe_wide.experts = 16;
  olmoe_wide.top_k = 4;
  olmoe_wide.seed = 32;
  auto dense = tiny_dense();
  dense.hidden = 64;
  dense.layers = 3;
  dense.intermediate = 96;
  dense.vocab = dense.vocab_used = 1500;
  dense.seed = 33;
  for (Lens lens : {Lens::Frozen, Lens::Exact}) {
    Errors errors;
    // Unembeddings scaled so that the largest logits are about 15 to 40.
    for (const auto& [spec, scale] :
         std::vector<std::pair<TinySpec, double>>{{olmoe, 3.0}, {olmoe_wide, 3.2}, {dense, 3.5}}) {
      measure(spec, scale, lens, errors);
    }
    std::printf(
        "%s lens, %lld scores (max |I| %.3f): max error against float64: fast path %.2e, "
        "tensor ops %.2e, formula in float32 %.2e\n",
        lens_name(lens), static_cast<long long>(errors.count), errors.scale, errors.fast,
        errors.tensor_ops, errors.naive);
    EXPECT_GT(errors.count, 10000);
    EXPECT_GT(errors.scale, 0.05) << "scores must not be trivially small";
    EXPECT_LE(errors.fast, 1.25 * errors.naive) << lens_name(lens);
    EXPECT_LE(errors.tensor_ops, 1.25 * errors.naive) << lens_name(lens);
  }
}

}  // namespace
}  // namespace lpi::engine::testing

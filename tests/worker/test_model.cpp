// The engine against the plain reference model (tests/worker/reference_model)
// on tiny random checkpoints of every layout: logits of right-padded batches,
// the captured Gated-LPI quantities and their consistency with the logits,
// ablations, the hf_olmo fused layout and bf16.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "reference_model.hpp"
#include "tiny_models.hpp"
#include "worker/engine/model.hpp"
#include "worker/engine/models/registry.hpp"

namespace lpi::engine::testing {
namespace {
namespace fs = std::filesystem;

constexpr double kTol = 1e-4;  // fp32 engine vs float64 reference

struct ModelCase {
  std::string name;
  TinySpec spec;
  bool fused = false;
};

std::vector<ModelCase> model_cases() {
  return {{"olmoe", tiny_olmoe(), false},
          {"olmoe_gqa_clip_normtopk", tiny_olmoe_gqa_clip(), false},
          {"dense", tiny_dense(), false},
          {"dense_fused", tiny_dense(), true},
          {"dense_tied_gqa_clip", tiny_dense_tied_gqa_clip(), false},
          {"dense_tied_gqa_clip_fused", tiny_dense_tied_gqa_clip(), true}};
}

// gtest prints parameters by name rather than as bytes.
void PrintTo(const ModelCase& m, std::ostream* os) {
  *os << m.name;
}

const ModelCase& model_case(const std::string& name) {
  static const auto cases = model_cases();
  for (const auto& c : cases) {
    if (c.name == name) return c;
  }
  throw std::invalid_argument("no model case " + name);
}

// Every checkpoint is written once per test binary, into one scratch folder.
fs::path folder_of(const ModelCase& m) {
  static const ScratchDir dir("lpi_test_model");
  const fs::path folder = dir / m.name;
  if (!fs::exists(folder / "config.json")) write_tiny_model(folder, m.spec, m.fused);
  return folder;
}

// Five prompts of mixed lengths (right-padded to 9 in one batch).
std::vector<std::vector<int32_t>> test_prompts(const TinySpec& spec) {
  return make_prompts({3, 1, 9, 5, 7}, spec.vocab_used, 11);
}

torch::Tensor embedding_table(const Transformer& model) {
  for (const auto& [name, tensor] : model->hf_tensors()) {
    if (name == "model.embed_tokens.weight" || name == "model.transformer.wte.weight")
      return tensor;
  }
  throw std::runtime_error("no embedding among hf_tensors()");
}

class EngineVsReference : public ::testing::TestWithParam<ModelCase> {
 protected:
  void SetUp() override {
    folder_ = folder_of(GetParam());
    model_ = load_model(folder_);
    reference_ = std::make_unique<ReferenceModel>(ReferenceModel::from_folder(folder_));
    prompts_ = test_prompts(GetParam().spec);
    batch_ = make_batch(prompts_, /*pad_id=*/1);
  }

  fs::path folder_;
  Transformer model_{nullptr};
  std::unique_ptr<ReferenceModel> reference_;
  std::vector<std::vector<int32_t>> prompts_;
  Batch batch_;
};

TEST_P(EngineVsReference, LogitsMatchReferenceOnPaddedBatch) {
  const auto out = model_->forward(batch_);
  const int64_t B = static_cast<int64_t>(prompts_.size());
  ASSERT_EQ(out.logits.sizes(), (std::vector<int64_t>{B, model_->config().vocab_size}));
  ASSERT_EQ(out.logits.scalar_type(), torch::kFloat32);
  double worst = 0;
  for (int64_t b = 0; b < B; ++b) {
    const auto ref = reference_->run(prompts_[b]);
    ASSERT_GT(ref.logits.std().item<double>(), 0.5) << "flat logits would make this test weak";
    const double diff = max_abs_diff(out.logits[b], ref.logits);
    EXPECT_LT(diff, kTol) << "prompt " << b << " (length " << prompts_[b].size() << ")";
    worst = std::max(worst, diff);
    // The same prompt alone (no padding) gives the same logits.
    const auto alone = model_->forward(make_batch({prompts_[b]}, 1)).logits[0];
    EXPECT_LT(max_abs_diff(alone, out.logits[b]), 1e-5) << "prompt " << b << " padded vs alone";
  }
  std::cout << "[ measured ] " << GetParam().name
            << ": max |engine - reference| fp32 logits = " << worst << std::endl;
}

// all_positions (the training forward): position t of a sequence gives the
// logits of its prefix of length t + 1.
TEST_P(EngineVsReference, AllPositionsMatchPrefixes) {
  ForwardOptions options;
  options.all_positions = true;
  const auto out = model_->forward(batch_, options);
  const int64_t B = batch_.ids.size(0), T = batch_.ids.size(1);
  ASSERT_EQ(out.logits.sizes(), (std::vector<int64_t>{B, T, model_->config().vocab_size}));
  const auto last = model_->forward(batch_).logits;
  // The MoE training terms are computed here (positive), and are zero for dense models.
  const double balance = out.load_balancing_loss.item<double>();
  const double z_loss = out.router_z_loss.item<double>();
  if (model_->config().is_moe()) {
    EXPECT_TRUE(std::isfinite(balance) && balance > 0) << balance;
    EXPECT_TRUE(std::isfinite(z_loss) && z_loss > 0) << z_loss;
  } else {
    EXPECT_EQ(balance, 0.0);
    EXPECT_EQ(z_loss, 0.0);
  }
  for (int64_t b = 0; b < B; ++b) {
    const auto& prompt = prompts_[b];
    EXPECT_LT(max_abs_diff(out.logits[b][prompt.size() - 1], last[b]), 1e-5) << "prompt " << b;
    for (std::size_t t = 0; t < prompt.size(); ++t) {
      const std::vector<int32_t> prefix(prompt.begin(), prompt.begin() + t + 1);
      EXPECT_LT(max_abs_diff(out.logits[b][t], reference_->run(prefix).logits), kTol)
          << "prompt " << b << " position " << t;
    }
  }
}

TEST_P(EngineVsReference, CapturesMatchReference) {
  ForwardOptions options;
  options.capture = Captures::names();
  const auto out = model_->forward(batch_, options);
  const auto& cap = out.captures;
  const auto& c = model_->config();
  const auto L = c.num_layers;
  ASSERT_EQ(cap.layers("attn_in"), L);
  ASSERT_EQ(cap.layers("head_out"), L);
  ASSERT_EQ(cap.layers("attn_out"), L);
  ASSERT_EQ(cap.layers("ffn_in"), L);
  ASSERT_EQ(cap.layers("ffn_coef"), L);
  ASSERT_EQ(cap.layers("ffn_out"), L);
  ASSERT_EQ(cap.layers("router_probs"), c.is_moe() ? L : 0);
  for (std::size_t b = 0; b < prompts_.size(); ++b) {
    const auto ref = reference_->run(prompts_[b]);
    for (int64_t l = 0; l < L; ++l) {
      const auto& r = ref.layers[l];
      const std::string where = "prompt " + std::to_string(b) + " layer " + std::to_string(l);
      EXPECT_LT(max_abs_diff(cap.get("attn_in", l)[b], r.attn_in), kTol) << where;
      EXPECT_LT(max_abs_diff(cap.get("head_out", l)[b], r.head_out), kTol) << where;
      EXPECT_LT(max_abs_diff(cap.get("attn_out", l)[b], r.attn_out), kTol) << where;
      EXPECT_LT(max_abs_diff(cap.get("ffn_in", l)[b], r.ffn_in), kTol) << where;
      EXPECT_LT(max_abs_diff(cap.get("ffn_coef", l)[b], r.ffn_coef), kTol) << where;
      EXPECT_LT(max_abs_diff(cap.get("ffn_out", l)[b], r.ffn_out), kTol) << where;
      if (c.is_moe()) {
        EXPECT_LT(max_abs_diff(cap.get("router_probs", l)[b], r.router_probs), 1e-5) << where;
        const auto ids = cap.get("expert_ids", l)[b];
        ASSERT_EQ(ids.scalar_type(), torch::kInt64);
        EXPECT_TRUE(torch::equal(ids, torch::tensor(r.expert_ids, torch::kInt64)))
            << where << ": " << ids;
        EXPECT_LT(max_abs_diff(cap.get("expert_weights", l)[b], torch::tensor(r.expert_weights)),
                  1e-5)
            << where;
      }
    }
    EXPECT_LT(max_abs_diff(cap.get("final_resid")[b], ref.final_resid), kTol);
    EXPECT_NEAR(cap.get("final_mean")[b].item<double>(), ref.final_mean, kTol);
    EXPECT_NEAR(cap.get("final_scale")[b].item<double>(), ref.final_scale, kTol);
  }
}

TEST_P(EngineVsReference, CapturesReproduceLogits) {
  const auto plain = model_->forward(batch_);
  ForwardOptions options;
  options.capture = Captures::names();
  const auto out = model_->forward(batch_, options);
  EXPECT_LT(max_abs_diff(plain.logits, out.logits), 1e-6) << "capturing changed the logits";
  const auto& cap = out.captures;
  const auto& c = model_->config();
  const auto unembed = model_->lm_head().to(torch::kFloat64);
  const auto gain = model_->final_norm_weight().defined()
                        ? model_->final_norm_weight().to(torch::kFloat64)
                        : torch::ones({c.hidden_size}, torch::kFloat64);
  EXPECT_EQ(model_->final_norm_weight().defined(), c.norm == checkpoint::NormKind::RMSNorm);
  const auto embed = embedding_table(model_).to(torch::kFloat64);
  for (std::size_t b = 0; b < prompts_.size(); ++b) {
    auto resid = embed[prompts_[b].back()].clone();
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const std::string where = "prompt " + std::to_string(b) + " layer " + std::to_string(l);
      EXPECT_LT(max_abs_diff(cap.get("attn_in", l)[b], resid), kTol) << where;
      resid = resid + cap.get("attn_out", l)[b].to(torch::kFloat64);
      EXPECT_LT(max_abs_diff(cap.get("ffn_in", l)[b], resid), kTol) << where;
      resid = resid + cap.get("ffn_out", l)[b].to(torch::kFloat64);
      // Each block's output is its neurons' coefficients times their output columns.
      const auto wo = model_->o_proj(l).to(torch::kFloat64);
      EXPECT_LT(max_abs_diff(torch::mv(wo, cap.get("head_out", l)[b].to(torch::kFloat64)),
                             cap.get("attn_out", l)[b]),
                kTol)
          << where;
      const auto down = model_->down_proj(l).to(torch::kFloat64);
      const auto coef = cap.get("ffn_coef", l)[b].to(torch::kFloat64);
      torch::Tensor ffn = torch::zeros({c.hidden_size}, torch::kFloat64);
      if (c.is_moe()) {
        ASSERT_EQ(coef.sizes(), (std::vector<int64_t>{c.num_experts_per_tok, c.intermediate_size}));
        for (int64_t k = 0; k < c.num_experts_per_tok; ++k) {
          ffn += torch::mv(down[cap.get("expert_ids", l)[b][k].item<int64_t>()], coef[k]);
        }
      } else {
        ffn = torch::mv(down, coef);
      }
      EXPECT_LT(max_abs_diff(ffn, cap.get("ffn_out", l)[b]), kTol) << where;
    }
    EXPECT_LT(max_abs_diff(cap.get("final_resid")[b], resid), kTol) << "prompt " << b;
    // The lens y -> W_U (g . (y - mean) / scale) at the final residual is the model's output.
    const auto y = cap.get("final_resid")[b].to(torch::kFloat64);
    const auto lens = torch::mv(unembed, gain * (y - cap.get("final_mean")[b].item<double>()) /
                                             cap.get("final_scale")[b].item<double>());
    EXPECT_LT(max_abs_diff(lens, out.logits[b]), kTol) << "prompt " << b;
    if (c.norm == checkpoint::NormKind::RMSNorm) {
      EXPECT_EQ(cap.get("final_mean")[b].item<double>(), 0.0);
    }
  }
}

// Ablations of heads, FFN or expert neurons (some in experts the long prompt
// really uses), alone and together.
std::vector<RefAblation> test_ablations(const ReferenceModel& ref,
                                        const std::vector<int32_t>& prompt) {
  const auto& c = ref.config();
  RefAblation heads;
  heads.heads = {{0, {1}}, {1, {0, 3}}};
  RefAblation ffn;
  if (c.is_moe()) {
    const auto run = ref.run(prompt);
    const int64_t I = c.intermediate_size;
    const int64_t e0 = run.layers[0].expert_ids[0], e1 = run.layers[0].expert_ids[1];
    const int64_t f0 = run.layers[1].expert_ids[0];
    ffn.ffn_neurons = {{0, {e0 * I + 2, e0 * I + 5, e1 * I}}, {1, {f0 * I + 7, f0 * I + I - 1}}};
  } else {
    ffn.ffn_neurons = {{0, {3, 17}}, {1, {5, 40, c.intermediate_size - 1}}};
  }
  RefAblation both = heads;
  both.ffn_neurons = ffn.ffn_neurons;
  return {heads, ffn, both};
}

TEST_P(EngineVsReference, AblationMatchesReference) {
  const auto& c = model_->config();
  const auto plain = model_->forward(batch_);
  // An empty ablation is the unmodified model.
  Ablation none;
  ForwardOptions with_none;
  with_none.ablation = &none;
  EXPECT_LT(max_abs_diff(model_->forward(batch_, with_none).logits, plain.logits), 1e-6);

  const std::size_t longest = 2;
  for (const auto& ref_ablation : test_ablations(*reference_, prompts_[longest])) {
    Ablation ablation;
    ablation.heads = ref_ablation.heads;
    ablation.ffn_neurons = ref_ablation.ffn_neurons;
    ForwardOptions options;
    options.ablation = &ablation;
    options.capture = Captures::names();
    const auto out = model_->forward(batch_, options);
    for (std::size_t b = 0; b < prompts_.size(); ++b) {
      const auto ref = reference_->run(prompts_[b], ref_ablation);
      EXPECT_LT(max_abs_diff(out.logits[b], ref.logits), kTol) << "prompt " << b;
      // Ablated components read zero in the captures.
      for (const auto& [layer, heads] : ablation.heads) {
        for (int64_t h : heads) {
          EXPECT_EQ(out.captures.get("head_out", layer)[b]
                        .narrow(0, h * c.head_dim, c.head_dim)
                        .abs()
                        .max()
                        .item<float>(),
                    0.0f);
        }
      }
      for (const auto& [layer, neurons] : ablation.ffn_neurons) {
        const auto coef = out.captures.get("ffn_coef", layer)[b];
        for (int64_t n : neurons) {
          if (!c.is_moe()) {
            EXPECT_EQ(coef[n].item<float>(), 0.0f);
            continue;
          }
          const int64_t expert = n / c.intermediate_size, i = n % c.intermediate_size;
          for (int64_t k = 0; k < c.num_experts_per_tok; ++k) {
            if (out.captures.get("expert_ids", layer)[b][k].item<int64_t>() == expert) {
              EXPECT_EQ(coef[k][i].item<float>(), 0.0f) << "expert " << expert << " neuron " << i;
            }
          }
        }
      }
    }
    // The ablation really changes the long prompt's output.
    EXPECT_GT(max_abs_diff(out.logits[longest], plain.logits[longest]), 1e-3);
  }
  // Indices out of range are refused.
  Ablation bad_head;
  bad_head.heads = {{0, {c.num_heads}}};
  with_none.ablation = &bad_head;
  EXPECT_THROW(model_->forward(batch_, with_none), EngineError);
  Ablation bad_neuron;
  bad_neuron.ffn_neurons = {{1, {c.intermediate_size * std::max<int64_t>(1, c.num_experts)}}};
  with_none.ablation = &bad_neuron;
  EXPECT_THROW(model_->forward(batch_, with_none), EngineError);
}

INSTANTIATE_TEST_SUITE_P(TinyModels, EngineVsReference, ::testing::ValuesIn(model_cases()),
                         [](const auto& info) { return info.param.name; });

// EngineVsReference runs every registered architecture: a new one needs a
// tiny model case here.
TEST(RegistryCoverage, EveryArchitectureIsComparedWithTheReference) {
  for (const Architecture* arch : architectures()) {
    bool covered = false;
    for (const auto& m : model_cases()) {
      covered = covered || &load_model(folder_of(m))->architecture() == arch;
    }
    EXPECT_TRUE(covered) << arch->name() << " has no tiny model case in model_cases()";
  }
}

// The variants test what they claim: clip_qkv and norm_topk_prob change the
// output, and the configs say what the specs asked for.
TEST(TinyModels, VariantOptionsAreActive) {
  for (const auto& m : model_cases()) {
    const auto folder = folder_of(m);
    auto reference = ReferenceModel::from_folder(folder);
    const auto& config = reference.config();
    EXPECT_EQ(config.num_kv_heads, m.spec.kv_heads) << m.name;
    EXPECT_EQ(config.clip_qkv, m.spec.clip_qkv) << m.name;
    EXPECT_EQ(config.tie_word_embeddings, m.spec.tie_embeddings) << m.name;
    const auto prompt = test_prompts(m.spec)[2];
    const auto base = reference.run(prompt).logits;
    if (m.spec.clip_qkv) {
      ReferenceModel unclipped = reference;
      unclipped.mutable_config().clip_qkv.reset();
      EXPECT_GT(max_abs_diff(unclipped.run(prompt).logits, base), 1e-3)
          << m.name << ": clip_qkv never clamps";
    }
    if (config.is_moe()) {
      EXPECT_EQ(config.norm_topk_prob, m.spec.norm_topk_prob) << m.name;
      ReferenceModel flipped = reference;
      flipped.mutable_config().norm_topk_prob = !config.norm_topk_prob;
      EXPECT_GT(max_abs_diff(flipped.run(prompt).logits, base), 1e-3) << m.name;
    }
  }
}

TEST(FusedLayout, SameWeightsGiveSameLogitsAsHF) {
  for (const std::string name : {"dense", "dense_tied_gqa_clip"}) {
    const auto& hf_case = model_case(name);
    const auto& fused_case = model_case(name + "_fused");
    auto hf = load_model(folder_of(hf_case));
    auto fused = load_model(folder_of(fused_case));
    EXPECT_EQ(fused->config().layout, checkpoint::Layout::OlmoFused);
    EXPECT_EQ(fused->config().vocab_size, hf->config().vocab_size);
    EXPECT_EQ(fused->config().tie_word_embeddings, hf_case.spec.tie_embeddings);
    const auto batch = make_batch(test_prompts(hf_case.spec), 1);
    const auto a = hf->forward(batch).logits, b = fused->forward(batch).logits;
    EXPECT_LT(max_abs_diff(a, b), 1e-6) << name;
    // The weights were split back exactly.
    for (int64_t l = 0; l < hf->config().num_layers; ++l) {
      EXPECT_TRUE(torch::equal(hf->o_proj(l), fused->o_proj(l)));
      EXPECT_TRUE(torch::equal(hf->down_proj(l), fused->down_proj(l)));
    }
    EXPECT_TRUE(torch::equal(hf->lm_head(), fused->lm_head()));
  }
}

TEST(Bf16, LogitsCloseToFloat32) {
  // Measured on the tiny models (d = 32, 2 layers, fp32 logits std ~1.7, libtorch
  // 1.13 CPU): max |bf16 - fp32| logits 0.087 (olmoe), 0.163 (olmoe GQA + clip),
  // 0.129 (dense), 0.174 (fused tied dense), i.e. a few bf16 ulps of the logits
  // (bf16 has 8 significant bits: ulp 1/64 at 2..4). The tolerance leaves about
  // 2x room for other kernels; a real error (a wrong cast, an fp32-only path
  // broken in bf16) moves the logits by O(1).
  constexpr double kBf16Tol = 0.4;
  for (const std::string name :
       {"olmoe", "olmoe_gqa_clip_normtopk", "dense", "dense_tied_gqa_clip_fused"}) {
    const auto& m = model_case(name);
    auto f32 = load_model(folder_of(m));
    LoadOptions bf16_options;
    bf16_options.dtype = torch::kBFloat16;
    auto bf16 = load_model(folder_of(m), bf16_options);
    ASSERT_EQ(bf16->lm_head().scalar_type(), torch::kBFloat16);
    const auto batch = make_batch(test_prompts(m.spec), 1);
    ForwardOptions options;
    options.capture = Captures::names();
    const auto expected = f32->forward(batch).logits;
    const auto got = bf16->forward(batch, options);
    ASSERT_EQ(got.logits.scalar_type(), torch::kFloat32);
    ASSERT_EQ(got.captures.get("final_resid").scalar_type(), torch::kFloat32);
    const double err = max_abs_diff(got.logits, expected);
    const double spread = expected.std().item<double>();
    std::cout << "[ measured ] " << name << ": max |bf16 - fp32| logits = " << err
              << " (fp32 logits std " << spread << ")" << std::endl;
    EXPECT_LT(err, kBf16Tol) << name;
    EXPECT_GT(err, 0.0) << name << ": bf16 gave bit-identical logits; was it really bf16?";
  }
}

}  // namespace
}  // namespace lpi::engine::testing

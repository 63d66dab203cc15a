// The engine on a CUDA device against the CPU: the forward pass, Gated-LPI
// (both lenses, MoE and dense) within tolerance, and batch invariance on the
// device (a prompt's scores the same bits alone and in a batch). Skips, saying
// why, where libtorch has no CUDA or no device is visible (deploy/gpu-check.sh
// runs it on a GPU machine with the CUDA libtorch of its Python torch).
#include <gtest/gtest.h>

#include "tiny_models.hpp"
#include "worker/engine/gated_lpi.hpp"

namespace lpi::engine::testing {
namespace {

#define SKIP_WITHOUT_CUDA()                                                              \
  do {                                                                                   \
    if (!torch::cuda::is_available())                                                    \
      GTEST_SKIP() << "not run: this libtorch has no CUDA or no CUDA device is visible"; \
  } while (0)

Transformer load_on(const ScratchDir& dir, torch::Device device) {
  LoadOptions o;
  o.device = device;
  return load_model(dir.path(), o);
}

TEST(CudaEngine, ForwardAndGatedLpiMatchTheCpu) {
  SKIP_WITHOUT_CUDA();
  for (const auto& spec : {tiny_olmoe(), tiny_dense()}) {
    ScratchDir dir;
    write_tiny_model(dir.path(), spec);
    auto cpu = load_on(dir, torch::kCPU);
    auto gpu = load_on(dir, torch::Device(torch::kCUDA, 0));
    const auto prompts = make_prompts({5, 9, 3, 12}, spec.vocab, 11);
    std::vector<int32_t> gold = {3, 4, 5, 6};
    for (const auto lens : {Lens::Frozen, Lens::Exact}) {
      LpiOptions o;
      o.lens = lens;
      const auto a = gated_lpi(cpu, prompts, gold, o);
      const auto b = gated_lpi(gpu, prompts, gold, o);
      EXPECT_LT(max_abs_diff(a.base_logprob, b.base_logprob), 1e-4);
      for (std::size_t l = 0; l < a.layers.size(); ++l) {
        EXPECT_LT(max_abs_diff(a.layers[l].attn, b.layers[l].attn), 1e-4) << lens_name(lens);
        EXPECT_LT(max_abs_diff(a.layers[l].ffn, b.layers[l].ffn), 1e-4) << lens_name(lens);
        if (a.layers[l].expert_ids.defined()) {
          EXPECT_TRUE(torch::equal(a.layers[l].expert_ids, b.layers[l].expert_ids));
        }
      }
    }
  }
}

TEST(CudaEngine, ScoresAreBatchInvariantOnTheDevice) {
  SKIP_WITHOUT_CUDA();
  ScratchDir dir;
  const auto spec = tiny_olmoe();
  write_tiny_model(dir.path(), spec);
  auto gpu = load_on(dir, torch::Device(torch::kCUDA, 0));
  const auto prompts = make_prompts({5, 9, 3, 12, 7}, spec.vocab, 13);
  const std::vector<int32_t> gold = {3, 4, 5, 6, 7};
  const auto all = gated_lpi(gpu, prompts, gold);
  const auto one = gated_lpi(gpu, {prompts[3]}, {gold[3]});
  for (std::size_t l = 0; l < all.layers.size(); ++l) {
    EXPECT_TRUE(torch::equal(all.layers[l].attn[3], one.layers[l].attn[0])) << "layer " << l;
    EXPECT_TRUE(torch::equal(all.layers[l].ffn[3], one.layers[l].ffn[0])) << "layer " << l;
  }
}

}  // namespace
}  // namespace lpi::engine::testing

// A second, deliberately plain implementation of the OLMoE, OLMo (HF) and
// hf_olmo forward passes, for testing the engine. It shares no code with
// worker/engine: one prompt at a time, no batching or padding, float64, with
// explicit loops over positions, heads and experts. It reads the weights
// itself (from a folder through lpi::checkpoint, or from a map of tensors)
// and returns the logits and the Gated-LPI quantities at the last position.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/checkpoint/model_config.hpp"

namespace lpi::engine::testing {

// Heads (layer -> head indices) and FFN neurons (layer -> dense neuron i, or
// expert neuron e * intermediate_size + i) switched off at every position.
struct RefAblation {
  std::map<int64_t, std::vector<int64_t>> heads;
  std::map<int64_t, std::vector<int64_t>> ffn_neurons;
};

// One layer's quantities at the last position (float64).
struct RefLayerCapture {
  torch::Tensor attn_in;       // [d]
  torch::Tensor head_out;      // [H*dh] o_proj input
  torch::Tensor attn_out;      // [d]
  torch::Tensor ffn_in;        // [d]
  torch::Tensor ffn_coef;      // dense [I]; MoE [k, I] gated coefficients of the chosen experts
  torch::Tensor ffn_out;       // [d]
  torch::Tensor router_probs;  // MoE [E]
  std::vector<int64_t> expert_ids;     // MoE, by descending router weight
  std::vector<double> expert_weights;  // MoE, the weights applied
};

struct RefOutput {
  torch::Tensor logits;     // [V] at the last position
  torch::Tensor embedding;  // [d] embedding row of the last token
  std::vector<RefLayerCapture> layers;
  torch::Tensor final_resid;  // [d]
  double final_mean = 0;      // 0 for RMSNorm
  double final_scale = 0;     // sqrt(mean(y^2) + eps) or sqrt(var(y) + eps)
};

class ReferenceModel {
 public:
  // `weights` named as in config.layout (any floating dtype).
  ReferenceModel(checkpoint::ModelConfig config,
                 const std::map<std::string, torch::Tensor>& weights);
  // Reads config.json and every tensor of the folder with lpi::checkpoint.
  static ReferenceModel from_folder(const std::filesystem::path& folder);

  const checkpoint::ModelConfig& config() const { return config_; }
  checkpoint::ModelConfig& mutable_config() { return config_; }

  RefOutput run(const std::vector<int32_t>& prompt, const RefAblation& ablation = {}) const;

 private:
  struct LayerWeights {
    torch::Tensor attn_norm, ffn_norm, q_norm, k_norm;  // undefined when absent
    torch::Tensor wq, wk, wv, wo, router;
    std::vector<torch::Tensor> gate, up, down;  // one entry (dense) or one per expert
  };
  torch::Tensor normalise(const torch::Tensor& x, const torch::Tensor& weight) const;
  torch::Tensor rope(const torch::Tensor& v, int64_t position) const;

  checkpoint::ModelConfig config_;
  torch::Tensor embed_, final_norm_, lm_head_;
  std::vector<LayerWeights> layers_;
};

}  // namespace lpi::engine::testing

// The model engine: one libtorch definition of the OLMo dense and OLMoE
// transformers (HF OlmoForCausalLM, OlmoeForCausalLM and the original hf_olmo
// layout), used for training and for inference, with the quantities that
// Gated-LPI needs captured at each sequence's last position. Builds with
// libtorch and lpi_checkpoint alone.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/checkpoint/model_config.hpp"

namespace lpi::engine {

// A checkpoint whose tensors do not fit its config, or a bad engine option;
// what() names the file or tensor, and the expected and actual shapes.
class EngineError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Prompts of different lengths, right-padded. Causal attention means that a
// real token never sees the padding after it; last[b] is the index of the
// last real token of sequence b.
struct Batch {
  torch::Tensor ids;      // [B, T] int64
  torch::Tensor lengths;  // [B] int64
  torch::Tensor last;     // [B] int64, lengths - 1
};
Batch make_batch(const std::vector<std::vector<int32_t>>& sequences, int64_t pad_id,
                 torch::Device device = torch::kCPU);

// Everything at the last real position t of each sequence, in float32.
// Per-layer vectors have one entry per layer.
struct Captures {
  std::vector<torch::Tensor> attn_in;   // [B, d] residual entering the attention block
  std::vector<torch::Tensor> head_out;  // [B, H*dh] o_proj input: attention neuron coefficients
  std::vector<torch::Tensor> attn_out;  // [B, d] attention block output (o_proj output)
  std::vector<torch::Tensor> ffn_in;    // [B, d] residual entering the FFN block
  std::vector<torch::Tensor> ffn_coef;  // dense [B, I]; MoE [B, k, I] router-gated, chosen experts
  std::vector<torch::Tensor> ffn_out;   // [B, d] FFN block output
  std::vector<torch::Tensor> router_probs;    // MoE [B, E] softmax in fp32
  std::vector<torch::Tensor> expert_ids;      // MoE [B, k] int64, by descending weight
  std::vector<torch::Tensor> expert_weights;  // MoE [B, k] the weights the model applies
  torch::Tensor final_resid;                  // [B, d] last layer output
  torch::Tensor final_mean;                   // [B] mean removed by the final norm (0 for RMSNorm)
  torch::Tensor
      final_scale;  // [B] divisor of the final norm: sqrt(mean(y^2) + eps) or sqrt(var + eps)
};

// Components switched off in an ablation forward, at every position.
struct Ablation {
  std::map<int64_t, std::vector<int64_t>>
      heads;  // layer -> heads whose o_proj input slice is zeroed
  // layer -> FFN neurons whose coefficient is zeroed: dense neuron i, or
  // expert neuron e * intermediate_size + i for MoE.
  std::map<int64_t, std::vector<int64_t>> ffn_neurons;
  bool empty() const { return heads.empty() && ffn_neurons.empty(); }
};

struct ForwardOptions {
  bool capture = false;        // fill ForwardOutput::captures
  bool all_positions = false;  // logits for every position (training) instead of the last
  const Ablation* ablation = nullptr;
};

struct ForwardOutput {
  torch::Tensor logits;  // [B, V] at the last position, or [B, T, V]; float32
  Captures captures;
  // MoE training terms (sums over layers, 0 for dense): the Switch load-balancing
  // loss and the router z-loss, over real (non-pad) tokens.
  torch::Tensor load_balancing_loss;
  torch::Tensor router_z_loss;
};

// One decoder model. Parameters are registered torch::nn parameters (so an
// optimiser can train them); experts are stored stacked per layer.
class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(const checkpoint::ModelConfig& config);

  const checkpoint::ModelConfig& config() const { return config_; }
  ForwardOutput forward(const Batch& batch, const ForwardOptions& options = {});

  // Weights by HF tensor name (the config's layout), as views of the parameters.
  std::vector<std::pair<std::string, torch::Tensor>> hf_tensors() const;
  // Copies weights from tensors named as in the config's layout; shapes are
  // checked against the config (EngineError names the tensor and both shapes).
  void load_hf_tensors(const std::function<torch::Tensor(const std::string&)>& get,
                       const std::string& source);

  // Output columns u of every neuron (the "subvalues"), for attribution:
  // o_proj weight [d, H*dh] of layer l; dense down_proj [d, I] or the stacked
  // expert down projections [E, d, I].
  torch::Tensor o_proj(int64_t layer) const;
  torch::Tensor down_proj(int64_t layer) const;
  torch::Tensor final_norm_weight() const;  // [d]; undefined for LayerNormNoAffine
  torch::Tensor lm_head() const;            // [V, d]

  void init_weights(double stddev, uint64_t seed);

 private:
  struct Layer {
    torch::Tensor attn_norm, ffn_norm;  // RMSNorm weights (undefined for non-parametric LayerNorm)
    torch::Tensor wq, wk, wv, wo;       // [H*dh, d], [KV*dh, d], [KV*dh, d], [d, H*dh]
    torch::Tensor q_norm, k_norm;       // OLMoE QK-norm weights
    torch::Tensor w_gate, w_up,
        w_down;            // dense [I, d], [I, d], [d, I]; MoE [E, I, d], [E, I, d], [E, d, I]
    torch::Tensor router;  // MoE [E, d]
  };
  torch::Tensor norm(const torch::Tensor& x, const torch::Tensor& weight) const;
  torch::Tensor attention(const Layer& layer, int64_t index, const torch::Tensor& x,
                          const torch::Tensor& cos, const torch::Tensor& sin,
                          const ForwardOptions& options, torch::Tensor* head_out) const;
  torch::Tensor dense_ffn(const Layer& layer, int64_t index, const torch::Tensor& z,
                          const ForwardOptions& options, torch::Tensor* coef) const;
  torch::Tensor moe_ffn(const Layer& layer, int64_t index, const torch::Tensor& z,
                        const ForwardOptions& options, const torch::Tensor& real_tokens,
                        ForwardOutput& out, bool capture, const torch::Tensor& last_flat) const;

  checkpoint::ModelConfig config_;
  torch::Tensor embed_, final_norm_, lm_head_;
  std::vector<Layer> layers_;
};
TORCH_MODULE(Transformer);

struct LoadOptions {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;  // weights and computation
};

// Loads a HuggingFace-format folder (config.json + safetensors).
Transformer load_model(const std::filesystem::path& folder, const LoadOptions& options = {});

// Writes config.json and model.safetensors for the model (Olmoe and OlmoHF
// layouts), weights in `dtype`.
void save_model(Transformer& model, const std::filesystem::path& folder,
                torch::ScalarType dtype = torch::kFloat32);

}  // namespace lpi::engine

// The model engine: one libtorch decoder (Transformer) for every registered
// architecture (models/registry.hpp: OLMoE, OLMo, hf_olmo), used for training
// and for inference. The architecture owns the parameters' shapes, their HF
// tensor names and the forward pass, which it assembles from the shared
// blocks (blocks.hpp); what attribution needs from the forward pass is asked
// for by name (ForwardOptions::capture) and read back from Captures. Builds
// with libtorch and lpi_checkpoint alone.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/checkpoint/model_config.hpp"

namespace lpi::engine {

class Architecture;

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

// Named intermediates of a forward pass at the last real position t of each
// sequence, float32 (expert_ids int64). Per layer:
//   attn_in   [B, d]      residual entering the attention block
//   head_out  [B, H*dh]   o_proj input: attention neuron coefficients
//   attn_out  [B, d]      attention block output (o_proj output)
//   ffn_in    [B, d]      residual entering the FFN block
//   ffn_coef  dense [B, I]; MoE [B, k, I] router-gated, of the chosen experts
//   ffn_out   [B, d]      FFN block output
//   router_probs [B, E], expert_ids [B, k] (by descending weight),
//   expert_weights [B, k] (the weights the model applies): MoE only
// Once per forward pass:
//   final_resid [B, d] last layer output; final_mean [B] mean removed by the
//   final norm (0 for RMSNorm); final_scale [B] its divisor,
//   sqrt(mean(y^2) + eps) or sqrt(var + eps).
class Captures {
 public:
  static const std::vector<std::string>& layer_names();
  static const std::vector<std::string>& final_names();
  static std::vector<std::string> names();  // all of them
  static bool known(const std::string& name);

  bool has(const std::string& name) const;
  // Layers recorded under a per-layer name (0 when absent, e.g. MoE names of a dense model).
  int64_t layers(const std::string& name) const;
  // EngineError when the name was not recorded.
  const torch::Tensor& get(const std::string& name, int64_t layer) const;
  const torch::Tensor& get(const std::string& name) const;

  void set(const std::string& name, int64_t layer, torch::Tensor value);
  void set(const std::string& name, torch::Tensor value);
  // Concatenates another batch's captures along the batch dimension.
  void append(const Captures& more);

 private:
  std::map<std::string, std::vector<torch::Tensor>> per_layer_;
  std::map<std::string, torch::Tensor> final_;
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
  // Names of Captures to record (Captures::names() for all); an unknown name
  // is an EngineError, a name the architecture has no such thing for (MoE
  // names of a dense model) is left out.
  std::vector<std::string> capture;
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

// The weights of one layer; which are defined depends on the architecture.
struct LayerWeights {
  torch::Tensor attn_norm, ffn_norm;  // RMSNorm weights (undefined for non-parametric LayerNorm)
  torch::Tensor wq, wk, wv, wo;       // [H*dh, d], [KV*dh, d], [KV*dh, d], [d, H*dh]
  torch::Tensor q_norm, k_norm;       // QK-norm weights [H*dh], [KV*dh]
  torch::Tensor w_gate, w_up,
      w_down;            // dense [I, d], [I, d], [d, I]; MoE [E, I, d], [E, I, d], [E, d, I]
  torch::Tensor router;  // MoE [E, d]
};
struct Weights {
  torch::Tensor embed;       // [V, d]
  torch::Tensor final_norm;  // [d]; undefined for non-parametric LayerNorm
  torch::Tensor lm_head;     // [V, d]; undefined when tied to the embedding
  std::vector<LayerWeights> layers;
  const torch::Tensor& head() const { return lm_head.defined() ? lm_head : embed; }
};

// One decoder model. Parameters are registered torch::nn parameters (so an
// optimiser can train them); experts are stored stacked per layer.
class TransformerImpl : public torch::nn::Module {
 public:
  // EngineError when the config does not fit its layout's architecture.
  // Parameters in `dtype` from the start (zeros, norms ones), so that a bf16
  // load never holds a float32 copy of the model.
  explicit TransformerImpl(const checkpoint::ModelConfig& config,
                           torch::ScalarType dtype = torch::kFloat32);

  const checkpoint::ModelConfig& config() const { return config_; }
  const Architecture& architecture() const { return *arch_; }
  ForwardOutput forward(const Batch& batch, const ForwardOptions& options = {});

  // Weights by HF tensor name (the config's layout): views of the parameters,
  // or their concatenation for a fused tensor.
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
  checkpoint::ModelConfig config_;
  const Architecture* arch_;
  Weights weights_;
};
TORCH_MODULE(Transformer);

struct LoadOptions {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;  // weights and computation
};

// Loads a HuggingFace-format folder (config.json + safetensors).
Transformer load_model(const std::filesystem::path& folder, const LoadOptions& options = {});

// Writes config.json and model.safetensors for the model (Olmoe and OlmoHF
// layouts), weights in `dtype`; with shard_bytes > 0, shards of at most that
// size (a tensor larger than that in a shard of its own) and their
// model.safetensors.index.json, as on the hub.
void save_model(Transformer& model, const std::filesystem::path& folder,
                torch::ScalarType dtype = torch::kFloat32, int64_t shard_bytes = 0);

}  // namespace lpi::engine

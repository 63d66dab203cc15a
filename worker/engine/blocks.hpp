// The shared building blocks of the decoder forward pass, from which each
// architecture (models/*.cpp) assembles its own: the batch context and the
// capture recorder, norms, RoPE, attention, the dense SwiGLU FFN, the MoE FFN
// and the output head. Tensors are [B, T, .] on the model's device.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "worker/engine/model.hpp"

namespace lpi::engine::blocks {

// Records the requested Captures at each sequence's last position.
class Recorder {
 public:
  Recorder(const std::vector<std::string>& names, torch::Tensor last_flat, int64_t B, int64_t T,
           Captures* out);
  bool wants(const char* name) const;
  // x [B, T, n] at the last positions, as float32, when `name` is requested.
  void last(const char* name, int64_t layer, const torch::Tensor& x);
  void last(const char* name, const torch::Tensor& x);
  void put(const char* name, int64_t layer, torch::Tensor value);
  void put(const char* name, torch::Tensor value);
  torch::Tensor at_last(const torch::Tensor& x) const;  // [B, n] float32

 private:
  std::vector<std::string> names_;
  torch::Tensor last_flat_;
  int64_t B_, T_;
  Captures* out_;
};

// What every block of one forward pass shares.
struct Context {
  Context(const Batch& batch, const ForwardOptions& options, bool training, torch::Device device,
          ForwardOutput* out);
  int64_t B, T;
  torch::Tensor ids;          // [B, T] on the device
  torch::Tensor last_flat;    // [B]: b * T + last[b]
  torch::Tensor positions;    // [T] float32
  torch::Tensor real_tokens;  // [B, T] bool: not padding
  const ForwardOptions& options;
  bool router_losses;  // MoE training terms wanted (training or all positions)
  ForwardOutput& out;
  Recorder rec;

  // The ablated heads or FFN neurons of a layer, or nullptr.
  const std::vector<int64_t>* ablated_heads(int64_t layer) const;
  const std::vector<int64_t>* ablated_ffn(int64_t layer) const;
};

// Normalisation over the last dimension, computed in float32.
struct Norm {
  checkpoint::NormKind kind;
  double eps;
  // RMSNorm: weight * x / sqrt(mean(x^2) + eps); LayerNorm without affine ignores `weight`.
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& weight = {}) const;
};

torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight);  // x W^T

torch::Tensor embed(const Context& ctx, const torch::Tensor& table);  // [B, T, d]

// RoPE tables [T, hd] (rotate_half convention) in `dtype`.
struct Rope {
  torch::Tensor cos, sin;
};
Rope rope(const Context& ctx, int64_t head_dim, double theta, torch::ScalarType dtype);

struct Qkv {
  torch::Tensor q, k, v;  // [B, T, H*dh], [B, T, KV*dh], [B, T, KV*dh]
};
Qkv qkv_projection(const torch::Tensor& x, const LayerWeights& w);
void clip_qkv(Qkv& qkv, double clip);  // clamp to [-clip, clip]

// Causal softmax attention with RoPE and grouped KV heads; returns the o_proj
// input [B, T, H*dh] (with ablated heads zeroed), recorded as "head_out".
torch::Tensor attention_heads(Context& ctx, int64_t layer, const Qkv& qkv, const Rope& rope,
                              int64_t heads, int64_t kv_heads, int64_t head_dim);

// The residual halves of decoder layer `layer` around their blocks.
// Attention: x + o_proj(attention(qkv)), q, k, v clipped first when the
// config says so; records attn_out and ffn_in (the caller records attn_in
// when it projects x into qkv).
torch::Tensor add_attention(Context& ctx, int64_t layer, const torch::Tensor& x, Qkv qkv,
                            const Rope& rope, const checkpoint::ModelConfig& config,
                            const LayerWeights& w);
// FFN: x + f; records ffn_out.
torch::Tensor add_ffn(Context& ctx, int64_t layer, const torch::Tensor& x, const torch::Tensor& f);

// down(silu(gate z) * up z); the coefficients are recorded as "ffn_coef".
torch::Tensor dense_ffn(Context& ctx, int64_t layer, const torch::Tensor& z, const LayerWeights& w,
                        int64_t intermediate);

struct MoeShape {
  int64_t experts, top_k, intermediate;
  bool norm_topk_prob;  // renormalise the top-k router weights
};
// Softmax router in fp32, top-k experts, each a SwiGLU scaled by its router
// weight; adds the router losses to ctx.out when ctx.router_losses; records
// ffn_coef, router_probs, expert_ids, expert_weights.
torch::Tensor moe_ffn(Context& ctx, int64_t layer, const torch::Tensor& z, const LayerWeights& w,
                      const MoeShape& shape);

// The final norm and the LM head: ctx.out.logits (last positions, or all),
// and final_resid, final_mean, final_scale.
void output(Context& ctx, const torch::Tensor& x, const Norm& norm, const torch::Tensor& final_norm,
            const torch::Tensor& lm_head);

}  // namespace lpi::engine::blocks

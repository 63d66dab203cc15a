// OLMoE (HF OlmoeForCausalLM): RMSNorm with weight before attention, before
// the FFN and at the end; RMSNorm q_norm and k_norm over the whole q and k
// projections before the head split and RoPE; optional clip_qkv; a softmax
// router over the experts (top-k, renormalised when norm_topk_prob), each
// expert a SwiGLU. Tensors model.layers.{i}.mlp.experts.{e}.{gate,up,down}_proj.
#include "worker/engine/models/registry.hpp"

namespace lpi::engine::models {
namespace ck = lpi::checkpoint;

namespace {

class Olmoe : public Architecture {
 public:
  const char* name() const override { return "olmoe"; }
  ck::Layout layout() const override { return ck::Layout::Olmoe; }

  Weights declare(const ck::ModelConfig& c, const DeclareParameter& param) const override {
    if (!c.is_moe() || c.norm != ck::NormKind::RMSNorm || !c.qk_norm) {
      throw EngineError(
          "olmoe: the config must have experts, RMSNorm weights and q/k norms (OlmoeForCausalLM)");
    }
    const int64_t d = c.hidden_size, hd = c.head_dim, H = c.num_heads, KV = c.num_kv_heads;
    const int64_t I = c.intermediate_size, E = c.num_experts;
    Weights w;
    w.embed = param("embed", torch::zeros({c.vocab_size, d}));
    w.final_norm = param("final_norm", torch::ones({d}));
    if (!c.tie_word_embeddings) w.lm_head = param("lm_head", torch::zeros({c.vocab_size, d}));
    for (int64_t i = 0; i < c.num_layers; ++i) {
      // torch::nn refuses dots in parameter names (they separate submodules).
      const std::string p = "layers_" + std::to_string(i) + "_";
      LayerWeights L;
      L.attn_norm = param(p + "attn_norm", torch::ones({d}));
      L.ffn_norm = param(p + "ffn_norm", torch::ones({d}));
      L.wq = param(p + "wq", torch::zeros({H * hd, d}));
      L.wk = param(p + "wk", torch::zeros({KV * hd, d}));
      L.wv = param(p + "wv", torch::zeros({KV * hd, d}));
      L.wo = param(p + "wo", torch::zeros({d, H * hd}));
      L.q_norm = param(p + "q_norm", torch::ones({H * hd}));
      L.k_norm = param(p + "k_norm", torch::ones({KV * hd}));
      L.router = param(p + "router", torch::zeros({E, d}));
      L.w_gate = param(p + "w_gate", torch::zeros({E, I, d}));
      L.w_up = param(p + "w_up", torch::zeros({E, I, d}));
      L.w_down = param(p + "w_down", torch::zeros({E, d, I}));
      w.layers.push_back(L);
    }
    return w;
  }

  std::vector<TensorBinding> tensors(const ck::ModelConfig& c, const Weights& w) const override {
    return hf_bindings(c, w, [&c](auto& out, const std::string& p, const LayerWeights& L) {
      add_binding(out, p + "input_layernorm.weight", L.attn_norm);
      bind_hf_attention(out, p, L);
      add_binding(out, p + "self_attn.q_norm.weight", L.q_norm);
      add_binding(out, p + "self_attn.k_norm.weight", L.k_norm);
      add_binding(out, p + "post_attention_layernorm.weight", L.ffn_norm);
      add_binding(out, p + "mlp.gate.weight", L.router);
      for (int64_t e = 0; e < c.num_experts; ++e) {
        const std::string q = p + "mlp.experts." + std::to_string(e) + ".";
        add_binding(out, q + "gate_proj.weight", L.w_gate[e]);
        add_binding(out, q + "up_proj.weight", L.w_up[e]);
        add_binding(out, q + "down_proj.weight", L.w_down[e]);
      }
    });
  }

  void forward(const ck::ModelConfig& c, const Weights& w, blocks::Context& ctx) const override {
    const blocks::Norm norm{ck::NormKind::RMSNorm, c.norm_eps};
    const blocks::MoeShape moe{c.num_experts, c.num_experts_per_tok, c.intermediate_size,
                               c.norm_topk_prob};
    const auto rope = blocks::rope(ctx, c.head_dim, c.rope_theta, w.embed.scalar_type());
    auto x = blocks::embed(ctx, w.embed);
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const LayerWeights& L = w.layers[l];
      ctx.rec.last("attn_in", l, x);
      auto qkv = blocks::qkv_projection(norm(x, L.attn_norm), L);
      qkv.q = norm(qkv.q, L.q_norm);  // QK-norm over the whole projections, before the head split
      qkv.k = norm(qkv.k, L.k_norm);
      x = blocks::add_attention(ctx, l, x, qkv, rope, c, L);
      x = blocks::add_ffn(ctx, l, x, blocks::moe_ffn(ctx, l, norm(x, L.ffn_norm), L, moe));
    }
    blocks::output(ctx, x, norm, w.final_norm, w.head());
  }
};

}  // namespace

const Architecture& olmoe() {
  static const Olmoe arch;
  return arch;
}

}  // namespace lpi::engine::models

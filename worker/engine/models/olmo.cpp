// OLMo dense (HF OlmoForCausalLM, e.g. OLMo-7B-0424-hf): non-parametric
// LayerNorm in fp32 before attention, before the FFN and at the end; no QK
// norm; optional clip_qkv (8.0 on 0424); a SwiGLU MLP. Tensors
// model.layers.{i}.self_attn.{q,k,v,o}_proj and mlp.{gate,up,down}_proj.
#include "worker/engine/models/registry.hpp"

namespace lpi::engine::models {
namespace ck = lpi::checkpoint;

namespace {

class Olmo : public Architecture {
 public:
  const char* name() const override { return "olmo"; }
  ck::Layout layout() const override { return ck::Layout::OlmoHF; }

  Weights declare(const ck::ModelConfig& c, const DeclareParameter& param) const override {
    if (c.is_moe() || c.norm != ck::NormKind::LayerNormNoAffine || c.qk_norm) {
      throw EngineError(
          "olmo: the config must be dense, with a non-parametric LayerNorm and no q/k norms");
    }
    const int64_t d = c.hidden_size, hd = c.head_dim, H = c.num_heads, KV = c.num_kv_heads;
    const int64_t I = c.intermediate_size;
    Weights w;
    w.embed = param("embed", torch::zeros({c.vocab_size, d}));
    if (!c.tie_word_embeddings) w.lm_head = param("lm_head", torch::zeros({c.vocab_size, d}));
    for (int64_t i = 0; i < c.num_layers; ++i) {
      // torch::nn refuses dots in parameter names (they separate submodules).
      const std::string p = "layers_" + std::to_string(i) + "_";
      LayerWeights L;
      L.wq = param(p + "wq", torch::zeros({H * hd, d}));
      L.wk = param(p + "wk", torch::zeros({KV * hd, d}));
      L.wv = param(p + "wv", torch::zeros({KV * hd, d}));
      L.wo = param(p + "wo", torch::zeros({d, H * hd}));
      L.w_gate = param(p + "w_gate", torch::zeros({I, d}));
      L.w_up = param(p + "w_up", torch::zeros({I, d}));
      L.w_down = param(p + "w_down", torch::zeros({d, I}));
      w.layers.push_back(L);
    }
    return w;
  }

  std::vector<TensorBinding> tensors(const ck::ModelConfig& c, const Weights& w) const override {
    return hf_bindings(c, w, [](auto& out, const std::string& p, const LayerWeights& L) {
      bind_hf_attention(out, p, L);
      add_binding(out, p + "mlp.gate_proj.weight", L.w_gate);
      add_binding(out, p + "mlp.up_proj.weight", L.w_up);
      add_binding(out, p + "mlp.down_proj.weight", L.w_down);
    });
  }

  void forward(const ck::ModelConfig& c, const Weights& w, blocks::Context& ctx) const override {
    const blocks::Norm norm{ck::NormKind::LayerNormNoAffine, c.norm_eps};
    const auto rope = blocks::rope(ctx, c.head_dim, c.rope_theta, w.embed.scalar_type());
    auto x = blocks::embed(ctx, w.embed);
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const LayerWeights& L = w.layers[l];
      ctx.rec.last("attn_in", l, x);
      x = blocks::add_attention(ctx, l, x, blocks::qkv_projection(norm(x), L), rope, c, L);
      x = blocks::add_ffn(ctx, l, x, blocks::dense_ffn(ctx, l, norm(x), L, c.intermediate_size));
    }
    blocks::output(ctx, x, norm, {}, w.head());
  }
};

}  // namespace

const Architecture& olmo() {
  static const Olmo arch;
  return arch;
}

}  // namespace lpi::engine::models

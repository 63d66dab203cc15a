#include "worker/engine/models/registry.hpp"

namespace lpi::engine {

void add_binding(std::vector<TensorBinding>& out, std::string name, torch::Tensor t) {
  out.push_back({std::move(name), {std::move(t)}});
}

void bind_hf_attention(std::vector<TensorBinding>& out, const std::string& p,
                       const LayerWeights& L) {
  add_binding(out, p + "self_attn.q_proj.weight", L.wq);
  add_binding(out, p + "self_attn.k_proj.weight", L.wk);
  add_binding(out, p + "self_attn.v_proj.weight", L.wv);
  add_binding(out, p + "self_attn.o_proj.weight", L.wo);
}

std::vector<TensorBinding> hf_bindings(const checkpoint::ModelConfig& c, const Weights& w,
                                       const LayerBindings& layer) {
  std::vector<TensorBinding> out;
  add_binding(out, "model.embed_tokens.weight", w.embed);
  for (int64_t i = 0; i < c.num_layers; ++i)
    layer(out, "model.layers." + std::to_string(i) + ".", w.layers[i]);
  if (w.final_norm.defined()) add_binding(out, "model.norm.weight", w.final_norm);
  if (!c.tie_word_embeddings) add_binding(out, "lm_head.weight", w.lm_head);
  return out;
}

const std::vector<const Architecture*>& architectures() {
  // One line per architecture.
  static const std::vector<const Architecture*> all = {
      &models::olmoe(),
      &models::olmo(),
      &models::hf_olmo(),
  };
  return all;
}

const Architecture& architecture_of(checkpoint::Layout layout) {
  for (const Architecture* a : architectures()) {
    if (a->layout() == layout) return *a;
  }
  throw EngineError(std::string("no engine architecture for the ") +
                    checkpoint::layout_name(layout) + " layout");
}

}  // namespace lpi::engine

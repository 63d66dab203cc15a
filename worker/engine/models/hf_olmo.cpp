// The original allenai/OLMo-7B (hf_olmo, OLMoForCausalLM), whose revisions
// hold the intermediate checkpoints: OLMo's dense graph (models/olmo.cpp)
// under fused tensors, read directly: model.transformer.blocks.{i}.att_proj
// (rows q, k, v), attn_out, ff_proj (rows up, then gate), ff_out, and
// model.transformer.wte, with model.transformer.ff_out as the LM head unless
// the embedding is tied.
#include "worker/engine/models/registry.hpp"

namespace lpi::engine::models {
namespace ck = lpi::checkpoint;

namespace {

// Only the tensor names differ from OLMo's: the parameters, their order and
// the graph are olmo()'s.
class HfOlmo : public Architecture {
 public:
  std::vector<TensorBinding> tensors(const ck::ModelConfig& c, const Weights& w) const override {
    std::vector<TensorBinding> out;
    out.push_back({"model.transformer.wte.weight", {w.embed}});
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const LayerWeights& L = w.layers[i];
      const std::string p = "model.transformer.blocks." + std::to_string(i) + ".";
      out.push_back({p + "att_proj.weight", {L.wq, L.wk, L.wv}});
      out.push_back({p + "attn_out.weight", {L.wo}});
      out.push_back({p + "ff_proj.weight", {L.w_up, L.w_gate}});
      out.push_back({p + "ff_out.weight", {L.w_down}});
    }
    if (!c.tie_word_embeddings) out.push_back({"model.transformer.ff_out.weight", {w.lm_head}});
    return out;
  }

  Weights declare(const ck::ModelConfig& c, const DeclareParameter& param) const override {
    return olmo().declare(c, param);
  }
  void forward(const ck::ModelConfig& c, const Weights& w, blocks::Context& ctx) const override {
    olmo().forward(c, w, ctx);
  }
  const char* name() const override { return "hf_olmo"; }
  ck::Layout layout() const override { return ck::Layout::OlmoFused; }
};

}  // namespace

const Architecture& hf_olmo() {
  static const HfOlmo arch;
  return arch;
}

}  // namespace lpi::engine::models

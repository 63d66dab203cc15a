// An architecture: what one checkpoint layout (checkpoint::Layout) means to
// the engine. It owns the parameters' names and shapes, the HF tensor names
// they are read from and written to, and the forward pass, assembled from the
// shared blocks (blocks.hpp). One file per architecture in models/, listed
// once in registry.cpp. config.json's keys are read torch-free by
// common/checkpoint (model_config.hpp), which the coordinator shares.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "worker/engine/blocks.hpp"

namespace lpi::engine {

// Registers one parameter under a torch::nn name and returns it.
using DeclareParameter = std::function<torch::Tensor(const std::string& name, torch::Tensor init)>;

// One HF tensor and the parameters it fills: their concatenation along rows
// (a single part for most; hf_olmo fuses q, k, v and up, gate).
struct TensorBinding {
  std::string name;
  std::vector<torch::Tensor> parts;
};

class Architecture {
 public:
  virtual ~Architecture() = default;
  virtual const char* name() const = 0;  // "olmoe", "olmo", "hf_olmo"
  virtual checkpoint::Layout layout() const = 0;
  // Registers the parameters of a model of this config (EngineError when the
  // config does not fit the architecture) in a fixed order: init_weights and
  // the optimiser walk them in that order.
  virtual Weights declare(const checkpoint::ModelConfig& config,
                          const DeclareParameter& declare) const = 0;
  // Every HF tensor of the layout, in a stable order.
  virtual std::vector<TensorBinding> tensors(const checkpoint::ModelConfig& config,
                                             const Weights& weights) const = 0;
  // The forward pass: sets ctx.out.logits (and the captures ctx.rec asks for).
  virtual void forward(const checkpoint::ModelConfig& config, const Weights& weights,
                       blocks::Context& ctx) const = 0;
};

// Bindings the HF layouts share: one tensor, and a layer's
// self_attn.{q,k,v,o}_proj under `prefix` ("model.layers.{i}.").
void add_binding(std::vector<TensorBinding>& out, std::string name, torch::Tensor t);
void bind_hf_attention(std::vector<TensorBinding>& out, const std::string& prefix,
                       const LayerWeights& layer);
// An HF layout's bindings: model.embed_tokens, then `layer(out, prefix, L)`
// for each layer with prefix "model.layers.{i}.", then model.norm (when the
// model has a final-norm weight) and lm_head (unless tied).
using LayerBindings =
    std::function<void(std::vector<TensorBinding>&, const std::string&, const LayerWeights&)>;
std::vector<TensorBinding> hf_bindings(const checkpoint::ModelConfig& config, const Weights& w,
                                       const LayerBindings& layer);

// Every registered architecture, in registry order.
const std::vector<const Architecture*>& architectures();
// The architecture of a layout; EngineError when none is registered.
const Architecture& architecture_of(checkpoint::Layout layout);

namespace models {
// Defined in models/<name>.cpp.
const Architecture& olmoe();
const Architecture& olmo();
const Architecture& hf_olmo();
}  // namespace models

}  // namespace lpi::engine

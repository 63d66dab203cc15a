#include "worker/engine/model.hpp"

#include <algorithm>

#include "worker/engine/blocks.hpp"
#include "worker/engine/models/registry.hpp"

namespace lpi::engine {
namespace ck = lpi::checkpoint;

Batch make_batch(const std::vector<std::vector<int32_t>>& sequences, int64_t pad_id,
                 torch::Device device) {
  if (sequences.empty()) throw EngineError("make_batch: no sequences");
  int64_t longest = 0;
  for (const auto& s : sequences) {
    if (s.empty()) throw EngineError("make_batch: an empty sequence has no last position");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(s.size()));
  }
  const auto batch = static_cast<int64_t>(sequences.size());
  auto ids = torch::full({batch, longest}, pad_id, torch::kInt64);
  auto lengths = torch::empty({batch}, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    const auto& s = sequences[b];
    for (std::size_t t = 0; t < s.size(); ++t) ids_a[b][t] = s[t];
    lengths[b] = static_cast<int64_t>(s.size());
  }
  Batch out{ids.to(device), lengths.to(device), (lengths - 1).to(device)};
  return out;
}

// Captures

const std::vector<std::string>& Captures::layer_names() {
  static const std::vector<std::string> names = {"attn_in",      "head_out",   "attn_out",
                                                 "ffn_in",       "ffn_coef",   "ffn_out",
                                                 "router_probs", "expert_ids", "expert_weights"};
  return names;
}

const std::vector<std::string>& Captures::final_names() {
  static const std::vector<std::string> names = {"final_resid", "final_mean", "final_scale"};
  return names;
}

std::vector<std::string> Captures::names() {
  auto all = layer_names();
  all.insert(all.end(), final_names().begin(), final_names().end());
  return all;
}

bool Captures::known(const std::string& name) {
  const auto all = names();
  return std::find(all.begin(), all.end(), name) != all.end();
}

bool Captures::has(const std::string& name) const {
  return per_layer_.count(name) > 0 || final_.count(name) > 0;
}

int64_t Captures::layers(const std::string& name) const {
  const auto it = per_layer_.find(name);
  return it == per_layer_.end() ? 0 : static_cast<int64_t>(it->second.size());
}

const torch::Tensor& Captures::get(const std::string& name, int64_t layer) const {
  const auto it = per_layer_.find(name);
  if (it == per_layer_.end() || layer < 0 || layer >= static_cast<int64_t>(it->second.size())) {
    throw EngineError("captures: no '" + name + "' recorded for layer " + std::to_string(layer) +
                      " (ask for it in ForwardOptions::capture)");
  }
  return it->second[layer];
}

const torch::Tensor& Captures::get(const std::string& name) const {
  const auto it = final_.find(name);
  if (it == final_.end()) {
    throw EngineError("captures: no '" + name +
                      "' recorded (ask for it in ForwardOptions::capture)");
  }
  return it->second;
}

void Captures::set(const std::string& name, int64_t layer, torch::Tensor value) {
  auto& layers = per_layer_[name];
  if (static_cast<int64_t>(layers.size()) <= layer) layers.resize(layer + 1);
  layers[layer] = std::move(value);
}

void Captures::set(const std::string& name, torch::Tensor value) {
  final_[name] = std::move(value);
}

void Captures::append(const Captures& more) {
  for (const auto& [name, part] : more.per_layer_) {
    auto& all = per_layer_[name];
    if (all.empty()) {
      all = part;
      continue;
    }
    for (std::size_t l = 0; l < part.size(); ++l) all[l] = torch::cat({all[l], part[l]}, 0);
  }
  for (const auto& [name, part] : more.final_) {
    auto& all = final_[name];
    all = all.defined() ? torch::cat({all, part}, 0) : part;
  }
}

// TransformerImpl

TransformerImpl::TransformerImpl(const ck::ModelConfig& config, torch::ScalarType dtype)
    : config_(config), arch_(&architecture_of(config.layout)) {
  weights_ = arch_->declare(config_, [this, dtype](const std::string& name, torch::Tensor init) {
    // One tensor at a time in float32, then in `dtype`.
    return register_parameter(name, dtype == init.scalar_type() ? std::move(init) : init.to(dtype));
  });
}

void TransformerImpl::init_weights(double stddev, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& item : named_parameters()) {
    auto& t = item.value();
    const bool is_norm = item.key().find("norm") != std::string::npos;
    if (is_norm) {
      t.fill_(1.0);
    } else {
      auto values =
          at::normal(0.0, stddev, t.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
      t.copy_(values);
    }
  }
}

ForwardOutput TransformerImpl::forward(const Batch& batch, const ForwardOptions& options) {
  const auto device = weights_.embed.device();
  ForwardOutput out;
  blocks::Context ctx(batch, options, is_training(), device, &out);
  arch_->forward(config_, weights_, ctx);
  if (!out.load_balancing_loss.defined()) {
    out.load_balancing_loss = torch::zeros({}, torch::TensorOptions().device(device));
    out.router_z_loss = torch::zeros({}, torch::TensorOptions().device(device));
  }
  return out;
}

torch::Tensor TransformerImpl::o_proj(int64_t layer) const {
  return weights_.layers.at(layer).wo;
}
torch::Tensor TransformerImpl::down_proj(int64_t layer) const {
  return weights_.layers.at(layer).w_down;
}
torch::Tensor TransformerImpl::final_norm_weight() const {
  return weights_.final_norm;
}
torch::Tensor TransformerImpl::lm_head() const {
  return weights_.head();
}

}  // namespace lpi::engine

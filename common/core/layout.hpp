// The neuron layout of a model (docs/METHOD.md, section 1): its shape, the size of
// each neuron family, and the flat index of every neuron. One place for the
// arithmetic that the store, the daemon, lpi-analyze, lpi-query and the dry
// run all need.
//
// Flat indices, layer-major:
//  - attention neuron (layer l, head j, dim k): l * H*dh + j * dh + k;
//  - FFN neuron (layer l, neuron i) of a dense model: l * I + i;
//  - expert neuron (layer l, expert e, neuron i): l * E*I + e * I + i.
// Per prompt a MoE layer keeps only its k chosen experts ([k, I] values and
// [k] expert ids); the "full" layout is the [E, I] one above.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace lpi::core {

struct LayoutError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The model's shape, from config.json; every checkpoint of a sweep must have it.
struct ModelShape {
  std::string architecture;
  int64_t num_layers = 0, hidden_size = 0, num_heads = 0, head_dim = 0;
  int64_t intermediate_size = 0, num_experts = 0, experts_per_token = 0, vocab_size = 0;

  bool is_moe() const { return num_experts > 0; }
  // Attention neurons per layer: H * dh.
  int64_t attn_width() const { return num_heads * head_dim; }
  // Expert slots per layer in the full layout (1 for a dense model).
  int64_t expert_slots() const { return is_moe() ? num_experts : 1; }
  // Experts a prompt uses per layer (1 for a dense model).
  int64_t active_experts() const { return is_moe() ? experts_per_token : 1; }
  // FFN/expert neurons per layer in the full layout: E * I, or I.
  int64_t ffn_width() const { return expert_slots() * intermediate_size; }
  // FFN/expert values one prompt keeps per layer: k * I, or I.
  int64_t ffn_active_width() const { return active_experts() * intermediate_size; }
  int64_t attn_neurons() const { return num_layers * attn_width(); }
  int64_t ffn_neurons() const { return num_layers * ffn_width(); }
  int64_t heads() const { return num_layers * num_heads; }

  bool operator==(const ModelShape& o) const;
  std::string describe() const;
};

enum class Family { attn, ffn };
const char* family_name(Family f);  // "attn", "ffn"

// Neurons of a family: all layers, and per layer.
int64_t neuron_count(const ModelShape& s, Family f);
int64_t layer_width(const ModelShape& s, Family f);

// One neuron's coordinates. For attention: head and dim; for FFN: expert
// (0 for a dense model) and neuron.
struct NeuronCoords {
  int64_t layer = 0;
  int64_t head = 0, dim = 0;       // attention
  int64_t expert = 0, neuron = 0;  // FFN / expert
};
NeuronCoords coords_of(const ModelShape& s, Family f, int64_t flat);
int64_t attn_index(const ModelShape& s, int64_t layer, int64_t head, int64_t dim);
int64_t ffn_index(const ModelShape& s, int64_t layer, int64_t expert, int64_t neuron);
// Within one layer (the engine's per-layer ablation lists): e * I + i, or i.
int64_t ffn_index_in_layer(const ModelShape& s, int64_t flat);

// dst[i] += weight * v[i] (or weight * |v[i]| when `absolute`), in double, for i < n.
template <typename T>
void add_scaled(const T* v, int64_t n, double weight, bool absolute, double* dst) {
  if (absolute) {
    for (int64_t i = 0; i < n; ++i) dst[i] += weight * std::fabs(static_cast<double>(v[i]));
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] += weight * static_cast<double>(v[i]);
  }
}

// Adds `weight` times one prompt's FFN values into the full layout `full`
// ([L, E*I] or [L, I], double): for a dense model `values` is [L, I]; for a
// MoE it is [L, k, I] with `expert_ids` [L, k] naming each slot's expert
// (the expert scatter). An expert id outside 0..E-1 throws LayoutError
// naming `what`, the layer and the id.
void add_ffn_values(const ModelShape& s, const float* values, const int32_t* expert_ids,
                    double weight, double* full, const std::string& what);
// The same, adding |values| when `absolute`, and (MoE, when `routed` is not
// null) `weight` into routed[l * E + e] for each chosen expert e of layer l.
struct FfnAdd {
  bool absolute = false;
  double* routed = nullptr;
};
void add_ffn_values(const ModelShape& s, const float* values, const int32_t* expert_ids,
                    double weight, double* full, const std::string& what, const FfnAdd& how);

}  // namespace lpi::core

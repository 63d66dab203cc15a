#include "common/core/layout.hpp"

#include <cmath>
#include <sstream>

namespace lpi::core {

bool ModelShape::operator==(const ModelShape& o) const {
  return architecture == o.architecture && num_layers == o.num_layers &&
         hidden_size == o.hidden_size && num_heads == o.num_heads && head_dim == o.head_dim &&
         intermediate_size == o.intermediate_size && num_experts == o.num_experts &&
         experts_per_token == o.experts_per_token && vocab_size == o.vocab_size;
}

std::string ModelShape::describe() const {
  std::ostringstream s;
  s << architecture << " (layers " << num_layers << ", d " << hidden_size << ", heads " << num_heads
    << "x" << head_dim << ", FFN " << intermediate_size;
  if (is_moe()) s << ", experts " << num_experts << " top-" << experts_per_token;
  s << ", vocab " << vocab_size << ")";
  return s.str();
}

const char* family_name(Family f) {
  return f == Family::attn ? "attn" : "ffn";
}

int64_t layer_width(const ModelShape& s, Family f) {
  return f == Family::attn ? s.attn_width() : s.ffn_width();
}

int64_t neuron_count(const ModelShape& s, Family f) {
  return s.num_layers * layer_width(s, f);
}

NeuronCoords coords_of(const ModelShape& s, Family f, int64_t flat) {
  NeuronCoords c;
  const int64_t w = layer_width(s, f), within = flat % w;
  c.layer = flat / w;
  if (f == Family::attn) {
    c.head = within / s.head_dim;
    c.dim = within % s.head_dim;
  } else {
    c.expert = within / s.intermediate_size;
    c.neuron = within % s.intermediate_size;
  }
  return c;
}

int64_t attn_index(const ModelShape& s, int64_t layer, int64_t head, int64_t dim) {
  return layer * s.attn_width() + head * s.head_dim + dim;
}

int64_t ffn_index(const ModelShape& s, int64_t layer, int64_t expert, int64_t neuron) {
  return layer * s.ffn_width() + expert * s.intermediate_size + neuron;
}

int64_t ffn_index_in_layer(const ModelShape& s, int64_t flat) {
  return flat % s.ffn_width();
}

void add_ffn_values(const ModelShape& s, const float* values, const int32_t* expert_ids,
                    double weight, double* full, const std::string& what) {
  add_ffn_values(s, values, expert_ids, weight, full, what, FfnAdd{});
}

void add_ffn_values(const ModelShape& s, const float* values, const int32_t* expert_ids,
                    double weight, double* full, const std::string& what, const FfnAdd& how) {
  const int64_t L = s.num_layers, I = s.intermediate_size;
  if (!s.is_moe()) {
    add_scaled(values, L * I, weight, how.absolute, full);
    return;
  }
  const int64_t E = s.num_experts, k = s.experts_per_token;
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t slot = 0; slot < k; ++slot) {
      const int64_t e = expert_ids[l * k + slot];
      if (e < 0 || e >= E) {
        throw LayoutError(what + ": layer " + std::to_string(l) + " holds expert id " +
                          std::to_string(e) + ", expected 0.." + std::to_string(E - 1));
      }
      add_scaled(values + (l * k + slot) * I, I, weight, how.absolute, full + (l * E + e) * I);
      if (how.routed) how.routed[l * E + e] += weight;
    }
  }
}

}  // namespace lpi::core

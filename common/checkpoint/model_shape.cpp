#include "common/checkpoint/model_shape.hpp"

namespace lpi::checkpoint {

core::ModelShape shape_of(const ModelConfig& c) {
  return {c.architecture,      c.num_layers,  c.hidden_size,         c.num_heads, c.head_dim,
          c.intermediate_size, c.num_experts, c.num_experts_per_tok, c.vocab_size};
}

}  // namespace lpi::checkpoint

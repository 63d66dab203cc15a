#include "common/checkpoint/model_shape.hpp"

namespace lpi::checkpoint {

core::ModelShape shape_of(const ModelConfig& c) {
  core::ModelShape s;
  s.architecture = c.architecture;
  s.num_layers = c.num_layers;
  s.hidden_size = c.hidden_size;
  s.num_heads = c.num_heads;
  s.head_dim = c.head_dim;
  s.intermediate_size = c.intermediate_size;
  s.num_experts = c.num_experts;
  s.experts_per_token = c.num_experts_per_tok;
  s.vocab_size = c.vocab_size;
  return s;
}

}  // namespace lpi::checkpoint

#include "worker/tools/shapes.hpp"

#include <stdexcept>

namespace lpi::tools {
namespace ck = lpi::checkpoint;

const char* shape_names() {
  return "tiny-moe, tiny-dense, small-moe, small-dense, wide-moe, olmoe-1b-7b, olmo-7b";
}

ck::ModelConfig named_shape(const std::string& name, int64_t layers) {
  ck::ModelConfig c;
  auto moe = [&](int64_t d, int64_t n, int64_t heads, int64_t inter, int64_t experts, int64_t k,
                 int64_t vocab) {
    c.layout = ck::Layout::Olmoe;
    c.architecture = "OlmoeForCausalLM";
    c.model_type = "olmoe";
    c.norm = ck::NormKind::RMSNorm;
    c.qk_norm = true;
    c.hidden_size = d, c.num_layers = n, c.num_heads = c.num_kv_heads = heads;
    c.intermediate_size = inter, c.num_experts = experts, c.num_experts_per_tok = k,
    c.vocab_size = vocab;
  };
  auto dense = [&](int64_t d, int64_t n, int64_t heads, int64_t inter, int64_t vocab) {
    c.layout = ck::Layout::OlmoHF;
    c.architecture = "OlmoForCausalLM";
    c.model_type = "olmo";
    c.norm = ck::NormKind::LayerNormNoAffine;
    c.hidden_size = d, c.num_layers = n, c.num_heads = c.num_kv_heads = heads;
    c.intermediate_size = inter, c.vocab_size = vocab;
  };
  if (name == "tiny-moe")
    moe(64, 4, 4, 64, 8, 2, 1024);
  else if (name == "tiny-dense")
    dense(64, 4, 4, 128, 1024);
  else if (name == "small-moe")
    moe(512, 4, 8, 256, 16, 4, 12288);
  else if (name == "small-dense")
    dense(512, 4, 8, 1376, 12288);
  else if (name == "wide-moe")
    moe(256, 4, 4, 256, 16, 4, 50304);
  else if (name == "olmoe-1b-7b")
    moe(2048, 16, 16, 1024, 64, 8, 50304);
  else if (name == "olmo-7b")
    dense(4096, 32, 32, 11008, 50304);
  else
    throw std::invalid_argument("unknown shape '" + name + "' (known: " + shape_names() + ")");
  if (layers > 0) c.num_layers = layers;
  c.head_dim = c.hidden_size / c.num_heads;
  c.max_position_embeddings = 4096;
  c.pad_token_id = 1;
  return c;
}

}  // namespace lpi::tools

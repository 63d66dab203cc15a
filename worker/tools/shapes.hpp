// The model shapes the benchmarks and lpi-make-checkpoint build by name: the
// embedded default's (tiny-moe, tiny-dense), OLMoE-1B-7B and OLMo-7B scaled
// down about 4x in width and vocabulary for a CPU (small-moe, small-dense),
// a narrow MoE with the real vocabulary (wide-moe: d 256, 4 layers, 16
// experts x 256, top-4, V 50,304: the projection dominates, as at the real
// size), and the real ones (olmoe-1b-7b: d 2048, 16 layers, 16 heads, 64 experts x
// 1024, top-8, V 50,304; olmo-7b: d 4096, 32 layers, 32 heads, FFN 11008,
// V 50,304).
#pragma once

#include <cstdint>
#include <string>

#include "common/checkpoint/model_config.hpp"

namespace lpi::tools {

// The shape's config; `layers` > 0 replaces its number of layers.
// std::invalid_argument for an unknown name, listing the known ones.
checkpoint::ModelConfig named_shape(const std::string& name, int64_t layers = 0);

// "tiny-moe, tiny-dense, small-moe, small-dense, wide-moe, olmoe-1b-7b, olmo-7b"
const char* shape_names();

}  // namespace lpi::tools

// A config's shape in the domain core's terms (common/core/layout.hpp).
#pragma once

#include "common/checkpoint/model_config.hpp"
#include "common/core/layout.hpp"

namespace lpi::checkpoint {

core::ModelShape shape_of(const ModelConfig& config);

}  // namespace lpi::checkpoint

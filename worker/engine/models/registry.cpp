#include "worker/engine/models/registry.hpp"

namespace lpi::engine {

const std::vector<const Architecture*>& architectures() {
  // One line per architecture.
  static const std::vector<const Architecture*> all = {
      &models::olmoe(),
      &models::olmo(),
      &models::hf_olmo(),
  };
  return all;
}

const Architecture& architecture_of(checkpoint::Layout layout) {
  for (const Architecture* a : architectures()) {
    if (a->layout() == layout) return *a;
  }
  throw EngineError(std::string("no engine architecture for the ") +
                    checkpoint::layout_name(layout) + " layout");
}

}  // namespace lpi::engine

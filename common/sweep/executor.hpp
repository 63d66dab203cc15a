// What a worker rank does with a unit, as the sweep's loops see it: an
// Executor computes and stores one unit of a phase (the worker daemon,
// worker/daemon, is the real one; tests use fakes), and says which
// checkpoint it holds, so that the coordinator can keep it on that one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/sweep/grid.hpp"

namespace lpi::sweep {

// The sweep's two passes over the grid: the attribution, then (jobs with
// [ablation]) the masking experiment.
enum class Phase : uint8_t { Attribution, Ablation };
const char* phase_name(Phase phase);  // "attribution", "ablation"

// One unit's outcome: an error, or how its time was spent.
struct UnitReport {
  std::optional<std::string> error;
  double compute_seconds = 0, load_seconds = 0, store_seconds = 0;
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Computes the unit and writes its results (loading its checkpoint if
  // needed); may start loading `prefetch` (-1: none) in the background. A
  // failure is returned (a throw counts as one); the executor lives on.
  virtual UnitReport run(Phase phase, const WorkUnit& unit, int32_t prefetch) = 0;
  // The checkpoint held in memory now (-1: none).
  virtual int32_t loaded() const = 0;
};

}  // namespace lpi::sweep

// What a worker rank does with a unit, as the sweep's loops see it: an
// Executor computes and stores the units of a phase, one or a lease at a time (the worker daemon,
// worker/daemon, is the real one; tests use fakes), and says which
// checkpoint it holds, so that the coordinator can keep it on that one.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <vector>

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
  // Projection tiles computed for the unit's lease (on its first report only).
  int64_t projection_tiles = 0;
};

// Called once per unit of a lease, as soon as it is written (or has failed).
using ReportUnit = std::function<void(int32_t unit, const UnitReport& report)>;

class Executor {
 public:
  virtual ~Executor() = default;
  // Computes the unit and writes its results (loading its checkpoint if
  // needed); may start loading `prefetch` (-1: none) in the background. A
  // failure is returned (a throw counts as one); the executor lives on.
  virtual UnitReport run(Phase phase, const WorkUnit& unit, int32_t prefetch) = 0;
  // A lease: units of one checkpoint, computed together where that saves
  // work (the daemon's attribution runs their prompts through each
  // projection tile once), each reported through `report` once written, in
  // any order, every one exactly once. By default, run() on each in turn.
  virtual void run_lease(Phase phase, const std::vector<const WorkUnit*>& units, int32_t prefetch,
                         const ReportUnit& report) {
    for (const auto* u : units) {
      UnitReport r;
      try {
        r = run(phase, *u, prefetch);
      } catch (const std::exception& e) {
        r.error = e.what();
      }
      report(u->id, r);
    }
  }
  // The checkpoint held in memory now (-1: none).
  virtual int32_t loaded() const = 0;
};

}  // namespace lpi::sweep

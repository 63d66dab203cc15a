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

// A shared load of a lease's checkpoint (protocol.hpp, Assign): the root
// reads it from disk, the other workers of its node that were leased it
// meanwhile receive its weights.
struct LoadShare {
  int32_t id = -1;
  int32_t root = -1;  // the rank that reads the checkpoint
  bool is_root = false;
  // Called exactly once. The root calls it once its load ended (`loaded`:
  // it holds the checkpoint), a member before anything else (`loaded`
  // unused). Returns the group's ranks, root first; every rank listed then
  // takes part in the broadcast of the weights. Empty: cancelled, the
  // member reads the checkpoint itself.
  std::function<std::vector<int32_t>(bool loaded)> group;
};

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
  // Shared loads: the node this executor's rank runs on (its lowest rank
  // there) when it can take part in them; -1 (the default): it never does.
  virtual int32_t share_node() const { return -1; }
  // A lease whose checkpoint comes through `share` (called only when
  // share_node() >= 0): as run_lease, with the checkpoint read by the root
  // and broadcast to the group; share.group is called exactly once.
  virtual void run_shared_lease(Phase phase, const std::vector<const WorkUnit*>& units,
                                int32_t prefetch, const LoadShare& share,
                                const ReportUnit& report) {
    share.group(false);
    run_lease(phase, units, prefetch, report);
  }
};

}  // namespace lpi::sweep

// The worker daemon: one per GPU rank, alive for the whole sweep. It keeps a
// checkpoint loaded across units, loads the next one in the background while
// it computes on the current one, runs Gated-LPI on each unit's prompts and
// writes the results into the sweep store itself. The header is free of
// libtorch (the engine lives behind it), so the sweep's driver compiles fast.
// In a job with [ablation] it also evaluates units under the masks.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/store/sweep_store.hpp"
#include "common/sweep/grid.hpp"

namespace lpi::daemon {

struct DaemonOptions {
  std::string lens = "frozen", target = "gold", dtype = "float32";
  std::string device = "cpu";  // "cuda" picks cuda:(local_rank % devices)
  int local_rank = 0;
  int64_t batch_size = 32;
  bool batch_invariant = true;
  int threads = 1;  // CPU threads of the numerics (results are bit-equal for equal counts)
};

struct UnitOutcome {
  std::optional<std::string> error;
  double compute_seconds = 0, load_seconds = 0, store_seconds = 0;
};

class WorkerDaemon {
 public:
  WorkerDaemon(store::SweepStore& store, const DaemonOptions& options);
  ~WorkerDaemon();
  WorkerDaemon(const WorkerDaemon&) = delete;
  WorkerDaemon& operator=(const WorkerDaemon&) = delete;

  // Computes and stores the unit. A failure (bad checkpoint, a different
  // model shape, a store error) is returned, not thrown: the daemon lives on.
  // `prefetch` >= 0: start loading that checkpoint in the background.
  UnitOutcome run(const sweep::WorkUnit& unit, int32_t prefetch);
  // The ablation phase: the unit's prompts evaluated under every masking
  // condition of the job, with the checkpoint's masks read from the store.
  UnitOutcome run_ablation(const sweep::WorkUnit& unit, int32_t prefetch);
  int32_t loaded() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace lpi::daemon

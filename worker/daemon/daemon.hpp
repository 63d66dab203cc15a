// The worker daemon: one per GPU rank, alive for the whole sweep, the
// Executor behind the worker loop (worker/loop). It keeps a
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
#include "common/sweep/executor.hpp"
#include "common/sweep/grid.hpp"

namespace lpi::share {
class Groups;
}

namespace lpi::daemon {

struct DaemonOptions {
  std::string lens = "frozen", target = "gold", dtype = "float32";
  std::string device = "cpu";  // "cuda" picks cuda:(local_rank % devices)
  int local_rank = 0;
  int64_t batch_size = 32;
  bool batch_invariant = true;
  int threads = 1;  // CPU threads of the numerics (results are bit-equal for equal counts)
  // Log where each attribution lease's time went (LpiOptions::profile): load,
  // forward, lens, projection, log-sum-exp, store, peak memory, per layer.
  bool profile = false;
  // Shared loads (worker/share): the groups to broadcast checkpoints in, and
  // this rank's node (its lowest rank there). None: it reads every one.
  share::Groups* groups = nullptr;
  int32_t share_node = -1;
};

class WorkerDaemon : public sweep::Executor {
 public:
  WorkerDaemon(store::SweepStore& store, const DaemonOptions& options);
  ~WorkerDaemon() override;
  WorkerDaemon(const WorkerDaemon&) = delete;
  WorkerDaemon& operator=(const WorkerDaemon&) = delete;

  // Computes and stores the unit. A failure (bad checkpoint, a different
  // model shape, a store error) is returned, not thrown: the daemon lives on.
  // `prefetch` >= 0: start loading that checkpoint in the background.
  // Attribution: Gated-LPI and the gold rank of the unit's prompts.
  // Ablation: the prompts evaluated under every masking condition of the
  // job, with the checkpoint's masks read from the store.
  sweep::UnitReport run(sweep::Phase phase, const sweep::WorkUnit& unit, int32_t prefetch) override;
  // Attribution: one Gated-LPI call over the prompts of every unit of the
  // lease (the checkpoint's projection tiles once for all of them; a
  // prompt's scores are the same bits in any lease), then each unit written
  // and reported. Ablation: unit by unit.
  void run_lease(sweep::Phase phase, const std::vector<const sweep::WorkUnit*>& units,
                 int32_t prefetch, const sweep::ReportUnit& report) override;
  int32_t loaded() const override;
  int32_t share_node() const override;
  // run_lease with the lease's checkpoint read by the share's root and
  // broadcast to its members (bit for bit the root's weights).
  void run_shared_lease(sweep::Phase phase, const std::vector<const sweep::WorkUnit*>& units,
                        int32_t prefetch, const sweep::LoadShare& share,
                        const sweep::ReportUnit& report) override;
  // Projection tiles computed so far for checkpoint c, over all its leases.
  int64_t projection_tiles(int32_t checkpoint) const;

 private:
  void attribute(const std::vector<const sweep::WorkUnit*>& units, int32_t prefetch,
                 const sweep::ReportUnit& report);
  sweep::UnitReport ablate(const sweep::WorkUnit& unit, int32_t prefetch);
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace lpi::daemon

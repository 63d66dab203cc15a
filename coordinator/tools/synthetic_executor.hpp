// A worker that costs time instead of computing (lpi-bench-scheduler): it
// implements sweep::Executor as the worker daemon does (worker/daemon), with
// the daemon's checkpoint and prefetch logic, and waits on a sim::Clock for
// the durations of a cost model:
//   - a checkpoint load takes load_seconds; a prefetch (the Assign's hint)
//     is a background load started when the lease starts, ready
//     load_seconds later; a lease of the prefetched checkpoint waits only
//     for what is left of it. As in the daemon, a new prefetch first waits
//     for a stale one still in flight; a lease of a checkpoint that is
//     neither loaded nor prefetched loads it in the foreground.
//   - each lease computes the checkpoint's projection once
//     (projection_seconds), then prompt_seconds per prompt of the lease;
//   - each unit's store write: store_unit_seconds + store_prompt_seconds per
//     prompt, then its report.
// The ablation phase is costed the same way (the benchmark plans none).
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "common/sweep/executor.hpp"
#include "coordinator/tools/sim_clock.hpp"

namespace lpi::coordinator::sim {

struct CostModel {
  double load_seconds = 0;
  double projection_seconds = 0;
  double prompt_seconds = 0;
  double store_unit_seconds = 0, store_prompt_seconds = 0;
  bool prefetch = true;  // false: hints are ignored (every load in the foreground)
  double unit_seconds(const sweep::WorkUnit& u) const {
    return u.prompt_count * (prompt_seconds + store_prompt_seconds) + store_unit_seconds;
  }
};

// One lease as the worker saw it (simulated seconds).
struct LeaseRecord {
  double start = 0, end = 0, load_wait = 0;
  int32_t checkpoint = -1, units = 0, prompts = 0, hint = -1;
};

// What one worker did, in simulated seconds.
struct WorkerStats {
  int64_t leases = 0, units = 0, loads = 0, prefetches = 0, prefetches_used = 0;
  double load_wait = 0;    // waiting for a checkpoint (foreground loads and unfinished prefetches)
  double load_hidden = 0;  // load time of prefetched checkpoints that the worker did not wait for
  double prefetch_stall = 0;  // waiting for a stale prefetch before starting the next
  double busy = 0;            // projection, prompts and store writes
  double first_start = -1, last_end = 0;
  double idle = 0;  // between leases (waiting on rank 0, or for work at the tail)
  std::vector<LeaseRecord> trace;
};

class SyntheticExecutor : public sweep::Executor {
 public:
  // `done` counts each unit's completions (shared by the workers; atomic).
  SyntheticExecutor(int rank, const CostModel& cost, Clock& clock,
                    std::vector<std::atomic<int>>& done)
      : rank_(rank), cost_(cost), clock_(clock), done_(done) {}

  sweep::UnitReport run(sweep::Phase phase, const sweep::WorkUnit& unit, int32_t prefetch) override;
  void run_lease(sweep::Phase phase, const std::vector<const sweep::WorkUnit*>& units,
                 int32_t prefetch, const sweep::ReportUnit& report) override;
  int32_t loaded() const override { return current_; }
  const WorkerStats& stats() const { return stats_; }

 private:
  void ensure(int32_t c);
  void prefetch(int32_t c);
  void wait(double seconds) { clock_.sleep_until(rank_, clock_.now() + seconds); }
  int rank_;
  CostModel cost_;
  Clock& clock_;
  std::vector<std::atomic<int>>& done_;
  int32_t current_ = -1;
  int32_t next_ = -1;      // the checkpoint loading (or loaded) in the background
  double next_ready_ = 0;  // when that load is complete
  WorkerStats stats_;
};

}  // namespace lpi::coordinator::sim

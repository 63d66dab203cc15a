// The coordinator's bookkeeping, without MPI: which units go to which worker
// next, as leases of one checkpoint's units (a worker stays on the checkpoint
// it has loaded while that checkpoint has work; fresh checkpoints go to idle
// workers in step order; at the tail several workers share the checkpoint
// with the most work left), each unit's state and attempts, retries of failed
// units up to a limit, and the units of a lost worker put back. Every unit is
// in exactly one state at all times (check_invariants()).
//
// Why leases: a worker computes each projection tile of a checkpoint once for
// all the prompts it holds (docs/METHOD.md), so the fewer pieces a checkpoint
// is cut into, the less it costs. A worker gets every pending unit of its
// checkpoint while there are at least as many checkpoints with pending units
// as workers. Below that (the tail) a checkpoint is cut by its share of the
// workers that will want work (its pending prompts over all pending prompts,
// times those workers, rounded down), in leases of about equal prompts.
//
// Prefetch hints are promises: the checkpoint the worker gets next. Idle
// workers take the checkpoints nobody works on or was promised; a busy
// worker is promised one beyond those. Before the phase's first report (all
// workers on their first lease, so a second load overlaps it), a worker for
// which none is left is promised a share of a promised checkpoint nobody
// works on yet: with about as many workers as checkpoints, the checkpoints
// beyond one each are shared out, prefetched, instead of going whole to a
// few workers at the end. A promised checkpoint is split equally among its
// promised workers and not taken by others (lease() is then empty for them).
// (docs/PERFORMANCE.md, "The coordinator at scale", has the figures.)
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/sweep/grid.hpp"

namespace lpi::coordinator {

struct SchedulerOptions {
  int max_attempts = 3;  // a unit that failed this many times is given up
  int workers = 1;       // worker ranks that share the grid (how the tail is cut)
  int max_lease = 0;     // units per lease at most; 0: no cap, 1: one unit at a time
};

struct GivenUp {
  int32_t unit = 0;
  std::vector<std::string> errors;  // one per attempt, "worker N: message"
};

class Scheduler {
 public:
  // `done` marks units already complete (resume); empty means none.
  Scheduler(const sweep::Grid& grid, const std::vector<bool>& done = {},
            SchedulerOptions options = {});

  // The next lease for `worker`, which has checkpoint `loaded` in memory (-1:
  // none): unit ids of one checkpoint in grid order; empty when nothing is
  // pending right now, or all that is pending is promised to other workers.
  // `cap` > 0 bounds its size (below the options' cap).
  std::vector<int32_t> lease(int worker, int32_t loaded, int cap = 0);
  // A lease of one unit.
  std::optional<sweep::WorkUnit> next(int worker, int32_t loaded);
  void completed(int worker, int32_t unit);
  // The checkpoint `worker` should load in the background (-1: none), called
  // after its lease: a promise that its next lease() honours (see above);
  // none while its own checkpoint has units left (it stays on it).
  int32_t prefetch_hint(int worker);
  // Every unit of checkpoint c is done.
  bool checkpoint_done(int32_t c) const { return remaining_[c] == 0; }
  // A unit that failed on a worker that stays alive; retried elsewhere or
  // later until max_attempts.
  void failed(int worker, int32_t unit, const std::string& error);
  // The worker is gone: its units in flight go back to pending, and the tail
  // is cut for one worker fewer.
  void worker_lost(int worker);
  // The units `worker` holds and has not reported (none: empty).
  std::vector<int32_t> in_flight(int worker) const;
  // The worker's lease took too long: each unit it has not reported counts as
  // a failed attempt (retried elsewhere or given up) and the worker gets
  // nothing more (it is taken as hung). Returns those units.
  std::vector<int32_t> timed_out(int worker, const std::string& error);

  const sweep::Grid& grid() const { return grid_; }
  bool finished() const { return pending_ == 0 && in_flight_.empty(); }
  std::size_t in_flight_count() const;
  std::size_t done_count() const { return done_; }
  std::size_t pending_count() const { return pending_; }
  std::size_t total() const { return state_.size(); }
  const std::vector<GivenUp>& given_up() const { return given_up_; }
  // Checkpoints whose every unit is done.
  std::size_t checkpoints_done() const;
  void check_invariants() const;  // throws std::logic_error naming the broken one

 private:
  enum class State : uint8_t { Pending, InFlight, Done, GivenUp };
  void release(int worker);
  void unpromise(int worker);                // the worker's promise (prefetch hint) is over
  void take_back(int worker, int32_t unit);  // the unit leaves the worker's lease
  bool fresh(int32_t c) const { return !pending_by_checkpoint_[c].empty() && workers_on_[c] == 0; }
  const sweep::Grid& grid_;
  SchedulerOptions options_;
  std::vector<State> state_;
  std::vector<int> attempts_;
  std::vector<std::vector<std::string>> errors_;
  std::vector<std::deque<int32_t>> pending_by_checkpoint_;
  std::vector<int> workers_on_;                    // per checkpoint
  std::map<int, std::vector<int32_t>> in_flight_;  // worker -> its lease's unreported units
  int workers_ = 1;                                // workers neither lost nor hung
  std::map<int, int32_t> worker_checkpoint_;       // worker -> checkpoint it works on
  std::vector<int> promised_to_;                   // per checkpoint: workers promised it
  std::map<int, int32_t> promised_;                // worker -> checkpoint it was told to prefetch
  std::map<int, int64_t> issued_;                  // worker -> reports_ when its lease began
  int64_t reports_ = 0;                            // units reported (done or failed)
  std::vector<int32_t> remaining_;                 // per checkpoint: units not done
  std::vector<int32_t> units_of_;                  // per checkpoint: units in the grid
  std::vector<int64_t> prompts_of_;                // per checkpoint: prompts in the grid
  std::vector<GivenUp> given_up_;
  std::size_t pending_ = 0, done_ = 0;
  int64_t pending_prompts_ = 0;
};

}  // namespace lpi::coordinator

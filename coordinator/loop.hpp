// The coordinator's message loop for one phase (rank 0): it answers work
// requests from the scheduler until every unit is done or given up, then
// tells every worker what comes next. It talks through a Transport (MPI
// between processes, in-process between threads) and never holds a model:
// the worker side of the conversation is worker/loop.
//
// Work goes out in leases (Scheduler::lease): units of one checkpoint that
// the worker computes together and reports one by one. A lease that its
// worker does not report within the unit timeout times its units counts as a
// failed attempt of each unreported unit, which go to other workers; the
// silent worker is taken as hung and gets no more work in this run. Should it
// speak again, its late reports are ignored and it is told to stop.
#pragma once

#include <functional>
#include <set>

#include "common/transport/transport.hpp"
#include "coordinator/scheduler.hpp"

namespace lpi::coordinator {

// The workers rank 0 no longer waits for, kept across the phases of a sweep.
struct Departed {
  std::set<int> lost;      // the transport reported them gone
  std::set<int> hung;      // a unit of theirs timed out, and no word since
  std::set<int> returned;  // spoke again after hanging; to be told to stop when it asks
  std::set<int> stopped;   // spoke again after hanging and was told to stop
  bool contains(int w) const {
    return lost.count(w) || hung.count(w) || returned.count(w) || stopped.count(w);
  }
  std::size_t size() const { return lost.size() + hung.size() + returned.size() + stopped.size(); }
};

struct LoopReport {
  std::size_t done = 0, given_up = 0, messages = 0, lost = 0, hung = 0;
  // Shared loads that reached at least one member, and the loads the
  // members did not read from disk.
  std::size_t shared_loads = 0, share_receivers = 0;
  int32_t next_share_id = 0;  // the next phase's first shared load id
  int stop_signal = 0;        // the phase was stopped by this signal (0: it ran to its end)
};

struct LoopOptions {
  // Seconds per unit from a lease's assignment to its last report (a lease
  // of n units has n times this); 0: no limit.
  double unit_timeout = 0;
  // A signal asked rank 0 to stop (0: none), polled a few times a second.
  // A stop (asked here or in a worker's WorkRequest) assigns nothing more:
  // the units in flight finish, then every worker is told to stop.
  std::function<int()> stop_signal;
  // Shared loads (common/sweep/protocol.hpp, Assign): a worker leased a
  // checkpoint it neither holds nor was told to prefetch joins the open
  // shared load of that checkpoint on its node (as a member: it receives the
  // weights), or opens one (as its root: it reads them). A shared load
  // closes when its root has read the checkpoint, or `share_window` seconds
  // after it opened if that is later (a longer window gathers more members
  // at the cost of the root's wait). Off: every worker reads its own.
  bool share_loads = false;
  double share_window = 0;
  int32_t first_share_id = 0;  // ids go on across the phases of a sweep
};

struct CoordinatorHooks {
  // A unit reported written (before the scheduler counts it done): record it.
  std::function<void(int worker, const sweep::UnitDone&)> on_done;
  // After each message was handled (progress lines, aggregation).
  std::function<void(const Scheduler&)> after_message;
  // Once the phase is over (every unit done or given up, or a stop; every
  // worker waiting): the phase that follows (a sweep::Phase as int, -1:
  // none), told to every worker. Unset: none. `stop_signal` as in LoopReport.
  std::function<int32_t(const Scheduler&, int stop_signal)> next_phase;
};

// Rank 0, with ranks 1..size-1 as workers. A worker the transport reports
// lost (WorkerLost) has its unit put back and is not waited for again; one
// whose unit timed out has it retried elsewhere and is taken as hung. Both
// are recorded in `departed` (when given), across calls. Returns when every
// remaining worker was told what follows.
LoopReport run_coordinator(transport::Transport& transport, Scheduler& scheduler,
                           const CoordinatorHooks& hooks = {}, Departed* departed = nullptr,
                           const LoopOptions& options = {});

// After the last phase: waits up to `seconds` for the hung workers to speak
// again and ask for work (each is then told to stop). Returns how many are
// still silent; the job cannot end together with them.
std::size_t wait_for_hung(transport::Transport& transport, Departed& departed, double seconds);

}  // namespace lpi::coordinator

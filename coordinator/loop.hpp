// The coordinator's message loop for one phase (rank 0): it answers work
// requests from the scheduler until every unit is done or given up, then
// shuts every worker down. It talks through a Transport (MPI between
// processes, in-process between threads) and never holds a model: the
// worker side of the conversation is worker/loop.
#pragma once

#include <functional>
#include <set>

#include "common/transport/transport.hpp"
#include "coordinator/scheduler.hpp"

namespace lpi::coordinator {

struct LoopReport {
  std::size_t done = 0, given_up = 0, messages = 0, lost = 0;
};

struct CoordinatorHooks {
  // A unit reported written (before the scheduler counts it done): record it.
  std::function<void(int worker, const sweep::UnitDone&)> on_done;
  // After each message was handled (progress lines, aggregation).
  std::function<void(const Scheduler&)> after_message;
};

// Rank 0, with ranks 1..size-1 as workers. A worker the transport reports
// lost (WorkerLost) has its unit put back and is not waited for again (nor
// in later phases: `lost`, when given, holds the lost workers across calls);
// returns when every remaining worker was shut down.
LoopReport run_coordinator(transport::Transport& transport, Scheduler& scheduler,
                           const CoordinatorHooks& hooks = {}, std::set<int>* lost = nullptr);

}  // namespace lpi::coordinator

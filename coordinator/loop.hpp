// The sweep's message loops over MPI: run_coordinator() on rank 0 answers
// work requests from the scheduler until every unit is done or given up,
// then shuts every worker down; run_worker() on the other ranks asks for
// units, computes them through a callback and reports each outcome. A worker
// whose unit fails reports the error and stays alive.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/mpi/comm.hpp"
#include "coordinator/scheduler.hpp"

namespace lpi::coordinator {

struct LoopReport {
  std::size_t done = 0, given_up = 0, messages = 0;
};

struct CoordinatorHooks {
  // A unit reported written (before the scheduler counts it done): record it.
  std::function<void(int worker, const sweep::UnitDone&)> on_done;
  // After each message was handled (progress lines, aggregation).
  std::function<void(const Scheduler&)> after_message;
};

// Rank 0.
LoopReport run_coordinator(const mpi::Comm& comm, Scheduler& scheduler,
                           const CoordinatorHooks& hooks = {});

// One unit's outcome on a worker: an error, or how its time was spent.
struct UnitReport {
  std::optional<std::string> error;
  double compute_seconds = 0, load_seconds = 0, store_seconds = 0;
};

struct WorkerCallbacks {
  // Do the unit (loading its checkpoint if needed); may start loading
  // `prefetch` (-1: none) in the background.
  std::function<UnitReport(const sweep::WorkUnit& unit, int32_t prefetch)> compute;
  // The checkpoint held in memory now (-1: none).
  std::function<int32_t()> loaded;
};

// Ranks 1..N-1. Returns the units it completed.
std::size_t run_worker(const mpi::Comm& comm, const WorkerCallbacks& callbacks,
                       const sweep::Grid& grid);

}  // namespace lpi::coordinator

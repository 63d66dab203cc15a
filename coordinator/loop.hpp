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

// Rank 0. `progress` (optional) is called after each finished unit.
LoopReport run_coordinator(const mpi::Comm& comm, Scheduler& scheduler,
                           const std::function<void(const Scheduler&)>& progress = {});

// Ranks 1..N-1. `compute(unit, loaded)` does the unit (loading its checkpoint
// if `loaded` differs) and returns an error message, or nothing on success.
void run_worker(const mpi::Comm& comm,
                const std::function<std::optional<std::string>(const sweep::WorkUnit&,
                                                               int32_t& loaded)>& compute,
                const sweep::Grid& grid);

}  // namespace lpi::coordinator

// The worker side of the sweep's conversation (ranks 1..N-1): ask rank 0
// for work, run the lease it gives on the Executor (the worker daemon),
// report each unit's outcome, until rank 0 shuts the phase down; then take rank 0's decision on
// the next phase. No libtorch here: the daemon is behind sweep::Executor.
#pragma once

#include <cstddef>

#include "common/sweep/executor.hpp"
#include "common/transport/transport.hpp"

namespace lpi::worker {

// One phase, until rank 0's Shutdown: the units this worker completed and
// the phase rank 0 said follows (-1: none). A unit that fails (or throws) is
// reported and the worker goes on.
struct Served {
  std::size_t units = 0;
  int32_t next_phase = -1;
};
Served serve_phase(transport::Transport& transport, sweep::Executor& executor, sweep::Phase phase,
                   const sweep::Grid& grid);

// The whole sweep: the attribution, then each phase rank 0 names in its
// Shutdown. Returns the units completed in all phases.
std::size_t serve_sweep(transport::Transport& transport, sweep::Executor& executor,
                        const sweep::Grid& grid);

}  // namespace lpi::worker

// The sweep's run, once the store is open on every rank: rank 0 coordinates
// (scheduler, done flags, per-checkpoint aggregates, progress lines, the
// final report), the other ranks are worker daemons; a single process does
// both in turn. Returns on every rank when the sweep is over.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/mpi/comm.hpp"
#include "common/store/sweep_store.hpp"
#include "worker/daemon/daemon.hpp"

namespace lpi::coordinator {

struct RunOptions {
  daemon::DaemonOptions daemon;
  double progress_seconds = 10;
  int threads = 1;
  int max_attempts = 3;
};

struct RunSummary {
  std::size_t total = 0, done = 0, given_up = 0;  // meaningful on rank 0
};

RunSummary run_sweep(const mpi::Comm& comm, store::SweepStore& store, RunOptions options);

}  // namespace lpi::coordinator

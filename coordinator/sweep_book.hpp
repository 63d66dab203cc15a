// The sweep plan of a store: each phase's flags, marks and per-checkpoint
// completion bound to the sweep store, and the ablation's precondition
// (every checkpoint's attribution aggregated; then the masks are written).
#pragma once

#include "common/store/sweep_store.hpp"
#include "coordinator/sweep_run.hpp"

namespace lpi::coordinator {

// `recorded_rank(worker)`: the rank units/rank records for a worker (its MPI
// rank; 0 for the worker thread of a one-process run).
SweepPlan store_plan(store::SweepStore& store, std::function<int(int worker)> recorded_rank);

}  // namespace lpi::coordinator

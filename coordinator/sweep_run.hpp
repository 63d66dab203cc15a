// Rank 0's side of a whole sweep: each phase's scheduler and message loop,
// its bookkeeping (done flags, per-checkpoint completion, progress lines,
// the final report), and the decision whether the ablation phase follows,
// taken here and sent to every worker in its Shutdown. What a phase records
// is given as a PhaseBook (coordinator/sweep_book.hpp binds one to the sweep
// store), so the loop runs and is tested without a store or a model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/sweep/executor.hpp"
#include "common/sweep/grid.hpp"
#include "common/transport/transport.hpp"

namespace lpi::coordinator {

// Rank 0's record of one phase.
struct PhaseBook {
  sweep::Phase phase = sweep::Phase::Attribution;
  // Units (and checkpoints) already complete: resume starts from these.
  std::function<std::vector<uint8_t>()> unit_flags, checkpoint_flags;
  // A unit its worker reported written; then a checkpoint all of whose units are.
  std::function<void(int32_t unit, int worker, float seconds)> mark;
  std::function<void(int32_t checkpoint)> complete;
};

struct PhaseSummary {
  std::size_t total = 0, done = 0, given_up = 0, lost_workers = 0, hung_workers = 0;
  int stop_signal = 0;  // stopped by this signal before its end (0: not)
};

struct SweepPlan {
  const sweep::Grid* grid = nullptr;
  std::string job_name, store_path;
  std::size_t prompts = 0;
  PhaseBook attribution;
  std::optional<PhaseBook> ablation;  // jobs with [ablation]
  // After the attribution: whether the ablation can start (it may prepare
  // it, e.g. write the masks); when not, it logs why and what to do.
  std::function<bool(const PhaseSummary& attribution)> ablation_ready;
};

struct RunOptions {
  double progress_seconds = 10;
  int max_attempts = 3;
  // Units per lease at most (0: no cap; 1: one unit at a time). A lease's
  // prompts share the projection tiles of their checkpoint (Scheduler).
  int max_lease = 0;
  // A unit not reported this long after its assignment is retried elsewhere
  // and its worker taken as hung (coordinator/loop.hpp); 0: no limit.
  double unit_timeout = 0;
  // Polled by rank 0: a signal asked for a stop (0: none); see common/sweep/stop.hpp.
  std::function<int()> stop_signal;
  // Shared loads between the workers of a node (LoopOptions in loop.hpp).
  bool share_loads = false;
  double share_window = 0;
};

struct RunSummary {
  std::size_t total = 0, done = 0, given_up = 0;
  bool ablation_ran = false;
  std::vector<int> hung;     // workers still silent at the end: the job cannot end together
  std::vector<int> retired;  // workers that hung and spoke again
  int stop_signal = 0;       // the run was stopped by this signal before its end
};

// Rank 0 of `transport`; the other ranks run worker::serve_sweep.
RunSummary coordinate_sweep(transport::Transport& transport, const SweepPlan& plan,
                            const RunOptions& options);

}  // namespace lpi::coordinator

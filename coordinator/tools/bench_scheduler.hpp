// lpi-bench-scheduler's parts: the real sweeps' grids, a cost model from
// stated hardware assumptions, the lower bounds of a sweep's makespan under
// that model, and one run of the REAL coordinator (coordinate_sweep: the
// Scheduler and run_coordinator) with N worker threads (the REAL
// worker::serve_sweep over sim::SyntheticExecutor) through the in-process
// transport, on a virtual or a scaled real clock. The MPI run is the tool's
// main (coordinator/tools/lpi_bench_scheduler.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/sweep/grid.hpp"
#include "coordinator/sweep_run.hpp"
#include "coordinator/tools/synthetic_executor.hpp"

namespace lpi::coordinator::sim {

// A sweep's size and the per-checkpoint arithmetic of its model.
struct SweepShape {
  std::string name;
  int32_t checkpoints = 0;
  std::vector<int32_t> relation_prompts;  // prompts per relation
  int32_t prompts_per_unit = 0;
  double projection_flop = 0;         // 2 V d n over the n output columns, once per lease
  double exps_per_prompt = 0;         // active neurons x V (the log-sum-exps)
  double forward_flop = 0;            // per prompt, the forward passes with captures
  double store_bytes_per_prompt = 0;  // the per-prompt tensors in float32
};
SweepShape olmoe_shape();   // OLMoE-1B-7B: 244 checkpoints, 64 prompts a unit
SweepShape olmo7b_shape();  // OLMo-7B: 557 checkpoints, 32 prompts a unit
// The 12 relations of shared/data/relations, 906 prompts.
std::vector<int32_t> relation_prompts();

// One worker (one GPU) and its I/O: ASSUMPTIONS, every one a command-line
// option of the tool.
struct Hardware {
  double checkpoint_gb = 13.8;        // bf16 weights read per load
  double read_gbps = 2.0;             // checkpoint read rate per worker
  double flops = 4.0e14;              // sustained bf16 matrix FLOP/s
  double exps_per_second = 3.75e12;   // fused log-sum-exp, SFU-bound
  double store_gbps = 1.0;            // per-prompt tensors written per worker
  double store_unit_seconds = 0.005;  // per unit: its sums, flush and flag
};
CostModel cost_model(const SweepShape& shape, const Hardware& hw);

sweep::Grid make_grid(const SweepShape& shape);

// Lower bounds of the makespan (simulated seconds), valid for any schedule
// under the cost model unless named otherwise:
//   work:     L + (max(C, W) P + sum of the units' times) / W: every worker
//             loads before its first lease, and the work holds at least one
//             projection per checkpoint and one per worker that works;
//   load:     ceil(C / W) L + P + the shortest unit: the worker that loads the
//             most checkpoints loads them one after another (one load in
//             flight per worker, as in the daemon);
//   no_split: L + P + a checkpoint's units, for the longest checkpoint: a
//             bound only for schedules that never cut a checkpoint.
struct Bounds {
  double work = 0, load = 0, no_split = 0;
  double best() const { return work > load ? work : load; }
};
Bounds lower_bounds(const sweep::Grid& grid, const CostModel& cost, int workers);

struct BenchResult {
  double makespan = 0;               // simulated seconds: the last unit's report
  double wall_seconds = 0;           // real seconds of the run
  double coordinator_cpu = 0;        // rank 0's thread (process) CPU seconds in coordinate_sweep
  int64_t messages = 0;              // received by rank 0
  std::vector<WorkerStats> workers;  // rank w at [w - 1]
  std::vector<int> done_counts;      // per unit: completions by the executors
  RunSummary summary;
  std::string error;  // a worker thread's exception, if any
};

// Threads over the in-process transport; `time_scale` 0: the virtual clock,
// else real seconds per simulated second.
BenchResult run_in_process(const sweep::Grid& grid, const CostModel& cost, int workers,
                           double time_scale, const RunOptions& options);

// An in-memory PhaseBook of the attribution (marks checked once each).
struct MemoryBook {
  explicit MemoryBook(const sweep::Grid& grid);
  PhaseBook book();
  std::vector<uint8_t> done, complete;
  int64_t marks = 0, double_marks = 0;
};

// The report the tool prints, and the invariants it checks with --check
// (every unit done exactly once, leases >= checkpoints, makespan >= bound,
// and under the virtual clock each worker's time adding up): the broken
// ones, each a sentence; empty when all hold.
// `time_scale`: real seconds per simulated second, 0 for the virtual clock.
std::string report(const SweepShape& shape, const sweep::Grid& grid, const CostModel& cost,
                   const BenchResult& r, double time_scale);
// Every lease of every worker, one CSV line each.
void write_trace(const std::string& path, const BenchResult& r);
std::vector<std::string> check(const sweep::Grid& grid, const CostModel& cost, const BenchResult& r,
                               bool virtual_clock);

}  // namespace lpi::coordinator::sim

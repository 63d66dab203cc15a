// lpi-bench-scheduler's parts (coordinator/tools): the virtual clock, the
// synthetic executor's cost model and prefetch, and a whole run of the real
// coordinator and worker loops over them. Invariants and exact small cases,
// no timing: the virtual clock's figures do not depend on the machine.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>

#include "coordinator/tools/bench_scheduler.hpp"

namespace lpi::coordinator::sim {
namespace {

SweepShape small_shape(int32_t checkpoints, std::vector<int32_t> relations, int32_t per_unit) {
  SweepShape s;
  s.name = "small";
  s.checkpoints = checkpoints;
  s.relation_prompts = std::move(relations);
  s.prompts_per_unit = per_unit;
  return s;
}

// One worker, compute-bound (a checkpoint's work X = 1.43 s > L = 1 s):
// it loads the first checkpoint, then each next one is prefetched during
// the current one, so the makespan is L + 3 X exactly and 2 L were hidden.
TEST(SchedSim, OneWorkerPrefetchHidesEveryLoadButTheFirst) {
  const auto grid = make_grid(small_shape(3, {4, 2}, 2));  // 3 units, 6 prompts each
  CostModel cost;
  cost.load_seconds = 1;
  cost.projection_seconds = 0.5;
  cost.prompt_seconds = 0.1;
  cost.store_prompt_seconds = 0.05;
  cost.store_unit_seconds = 0.01;
  const double X = 0.5 + 6 * 0.15 + 3 * 0.01;
  const auto r = run_in_process(grid, cost, 1, 0, RunOptions{});
  EXPECT_NEAR(r.makespan, 1 + 3 * X, 1e-9);
  ASSERT_EQ(r.workers.size(), 1u);
  const auto& w = r.workers[0];
  EXPECT_EQ(w.leases, 3);
  EXPECT_EQ(w.loads, 3);
  EXPECT_EQ(w.prefetches_used, 2);
  EXPECT_NEAR(w.load_hidden, 2.0, 1e-9);
  EXPECT_NEAR(w.load_wait, 1.0, 1e-9);
  EXPECT_NEAR(lower_bounds(grid, cost, 1).work, 1 + 3 * X, 1e-9);  // the bound is reached
  EXPECT_TRUE(check(grid, cost, r, true).empty());
}

// Load-bound (L = 3 s > X): a prefetched load still costs what is left of it.
TEST(SchedSim, APrefetchLongerThanTheLeaseIsWaitedFor) {
  const auto grid = make_grid(small_shape(2, {2}, 2));  // 1 unit of 2 prompts
  CostModel cost;
  cost.load_seconds = 3;
  cost.projection_seconds = 1;
  const auto r = run_in_process(grid, cost, 1, 0, RunOptions{});
  // load 3, compute 1 (prefetch ready at 6), wait 2, compute 1.
  EXPECT_NEAR(r.makespan, 7, 1e-9);
  EXPECT_NEAR(r.workers[0].load_wait, 5, 1e-9);
  EXPECT_NEAR(r.workers[0].load_hidden, 1, 1e-9);
  EXPECT_TRUE(check(grid, cost, r, true).empty());
}

// Many workers on the virtual clock: every unit once, leases >= checkpoints,
// makespan >= its bounds, each worker's time adding up.
TEST(SchedSim, ManyWorkersKeepTheInvariants) {
  const auto shape = olmoe_shape();
  auto small = shape;
  small.checkpoints = 24;
  const auto grid = make_grid(small);
  const auto cost = cost_model(shape, Hardware{});
  for (int workers : {3, 16, 64}) {
    const auto r = run_in_process(grid, cost, workers, 0, RunOptions{});
    const auto broken = check(grid, cost, r, true);
    for (const auto& b : broken) ADD_FAILURE() << workers << " workers: " << b;
    EXPECT_GE(r.messages, static_cast<int64_t>(grid.units.size()));
  }
}

// The scaled real clock runs the same code; only the count invariants hold
// exactly (sleeps overshoot).
TEST(SchedSim, RealClockKeepsTheInvariants) {
  const auto grid = make_grid(small_shape(4, {31, 45, 19}, 16));
  const auto cost = cost_model(olmoe_shape(), Hardware{});
  const auto r = run_in_process(grid, cost, 3, 1e-4, RunOptions{});
  const auto broken = check(grid, cost, r, false);
  for (const auto& b : broken) ADD_FAILURE() << b;
}

// Every rank waiting for a message nobody sends: the waits throw instead of
// hanging.
TEST(SchedSim, VirtualClockReportsADeadlock) {
  VirtualClock clock(2);
  std::atomic<int> threw{0};
  std::thread other([&] {
    try {
      clock.wait_message(1);
    } catch (const std::runtime_error&) {
      ++threw;
    }
  });
  try {
    clock.wait_message(0);
  } catch (const std::runtime_error&) {
    ++threw;
  }
  other.join();
  EXPECT_EQ(threw, 2);
  EXPECT_TRUE(clock.deadlocked());
}

}  // namespace
}  // namespace lpi::coordinator::sim

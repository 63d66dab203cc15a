// The coordinator and worker loops under a real mpirun: rank 0 schedules a
// grid of 6 checkpoints, the other ranks "compute" units (recording them),
// one unit always fails (given up after 3 attempts), others fail once on one
// rank (retried elsewhere). At the end every other unit was computed exactly
// once across all ranks, checked on rank 0. Then the phase hand-off: a whole
// sweep (coordinate_sweep on rank 0, serve_sweep elsewhere) in which rank 0
// refuses the ablation phase (no rank may run an ablation unit), and one in
// which it allows it (every ablation unit exactly once). Exit status 0 = pass.
#include <mpi.h>

#include <atomic>
#include <cstdio>
#include <vector>

#include "common/mpi/comm.hpp"
#include "coordinator/loop.hpp"
#include "coordinator/sweep_run.hpp"
#include "fake_executor.hpp"
#include "worker/loop/worker_loop.hpp"

namespace {

// A sweep whose attribution gives up unit 11; rank 0 then allows the
// ablation phase or not. Returns 0 when every rank agrees with the outcome.
int handoff(const lpi::mpi::Comm& comm, lpi::mpi::MpiTransport& transport,
            const lpi::sweep::Grid& grid, bool allow) {
  const std::size_t U = grid.units.size();
  std::vector<std::atomic<int>> a(U), b(U);
  int rc = 0;
  if (comm.rank() != 0) {
    lpi::testing::FakeExecutor executor(&a, &b);
    executor.always_fails = {11};
    lpi::worker::serve_sweep(transport, executor, grid);
  } else {
    std::vector<uint8_t> done(U, 0), complete(grid.checkpoints.size(), 0);
    auto book = [&](lpi::sweep::Phase p) {
      return lpi::coordinator::PhaseBook{p, [&] { return done; }, [&] { return complete; },
                                         [&](int32_t u, int, float) { done[u] = 1; },
                                         [&](int32_t c) { complete[c] = 1; }};
    };
    lpi::coordinator::SweepPlan plan;
    plan.grid = &grid;
    plan.attribution = book(lpi::sweep::Phase::Attribution);
    plan.ablation = book(lpi::sweep::Phase::Ablation);
    plan.ablation_ready = [&](const lpi::coordinator::PhaseSummary& s) {
      if (s.given_up != 1) std::printf("FAIL: %zu units given up, expected 1\n", s.given_up);
      done.assign(U, 0);
      complete.assign(grid.checkpoints.size(), 0);
      return allow;
    };
    lpi::coordinator::RunOptions options;
    options.progress_seconds = 1e9;
    const auto summary = lpi::coordinator::coordinate_sweep(transport, plan, options);
    if (summary.ablation_ran != allow) {
      std::printf("FAIL: the ablation phase %s\n", allow ? "did not run" : "ran");
      rc = 1;
    }
  }
  std::vector<int> mine(U), total(U, 0);
  for (std::size_t u = 0; u < U; ++u) mine[u] = b[u];
  lpi::mpi::check(
      MPI_Reduce(mine.data(), total.data(), static_cast<int>(U), MPI_INT, MPI_SUM, 0, comm.get()),
      "reduce");
  if (comm.rank() == 0) {
    for (std::size_t u = 0; u < U; ++u) {
      if (total[u] != (allow && u != 11 ? 1 : 0)) {
        std::printf("FAIL: ablation unit %zu computed %d times (rank 0 %s the phase)\n", u,
                    total[u], allow ? "allowed" : "refused");
        rc = 1;
        break;
      }
    }
    std::printf("rank 0: ablation %s: %zu ablation units computed once by %d workers\n",
                allow ? "allowed" : "refused", allow ? U - 1 : 0, comm.size() - 1);
  }
  return rc;
}

int run(MPI_Comm world) {
  const lpi::mpi::Comm comm(world);
  std::vector<lpi::sweep::CheckpointRef> cps;
  for (int c = 0; c < 6; ++c)
    cps.push_back(*lpi::sweep::parse_checkpoint_name("step" + std::to_string(c) + "-tokens" +
                                                     std::to_string(c)));
  const auto grid = lpi::sweep::build_grid(cps, {9, 4, 7}, 2);
  const int32_t always_fails = 11, fails_once_on_rank_1 = 20;
  std::vector<int32_t> computed(grid.units.size(), 0);
  int loads = 0;
  std::vector<std::atomic<int>> counts(grid.units.size()), unused(grid.units.size());
  lpi::mpi::MpiTransport transport(comm);
  if (comm.rank() != 0) {
    lpi::testing::FakeExecutor executor(&counts, &unused);
    executor.always_fails = {always_fails};
    if (comm.rank() == 1) executor.fails_once = {fails_once_on_rank_1};
    lpi::worker::serve_phase(transport, executor, lpi::sweep::Phase::Attribution, grid);
    loads = executor.loads;
    for (std::size_t u = 0; u < counts.size(); ++u) computed[u] = counts[u];
  } else {
    lpi::coordinator::Scheduler scheduler(grid, {}, {3});
    const auto report = lpi::coordinator::run_coordinator(transport, scheduler);
    std::printf("rank 0: %zu units done, %zu given up, %zu messages, %d workers\n", report.done,
                report.given_up, report.messages, comm.size() - 1);
    if (report.given_up != 1 || scheduler.given_up()[0].unit != always_fails ||
        scheduler.given_up()[0].errors.size() != 3 || report.done != grid.units.size() - 1) {
      std::printf("FAIL: unexpected outcome\n");
      return 1;
    }
  }
  std::vector<int32_t> total(grid.units.size(), 0);
  lpi::mpi::check(MPI_Reduce(computed.data(), total.data(), static_cast<int>(computed.size()),
                             MPI_INT32_T, MPI_SUM, 0, comm.get()),
                  "reduce");
  int all_loads = 0;
  lpi::mpi::check(MPI_Reduce(&loads, &all_loads, 1, MPI_INT, MPI_SUM, 0, comm.get()), "reduce");
  if (comm.rank() == 0) {
    for (const auto& u : grid.units) {
      const int32_t expected = u.id == always_fails ? 0 : 1;
      if (total[u.id] != expected) {
        std::printf("FAIL: unit %d computed %d times\n", u.id, total[u.id]);
        return 1;
      }
    }
    std::printf("rank 0: every unit computed exactly once; %d checkpoint loads for 6 checkpoints\n",
                all_loads);
  }
  for (const bool allow : {false, true}) {
    if (handoff(comm, transport, grid, allow) != 0) return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rc = 1;
  try {
    rc = run(MPI_COMM_WORLD);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_sweep_loop: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int worst = 0;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}

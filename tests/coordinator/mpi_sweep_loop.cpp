// The coordinator and worker loops under a real mpirun: rank 0 schedules a
// grid of 6 checkpoints, the other ranks "compute" units (recording them),
// one unit always fails (given up after 3 attempts), others fail once on one
// rank (retried elsewhere). At the end every other unit was computed exactly
// once across all ranks, checked on rank 0. Exit status 0 = pass.
#include <mpi.h>

#include <cstdio>
#include <vector>

#include "coordinator/loop.hpp"

namespace {

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
  if (comm.rank() != 0) {
    bool failed_once = false;
    int32_t loaded = -1;
    lpi::coordinator::WorkerCallbacks callbacks;
    callbacks.loaded = [&] { return loaded; };
    callbacks.compute = [&](const lpi::sweep::WorkUnit& u, int32_t) {
      lpi::coordinator::UnitReport r;
      if (loaded != u.checkpoint) ++loads;
      loaded = u.checkpoint;
      if (u.id == always_fails) {
        r.error = "unit 11 is broken";
      } else if (u.id == fails_once_on_rank_1 && comm.rank() == 1 && !failed_once) {
        failed_once = true;
        r.error = "transient";
      } else {
        ++computed[u.id];
      }
      return r;
    };
    lpi::coordinator::run_worker(comm, callbacks, grid);
  } else {
    lpi::coordinator::Scheduler scheduler(grid, {}, {3});
    const auto report = lpi::coordinator::run_coordinator(comm, scheduler);
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

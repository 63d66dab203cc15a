// lpi-bench-scheduler: the coordinator at scale. The real coordinator
// (coordinate_sweep: Scheduler, run_coordinator, the phase's book-keeping)
// leases the full OLMoE or OLMo-7B grid to N simulated workers (the real
// worker::serve_sweep over a synthetic executor that waits out a cost model:
// checkpoint loads with the prefetch, one projection per lease, per-prompt
// work, store writes) and prints the makespan against its lower bounds, the
// projection passes, what the prefetch hid and rank 0's CPU time per
// assignment. Alone: N worker threads over the in-process transport, on a
// virtual clock (default) or a scaled real one; under mpirun: every other
// rank is a worker, on a scaled real clock.
//   lpi-bench-scheduler --grid olmoe --workers 512
//   mpirun -np 4 lpi-bench-scheduler --grid olmoe --checkpoints 12 --time-scale 0.05
// Figures, and what the default cost model assumes: docs/PERFORMANCE.md.
#include <mpi.h>

#include <boost/log/core.hpp>
#include <boost/log/expressions.hpp>
#include <boost/log/trivial.hpp>
#include <boost/program_options.hpp>
#include <iostream>
#include <sstream>

#include "common/log/log.hpp"
#include "common/mpi/comm.hpp"
#include "coordinator/tools/bench_scheduler.hpp"
#include "worker/loop/worker_loop.hpp"

namespace po = boost::program_options;
namespace sim = lpi::coordinator::sim;

namespace {

struct Cli {
  std::string grid = "olmoe", clock = "auto", relation_prompts, trace;
  int workers = 8, checkpoints = 0, prompts_per_unit = 0, max_lease = 0;
  double time_scale = 0.001;
  sim::Hardware hw;
  double load = -1, projection = -1, prompt = -1, store_prompt = -1;
  bool check = false, verbose = false, help = false, no_prefetch = false;
};

po::options_description options(Cli& c) {
  po::options_description d(
      "lpi-bench-scheduler options (ASSUMED figures for one H100 by default)");
  // clang-format off
  d.add_options()
      ("help,h", po::bool_switch(&c.help), "show this help")
      ("grid", po::value(&c.grid)->default_value(c.grid), "olmoe (244 checkpoints, 64 prompts a unit) or olmo7b (557, 32)")
      ("workers", po::value(&c.workers)->default_value(c.workers), "worker threads (alone; under mpirun: the ranks but one)")
      ("checkpoints", po::value(&c.checkpoints)->default_value(0), "instead of the grid's (0: the grid's)")
      ("prompts-per-unit", po::value(&c.prompts_per_unit)->default_value(0), "instead of the grid's (0: the grid's)")
      ("relation-prompts", po::value(&c.relation_prompts), "prompts per relation, comma-separated (default: the 12 relations, 906 prompts)")
      ("max-lease", po::value(&c.max_lease)->default_value(0), "units per lease at most (lpi-sweep's --lease-units; 0: no cap)")
      ("clock", po::value(&c.clock)->default_value(c.clock), "virtual (threads only), real, or auto (virtual alone, real under mpirun)")
      ("time-scale", po::value(&c.time_scale)->default_value(c.time_scale), "real seconds per simulated second (real clock)")
      ("checkpoint-gb", po::value(&c.hw.checkpoint_gb)->default_value(c.hw.checkpoint_gb, "13.8"), "weights read per load (bf16, 6.9e9 parameters)")
      ("read-gbps", po::value(&c.hw.read_gbps)->default_value(c.hw.read_gbps), "checkpoint read rate per worker, GB/s")
      ("flops", po::value(&c.hw.flops)->default_value(c.hw.flops, "4e14"), "sustained bf16 matrix FLOP/s (projection, forward)")
      ("exp-rate", po::value(&c.hw.exps_per_second)->default_value(c.hw.exps_per_second, "3.75e12"), "fused log-sum-exp elements per second")
      ("store-gbps", po::value(&c.hw.store_gbps)->default_value(c.hw.store_gbps), "per-prompt tensors written per worker, GB/s")
      ("store-unit-seconds", po::value(&c.hw.store_unit_seconds)->default_value(c.hw.store_unit_seconds, "0.005"), "per unit: sums, flush, flag")
      ("load-seconds", po::value(&c.load)->default_value(-1), "L directly (-1: checkpoint-gb / read-gbps)")
      ("projection-seconds", po::value(&c.projection)->default_value(-1), "P directly (-1: from the shape and flops)")
      ("prompt-seconds", po::value(&c.prompt)->default_value(-1), "per prompt directly (-1: from the shape)")
      ("store-prompt-seconds", po::value(&c.store_prompt)->default_value(-1), "store per prompt directly (-1: from the shape)")
      ("no-prefetch", po::bool_switch(&c.no_prefetch), "workers ignore the prefetch hints (what the prefetch hides, by difference)")
      ("trace", po::value(&c.trace), "write every lease (worker, checkpoint, units, prompts, hint, start, load wait, end) to this CSV file (threads only)")
      ("check", po::bool_switch(&c.check), "exit 1 unless every unit was done once, leases >= checkpoints and makespan >= bound")
      ("verbose", po::bool_switch(&c.verbose), "the coordinator's log (info and up; default: warnings)");
  // clang-format on
  return d;
}

sim::SweepShape shape_of(const Cli& c) {
  sim::SweepShape s;
  if (c.grid == "olmoe") {
    s = sim::olmoe_shape();
  } else if (c.grid == "olmo7b") {
    s = sim::olmo7b_shape();
  } else {
    throw po::error("--grid " + c.grid + ": expected olmoe or olmo7b");
  }
  if (c.checkpoints > 0) s.checkpoints = c.checkpoints;
  if (c.prompts_per_unit > 0) s.prompts_per_unit = c.prompts_per_unit;
  if (!c.relation_prompts.empty()) {
    s.relation_prompts.clear();
    std::stringstream in(c.relation_prompts);
    std::string item;
    while (std::getline(in, item, ',')) s.relation_prompts.push_back(std::stoi(item));
  }
  return s;
}

sim::CostModel cost_of(const Cli& c, const sim::SweepShape& s) {
  auto cost = sim::cost_model(s, c.hw);
  if (c.load >= 0) cost.load_seconds = c.load;
  if (c.projection >= 0) cost.projection_seconds = c.projection;
  if (c.prompt >= 0) cost.prompt_seconds = c.prompt;
  if (c.store_prompt >= 0) cost.store_prompt_seconds = c.store_prompt;
  cost.prefetch = !c.no_prefetch;
  return cost;
}

constexpr int kStatFields = 12;
void pack(const sim::WorkerStats& s, double* out) {
  const double v[kStatFields] = {double(s.leases),
                                 double(s.units),
                                 double(s.loads),
                                 double(s.prefetches),
                                 double(s.prefetches_used),
                                 s.load_wait,
                                 s.load_hidden,
                                 s.prefetch_stall,
                                 s.busy,
                                 s.first_start,
                                 s.last_end,
                                 s.idle};
  std::copy(v, v + kStatFields, out);
}
sim::WorkerStats unpack(const double* v) {
  sim::WorkerStats s;
  s.leases = static_cast<int64_t>(v[0]);
  s.units = static_cast<int64_t>(v[1]);
  s.loads = static_cast<int64_t>(v[2]);
  s.prefetches = static_cast<int64_t>(v[3]);
  s.prefetches_used = static_cast<int64_t>(v[4]);
  s.load_wait = v[5];
  s.load_hidden = v[6];
  s.prefetch_stall = v[7];
  s.busy = v[8];
  s.first_start = v[9];
  s.last_end = v[10];
  s.idle = v[11];
  return s;
}

// Under mpirun: rank 0 coordinates, the others are workers, on one scaled
// clock started together (after a barrier). Rank 0 gets the result.
sim::BenchResult run_mpi(const lpi::mpi::Comm& comm, const lpi::sweep::Grid& grid,
                         const sim::CostModel& cost, double scale,
                         const lpi::coordinator::RunOptions& options) {
  lpi::mpi::MpiTransport world(comm);
  sim::BenchResult r;
  std::vector<std::atomic<int>> done(grid.units.size());
  sim::WorkerStats mine;
  lpi::mpi::check(MPI_Barrier(comm.get()), "barrier");
  sim::ScaledClock clock(scale);
  if (comm.rank() == 0) {
    sim::ClockedTransport zero(world, nullptr);
    sim::MemoryBook book(grid);
    lpi::coordinator::SweepPlan plan;
    plan.grid = &grid;
    plan.job_name = "synthetic";
    plan.store_path = "memory";
    plan.prompts = static_cast<std::size_t>(grid.prompt_count());
    plan.attribution = book.book();
    const auto wall = std::chrono::steady_clock::now();
    timespec a{}, b{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    r.summary = lpi::coordinator::coordinate_sweep(zero, plan, options);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    r.coordinator_cpu = double(b.tv_sec - a.tv_sec) + 1e-9 * double(b.tv_nsec - a.tv_nsec);
    r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count();
    r.messages = zero.received();
  } else {
    sim::SyntheticExecutor executor(comm.rank(), cost, clock, done);
    lpi::worker::serve_sweep(world, executor, grid);
    mine = executor.stats();
  }
  std::vector<double> packed(kStatFields), all(static_cast<std::size_t>(kStatFields * comm.size()));
  pack(mine, packed.data());
  lpi::mpi::check(MPI_Gather(packed.data(), kStatFields, MPI_DOUBLE, all.data(), kStatFields,
                             MPI_DOUBLE, 0, comm.get()),
                  "gather");
  std::vector<int> counts(grid.units.size()), total(grid.units.size(), 0);
  for (std::size_t u = 0; u < counts.size(); ++u) counts[u] = done[u];
  lpi::mpi::check(MPI_Reduce(counts.data(), total.data(), static_cast<int>(counts.size()), MPI_INT,
                             MPI_SUM, 0, comm.get()),
                  "reduce");
  if (comm.rank() == 0) {
    for (int w = 1; w < comm.size(); ++w) {
      r.workers.push_back(unpack(&all[static_cast<std::size_t>(kStatFields * w)]));
      r.makespan = std::max(r.makespan, r.workers.back().last_end);
    }
    r.done_counts = total;
  }
  return r;
}

int run(int argc, char** argv, const lpi::mpi::Comm& comm) {
  Cli cli;
  const auto desc = options(cli);
  po::variables_map vm;
  po::store(po::parse_command_line(argc, argv, desc), vm);
  po::notify(vm);
  if (cli.help) {
    if (comm.rank() == 0) std::cout << desc << "\n";
    return 0;
  }
  lpi::log::init_logging(comm.rank(), false);
  boost::log::core::get()->set_filter(
      boost::log::trivial::severity >=
      (cli.verbose ? boost::log::trivial::info : boost::log::trivial::warning));
  const auto shape = shape_of(cli);
  const auto cost = cost_of(cli, shape);
  const auto grid = sim::make_grid(shape);
  const bool mpi = comm.size() > 1;
  if (cli.clock == "virtual" && mpi)
    throw po::error("--clock virtual: one process only (ranks have no common virtual clock)");
  if (cli.clock != "virtual" && cli.clock != "real" && cli.clock != "auto")
    throw po::error("--clock " + cli.clock + ": expected virtual, real or auto");
  const bool virtual_clock = !mpi && cli.clock != "real";
  lpi::coordinator::RunOptions options;
  options.progress_seconds = 1e9;
  options.max_lease = cli.max_lease;
  if (!mpi && cli.workers < 1) throw po::error("--workers must be at least 1");
  const auto r = mpi ? run_mpi(comm, grid, cost, cli.time_scale, options)
                     : sim::run_in_process(grid, cost, cli.workers,
                                           virtual_clock ? 0 : cli.time_scale, options);
  if (comm.rank() != 0) return 0;
  std::cout << sim::report(shape, grid, cost, r, virtual_clock ? 0 : cli.time_scale);
  if (!cli.trace.empty()) sim::write_trace(cli.trace, r);
  if (mpi)
    std::cout << "transport: MPI, " << comm.size() - 1 << " worker ranks, time scale "
              << cli.time_scale << "\n";
  else if (!virtual_clock)
    std::cout << "transport: in-process threads, time scale " << cli.time_scale << "\n";
  if (!cli.check) return r.error.empty() ? 0 : 1;
  const auto broken = sim::check(grid, cost, r, virtual_clock);
  for (const auto& b : broken) std::cout << "CHECK FAILED: " << b << "\n";
  if (broken.empty())
    std::cout << "check: every unit done once, leases >= checkpoints, makespan >= bound\n";
  return broken.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rc = 1;
  try {
    const lpi::mpi::Comm comm(MPI_COMM_WORLD);
    rc = run(argc, argv, comm);
  } catch (const po::error& e) {
    std::cerr << "lpi-bench-scheduler: " << e.what() << " (see --help)\n";
    rc = 2;
  } catch (const std::exception& e) {
    std::cerr << "lpi-bench-scheduler: " << e.what() << "\n";
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size > 1) MPI_Abort(MPI_COMM_WORLD, 1);  // the other ranks wait in the loops
    rc = 1;
  }
  int worst = rc;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Finalize();
  return worst;
}

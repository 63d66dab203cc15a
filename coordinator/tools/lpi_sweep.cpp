// lpi-sweep: the checkpoint sweep. Under `mpirun -np N` rank 0 is the
// coordinator and ranks 1..N-1 are worker daemons, talking over MPI; started
// alone it is one process, the coordinator plus one worker thread over the
// in-process transport. Every rank opens the store (parallel HDF5). This
// file wires the two sides: the coordinator library never sees the worker.
//   mpirun -np 3 lpi-sweep --job jobs/sweep-tiny-olmoe.ini --store olmoe.h5
//   lpi-sweep --resume --store olmoe.h5          (redo what is not marked done)
//   lpi-sweep --status --store olmoe.h5          (what is done, per checkpoint)
//   lpi-sweep --job FILE --store FILE --dry-run  (the grid and the store size)
// Job keys can be overridden: --set section.key=value, or --section.key=value.
// Exit status: 0 every unit done; 1 units failed or left undone (resume);
// 2 bad input, nothing written; 3 aborted mid-run (resume); 4 a worker hung
// and never answered again, the job was ended by MPI_Abort (what is marked
// done is complete; resume for the rest); 75 stopped by SIGTERM or SIGINT
// (the units in flight finished; resume me).
#include <mpi.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <thread>

#include "common/log/log.hpp"
#include "common/mpi/comm.hpp"
#include "common/store/store_lock.hpp"
#include "common/sweep/stop.hpp"
#include "common/transport/in_process.hpp"
#include "coordinator/sweep_book.hpp"
#include "coordinator/sweep_run.hpp"
#include "coordinator/sweep_setup.hpp"
#include "lpi/lpi_config.hpp"
#include "worker/daemon/daemon.hpp"
#include "worker/loop/worker_loop.hpp"
#include "worker/share/mpi_groups.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
namespace co = lpi::coordinator;

namespace {

struct Cli {
  std::string job, store;
  std::vector<std::string> overrides;
  bool resume = false, dry_run = false, status = false, verbose = false, help = false;
  bool profile = false, create_only = false, skip_space_check = false;
  co::RunOptions run;
  int threads = 1;
  std::string share = "on";
};

po::options_description options(Cli& c) {
  po::options_description o("lpi-sweep: Gated-LPI over a model's checkpoints into an HDF5 store");
  // clang-format off
  o.add_options()
      ("help,h", po::bool_switch(&c.help), "show this help")
      ("job", po::value(&c.job), "the sweep's job file (INI; see jobs/)")
      ("store", po::value(&c.store), "the HDF5 store to create, resume or inspect")
      ("set", po::value(&c.overrides)->composing(), "override a job key: section.key=value (repeatable)")
      ("resume", po::bool_switch(&c.resume), "continue the store's sweep: redo the units not marked done")
      ("dry-run", po::bool_switch(&c.dry_run), "print the grid, the unit count and the store size; write nothing")
      ("create-only", po::bool_switch(&c.create_only),
       "create the store (every dataset of the job, nothing computed) and stop: --resume sweeps it")
      ("skip-space-check", po::bool_switch(&c.skip_space_check),
       "create the store even when its file system has less free space than the store's full "
       "size (the file is sparse until written): for benchmarks; a sweep that fills the disk "
       "fails its units")
      ("status", po::bool_switch(&c.status), "print what the store holds, per checkpoint")
      ("progress-every", po::value(&c.run.progress_seconds)->default_value(10.0), "seconds between progress lines")
      ("unit-timeout", po::value(&c.run.unit_timeout)->default_value(1800.0),
       "seconds a worker may take per unit of a lease (its checkpoint's load included) before the "
       "lease's units go to another worker and the silent one is taken as hung; 0: no limit")
      ("lease-units", po::value(&c.run.max_lease)->default_value(0),
       "units per lease at most (a worker computes a checkpoint's projections once per lease); "
       "0: a checkpoint's pending units, cut at the tail so that no worker idles")
      ("share-loads", po::value(&c.share)->default_value("on"),
       "on: when several workers of a node are leased the same checkpoint, one reads it and "
       "broadcasts its weights to the others (NCCL between GPUs, else MPI); off: each reads its own")
      ("share-window", po::value(&c.run.share_window)->default_value(0.0),
       "seconds a shared load stays open for more workers of the node after it opened")
      ("threads", po::value(&c.threads)->default_value(1),
       "CPU threads per worker (libtorch and OpenBLAS); stores are bit-equal for equal counts")
      ("profile", po::bool_switch(&c.profile),
       "log where each attribution lease's time went (load, forward, lens, projection, "
       "log-sum-exp, store, peak memory) and the same per layer")
      ("verbose,v", po::bool_switch(&c.verbose), "log every unit");
  // clang-format on
  return o;
}

// Parses the command line; `--section.key=value` (or `--section.key value`)
// anywhere is a job override.
Cli parse(int argc, char** argv) {
  Cli c;
  const auto o = options(c);
  const auto parsed = po::command_line_parser(argc, argv).options(o).allow_unregistered().run();
  po::variables_map vm;
  po::store(parsed, vm);
  po::notify(vm);
  for (const auto& opt : parsed.options) {
    if (!opt.unregistered) continue;
    const auto& key = opt.string_key;
    if (key.find('.') == std::string::npos || opt.value.size() != 1) {
      throw po::error("unknown option '" +
                      (opt.original_tokens.empty() ? key : opt.original_tokens[0]) + "'");
    }
    c.overrides.push_back(key + "=" + opt.value[0]);
  }
  if (c.run.max_lease < 0) throw po::error("--lease-units must be 0 (no cap) or more");
  if (c.run.unit_timeout < 0) throw po::error("--unit-timeout must be 0 (no limit) or more");
  if (c.create_only && (c.resume || c.dry_run || c.status))
    throw po::error("--create-only creates a new store: not with --resume, --dry-run or --status");
  if (c.share != "on" && c.share != "off")
    throw po::error("--share-loads must be on or off, not '" + c.share + "'");
  if (c.run.share_window < 0) throw po::error("--share-window must be 0 or more");
  c.run.share_loads = c.share == "on";
  return c;
}

std::string now_utc() {
  const auto t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string host() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

// Runs `body` on every rank; if it threw anywhere, every rank learns it, rank
// 0 prints the lowest failing rank's message, and all return `code`.
template <class Body>
std::optional<int> together(lpi::transport::Transport& t, int code, Body&& body) {
  std::string error;
  try {
    body();
  } catch (const std::exception& e) {
    error = e.what();
  }
  const auto failed = t.agree_error(error);
  if (!failed) return std::nullopt;
  if (t.rank() == 0) std::cerr << "lpi-sweep: " << failed->message << "\n";
  return code;
}

// The sweep over an open store: rank 0 coordinates, the others serve as
// worker daemons; one process runs a worker thread beside the coordinator.
co::RunSummary sweep(const lpi::mpi::Comm& comm, lpi::transport::Transport& world,
                     lpi::store::SweepStore& store, const lpi::daemon::DaemonOptions& daemon,
                     const co::RunOptions& options) {
  const auto& grid = store.description().grid;
  if (comm.size() > 1) {
    if (comm.rank() != 0) {
      lpi::daemon::WorkerDaemon executor(store, daemon);
      lpi::worker::serve_sweep(world, executor, grid);
      return {};
    }
    return co::coordinate_sweep(world, co::store_plan(store, [](int w) { return w; }), options);
  }
  int level = 0;
  MPI_Query_thread(&level);
  if (level < MPI_THREAD_SERIALIZED)
    throw std::runtime_error(
        "this MPI library does not provide MPI_THREAD_SERIALIZED, which a one-process run needs "
        "(its worker thread writes the store): run under mpirun -np 2 or more");
  lpi::transport::InProcessHub hub(2);
  lpi::daemon::WorkerDaemon executor(store, daemon);
  std::string worker_error;
  std::thread worker([&] {
    try {
      lpi::worker::serve_sweep(hub.endpoint(1), executor, grid);
    } catch (const std::exception& e) {
      worker_error = e.what();
      hub.endpoint(1).leave();
    }
  });
  co::RunSummary summary;
  try {
    // The worker thread is this process: units/rank records rank 0.
    summary = co::coordinate_sweep(hub.endpoint(0), co::store_plan(store, [](int) { return 0; }),
                                   options);
    if (!summary.hung.empty()) {
      worker.detach();  // it never answered again: the caller ends the process
      return summary;
    }
  } catch (const std::exception& e) {
    // The worker thread cannot go on without the coordinator, and unwinding
    // would destroy what it uses: end the job here. What is marked done stays.
    LPI_LOG(fatal) << e.what() << "; aborting the job (resume with --resume --store "
                   << store.path() << ")";
    MPI_Abort(comm.get(), 3);
  }
  worker.join();
  if (!worker_error.empty()) throw std::runtime_error("the worker thread failed: " + worker_error);
  return summary;
}

int run(int argc, char** argv, const lpi::mpi::Comm& comm) {
  lpi::mpi::MpiTransport world(comm);
  Cli cli;
  if (auto rc = together(world, 2, [&] { cli = parse(argc, argv); })) return *rc;
  lpi::log::init_logging(comm.rank(), cli.verbose);
  if (cli.help) {
    if (comm.rank() == 0) {
      std::cout
          << "usage: mpirun -np N lpi-sweep --job FILE --store FILE.h5   (or without mpirun: one "
             "process)\n"
             "       lpi-sweep --resume --store FILE.h5 | --status --store FILE.h5\n"
             "       any job key also as --section.key=value (e.g. --units.prompts_per_unit=16)\n\n"
          << options(cli)
          << "\nexit status: 0 every unit done; 1 units failed or left undone (resume); 2 bad "
             "input\n"
             "or a store in use, nothing written; 3 aborted mid-run (resume); 4 a worker hung and\n"
             "never answered, the job was ended (what is marked done is complete; resume); 75\n"
             "stopped by SIGTERM or SIGINT: the units in flight finished, resume me (a second\n"
             "signal exits at once, also 75)\n";
    }
    return 0;
  }
  if (cli.status) {
    if (comm.rank() != 0) return 0;
    if (cli.store.empty()) throw po::error("--status needs --store");
    std::cout << co::status_text(cli.store, lpi::store::read_store_info(cli.store));
    return 0;
  }
  lpi::store::SweepDescription description;
  lpi::sweep::SweepJob job;
  std::optional<lpi::store::StoreLock> lock;  // rank 0's, for the whole run
  if (auto rc = together(world, 2, [&] {
        if (cli.store.empty()) throw po::error("--store is required");
        // One run per store at a time: taken before anything is looked at.
        if (comm.rank() == 0 && !cli.dry_run) lock.emplace(cli.store, "lpi-sweep " LPI_VERSION);
        if (cli.resume) {
          auto info = lpi::store::read_store_info(cli.store);
          if (!cli.job.empty()) {
            job = lpi::sweep::read_sweep_job(cli.job, cli.overrides);
          } else {
            job = lpi::sweep::job_from_settings(info.description.job,
                                                "the job stored in " + cli.store, cli.overrides);
          }
          const auto diff =
              co::job_differences(info.description.job, lpi::sweep::job_settings(job));
          if (!diff.empty()) {
            throw co::SetupError("store " + cli.store + " was written by a different job:\n" +
                                 diff + "resume it with the job it was started with (or no --job)");
          }
          const auto moved =
              co::checkpoint_moves(info.description, lpi::sweep::select_checkpoints(job));
          if (!moved.empty()) {
            throw co::SetupError("store " + cli.store +
                                 " was written from other folders than the job selects now (a "
                                 "hub cache ref moved to another commit?):\n" +
                                 moved +
                                 "a resume goes on with the store's folders: point the refs back, "
                                 "or start a new store");
          }
          const auto changed = co::checkpoint_changes(info.description);
          if (!changed.empty()) {
            throw co::SetupError("checkpoints of " + cli.store +
                                 " changed since it was written:\n" + changed +
                                 "its results would mix two versions; start a new store");
          }
          description = std::move(info.description);
        } else {
          if (cli.job.empty()) throw po::error("--job is required (or --resume, --status)");
          job = lpi::sweep::read_sweep_job(cli.job, cli.overrides);
          description = co::describe_sweep(job);
          if (!cli.dry_run && fs::exists(cli.store)) {
            throw co::SetupError("store " + cli.store +
                                 " exists: continue it with --resume, or choose another --store");
          }
          if (!cli.dry_run && !cli.skip_space_check) co::check_free_space(cli.store, description);
        }
      })) {
    return *rc;
  }
  if (cli.dry_run) {
    if (comm.rank() == 0) std::cout << co::dry_run_text(description);
    return 0;
  }
  std::string record;
  if (comm.rank() == 0) {
    record = now_utc() + " " + (cli.resume ? "resume" : "start") + ": lpi-sweep " + LPI_VERSION +
             ", " + "ranks " + std::to_string(comm.size()) + ", host " + host();
  }
  record = world.broadcast(record);
  const auto t_store = std::chrono::steady_clock::now();
  std::optional<lpi::store::SweepStore> store;
  if (auto rc = together(world, 1, [&] {
        store.emplace(cli.resume ? lpi::store::SweepStore::open(comm.get(), cli.store, record)
                                 : lpi::store::SweepStore::create(comm.get(), cli.store,
                                                                  description, record));
      })) {
    return *rc;
  }
  if (cli.create_only) {
    if (comm.rank() == 0) store->append_run(now_utc() + " end: created only (--create-only)");
    store.reset();  // closed on every rank (collective)
    if (comm.rank() == 0) {
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t_store).count();
      std::cout << "created " << cli.store << " in " << seconds << " s ("
                << description.grid.units.size() << " units, nothing computed; lpi-sweep "
                << "--resume --store " << cli.store << " sweeps it)\n";
    }
    return 0;
  }
  // The engine's settings from the job (local_rank: below).
  lpi::daemon::DaemonOptions daemon{job.lens, job.target,     job.dtype,           job.device,
                                    0,        job.batch_size, job.batch_invariant, cli.threads};
  daemon.profile = cli.profile;
  cli.run.max_attempts = job.max_attempts;
  cli.run.stop_signal = [] { return lpi::sweep::stop_requested(); };
  {  // The daemon's rank within its node picks its GPU among the node's (collective).
    MPI_Comm node;
    lpi::mpi::check(
        MPI_Comm_split_type(comm.get(), MPI_COMM_TYPE_SHARED, comm.rank(), MPI_INFO_NULL, &node),
        "split by node");
    MPI_Comm_rank(node, &daemon.local_rank);
    // The node's name in shared loads: its lowest rank.
    int lowest = comm.rank();
    lpi::mpi::check(MPI_Allreduce(MPI_IN_PLACE, &lowest, 1, MPI_INT, MPI_MIN, node),
                    "the node's lowest rank");
    daemon.share_node = lowest;
    MPI_Comm_free(&node);
  }
  // The groups of shared loads, over a duplicate of the world (collective).
  std::shared_ptr<lpi::share::Groups> groups;
  if (comm.size() > 1 && cli.run.share_loads) {
    groups = lpi::share::mpi_groups(comm.get());
    daemon.groups = groups.get();
  }
  co::RunSummary summary;
  try {
    summary = sweep(comm, world, *store, daemon, cli.run);
  } catch (const std::exception& e) {
    // The other ranks cannot go on without this one; what is marked done stays.
    LPI_LOG(fatal) << e.what() << "; aborting the job (resume with --resume --store " << cli.store
                   << ")";
    MPI_Abort(comm.get(), 3);
  }
  std::string end;
  if (comm.rank() == 0) {
    end = now_utc() + " end: " + std::to_string(summary.done) + "/" +
          std::to_string(summary.total) + " units done, " + std::to_string(summary.given_up) +
          " given up";
    if (summary.stop_signal)
      end += ", stopped by " + std::string(lpi::sweep::signal_name(summary.stop_signal));
    for (int w : summary.retired) end += ", rank " + std::to_string(w) + " hung (answered later)";
    if (!summary.hung.empty()) {
      // A silent rank cannot take part in closing the file together: record
      // the end (raw data, like every write after creation) and stop the job.
      std::string ranks;
      for (int w : summary.hung) ranks += (ranks.empty() ? "" : ", ") + std::to_string(w);
      store->append_run(end + ", rank(s) " + ranks +
                        " hung and never answered: ended by MPI_Abort");
      LPI_LOG(fatal) << "rank(s) " << ranks << " hung and never answered again; ending the job "
                     << "(what is marked done is complete; resume with --resume --store "
                     << cli.store << "; check the node of rank(s) " << ranks << ")";
      MPI_Abort(comm.get(), summary.stop_signal ? lpi::sweep::kExitResume : 4);
    }
  }
  store->close(world.broadcast(end));
  int rc = summary.stop_signal ? lpi::sweep::kExitResume : summary.done < summary.total ? 1 : 0;
  MPI_Bcast(&rc, 1, MPI_INT, 0, comm.get());
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  // Serialized: a one-process run's worker thread writes the store (MPI-IO)
  // too, never at the same time as the coordinator (the store's lock).
  // SIGTERM/SIGINT stop the sweep well (stop.hpp), from the start: a
  // one-process MPI_Init alone takes a second or two.
  lpi::sweep::install_stop_handlers();
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  int rc = 1;
  try {
    const lpi::mpi::Comm comm(MPI_COMM_WORLD);
    rc = run(argc, argv, comm);
  } catch (const po::error& e) {
    std::cerr << "lpi-sweep: " << e.what() << " (see --help)\n";
    rc = 2;
  } catch (const std::exception& e) {
    std::cerr << "lpi-sweep: " << e.what() << "\n";
    rc = 1;
  }
  MPI_Finalize();
  return rc;
}

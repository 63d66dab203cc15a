// lpi-sweep: the checkpoint sweep. Under `mpirun -np N` rank 0 is the
// coordinator and ranks 1..N-1 are worker daemons; started alone it is one
// process that does both. Every rank opens the store (parallel HDF5).
//   mpirun -np 3 lpi-sweep --job jobs/sweep-tiny-olmoe.ini --store olmoe.h5
//   lpi-sweep --resume --store olmoe.h5          (redo what is not marked done)
//   lpi-sweep --status --store olmoe.h5          (what is done, per checkpoint)
//   lpi-sweep --job FILE --store FILE --dry-run  (the grid and the store size)
// Job keys can be overridden: --set section.key=value, or --section.key=value.
#include <mpi.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "common/log/log.hpp"
#include "common/mpi/comm.hpp"
#include "coordinator/sweep_run.hpp"
#include "coordinator/sweep_setup.hpp"
#include "lpi/lpi_config.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
namespace co = lpi::coordinator;

namespace {

struct Cli {
  std::string job, store;
  std::vector<std::string> overrides;
  bool resume = false, dry_run = false, status = false, verbose = false, help = false;
  co::RunOptions run;
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
      ("status", po::bool_switch(&c.status), "print what the store holds, per checkpoint")
      ("progress-every", po::value(&c.run.progress_seconds)->default_value(10.0), "seconds between progress lines")
      ("threads", po::value(&c.run.threads)->default_value(1),
       "CPU threads per worker (libtorch and OpenBLAS); stores are bit-equal for equal counts")
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
      throw po::error("unknown option '" + (opt.original_tokens.empty() ? key : opt.original_tokens[0]) + "'");
    }
    c.overrides.push_back(key + "=" + opt.value[0]);
  }
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
// 0 (or the lowest failing rank) prints the message, and all return `code`.
template <class Body>
std::optional<int> together(const lpi::mpi::Comm& comm, int code, Body&& body) {
  std::string error;
  try {
    body();
  } catch (const std::exception& e) {
    error = e.what();
  }
  const int failed = lpi::mpi::max_over_ranks(comm, error.empty() ? -1 : comm.size() - comm.rank());
  if (failed < 0) return std::nullopt;
  if (comm.size() - comm.rank() == failed) std::cerr << "lpi-sweep: " << error << "\n";
  return code;
}

int run(int argc, char** argv, const lpi::mpi::Comm& comm) {
  Cli cli;
  if (auto rc = together(comm, 2, [&] { cli = parse(argc, argv); })) return *rc;
  lpi::log::init_logging(comm.rank(), cli.verbose);
  if (cli.help) {
    if (comm.rank() == 0) {
      std::cout << "usage: mpirun -np N lpi-sweep --job FILE --store FILE.h5   (or without mpirun: one "
                   "process)\n"
                   "       lpi-sweep --resume --store FILE.h5 | --status --store FILE.h5\n"
                   "       any job key also as --section.key=value (e.g. --units.prompts_per_unit=16)\n\n"
                << options(cli) << "\n";
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
  if (auto rc = together(comm, 2, [&] {
        if (cli.store.empty()) throw po::error("--store is required");
        if (cli.resume) {
          auto info = lpi::store::read_store_info(cli.store);
          if (!cli.job.empty()) {
            job = lpi::sweep::read_sweep_job(cli.job, cli.overrides);
          } else {
            job = lpi::sweep::job_from_settings(info.description.job, "the job stored in " + cli.store,
                                                cli.overrides);
          }
          const auto diff = co::job_differences(info.description.job, lpi::sweep::job_settings(job));
          if (!diff.empty()) {
            throw co::SetupError("store " + cli.store + " was written by a different job:\n" + diff +
                                 "resume it with the job it was started with (or no --job)");
          }
          const auto changed = co::checkpoint_changes(info.description);
          if (!changed.empty()) {
            throw co::SetupError("checkpoints of " + cli.store + " changed since it was written:\n" +
                                 changed + "its results would mix two versions; start a new store");
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
  record = lpi::mpi::broadcast(comm, record);
  std::optional<lpi::store::SweepStore> store;
  if (auto rc = together(comm, 1, [&] {
        store.emplace(cli.resume ? lpi::store::SweepStore::open(comm.get(), cli.store, record)
                                 : lpi::store::SweepStore::create(comm.get(), cli.store,
                                                                  description, record));
      })) {
    return *rc;
  }
  cli.run.daemon.lens = job.lens;
  cli.run.daemon.target = job.target;
  cli.run.daemon.dtype = job.dtype;
  cli.run.daemon.device = job.device;
  cli.run.daemon.batch_size = job.batch_size;
  cli.run.daemon.batch_invariant = job.batch_invariant;
  cli.run.max_attempts = job.max_attempts;
  co::RunSummary summary;
  try {
    summary = co::run_sweep(comm, *store, cli.run);
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
  }
  store->close(lpi::mpi::broadcast(comm, end));
  int rc = summary.given_up > 0 ? 1 : 0;
  MPI_Bcast(&rc, 1, MPI_INT, 0, comm.get());
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
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

#include "coordinator/sweep_run.hpp"

#include <chrono>
#include <cstdio>
#include <set>

#include "common/log/log.hpp"
#include "coordinator/loop.hpp"

namespace lpi::coordinator {
using clock_type = std::chrono::steady_clock;

namespace {

std::string duration(double s) {
  char buf[32];
  const auto t = static_cast<long long>(s);
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", t / 3600, t / 60 % 60, t % 60);
  return buf;
}

// Rank 0's view of the run: done flags, aggregates, progress and where the
// workers' time went.
class Tracker {
 public:
  Tracker(store::SweepStore& store, const Scheduler& scheduler, double interval, int workers)
      : store_(store), interval_(interval), workers_(workers), start_(clock_type::now()),
        last_(start_), done_at_start_(scheduler.done_count()) {
    aggregated_ = store_.aggregated_flags();
    for (int32_t c = 0; c < static_cast<int32_t>(aggregated_.size()); ++c) aggregate_if_done(scheduler, c);
  }

  void unit_done(int worker, const sweep::UnitDone& d) {
    store_.mark_done(d.unit, worker, static_cast<float>(d.compute_seconds + d.load_seconds + d.store_seconds));
    const auto& u = store_.description().grid.units[d.unit];
    touched_.insert(u.checkpoint);
    prompts_ += u.prompt_count;
    compute_ += d.compute_seconds;
    load_ += d.load_seconds;
    store_seconds_ += d.store_seconds;
    wait_ += d.wait_seconds;
    LPI_LOG(debug) << "unit " << d.unit << " (checkpoint " << u.checkpoint << ", " << u.prompt_count
                   << " prompts) done by rank " << worker << ": compute " << d.compute_seconds
                   << " s, load " << d.load_seconds << " s, store " << d.store_seconds << " s";
  }

  void after(const Scheduler& scheduler) {
    for (auto c : touched_) aggregate_if_done(scheduler, c);
    touched_.clear();
    const auto now = clock_type::now();
    if (std::chrono::duration<double>(now - last_).count() >= interval_) {
      last_ = now;
      progress(scheduler);
    }
  }

  void progress(const Scheduler& s) const {
    const double t = std::chrono::duration<double>(clock_type::now() - start_).count();
    const auto done_now = s.done_count() - done_at_start_;
    const auto left = s.total() - s.done_count() - s.given_up().size();
    const double rate = t > 0 ? static_cast<double>(done_now) / t : 0;
    char line[256];
    std::snprintf(line, sizeof line,
                  "units %zu/%zu (%.1f%%), checkpoints %zu/%zu, %.1f prompts/s, ETA %s, failed %zu",
                  s.done_count(), s.total(), 100.0 * s.done_count() / std::max<std::size_t>(1, s.total()),
                  s.checkpoints_done(), store_.description().grid.checkpoints.size(),
                  t > 0 ? prompts_ / t : 0.0, rate > 0 ? duration(left / rate).c_str() : "?",
                  s.given_up().size());
    LPI_LOG(info) << line;
  }

  void report(const Scheduler& s) const {
    const double t = std::chrono::duration<double>(clock_type::now() - start_).count();
    const auto done_now = s.done_count() - done_at_start_;
    const double busy = workers_ * t;
    char line[320];
    std::snprintf(line, sizeof line,
                  "this run: %zu units, %lld prompts in %.2f s with %d worker(s): %.2f units/s, "
                  "%.1f prompts/s; worker time: compute %.1f%%, waiting for a checkpoint load %.1f%%, "
                  "writing the store %.1f%%, waiting on the coordinator %.1f%%; aggregates %.2f s",
                  done_now, static_cast<long long>(prompts_), t, workers_, t > 0 ? done_now / t : 0.0,
                  t > 0 ? prompts_ / t : 0.0, 100 * compute_ / busy, 100 * load_ / busy,
                  100 * store_seconds_ / busy, 100 * wait_ / busy, aggregate_seconds_);
    LPI_LOG(info) << line;
  }

 private:
  void aggregate_if_done(const Scheduler& s, int32_t c) {
    if (aggregated_[c] || !s.checkpoint_done(c)) return;
    const auto t = clock_type::now();
    store_.aggregate(c);
    aggregated_[c] = 1;
    aggregate_seconds_ += std::chrono::duration<double>(clock_type::now() - t).count();
    LPI_LOG(debug) << "checkpoint " << store_.description().grid.checkpoints[c].name << " aggregated";
  }

  store::SweepStore& store_;
  double interval_;
  int workers_;
  clock_type::time_point start_, last_;
  std::size_t done_at_start_;
  std::vector<uint8_t> aggregated_;
  std::set<int32_t> touched_;
  int64_t prompts_ = 0;
  double compute_ = 0, load_ = 0, store_seconds_ = 0, wait_ = 0, aggregate_seconds_ = 0;
};

void report_given_up(const Scheduler& s, const sweep::Grid& grid) {
  for (const auto& g : s.given_up()) {
    const auto& u = grid.units[g.unit];
    LPI_LOG(error) << "unit " << g.unit << " (checkpoint " << grid.checkpoints[u.checkpoint].name
                   << ", prompts " << u.first_prompt << ".." << u.first_prompt + u.prompt_count - 1
                   << ") failed " << g.errors.size() << " times, given up; last error: "
                   << g.errors.back();
  }
}

}  // namespace

RunSummary run_sweep(const mpi::Comm& comm, store::SweepStore& store, RunOptions options) {
  const auto& grid = store.description().grid;
  options.daemon.threads = options.threads;
  RunSummary summary;
  summary.total = grid.units.size();
  {  // The daemon's rank within its node picks its GPU among the node's (collective).
    MPI_Comm node;
    mpi::check(MPI_Comm_split_type(comm.get(), MPI_COMM_TYPE_SHARED, comm.rank(), MPI_INFO_NULL,
                                   &node),
               "split by node");
    MPI_Comm_rank(node, &options.daemon.local_rank);
    MPI_Comm_free(&node);
  }
  std::vector<bool> done;
  for (auto f : store.done_flags()) done.push_back(f != 0);
  if (comm.rank() != 0) {
    daemon::WorkerDaemon daemon(store, options.daemon);
    WorkerCallbacks callbacks;
    callbacks.loaded = [&] { return daemon.loaded(); };
    callbacks.compute = [&](const sweep::WorkUnit& u, int32_t prefetch) {
      log::UnitScope scope(u.id);
      const auto o = daemon.run(u, prefetch);
      if (o.error) LPI_LOG(warning) << "unit failed: " << *o.error;
      return UnitReport{o.error, o.compute_seconds, o.load_seconds, o.store_seconds};
    };
    run_worker(comm, callbacks, grid);
    return summary;
  }
  Scheduler scheduler(grid, done, {options.max_attempts});
  const int workers = std::max(1, comm.size() - 1);
  LPI_LOG(info) << "sweep " << store.description().job_name << " into " << store.path() << ": "
                << grid.checkpoints.size() << " checkpoints, " << store.description().prompt_relation.size()
                << " prompts, " << grid.units.size() << " units (" << scheduler.pending_count()
                << " to do), " << workers << " worker(s)";
  Tracker tracker(store, scheduler, options.progress_seconds, workers);
  if (comm.size() == 1) {
    daemon::WorkerDaemon daemon(store, options.daemon);
    while (auto unit = scheduler.next(1, daemon.loaded())) {
      daemon::UnitOutcome o;
      {
        log::UnitScope scope(unit->id);
        o = daemon.run(*unit, scheduler.prefetch_hint(1));
      }
      if (o.error) {
        LPI_LOG(warning) << "unit failed: " << *o.error;
        scheduler.failed(1, unit->id, *o.error);
      } else {
        tracker.unit_done(0, {unit->id, o.compute_seconds, o.load_seconds, o.store_seconds, 0});
        scheduler.completed(1, unit->id);
      }
      tracker.after(scheduler);
    }
  } else {
    CoordinatorHooks hooks;
    hooks.on_done = [&](int worker, const sweep::UnitDone& d) { tracker.unit_done(worker, d); };
    hooks.after_message = [&](const Scheduler& s) { tracker.after(s); };
    run_coordinator(comm, scheduler, hooks);
  }
  tracker.progress(scheduler);
  tracker.report(scheduler);
  report_given_up(scheduler, grid);
  summary.done = scheduler.done_count();
  summary.given_up = scheduler.given_up().size();
  return summary;
}

}  // namespace lpi::coordinator

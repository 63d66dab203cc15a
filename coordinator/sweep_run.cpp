#include "coordinator/sweep_run.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <optional>
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

// One pass over the grid: the attribution, or the ablation after it. Each
// has its own unit flags, its per-checkpoint completion and its computation.
struct Phase {
  std::string name;
  std::function<std::vector<uint8_t>()> unit_flags, checkpoint_flags;
  std::function<void(int32_t unit, int32_t rank, float seconds)> mark;  // rank 0
  std::function<void(int32_t checkpoint)> complete;                     // rank 0
  std::function<daemon::UnitOutcome(daemon::WorkerDaemon&, const sweep::WorkUnit&, int32_t)>
      compute;
};

Phase attribution_phase(store::SweepStore& store) {
  return {"attribution",
          [&store] { return store.done_flags(); },
          [&store] { return store.aggregated_flags(); },
          [&store](int32_t u, int32_t rank, float seconds) { store.mark_done(u, rank, seconds); },
          [&store](int32_t c) { store.aggregate(c); },
          [](daemon::WorkerDaemon& d, const sweep::WorkUnit& u, int32_t prefetch) {
            return d.run(u, prefetch);
          }};
}

Phase ablation_phase(store::SweepStore& store) {
  return {"ablation",
          [&store] { return store.ablation_unit_flags(); },
          [&store] { return store.ablation_flags(); },
          [&store](int32_t u, int32_t, float) { store.mark_ablation_done(u); },
          [&store](int32_t c) { store.aggregate_ablation(c); },
          [](daemon::WorkerDaemon& d, const sweep::WorkUnit& u, int32_t prefetch) {
            return d.run_ablation(u, prefetch);
          }};
}

// Rank 0's view of a phase: done flags, per-checkpoint completion, progress
// and where the workers' time went.
class Tracker {
 public:
  Tracker(store::SweepStore& store, const Phase& phase, const Scheduler& scheduler, double interval,
          int workers)
      : store_(store),
        phase_(phase),
        interval_(interval),
        workers_(workers),
        start_(clock_type::now()),
        last_(start_),
        done_at_start_(scheduler.done_count()) {
    aggregated_ = phase_.checkpoint_flags();
    for (int32_t c = 0; c < static_cast<int32_t>(aggregated_.size()); ++c) aggregate_if_done(scheduler, c);
  }

  void unit_done(int worker, const sweep::UnitDone& d) {
    phase_.mark(d.unit, worker,
                static_cast<float>(d.compute_seconds + d.load_seconds + d.store_seconds));
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
    std::snprintf(
        line, sizeof line,
        "%s: units %zu/%zu (%.1f%%), checkpoints %zu/%zu, %.1f prompts/s, ETA %s, failed %zu",
        phase_.name.c_str(), s.done_count(), s.total(),
        100.0 * s.done_count() / std::max<std::size_t>(1, s.total()), s.checkpoints_done(),
        store_.description().grid.checkpoints.size(), t > 0 ? prompts_ / t : 0.0,
        rate > 0 ? duration(left / rate).c_str() : "?", s.given_up().size());
    LPI_LOG(info) << line;
  }

  void report(const Scheduler& s) const {
    const double t = std::chrono::duration<double>(clock_type::now() - start_).count();
    const auto done_now = s.done_count() - done_at_start_;
    const double busy = workers_ * t;
    char line[360];
    std::snprintf(
        line, sizeof line,
        "this run's %s: %zu units, %lld prompts in %.2f s with %d worker(s): %.2f units/s, "
        "%.1f prompts/s; worker time: compute %.1f%%, waiting for a checkpoint load %.1f%%, "
        "writing the store %.1f%%, waiting on the coordinator %.1f%%; aggregates %.2f s",
        phase_.name.c_str(), done_now, static_cast<long long>(prompts_), t, workers_,
        t > 0 ? done_now / t : 0.0, t > 0 ? prompts_ / t : 0.0, 100 * compute_ / busy,
        100 * load_ / busy, 100 * store_seconds_ / busy, 100 * wait_ / busy, aggregate_seconds_);
    LPI_LOG(info) << line;
  }

 private:
  void aggregate_if_done(const Scheduler& s, int32_t c) {
    if (aggregated_[c] || !s.checkpoint_done(c)) return;
    const auto t = clock_type::now();
    phase_.complete(c);
    aggregated_[c] = 1;
    aggregate_seconds_ += std::chrono::duration<double>(clock_type::now() - t).count();
    LPI_LOG(debug) << "checkpoint " << store_.description().grid.checkpoints[c].name << " aggregated";
  }

  store::SweepStore& store_;
  const Phase& phase_;
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

// One phase on every rank: rank 0 schedules (or, alone, also computes), the
// others are worker daemons. Returns rank 0's counts.
RunSummary run_phase(const mpi::Comm& comm, store::SweepStore& store, const Phase& phase,
                     daemon::WorkerDaemon* daemon, const RunOptions& options) {
  const auto& grid = store.description().grid;
  RunSummary summary;
  summary.total = grid.units.size();
  if (comm.rank() != 0) {
    WorkerCallbacks callbacks;
    callbacks.loaded = [&] { return daemon->loaded(); };
    callbacks.compute = [&](const sweep::WorkUnit& u, int32_t prefetch) {
      log::UnitScope scope(u.id);
      const auto o = phase.compute(*daemon, u, prefetch);
      if (o.error) LPI_LOG(warning) << phase.name << " of the unit failed: " << *o.error;
      return UnitReport{o.error, o.compute_seconds, o.load_seconds, o.store_seconds};
    };
    run_worker(comm, callbacks, grid);
    return summary;
  }
  std::vector<bool> done;
  for (auto f : phase.unit_flags()) done.push_back(f != 0);
  Scheduler scheduler(grid, done, {options.max_attempts});
  const int workers = std::max(1, comm.size() - 1);
  LPI_LOG(info) << phase.name << " of " << store.description().job_name << " into " << store.path()
                << ": " << grid.checkpoints.size() << " checkpoints, "
                << store.description().prompt_relation.size() << " prompts, " << grid.units.size()
                << " units (" << scheduler.pending_count() << " to do), " << workers
                << " worker(s)";
  Tracker tracker(store, phase, scheduler, options.progress_seconds, workers);
  if (comm.size() == 1) {
    while (auto unit = scheduler.next(1, daemon->loaded())) {
      daemon::UnitOutcome o;
      {
        log::UnitScope scope(unit->id);
        o = phase.compute(*daemon, *unit, scheduler.prefetch_hint(1));
      }
      if (o.error) {
        LPI_LOG(warning) << phase.name << " of the unit failed: " << *o.error;
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

}  // namespace

RunSummary run_sweep(const mpi::Comm& comm, store::SweepStore& store, RunOptions options) {
  options.daemon.threads = options.threads;
  {  // The daemon's rank within its node picks its GPU among the node's (collective).
    MPI_Comm node;
    mpi::check(
        MPI_Comm_split_type(comm.get(), MPI_COMM_TYPE_SHARED, comm.rank(), MPI_INFO_NULL, &node),
        "split by node");
    MPI_Comm_rank(node, &options.daemon.local_rank);
    MPI_Comm_free(&node);
  }
  // One daemon for both phases: the checkpoint it holds carries over.
  std::optional<daemon::WorkerDaemon> daemon;
  if (comm.rank() != 0 || comm.size() == 1) daemon.emplace(store, options.daemon);
  auto summary =
      run_phase(comm, store, attribution_phase(store), daemon ? &*daemon : nullptr, options);
  if (!store.description().ablation.enabled) return summary;
  // The ablation needs every checkpoint's aggregates; rank 0 decides and tells everyone.
  int go = 1;
  if (comm.rank() == 0) {
    const auto agg = store.aggregated_flags();
    go = summary.given_up == 0 &&
         std::all_of(agg.begin(), agg.end(), [](uint8_t f) { return f != 0; });
    if (!go) {
      LPI_LOG(error) << "the ablation phase needs the attribution of every checkpoint; "
                     << summary.given_up
                     << " unit(s) were given up: resume the sweep to retry them";
    } else {
      const auto masks = store.mask_flags();
      for (int32_t c = 0; c < static_cast<int32_t>(masks.size()); ++c)
        if (!masks[c]) store.write_masks(c);
    }
  }
  go = mpi::max_over_ranks(comm, go);
  if (!go) return summary;
  auto ablation =
      run_phase(comm, store, ablation_phase(store), daemon ? &*daemon : nullptr, options);
  summary.total += ablation.total;
  summary.done += ablation.done;
  summary.given_up += ablation.given_up;
  return summary;
}

}  // namespace lpi::coordinator

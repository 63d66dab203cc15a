#include "coordinator/sweep_run.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>

#include "common/log/log.hpp"
#include "common/sweep/stop.hpp"
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

// Rank 0's view of a phase: done flags, per-checkpoint completion, progress
// and where the workers' time went.
class Tracker {
 public:
  Tracker(const sweep::Grid& grid, const PhaseBook& book, const Scheduler& scheduler,
          double interval, int workers)
      : grid_(grid),
        book_(book),
        name_(sweep::phase_name(book.phase)),
        interval_(interval),
        workers_(workers),
        start_(clock_type::now()),
        last_(start_),
        done_at_start_(scheduler.done_count()) {
    completed_ = book_.checkpoint_flags();
    for (int32_t c = 0; c < static_cast<int32_t>(completed_.size()); ++c)
      complete_if_done(scheduler, c);
  }

  void unit_done(int worker, const sweep::UnitDone& d) {
    book_.mark(d.unit, worker,
               static_cast<float>(d.compute_seconds + d.load_seconds + d.store_seconds));
    const auto& u = grid_.units[d.unit];
    touched_.insert(u.checkpoint);
    prompts_ += u.prompt_count;
    compute_ += d.compute_seconds;
    load_ += d.load_seconds;
    store_seconds_ += d.store_seconds;
    wait_ += d.wait_seconds;
    if (d.projection_tiles > 0) tiles_[u.checkpoint][worker] += d.projection_tiles;
    LPI_LOG(debug) << "unit " << d.unit << " (checkpoint " << u.checkpoint << ", " << u.prompt_count
                   << " prompts) done by rank " << worker << ": compute " << d.compute_seconds
                   << " s, load " << d.load_seconds << " s, store " << d.store_seconds << " s";
  }

  void after(const Scheduler& scheduler) {
    for (auto c : touched_) complete_if_done(scheduler, c);
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
        name_, s.done_count(), s.total(),
        100.0 * s.done_count() / std::max<std::size_t>(1, s.total()), s.checkpoints_done(),
        grid_.checkpoints.size(), t > 0 ? prompts_ / t : 0.0,
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
        name_, done_now, static_cast<long long>(prompts_), t, workers_, t > 0 ? done_now / t : 0.0,
        t > 0 ? prompts_ / t : 0.0, 100 * compute_ / busy, 100 * load_ / busy,
        100 * store_seconds_ / busy, 100 * wait_ / busy, complete_seconds_);
    LPI_LOG(info) << line;
  }

 private:
  void complete_if_done(const Scheduler& s, int32_t c) {
    if (completed_[c] || !s.checkpoint_done(c)) return;
    const auto t = clock_type::now();
    book_.complete(c);
    completed_[c] = 1;
    complete_seconds_ += std::chrono::duration<double>(clock_type::now() - t).count();
    LPI_LOG(debug) << "checkpoint " << grid_.checkpoints[c].name << " aggregated";
    // Each worker that had a lease of the checkpoint computed its projection
    // tiles once for all of that lease's prompts: the count says so.
    if (const auto it = tiles_.find(c); it != tiles_.end()) {
      std::string by_rank;
      for (const auto& [w, n] : it->second)
        by_rank +=
            (by_rank.empty() ? "" : ", ") + ("rank " + std::to_string(w) + " ") + std::to_string(n);
      LPI_LOG(info) << "checkpoint " << grid_.checkpoints[c].name
                    << ": projection tiles computed: " << by_rank;
      tiles_.erase(it);
    }
  }

  const sweep::Grid& grid_;
  const PhaseBook& book_;
  const char* name_;
  double interval_;
  int workers_;
  clock_type::time_point start_, last_;
  std::size_t done_at_start_;
  std::vector<uint8_t> completed_;
  std::set<int32_t> touched_;
  std::map<int32_t, std::map<int, int64_t>> tiles_;  // checkpoint -> worker -> projection tiles
  int64_t prompts_ = 0;
  double compute_ = 0, load_ = 0, store_seconds_ = 0, wait_ = 0, complete_seconds_ = 0;
};

void report_given_up(const Scheduler& s, const sweep::Grid& grid) {
  for (const auto& g : s.given_up()) {
    const auto& u = grid.units[g.unit];
    LPI_LOG(error) << "unit " << g.unit << " (checkpoint " << grid.checkpoints[u.checkpoint].name
                   << ", prompts " << u.first_prompt << ".." << u.first_prompt + u.prompt_count - 1
                   << ") failed " << g.errors.size()
                   << " times, given up; last error: " << g.errors.back();
  }
}

// One phase; `decide` gets its summary once every unit is done or given up
// and names the phase that follows (-1: none), before the workers are told.
PhaseSummary run_phase(transport::Transport& t, const SweepPlan& plan, const PhaseBook& book,
                       const RunOptions& options, Departed& away, int32_t& next_share_id,
                       const std::function<int32_t(const PhaseSummary&)>& decide) {
  const auto& grid = *plan.grid;
  std::vector<bool> done;
  for (auto f : book.unit_flags()) done.push_back(f != 0);
  const int workers = std::max(1, t.size() - 1 - static_cast<int>(away.size()));
  Scheduler scheduler(grid, done, {options.max_attempts, workers, options.max_lease});
  LPI_LOG(info) << sweep::phase_name(book.phase) << " of " << plan.job_name << " into "
                << plan.store_path << ": " << grid.checkpoints.size() << " checkpoints, "
                << plan.prompts << " prompts, " << grid.units.size() << " units ("
                << scheduler.pending_count() << " to do), " << workers << " worker(s)";
  Tracker tracker(grid, book, scheduler, options.progress_seconds, workers);
  auto hung_count = [&] { return away.hung.size() + away.returned.size() + away.stopped.size(); };
  const auto lost_before = away.lost.size(), hung_before = hung_count();
  PhaseSummary summary;
  CoordinatorHooks hooks;
  hooks.on_done = [&](int worker, const sweep::UnitDone& d) { tracker.unit_done(worker, d); };
  hooks.after_message = [&](const Scheduler& s) { tracker.after(s); };
  hooks.next_phase = [&](const Scheduler& s, int stop_signal) {
    tracker.after(s);
    tracker.progress(s);
    tracker.report(s);
    report_given_up(s, grid);
    summary.total = grid.units.size();
    summary.done = s.done_count();
    summary.given_up = s.given_up().size();
    summary.lost_workers = away.lost.size() - lost_before;
    summary.hung_workers = hung_count() - hung_before;
    summary.stop_signal = stop_signal;
    const auto left = summary.total - summary.done - summary.given_up;
    if (stop_signal) {
      LPI_LOG(warning) << sweep::phase_name(book.phase) << " stopped by "
                       << sweep::signal_name(stop_signal) << " with " << left
                       << " unit(s) left: resume the sweep (--resume) to finish them";
    } else if (summary.lost_workers + summary.hung_workers > 0 && left > 0) {
      LPI_LOG(error) << summary.lost_workers << " worker(s) lost and " << summary.hung_workers
                     << " hung; " << left
                     << " unit(s) left undone: resume the sweep to finish them";
    }
    return decide(summary);
  };
  LoopOptions loop;
  loop.unit_timeout = options.unit_timeout;
  loop.stop_signal = options.stop_signal;
  loop.share_loads = options.share_loads;
  loop.share_window = options.share_window;
  loop.first_share_id = next_share_id;
  const auto r = run_coordinator(t, scheduler, hooks, &away, loop);
  next_share_id = r.next_share_id;
  if (r.shared_loads > 0) {
    LPI_LOG(info) << sweep::phase_name(book.phase) << ": " << r.shared_loads
                  << " shared load(s) spared " << r.share_receivers
                  << " read(s) of a checkpoint from disk";
  }
  return summary;
}

}  // namespace

RunSummary coordinate_sweep(transport::Transport& t, const SweepPlan& plan,
                            const RunOptions& options) {
  Departed away;
  int32_t share_ids = 0;  // shared loads are numbered across the phases
  bool go = false;
  // Rank 0 decides for everyone and says so; nobody else has a vote.
  const auto attribution =
      run_phase(t, plan, plan.attribution, options, away, share_ids, [&](const PhaseSummary& s) {
        go = !s.stop_signal && plan.ablation && plan.ablation_ready && plan.ablation_ready(s);
        return go ? static_cast<int32_t>(sweep::Phase::Ablation) : -1;
      });
  RunSummary summary;
  summary.total = attribution.total;
  summary.done = attribution.done;
  summary.given_up = attribution.given_up;
  summary.stop_signal = attribution.stop_signal;
  if (go) {
    const auto ablation = run_phase(t, plan, *plan.ablation, options, away, share_ids,
                                    [](const PhaseSummary&) { return -1; });
    summary.ablation_ran = true;
    summary.total += ablation.total;
    summary.done += ablation.done;
    summary.given_up += ablation.given_up;
    summary.stop_signal = ablation.stop_signal;
  }
  // A hung worker that speaks again is told to stop; one that stays silent
  // keeps the job from ending together (the caller decides what to do).
  // (Not when stopping: the stop must not wait that long.)
  if (!summary.stop_signal && (!away.hung.empty() || !away.returned.empty())) {
    LPI_LOG(warning) << "waiting up to " << options.unit_timeout << " s for "
                     << away.hung.size() + away.returned.size() << " hung worker(s) to answer";
    wait_for_hung(t, away, options.unit_timeout);
  }
  // A worker that spoke but never asked again is as silent as a hung one.
  summary.hung.assign(away.hung.begin(), away.hung.end());
  summary.hung.insert(summary.hung.end(), away.returned.begin(), away.returned.end());
  summary.retired.assign(away.stopped.begin(), away.stopped.end());
  return summary;
}

}  // namespace lpi::coordinator

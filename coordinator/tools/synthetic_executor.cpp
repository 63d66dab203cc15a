#include "coordinator/tools/synthetic_executor.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace lpi::coordinator::sim {

void SyntheticExecutor::ensure(int32_t c) {
  if (current_ == c) return;
  const double start = clock_.now();
  current_ = -1;  // the old weights are dropped before the new ones arrive
  if (next_ == c) {
    clock_.sleep_until(rank_, next_ready_);
    stats_.load_hidden += cost_.load_seconds - (clock_.now() - start);
    ++stats_.prefetches_used;
    next_ = -1;
  } else {
    wait(cost_.load_seconds);  // a stale prefetch, if any, goes on in the background
  }
  stats_.load_wait += clock_.now() - start;
  ++stats_.loads;
  current_ = c;
}

void SyntheticExecutor::prefetch(int32_t c) {
  if (!cost_.prefetch || c < 0 || c == current_ || c == next_) return;
  if (next_ >= 0) {  // a stale prefetch: the daemon waits for it to end
    const double start = clock_.now();
    clock_.sleep_until(rank_, next_ready_);
    stats_.prefetch_stall += clock_.now() - start;
  }
  next_ = c;
  next_ready_ = clock_.now() + cost_.load_seconds;
  ++stats_.prefetches;
}

void SyntheticExecutor::run_lease(sweep::Phase, const std::vector<const sweep::WorkUnit*>& units,
                                  int32_t hint, const sweep::ReportUnit& report) {
  if (units.empty()) return;
  const double start = clock_.now();
  stats_.idle += start - stats_.last_end;
  if (stats_.first_start < 0) stats_.first_start = start;
  ++stats_.leases;
  const int32_t c = units.front()->checkpoint;
  ensure(c);
  const double load = clock_.now() - start;
  prefetch(hint);
  // The projection once for the lease, then every prompt of its units.
  int64_t prompts = 0;
  for (const auto* u : units) {
    if (u->checkpoint != c) throw std::logic_error("a lease of units of more than one checkpoint");
    prompts += u->prompt_count;
  }
  const double compute =
      cost_.projection_seconds + static_cast<double>(prompts) * cost_.prompt_seconds;
  wait(compute);
  stats_.busy += compute;
  stats_.trace.push_back(
      {start, 0, load, c, static_cast<int32_t>(units.size()), static_cast<int32_t>(prompts), hint});
  for (std::size_t k = 0; k < units.size(); ++k) {
    const auto& u = *units[k];
    const double store = u.prompt_count * cost_.store_prompt_seconds + cost_.store_unit_seconds;
    wait(store);
    stats_.busy += store;
    ++done_.at(static_cast<std::size_t>(u.id));
    ++stats_.units;
    sweep::UnitReport r;
    r.load_seconds = k == 0 ? load : 0;
    r.compute_seconds = compute * u.prompt_count / std::max<double>(1.0, prompts);
    r.store_seconds = store;
    stats_.last_end = clock_.now();
    stats_.trace.back().end = stats_.last_end;
    report(u.id, r);
  }
}

sweep::UnitReport SyntheticExecutor::run(sweep::Phase phase, const sweep::WorkUnit& unit,
                                         int32_t hint) {
  sweep::UnitReport out;
  run_lease(phase, {&unit}, hint, [&](int32_t, const sweep::UnitReport& r) { out = r; });
  return out;
}

}  // namespace lpi::coordinator::sim

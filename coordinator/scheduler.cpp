#include "coordinator/scheduler.hpp"

#include <algorithm>
#include <stdexcept>

namespace lpi::coordinator {

Scheduler::Scheduler(const sweep::Grid& grid, const std::vector<bool>& done,
                     SchedulerOptions options)
    : grid_(grid),
      options_(options),
      state_(grid.units.size(), State::Pending),
      attempts_(grid.units.size(), 0),
      errors_(grid.units.size()),
      pending_by_checkpoint_(grid.checkpoints.size()),
      workers_on_(grid.checkpoints.size(), 0),
      workers_(std::max(1, options.workers)),
      promised_to_(grid.checkpoints.size(), 0),
      remaining_(grid.checkpoints.size(), 0),
      units_of_(grid.checkpoints.size(), 0),
      prompts_of_(grid.checkpoints.size(), 0) {
  if (!done.empty() && done.size() != grid.units.size()) {
    throw std::invalid_argument("scheduler: " + std::to_string(done.size()) + " done flags for " +
                                std::to_string(grid.units.size()) + " units");
  }
  for (const auto& u : grid.units) {
    ++units_of_[u.checkpoint];
    prompts_of_[u.checkpoint] += u.prompt_count;
    if (!done.empty() && done[u.id]) {
      state_[u.id] = State::Done;
      ++done_;
    } else {
      pending_by_checkpoint_[u.checkpoint].push_back(u.id);
      ++pending_;
      pending_prompts_ += u.prompt_count;
      ++remaining_[u.checkpoint];
    }
  }
}

void Scheduler::release(int worker) {
  if (auto it = worker_checkpoint_.find(worker); it != worker_checkpoint_.end()) {
    --workers_on_[it->second];
    worker_checkpoint_.erase(it);
  }
}

std::vector<int32_t> Scheduler::lease(int worker, int32_t loaded, int cap) {
  if (in_flight_.count(worker))
    throw std::logic_error("scheduler: worker " + std::to_string(worker) + " asked twice");
  if (pending_ == 0) return {};
  const auto C = static_cast<int32_t>(pending_by_checkpoint_.size());
  int32_t pick = -1;
  const auto promise = promised_.find(worker);
  if (loaded >= 0 && loaded < C && !pending_by_checkpoint_[loaded].empty()) {
    pick = loaded;  // stay on the loaded checkpoint
  } else if (promise != promised_.end() && !pending_by_checkpoint_[promise->second].empty()) {
    pick = promise->second;  // the one it was told to prefetch (it may share it)
  } else {
    // A checkpoint nobody works on, the first in step order; else (the
    // tail) the one with the most pending units per worker on it. Not one
    // promised to others: they are loading it for their share of it.
    for (int32_t c = 0; c < C && pick < 0; ++c) {
      if (fresh(c) && promised_to_[c] == 0) pick = c;
    }
    double best = -1;
    if (pick < 0) {
      for (int32_t c = 0; c < C; ++c) {
        const double share =
            static_cast<double>(pending_by_checkpoint_[c].size()) / (workers_on_[c] + 1);
        if (!pending_by_checkpoint_[c].empty() && promised_to_[c] == 0 && share > best) {
          best = share;
          pick = c;
        }
      }
    }
    if (pick < 0) return {};  // all that is pending is promised: wait for it to go
  }
  auto& queue = pending_by_checkpoint_[pick];
  int64_t queued = 0;  // its pending prompts
  for (auto u : queue) queued += grid_.units[u].prompt_count;
  // How many prompts the lease should hold. Every pending one of the
  // checkpoint while each worker can have a checkpoint of its own; a
  // promised checkpoint is shared equally by the workers promised it (the
  // last one takes what is left). At the tail, the checkpoint's share of the
  // workers that will want work (its pending prompts over all pending
  // prompts, times those workers, rounded down) cuts it into that many equal
  // leases. Workers that want work: all but those whose lease began after
  // the last report (at the start of a phase every worker is busy with its
  // first lease for a while; later, any may come back at any moment).
  // Prompts, not units: a checkpoint's units differ in size (a relation's
  // last block is short) and a lease's time goes with its prompts.
  int64_t target = queued;
  int with_pending = 0;
  for (const auto& q : pending_by_checkpoint_) with_pending += !q.empty();
  if (promise != promised_.end() && promise->second == pick) {
    target = (queued + promised_to_[pick] - 1) / promised_to_[pick];
    unpromise(worker);
  } else if (with_pending < workers_) {
    int just_started = 0;
    for (const auto& [w, at] : issued_) just_started += at == reports_;
    const int sharers = std::max(1, workers_ - just_started);
    const double ways_exact = static_cast<double>(sharers) * static_cast<double>(queued) /
                              static_cast<double>(std::max<int64_t>(1, pending_prompts_));
    const auto ways = std::max<int64_t>(1, static_cast<int64_t>(ways_exact));
    target = std::min(target, (prompts_of_[pick] + ways - 1) / ways);
  }
  // Units from the front of the queue, as close to the target as they come.
  std::size_t size = 0;
  for (int64_t held = 0; size < queue.size(); ++size) {
    const int64_t next = grid_.units[queue[size]].prompt_count;
    if (size > 0 && held + next > target && held + next - target >= target - held) break;
    held += next;
  }
  if (options_.max_lease > 0) size = std::min<std::size_t>(size, options_.max_lease);
  if (cap > 0) size = std::min<std::size_t>(size, cap);
  size = std::max<std::size_t>(size, 1);
  std::vector<int32_t> units(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(size));
  queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(size));
  pending_ -= size;
  for (auto u : units) {
    state_[u] = State::InFlight;
    pending_prompts_ -= grid_.units[u].prompt_count;
  }
  in_flight_[worker] = units;
  issued_[worker] = reports_;
  auto it = worker_checkpoint_.find(worker);
  if (it == worker_checkpoint_.end() || it->second != pick) {
    release(worker);
    worker_checkpoint_[worker] = pick;
    ++workers_on_[pick];
  }
  return units;
}

std::optional<sweep::WorkUnit> Scheduler::next(int worker, int32_t loaded) {
  const auto units = lease(worker, loaded, 1);
  if (units.empty()) return std::nullopt;
  return grid_.units[units.front()];
}

void Scheduler::take_back(int worker, int32_t unit) {
  const auto it = in_flight_.find(worker);
  if (it != in_flight_.end()) {
    auto& held = it->second;
    if (const auto pos = std::find(held.begin(), held.end(), unit); pos != held.end()) {
      held.erase(pos);
      if (held.empty()) {
        in_flight_.erase(it);
        issued_.erase(worker);
      }
      ++reports_;
      return;
    }
  }
  throw std::logic_error("scheduler: worker " + std::to_string(worker) + " reported unit " +
                         std::to_string(unit) + " it was not given");
}

void Scheduler::completed(int worker, int32_t unit) {
  take_back(worker, unit);
  state_[unit] = State::Done;
  ++done_;
  --remaining_[grid_.units[unit].checkpoint];
}

void Scheduler::unpromise(int worker) {
  if (const auto it = promised_.find(worker); it != promised_.end()) {
    --promised_to_[it->second];
    promised_.erase(it);
  }
}

int32_t Scheduler::prefetch_hint(int worker) {
  const auto C = static_cast<int32_t>(pending_by_checkpoint_.size());
  if (const auto it = promised_.find(worker); it != promised_.end()) {
    if (!pending_by_checkpoint_[it->second].empty()) return it->second;
    unpromise(worker);
  }
  const auto on = worker_checkpoint_.find(worker);
  const int32_t current = on == worker_checkpoint_.end() ? -1 : on->second;
  // Its own checkpoint has more: it stays on it, nothing to prefetch.
  if (current >= 0 && !pending_by_checkpoint_[current].empty()) return -1;
  // The workers without a lease take the checkpoints nobody works on or was
  // promised, one each, in step order: one of those beyond them, if any.
  const int idle = std::max(0, workers_ - static_cast<int>(in_flight_.size()));
  int unclaimed = 0;
  for (int32_t c = 0; c < C; ++c) unclaimed += fresh(c) && promised_to_[c] == 0;
  int32_t pick = -1;
  if (unclaimed > idle) {
    for (int32_t c = 0; c < C && pick < 0; ++c) {
      if (fresh(c) && promised_to_[c] == 0) pick = c;
    }
  } else {
    // None to spare: a share of a checkpoint promised already that nobody
    // works on yet, the most pending units per worker promised it, so that
    // the tail's leases are prefetched. (One being worked on is finished by
    // the workers that hold it: a share promised now would wait for a load.)
    double best = 0;
    for (int32_t c = 0; c < C; ++c) {
      const auto n = pending_by_checkpoint_[c].size();
      if (n == 0 || workers_on_[c] > 0 || promised_to_[c] == 0 || reports_ > 0) continue;
      const double share = static_cast<double>(n) / (promised_to_[c] + 1);
      if (share > best) {
        best = share;
        pick = c;
      }
    }
  }
  if (pick >= 0) {
    promised_[worker] = pick;
    ++promised_to_[pick];
  }
  return pick;
}

void Scheduler::failed(int worker, int32_t unit, const std::string& error) {
  take_back(worker, unit);
  errors_[unit].push_back("worker " + std::to_string(worker) + ": " + error);
  if (++attempts_[unit] >= options_.max_attempts) {
    state_[unit] = State::GivenUp;
    given_up_.push_back({unit, errors_[unit]});
  } else {
    state_[unit] = State::Pending;
    pending_by_checkpoint_[grid_.units[unit].checkpoint].push_front(unit);
    ++pending_;
    pending_prompts_ += grid_.units[unit].prompt_count;
  }
  // Its checkpoint may be the problem: once its lease is over, let it move on.
  if (!in_flight_.count(worker)) release(worker);
}

void Scheduler::worker_lost(int worker) {
  if (auto it = in_flight_.find(worker); it != in_flight_.end()) {
    // Back to the front of their queues, in their order.
    for (auto u = it->second.rbegin(); u != it->second.rend(); ++u) {
      state_[*u] = State::Pending;
      pending_by_checkpoint_[grid_.units[*u].checkpoint].push_front(*u);
      ++pending_;
      pending_prompts_ += grid_.units[*u].prompt_count;
    }
    in_flight_.erase(it);
  }
  issued_.erase(worker);
  unpromise(worker);
  release(worker);
  workers_ = std::max(1, workers_ - 1);
}

std::vector<int32_t> Scheduler::in_flight(int worker) const {
  const auto it = in_flight_.find(worker);
  return it == in_flight_.end() ? std::vector<int32_t>{} : it->second;
}

std::size_t Scheduler::in_flight_count() const {
  std::size_t n = 0;
  for (const auto& [w, units] : in_flight_) n += units.size();
  return n;
}

std::vector<int32_t> Scheduler::timed_out(int worker, const std::string& error) {
  const auto units = in_flight(worker);
  if (units.empty())
    throw std::logic_error("scheduler: worker " + std::to_string(worker) +
                           " timed out holding no unit");
  for (auto u : units) failed(worker, u, error);
  release(worker);
  workers_ = std::max(1, workers_ - 1);
  unpromise(worker);
  return units;
}

std::size_t Scheduler::checkpoints_done() const {
  std::vector<bool> complete(grid_.checkpoints.size(), true);
  for (const auto& u : grid_.units) {
    if (state_[u.id] != State::Done) complete[u.checkpoint] = false;
  }
  std::size_t n = 0;
  for (bool c : complete) n += c;
  return n;
}

void Scheduler::check_invariants() const {
  std::size_t pending = 0, in_flight = 0, done = 0, given_up = 0;
  for (auto s : state_) {
    pending += s == State::Pending;
    in_flight += s == State::InFlight;
    done += s == State::Done;
    given_up += s == State::GivenUp;
  }
  std::size_t queued = 0;
  for (const auto& q : pending_by_checkpoint_) queued += q.size();
  if (pending != pending_ || queued != pending_)
    throw std::logic_error("scheduler: pending count out of step");
  if (in_flight != in_flight_count())
    throw std::logic_error("scheduler: in-flight count out of step");
  if (done != done_) throw std::logic_error("scheduler: done count out of step");
  if (given_up != given_up_.size()) throw std::logic_error("scheduler: given-up count out of step");
  int assigned = 0;
  for (int w : workers_on_) assigned += w;
  if (assigned != static_cast<int>(worker_checkpoint_.size())) {
    throw std::logic_error("scheduler: workers per checkpoint out of step");
  }
}

}  // namespace lpi::coordinator

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
      remaining_(grid.checkpoints.size(), 0),
      units_of_(grid.checkpoints.size(), 0) {
  if (!done.empty() && done.size() != grid.units.size()) {
    throw std::invalid_argument("scheduler: " + std::to_string(done.size()) + " done flags for " +
                                std::to_string(grid.units.size()) + " units");
  }
  for (const auto& u : grid.units) {
    ++units_of_[u.checkpoint];
    if (!done.empty() && done[u.id]) {
      state_[u.id] = State::Done;
      ++done_;
    } else {
      pending_by_checkpoint_[u.checkpoint].push_back(u.id);
      ++pending_;
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
  if (loaded >= 0 && loaded < C && !pending_by_checkpoint_[loaded].empty()) {
    pick = loaded;  // stay on the loaded checkpoint
  } else {
    // A checkpoint nobody works on: the one promised to this worker (it may
    // have loaded it already), else the first in step order that is not
    // promised to another, else any.
    for (const auto& [c, w] : hinted_) {
      if (w == worker && fresh(c)) pick = c;
    }
    for (int32_t c = 0; c < C && pick < 0; ++c) {
      if (fresh(c) && !hinted_.count(c)) pick = c;
    }
    for (int32_t c = 0; c < C && pick < 0; ++c) {
      if (fresh(c)) pick = c;
    }
    double best = -1;
    if (pick < 0) {  // the tail: share the checkpoint with the most work per worker
      for (int32_t c = 0; c < C; ++c) {
        const double share =
            static_cast<double>(pending_by_checkpoint_[c].size()) / (workers_on_[c] + 1);
        if (!pending_by_checkpoint_[c].empty() && share > best) {
          best = share;
          pick = c;
        }
      }
    }
  }
  hinted_.erase(pick);
  auto& queue = pending_by_checkpoint_[pick];
  // Every pending unit of the checkpoint while each worker can have a
  // checkpoint of its own; at the tail, a 1/ways share of the checkpoint's
  // units, so that the last checkpoints keep every worker busy.
  std::size_t size = queue.size();
  int with_pending = 0;
  for (const auto& q : pending_by_checkpoint_) with_pending += !q.empty();
  if (with_pending < workers_) {
    const int ways = (workers_ + with_pending - 1) / with_pending;
    size = std::min<std::size_t>(size, (units_of_[pick] + ways - 1) / ways);
  }
  if (options_.max_lease > 0) size = std::min<std::size_t>(size, options_.max_lease);
  if (cap > 0) size = std::min<std::size_t>(size, cap);
  size = std::max<std::size_t>(size, 1);
  std::vector<int32_t> units(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(size));
  queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(size));
  pending_ -= size;
  for (auto u : units) state_[u] = State::InFlight;
  in_flight_[worker] = units;
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
      if (held.empty()) in_flight_.erase(it);
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

int32_t Scheduler::prefetch_hint(int worker) {
  for (auto it = hinted_.begin(); it != hinted_.end();) {
    if (it->second != worker) {
      ++it;
    } else if (fresh(it->first)) {
      return it->first;
    } else {
      it = hinted_.erase(it);
    }
  }
  const auto C = static_cast<int32_t>(pending_by_checkpoint_.size());
  for (int32_t c = 0; c < C; ++c) {
    if (fresh(c) && !hinted_.count(c)) {
      hinted_[c] = worker;
      return c;
    }
  }
  return -1;
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
    }
    in_flight_.erase(it);
  }
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
  for (auto it = hinted_.begin(); it != hinted_.end();) {
    it = it->second == worker ? hinted_.erase(it) : std::next(it);
  }
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

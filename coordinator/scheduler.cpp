#include "coordinator/scheduler.hpp"

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
      remaining_(grid.checkpoints.size(), 0) {
  if (!done.empty() && done.size() != grid.units.size()) {
    throw std::invalid_argument("scheduler: " + std::to_string(done.size()) + " done flags for " +
                                std::to_string(grid.units.size()) + " units");
  }
  for (const auto& u : grid.units) {
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

std::optional<sweep::WorkUnit> Scheduler::next(int worker, int32_t loaded) {
  if (in_flight_.count(worker))
    throw std::logic_error("scheduler: worker " + std::to_string(worker) + " asked twice");
  if (pending_ == 0) return std::nullopt;
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
  const int32_t unit = queue.front();
  queue.pop_front();
  --pending_;
  state_[unit] = State::InFlight;
  in_flight_[worker] = unit;
  auto it = worker_checkpoint_.find(worker);
  if (it == worker_checkpoint_.end() || it->second != pick) {
    release(worker);
    worker_checkpoint_[worker] = pick;
    ++workers_on_[pick];
  }
  return grid_.units[unit];
}

void Scheduler::completed(int worker, int32_t unit) {
  auto it = in_flight_.find(worker);
  if (it == in_flight_.end() || it->second != unit) {
    throw std::logic_error("scheduler: worker " + std::to_string(worker) + " completed unit " +
                           std::to_string(unit) + " it was not given");
  }
  in_flight_.erase(it);
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
  auto it = in_flight_.find(worker);
  if (it == in_flight_.end() || it->second != unit) {
    throw std::logic_error("scheduler: worker " + std::to_string(worker) + " failed unit " +
                           std::to_string(unit) + " it was not given");
  }
  in_flight_.erase(it);
  errors_[unit].push_back("worker " + std::to_string(worker) + ": " + error);
  if (++attempts_[unit] >= options_.max_attempts) {
    state_[unit] = State::GivenUp;
    given_up_.push_back({unit, errors_[unit]});
    return;
  }
  state_[unit] = State::Pending;
  pending_by_checkpoint_[grid_.units[unit].checkpoint].push_front(unit);
  ++pending_;
  release(worker);  // its checkpoint may be the problem: let it move on
}

void Scheduler::worker_lost(int worker) {
  if (auto it = in_flight_.find(worker); it != in_flight_.end()) {
    const int32_t unit = it->second;
    in_flight_.erase(it);
    state_[unit] = State::Pending;
    pending_by_checkpoint_[grid_.units[unit].checkpoint].push_front(unit);
    ++pending_;
  }
  release(worker);
}

int32_t Scheduler::in_flight(int worker) const {
  const auto it = in_flight_.find(worker);
  return it == in_flight_.end() ? -1 : it->second;
}

int32_t Scheduler::timed_out(int worker, const std::string& error) {
  const int32_t unit = in_flight(worker);
  if (unit < 0)
    throw std::logic_error("scheduler: worker " + std::to_string(worker) +
                           " timed out holding no unit");
  failed(worker, unit, error);
  release(worker);
  for (auto it = hinted_.begin(); it != hinted_.end();) {
    it = it->second == worker ? hinted_.erase(it) : std::next(it);
  }
  return unit;
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
  if (in_flight != in_flight_.size())
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

#include "coordinator/tools/sim_clock.hpp"

#include <stdexcept>
#include <string>
#include <thread>

namespace lpi::coordinator::sim {

ScaledClock::ScaledClock(double scale) : scale_(scale), start_(clock_type::now()) {
  if (!(scale > 0)) throw std::invalid_argument("time scale must be positive");
}

double ScaledClock::now() {
  return std::chrono::duration<double>(clock_type::now() - start_).count() / scale_;
}

void ScaledClock::sleep_until(int, double t) {
  std::this_thread::sleep_until(start_ + std::chrono::duration_cast<clock_type::duration>(
                                             std::chrono::duration<double>(t * scale_)));
}

VirtualClock::VirtualClock(int ranks)
    : busy_(ranks),
      state_(static_cast<std::size_t>(ranks), State::Running),
      mail_(static_cast<std::size_t>(ranks), 0),
      wake_(static_cast<std::size_t>(ranks)) {}

double VirtualClock::now() {
  std::lock_guard<std::mutex> lock(mutex_);
  return now_;
}

bool VirtualClock::deadlocked() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return deadlock_;
}

void VirtualClock::advance() {
  if (busy_ > 0) return;
  if (alarms_.empty()) {
    // Nobody runs, sleeps or has mail: whoever still waits, waits forever.
    for (std::size_t r = 0; r < state_.size(); ++r) {
      if (state_[r] == State::Receiving) {
        deadlock_ = true;
        wake_[r].notify_one();
      }
    }
    return;
  }
  now_ = alarms_.top().first;
  while (!alarms_.empty() && alarms_.top().first <= now_) {
    const int r = alarms_.top().second;
    alarms_.pop();
    state_[static_cast<std::size_t>(r)] = State::Running;
    ++busy_;
    wake_[static_cast<std::size_t>(r)].notify_one();
  }
}

void VirtualClock::set_idle(int rank, State s) {
  auto& state = state_.at(static_cast<std::size_t>(rank));
  if (state != State::Running) throw std::logic_error("virtual clock: rank waits twice");
  state = s;
  // A rank receiving with mail waiting is about to run again.
  if (!(s == State::Receiving && mail_[static_cast<std::size_t>(rank)] > 0)) --busy_;
}

void VirtualClock::sleep_until(int rank, double t) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (t <= now_) return;
  set_idle(rank, State::Sleeping);
  alarms_.push({t, rank});
  advance();
  const auto r = static_cast<std::size_t>(rank);
  wake_[r].wait(lock, [&] { return state_[r] == State::Running; });
}

void VirtualClock::sent(int dest) {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto d = static_cast<std::size_t>(dest);
  if (++mail_.at(d) == 1 && state_[d] == State::Receiving) {
    ++busy_;
    wake_[d].notify_one();
  }
}

void VirtualClock::wait_message(int rank) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto r = static_cast<std::size_t>(rank);
  set_idle(rank, State::Receiving);
  advance();
  wake_[r].wait(lock, [&] { return mail_[r] > 0 || deadlock_; });
  if (mail_[r] == 0)
    throw std::runtime_error("virtual clock: rank " + std::to_string(rank) +
                             " waits for a message and every other rank waits too (deadlock)");
  --mail_[r];
  state_[r] = State::Running;  // busy already: counted when the mail came
}

void VirtualClock::took(int rank) {
  std::lock_guard<std::mutex> lock(mutex_);
  --mail_.at(static_cast<std::size_t>(rank));
}

void VirtualClock::leave(int rank) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& state = state_.at(static_cast<std::size_t>(rank));
  if (state == State::Gone) return;
  if (state == State::Running) --busy_;
  state = State::Gone;
  advance();
}

void ClockedTransport::send(int dest, sweep::MessageKind kind, const std::vector<uint8_t>& bytes) {
  inner_.send(dest, kind, bytes);  // in the mailbox before the clock hears of it
  if (clock_) clock_->sent(dest);
  ++sent_;
}

transport::Message ClockedTransport::receive(int source) {
  if (!clock_) {
    ++received_;
    return inner_.receive(source);
  }
  clock_->wait_message(rank());
  auto m = inner_.poll(source);
  // The clock counts a rank's mail from anyone; the sweep's ranks only ever
  // wait for what is there (workers hear rank 0 alone).
  if (!m)
    throw std::logic_error("virtual clock: rank " + std::to_string(rank()) +
                           " has mail, but not from rank " + std::to_string(source));
  ++received_;
  return std::move(*m);
}

std::optional<transport::Message> ClockedTransport::poll(int source) {
  auto m = inner_.poll(source);
  if (m) {
    if (clock_) clock_->took(rank());
    ++received_;
  }
  return m;
}

std::optional<transport::Message> ClockedTransport::receive_for(double seconds, int source) {
  if (clock_)
    throw std::logic_error(
        "virtual clock: receive_for is not simulated (run without a unit timeout or stop signal)");
  auto m = inner_.receive_for(seconds, source);
  if (m) ++received_;
  return m;
}

}  // namespace lpi::coordinator::sim

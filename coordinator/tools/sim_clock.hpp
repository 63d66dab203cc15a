// Simulated time for lpi-bench-scheduler: the real coordinator and worker
// loops run in threads (or MPI ranks) against a synthetic executor that
// "works" by waiting on a Clock. Two clocks:
//   ScaledClock:  real time, one simulated second = `scale` real seconds;
//   VirtualClock: a discrete-event clock shared by the threads of one
//                 process: it jumps to the next wake-up once every thread is
//                 asleep or waits for a message that has not been sent, so
//                 the coordinator's own CPU time costs no simulated time
//                 (it is measured apart) and the figures do not depend on
//                 the machine's load.
// ClockedTransport wraps a rank's transport so that the VirtualClock knows
// when that rank waits for a message and when one was sent to it; with no
// clock it only counts messages.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <queue>
#include <utility>
#include <vector>

#include "common/transport/transport.hpp"

namespace lpi::coordinator::sim {

class Clock {
 public:
  virtual ~Clock() = default;
  // Simulated seconds since the start.
  virtual double now() = 0;
  // The calling thread (rank `rank`) waits until simulated time `t`.
  virtual void sleep_until(int rank, double t) = 0;
};

class ScaledClock : public Clock {
 public:
  explicit ScaledClock(double scale);
  // Time 0 is now (before any thread reads the clock).
  void restart() { start_ = clock_type::now(); }
  double now() override;
  void sleep_until(int rank, double t) override;

 private:
  using clock_type = std::chrono::steady_clock;
  double scale_;
  clock_type::time_point start_;
};

class VirtualClock : public Clock {
 public:
  // Ranks 0..ranks-1, each one thread; all count as running at the start.
  explicit VirtualClock(int ranks);
  double now() override;
  void sleep_until(int rank, double t) override;
  // The transport's side (ClockedTransport): a message for `dest` was put in
  // its mailbox; `rank` waits until its mailbox has one and takes it; `rank`
  // took one without waiting.
  void sent(int dest);
  void wait_message(int rank);
  void took(int rank);
  // The rank's thread is done (it no longer holds the clock back).
  void leave(int rank);
  // Every rank still here waited for a message nobody would send (a
  // deadlock of the loops under test): the waits throw instead.
  bool deadlocked() const;

 private:
  enum class State : uint8_t { Running, Sleeping, Receiving, Gone };
  void set_idle(int rank, State s);
  void advance();  // with the lock held: the next wake-up once nobody can run
  mutable std::mutex mutex_;
  double now_ = 0;
  int busy_ = 0;  // ranks running, or receiving with a message in their mailbox
  bool deadlock_ = false;
  std::vector<State> state_;
  std::vector<int64_t> mail_;  // messages sent to the rank and not yet taken
  std::vector<std::condition_variable> wake_;
  using Alarm = std::pair<double, int>;  // wake-up time, rank
  std::priority_queue<Alarm, std::vector<Alarm>, std::greater<Alarm>> alarms_;
};

// A rank's transport with the clock told about its waits and sends
// (`clock` may be null: then it only counts).
class ClockedTransport : public transport::Transport {
 public:
  ClockedTransport(transport::Transport& inner, VirtualClock* clock)
      : inner_(inner), clock_(clock) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void send(int dest, sweep::MessageKind kind, const std::vector<uint8_t>& bytes) override;
  transport::Message receive(int source = transport::kAnySource) override;
  std::optional<transport::Message> poll(int source = transport::kAnySource) override;
  // Under the virtual clock: not supported (the benchmark sets no unit
  // timeout and no stop signal, the only callers); else passed on.
  std::optional<transport::Message> receive_for(double seconds,
                                                int source = transport::kAnySource) override;
  std::string broadcast(const std::string& text) override { return inner_.broadcast(text); }
  std::optional<transport::RankError> agree_error(const std::string& error) override {
    return inner_.agree_error(error);
  }
  int64_t received() const { return received_; }
  int64_t sent() const { return sent_; }

 private:
  transport::Transport& inner_;
  VirtualClock* clock_;
  int64_t received_ = 0, sent_ = 0;
};

}  // namespace lpi::coordinator::sim

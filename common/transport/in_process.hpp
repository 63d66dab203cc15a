// The transport between threads of one process: a hub with one mailbox per
// rank, and collectives that meet at a generation-counted rendezvous. The
// one-process sweep is the coordinator (rank 0) and one worker thread over
// it; tests run many workers as threads.
//
// A rank that leaves (Endpoint::leave()) is reported to rank 0 as a
// WorkerLost message from that rank, what a fault-tolerant launcher would
// tell the coordinator, and the collectives go on without it.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "common/transport/transport.hpp"

namespace lpi::transport {

class InProcessHub {
 public:
  explicit InProcessHub(int size);
  InProcessHub(const InProcessHub&) = delete;
  InProcessHub& operator=(const InProcessHub&) = delete;
  int size() const { return size_; }

  class Endpoint : public Transport {
   public:
    Endpoint(InProcessHub& hub, int rank) : hub_(hub), rank_(rank) {}
    ~Endpoint() override;
    int rank() const override { return rank_; }
    int size() const override { return hub_.size_; }
    void send(int dest, sweep::MessageKind kind, const std::vector<uint8_t>& bytes) override;
    Message receive(int source = kAnySource) override;
    std::optional<Message> poll(int source = kAnySource) override;
    std::optional<Message> receive_for(double seconds, int source = kAnySource) override;
    std::string broadcast(const std::string& text) override;
    std::optional<RankError> agree_error(const std::string& error) override;
    // This rank is gone: rank 0 gets WorkerLost (once; nothing if rank 0 leaves).
    void leave();

   private:
    InProcessHub& hub_;
    int rank_;
    bool left_ = false;
  };

  // One endpoint per rank, created with the hub; each used by one thread.
  Endpoint& endpoint(int rank);

 private:
  std::optional<Message> take(int rank, int source);
  // The collective in progress completes once every rank still here arrived.
  void complete_if_all();
  int size_;
  int alive_;
  std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<std::deque<Message>> mailbox_;
  // The rendezvous of the collectives.
  std::condition_variable met_;
  int64_t generation_ = 0;
  int present_ = 0;
  std::string value_;
  std::vector<std::string> errors_;
  std::string result_;
  std::optional<RankError> failure_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
};

}  // namespace lpi::transport

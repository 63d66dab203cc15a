// The MPI layer: every call goes through check() (the communicator is set to
// MPI_ERRORS_RETURN, so a failure becomes an MpiError with MPI's own message
// instead of an abort), and MpiTransport carries the sweep protocol's
// messages as bytes with the message kind as the tag. A library never calls
// MPI_Init and never assumes MPI_COMM_WORLD: it takes the caller's
// communicator.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/transport/transport.hpp"

namespace lpi::mpi {

struct MpiError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void check(int rc, const std::string& what);

class Comm {
 public:
  explicit Comm(MPI_Comm comm);  // sets MPI_ERRORS_RETURN on it
  int rank() const { return rank_; }
  int size() const { return size_; }
  MPI_Comm get() const { return comm_; }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

// The sweep's transport over a communicator. receive() polls (MPI_Iprobe
// with a growing sleep of up to 1 ms) instead of blocking: Open MPI's
// blocking calls spin, and a coordinator idling between messages would
// otherwise burn the core a worker on the same node needs.
class MpiTransport : public transport::Transport {
 public:
  explicit MpiTransport(const Comm& comm) : comm_(comm) {}
  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  void send(int dest, sweep::MessageKind kind, const std::vector<uint8_t>& bytes) override;
  transport::Message receive(int source = transport::kAnySource) override;
  std::optional<transport::Message> poll(int source = transport::kAnySource) override;
  std::optional<transport::Message> receive_for(double seconds,
                                                int source = transport::kAnySource) override;
  std::string broadcast(const std::string& text) override;
  std::optional<transport::RankError> agree_error(const std::string& error) override;

 private:
  const Comm& comm_;
};

}  // namespace lpi::mpi

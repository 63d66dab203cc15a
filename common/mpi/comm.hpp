// The MPI layer: every call goes through check() (the communicator is set to
// MPI_ERRORS_RETURN, so a failure becomes an MpiError with MPI's own message
// instead of an abort), and the sweep protocol's messages travel as bytes
// with the message kind as the tag. A library never calls MPI_Init and never
// assumes MPI_COMM_WORLD: it takes the caller's communicator.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/sweep/protocol.hpp"

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

struct Message {
  int source = -1;
  sweep::MessageKind kind = sweep::MessageKind::Shutdown;
  std::vector<uint8_t> bytes;
};

void send(const Comm& comm, int dest, sweep::MessageKind kind, const std::vector<uint8_t>& bytes);
// The next message from anyone (source = MPI_ANY_SOURCE) or from one rank.
Message receive(const Comm& comm, int source = MPI_ANY_SOURCE);

// Collectives the sweep's set-up needs: a string from `root` to every rank,
// and the largest of an int over all ranks.
std::string broadcast(const Comm& comm, const std::string& text, int root = 0);
int max_over_ranks(const Comm& comm, int value);

}  // namespace lpi::mpi

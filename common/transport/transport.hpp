// How the sweep's ranks talk (one interface, two implementations): the
// coordinator (rank 0) and the worker daemons exchange the protocol's
// messages (common/sweep/protocol.hpp) point to point, and every rank takes
// part in two collectives: a text broadcast from rank 0 (rank 0's decisions
// for everyone) and an agreement on errors (set-up that failed anywhere
// stops every rank). MpiTransport (common/mpi/) runs it between processes;
// InProcessHub (in_process.hpp) between threads of one process: the
// one-process sweep and the loops' tests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/sweep/protocol.hpp"

namespace lpi::transport {

constexpr int kAnySource = -1;

struct Message {
  int source = -1;
  sweep::MessageKind kind = sweep::MessageKind::Shutdown;
  std::vector<uint8_t> bytes;
};

// A failure that one rank reported to an agreement.
struct RankError {
  int rank = 0;
  std::string message;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;

  virtual void send(int dest, sweep::MessageKind kind, const std::vector<uint8_t>& bytes) = 0;
  // The next message (from anyone, or from `source`), waiting for it.
  virtual Message receive(int source = kAnySource) = 0;
  // The next message if one has arrived, without waiting.
  virtual std::optional<Message> poll(int source = kAnySource) = 0;
  // The next message if one arrives within `seconds` (rank 0's unit timeouts).
  virtual std::optional<Message> receive_for(double seconds, int source = kAnySource) = 0;

  // Collective: every rank returns rank 0's `text` (the others' is ignored).
  virtual std::string broadcast(const std::string& text) = 0;
  // Collective: each rank passes its error ("" when it has none); every rank
  // returns the lowest failing rank and its message, or nothing.
  virtual std::optional<RankError> agree_error(const std::string& error) = 0;
};

// Typed sends of the protocol's messages.
void send(Transport& t, int dest, const sweep::WorkRequest& m);
void send(Transport& t, int dest, const sweep::Assign& m);
void send(Transport& t, int dest, const sweep::UnitDone& m);
void send(Transport& t, int dest, const sweep::UnitFailed& m);
void send(Transport& t, int dest, const sweep::Shutdown& m);
void send(Transport& t, int dest, const sweep::ShareReady& m);
void send(Transport& t, int dest, const sweep::ShareGroup& m);

}  // namespace lpi::transport

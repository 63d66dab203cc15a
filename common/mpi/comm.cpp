#include "common/mpi/comm.hpp"

#include <algorithm>
#include <chrono>
#include <thread>

namespace lpi::mpi {

void check(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw MpiError("MPI: " + what +
                 " failed: " + std::string(text, static_cast<std::size_t>(length)));
}

Comm::Comm(MPI_Comm comm) : comm_(comm) {
  check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "set the error handler");
  check(MPI_Comm_rank(comm_, &rank_), "rank");
  check(MPI_Comm_size(comm_, &size_), "size");
}

void send(const Comm& comm, int dest, sweep::MessageKind kind, const std::vector<uint8_t>& bytes) {
  check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest,
                 static_cast<int>(kind), comm.get()),
        std::string("send ") + sweep::kind_name(kind) + " to rank " + std::to_string(dest));
}

Message receive(const Comm& comm, int source) {
  // Poll with a growing sleep (up to 1 ms) instead of MPI_Probe: Open MPI's
  // blocking calls spin, and a coordinator that idles between messages would
  // otherwise burn the core a worker on the same node needs.
  MPI_Status status;
  int arrived = 0;
  for (int idle = 0;; ++idle) {
    check(MPI_Iprobe(source, MPI_ANY_TAG, comm.get(), &arrived, &status), "probe");
    if (arrived) break;
    if (idle >= 64) std::this_thread::sleep_for(std::chrono::microseconds(std::min(1000, 16 * (idle - 63))));
  }
  int count = 0;
  check(MPI_Get_count(&status, MPI_BYTE, &count), "message size");
  Message m;
  m.source = status.MPI_SOURCE;
  m.kind = static_cast<sweep::MessageKind>(status.MPI_TAG);
  m.bytes.resize(static_cast<std::size_t>(count));
  check(MPI_Recv(m.bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, comm.get(),
                 MPI_STATUS_IGNORE),
        "receive from rank " + std::to_string(status.MPI_SOURCE));
  return m;
}

std::string broadcast(const Comm& comm, const std::string& text, int root) {
  int64_t n = static_cast<int64_t>(text.size());
  check(MPI_Bcast(&n, 1, MPI_INT64_T, root, comm.get()), "broadcast a length");
  std::string out = comm.rank() == root ? text : std::string(static_cast<std::size_t>(n), '\0');
  if (n > 0) check(MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, root, comm.get()), "broadcast");
  return out;
}

int max_over_ranks(const Comm& comm, int value) {
  int out = 0;
  check(MPI_Allreduce(&value, &out, 1, MPI_INT, MPI_MAX, comm.get()), "reduce");
  return out;
}

}  // namespace lpi::mpi

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

void MpiTransport::send(int dest, sweep::MessageKind kind, const std::vector<uint8_t>& bytes) {
  check(MPI_Send(bytes.data(), static_cast<int>(bytes.size()), MPI_BYTE, dest,
                 static_cast<int>(kind), comm_.get()),
        std::string("send ") + sweep::kind_name(kind) + " to rank " + std::to_string(dest));
}

namespace {

transport::Message take(MPI_Comm comm, const MPI_Status& status) {
  int count = 0;
  check(MPI_Get_count(&status, MPI_BYTE, &count), "message size");
  transport::Message m;
  m.source = status.MPI_SOURCE;
  m.kind = static_cast<sweep::MessageKind>(status.MPI_TAG);
  m.bytes.resize(static_cast<std::size_t>(count));
  check(MPI_Recv(m.bytes.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, comm,
                 MPI_STATUS_IGNORE),
        "receive from rank " + std::to_string(status.MPI_SOURCE));
  return m;
}

int mpi_source(int source) {
  return source == transport::kAnySource ? MPI_ANY_SOURCE : source;
}

}  // namespace

std::optional<transport::Message> MpiTransport::poll(int source) {
  MPI_Status status;
  int arrived = 0;
  check(MPI_Iprobe(mpi_source(source), MPI_ANY_TAG, comm_.get(), &arrived, &status), "probe");
  if (!arrived) return std::nullopt;
  return take(comm_.get(), status);
}

namespace {

// Between probes: spin for the first 64, then back off to 1 ms.
void idle_wait(int idle) {
  if (idle >= 64)
    std::this_thread::sleep_for(std::chrono::microseconds(std::min(1000, 16 * (idle - 63))));
}

}  // namespace

transport::Message MpiTransport::receive(int source) {
  for (int idle = 0;; ++idle) {
    if (auto m = poll(source)) return std::move(*m);
    idle_wait(idle);
  }
}

std::optional<transport::Message> MpiTransport::receive_for(double seconds, int source) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (int idle = 0;; ++idle) {
    if (auto m = poll(source)) return m;
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    idle_wait(idle);
  }
}

std::string MpiTransport::broadcast(const std::string& text) {
  int64_t n = static_cast<int64_t>(text.size());
  check(MPI_Bcast(&n, 1, MPI_INT64_T, 0, comm_.get()), "broadcast a length");
  std::string out = comm_.rank() == 0 ? text : std::string(static_cast<std::size_t>(n), '\0');
  if (n > 0)
    check(MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, 0, comm_.get()), "broadcast");
  return out;
}

std::optional<transport::RankError> MpiTransport::agree_error(const std::string& error) {
  // The lowest failing rank: the largest of size - rank over the failing ranks.
  const int mine = error.empty() ? -1 : comm_.size() - comm_.rank();
  int worst = -1;
  check(MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, comm_.get()), "agree on errors");
  if (worst < 0) return std::nullopt;
  transport::RankError e;
  e.rank = comm_.size() - worst;
  // Its message, from that rank to all.
  int64_t n = e.rank == comm_.rank() ? static_cast<int64_t>(error.size()) : 0;
  check(MPI_Bcast(&n, 1, MPI_INT64_T, e.rank, comm_.get()), "broadcast an error's length");
  e.message = e.rank == comm_.rank() ? error : std::string(static_cast<std::size_t>(n), '\0');
  if (n > 0)
    check(MPI_Bcast(e.message.data(), static_cast<int>(n), MPI_CHAR, e.rank, comm_.get()),
          "broadcast an error");
  return e;
}

}  // namespace lpi::mpi

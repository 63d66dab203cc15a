// Groups of shared loads over an MPI communicator (worker/share/weight_share.hpp):
// MPI_Comm_create_group per group (collective over its ranks only), then
// MPI_Bcast; a tensor on a GPU goes through ncclBroadcast when the build has
// NCCL (LPI_HAVE_NCCL), else through host memory.
#pragma once

#include <mpi.h>

#include <memory>

namespace lpi::share {

class Groups;  // worker/share/weight_share.hpp (this header is free of libtorch)

// `comm` is duplicated (collective over all its ranks, so called by every
// rank, rank 0 too, at set-up): the groups never see the sweep's messages.
// To be released before MPI_Finalize.
std::shared_ptr<Groups> mpi_groups(MPI_Comm comm);

// Whether this build broadcasts GPU tensors with NCCL.
bool have_nccl();

}  // namespace lpi::share

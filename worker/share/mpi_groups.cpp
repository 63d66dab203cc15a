#include "worker/share/mpi_groups.hpp"

#include "worker/share/weight_share.hpp"

#include <algorithm>
#include <limits>
#include <vector>

#ifdef LPI_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

namespace lpi::share {
namespace {

void check(int rc, const std::string& what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int n = 0;
  MPI_Error_string(rc, text, &n);
  throw ShareError("shared load: " + what + ": " + std::string(text, static_cast<std::size_t>(n)));
}

// The largest piece of one MPI_Bcast (its count is an int).
constexpr std::size_t kPiece = std::size_t{1} << 30;

#ifdef LPI_HAVE_NCCL
void check_cuda(cudaError_t rc, const std::string& what) {
  if (rc != cudaSuccess)
    throw ShareError("shared load: " + what + ": " + std::string(cudaGetErrorString(rc)));
}
void check_nccl(ncclResult_t rc, const std::string& what) {
  if (rc != ncclSuccess)
    throw ShareError("shared load: " + what + ": " + std::string(ncclGetErrorString(rc)));
}
#endif

class MpiGroup : public Group {
 public:
  MpiGroup(MPI_Comm parent, const std::vector<int32_t>& ranks, int32_t id,
           const torch::Device& device)
      : device_(device) {
    if (ranks.empty()) throw ShareError("shared load: a group of no ranks");
    MPI_Group all = MPI_GROUP_NULL, mine = MPI_GROUP_NULL;
    check(MPI_Comm_group(parent, &all), "MPI_Comm_group");
    const int rc = MPI_Group_incl(all, static_cast<int>(ranks.size()), ranks.data(), &mine);
    MPI_Group_free(&all);
    check(rc, "MPI_Group_incl");
    // The tag keeps concurrent creations apart (a rank is in one at a time).
    const int create = MPI_Comm_create_group(parent, mine, 0x4000 + id % 0x3000, &comm_);
    MPI_Group_free(&mine);
    check(create, "MPI_Comm_create_group of shared load " + std::to_string(id));
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
#ifdef LPI_HAVE_NCCL
    if (device_.is_cuda() && distinct_devices()) {
      check_cuda(cudaSetDevice(device_.index() < 0 ? 0 : device_.index()), "cudaSetDevice");
      ncclUniqueId unique;
      if (rank_ == 0) check_nccl(ncclGetUniqueId(&unique), "ncclGetUniqueId");
      host(&unique, sizeof unique);
      check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamDefault), "cudaStreamCreate");
      check_nccl(ncclCommInitRank(&nccl_, size_, unique, rank_), "ncclCommInitRank");
    }
#endif
  }
  ~MpiGroup() override {
#ifdef LPI_HAVE_NCCL
    if (nccl_) ncclCommDestroy(nccl_);
    if (stream_) cudaStreamDestroy(stream_);
#endif
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  bool is_root() const override {
    return rank_ == 0;
  }
  int size() const override {
    return size_;
  }
  std::string method() const override {
#ifdef LPI_HAVE_NCCL
    if (nccl_) return "ncclBroadcast";
#endif
    return "MPI_Bcast";
  }
  void host(void* data, std::size_t bytes) override {
    auto* p = static_cast<char*>(data);
    for (std::size_t at = 0; at < bytes; at += kPiece) {
      const auto n = std::min(kPiece, bytes - at);
      check(MPI_Bcast(p + at, static_cast<int>(n), MPI_BYTE, 0, comm_), "MPI_Bcast");
    }
  }
  void tensor(const torch::Tensor& t) override {
    const auto bytes = static_cast<std::size_t>(t.numel()) * t.element_size();
    if (!t.is_cuda()) return host(t.data_ptr(), bytes);
#ifdef LPI_HAVE_NCCL
    if (nccl_) {
      // The stream is a blocking one: it waits for libtorch's work on the
      // legacy default stream that produced the root's weights.
      check_nccl(ncclBroadcast(t.data_ptr(), t.data_ptr(), bytes, ncclUint8, 0, nccl_, stream_),
                 "ncclBroadcast");
      return;
    }
#endif
    // No NCCL: through host memory.
    auto staged = t.to(torch::kCPU).contiguous();
    host(staged.data_ptr(), bytes);
    if (!is_root()) t.copy_(staged);
  }
  void finish() override {
#ifdef LPI_HAVE_NCCL
    if (nccl_) check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
#endif
  }

 private:
  // NCCL takes one rank per GPU: ranks sharing a device (more ranks than
  // GPUs on the node; a group is within one node) go through host memory.
  bool distinct_devices() {
    const int mine = device_.index() < 0 ? 0 : device_.index();
    std::vector<int> all(static_cast<std::size_t>(size_));
    check(MPI_Allgather(&mine, 1, MPI_INT, all.data(), 1, MPI_INT, comm_), "MPI_Allgather");
    std::sort(all.begin(), all.end());
    return std::adjacent_find(all.begin(), all.end()) == all.end();
  }
  torch::Device device_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
#ifdef LPI_HAVE_NCCL
  ncclComm_t nccl_ = nullptr;
  cudaStream_t stream_ = nullptr;
#endif
};

class MpiGroups : public Groups {
 public:
  explicit MpiGroups(MPI_Comm comm) { check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup"); }
  ~MpiGroups() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  }
  std::unique_ptr<Group> open(const std::vector<int32_t>& ranks, int32_t id,
                              const torch::Device& device) override {
    return std::make_unique<MpiGroup>(comm_, ranks, id, device);
  }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

}  // namespace

std::shared_ptr<Groups> mpi_groups(MPI_Comm comm) {
  return std::make_shared<MpiGroups>(comm);
}

bool have_nccl() {
#ifdef LPI_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

}  // namespace lpi::share

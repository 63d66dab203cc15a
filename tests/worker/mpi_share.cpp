// Shared loads under a real mpirun (-np 4): one rank reads a checkpoint and
// broadcasts its weights (worker/share, MPI_Bcast) to the others, which
// must then hold the weights of their own read, bit for bit. Also: two
// groups at once, a root whose load failed, a member whose model does not
// match (it takes the bytes, the others are unharmed), bfloat16 weights.
// With --device cuda (deploy/gpu-check.sh) the models are on the GPUs, one
// per rank (ncclBroadcast where the build has NCCL and each rank has a GPU
// of its own; else through host memory).
// Exit status 0 = pass; each failed check is printed with its rank.
#include <mpi.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "tiny_models.hpp"
#include "worker/engine/model.hpp"
#include "worker/share/mpi_groups.hpp"
#include "worker/share/weight_share.hpp"

namespace en = lpi::engine;
namespace sh = lpi::share;
namespace fs = std::filesystem;

namespace {

int rank = 0, failures = 0;
torch::Device device = torch::kCPU;  // --device cuda: each rank on GPU rank % count
std::string method = "MPI_Bcast";    // what the groups should use

void expect(bool ok, const std::string& what) {
  if (ok) return;
  ++failures;
  std::fprintf(stderr, "rank %d: FAILED: %s\n", rank, what.c_str());
}

// Every parameter's bytes equal.
bool same_bits(const en::Transformer& a, const en::Transformer& b) {
  const auto pa = a->parameters(), pb = b->parameters();
  if (pa.size() != pb.size()) return false;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    const auto x = pa[i].to(torch::kCPU).contiguous(), y = pb[i].to(torch::kCPU).contiguous();
    if (x.nbytes() != y.nbytes() || std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) != 0)
      return false;
  }
  return true;
}

en::Transformer skeleton(const fs::path& folder, torch::ScalarType dtype) {
  en::Transformer m(lpi::checkpoint::read_model_config(folder));
  m->to(device, dtype);
  for (auto& p : m->parameters()) p.set_requires_grad(false);
  return m;
}

// The group `ranks` (root first) shares `folder`; every rank of it checks
// its weights against its own read. `broken_member`: that rank receives
// into a model of `other` instead (its error expected, the others intact).
void share(sh::Groups& groups, const std::vector<int32_t>& ranks, int32_t id,
           const fs::path& folder, torch::ScalarType dtype, const std::string& root_error = "",
           int broken_member = -1, const fs::path& other = {}) {
  if (std::find(ranks.begin(), ranks.end(), rank) == ranks.end()) return;
  const std::string what = "shared load " + std::to_string(id) + ": ";
  const bool root = ranks.front() == rank;
  en::LoadOptions lo;
  lo.dtype = dtype;
  lo.device = device;
  en::Transformer model{nullptr};
  if (root) {
    model = en::load_model(folder, lo);
  } else {
    model = skeleton(rank == broken_member ? other : folder, dtype);
  }
  const auto group = groups.open(ranks, id, device);
  expect(group->is_root() == root, what + "is_root");
  expect(group->size() == static_cast<int>(ranks.size()), what + "size");
  sh::ShareStats stats;
  const auto error = sh::share_model(
      *group, model, root_error.empty() ? std::nullopt : std::optional<std::string>(root_error),
      device, &stats);
  if (!root_error.empty()) {
    expect(root || !error || error->find(root_error) != std::string::npos,
           what + "the root's error reaches its members");
    expect(root || error.has_value(), what + "a member of a failed root holds no model");
    return;
  }
  if (rank == broken_member) {
    expect(error && (error->find("the root sends") != std::string::npos ||
                     error->find("bytes at the root") != std::string::npos),
           what + "the mismatched member is told why (" + error.value_or("no error") + ")");
    return;
  }
  expect(!error, what + "no error (" + error.value_or("") + ")");
  expect(ranks.size() == 1 || stats.method == method, what + "method " + stats.method);
  expect(stats.bytes > 0, what + "bytes counted");
  expect(same_bits(model, en::load_model(folder, lo)),
         what + "weights equal the file's, bit for bit");
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (size != 4) {
    if (rank == 0) std::fprintf(stderr, "mpi_share: run with -np 4\n");
    MPI_Finalize();
    return 2;
  }
  if (argc > 2 && std::string(argv[1]) == "--device" && std::string(argv[2]) == "cuda") {
    const auto n = static_cast<int>(torch::cuda::device_count());
    if (n == 0) {
      if (rank == 0) std::fprintf(stderr, "mpi_share: --device cuda, but no CUDA device\n");
      MPI_Finalize();
      return 2;
    }
    device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(rank % n));
    if (lpi::share::have_nccl() && n >= size) method = "ncclBroadcast";
    if (rank == 0) std::printf("mpi_share: on %d GPU(s), expecting %s\n", n, method.c_str());
  }
  // Rank 0 writes the checkpoints into a folder every rank sees.
  char dir[4096] = {};
  if (rank == 0) {
    std::string pattern = (fs::temp_directory_path() / "lpi_share_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) MPI_Abort(MPI_COMM_WORLD, 2);
    std::snprintf(dir, sizeof dir, "%s", pattern.c_str());
    auto moe = en::testing::tiny_olmoe();
    en::testing::write_tiny_model(fs::path(dir) / "moe", moe);
    auto dense = en::testing::tiny_dense();
    en::testing::write_tiny_model(fs::path(dir) / "dense", dense);
  }
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  const fs::path moe = fs::path(dir) / "moe", dense = fs::path(dir) / "dense";
  {
    const auto groups = sh::mpi_groups(MPI_COMM_WORLD);
    share(*groups, {0, 1, 2, 3}, 0, moe, torch::kFloat32);
    share(*groups, {2, 3, 0, 1}, 1, dense, torch::kBFloat16);
    // Two groups at once, each with its own root.
    share(*groups, {3, 1}, 2, moe, torch::kFloat32);
    share(*groups, {2, 0}, 3, dense, torch::kFloat32);
    share(*groups, {1, 0, 3}, 4, moe, torch::kFloat32, "checkpoint moe: tensor 'x' holds NaN");
    share(*groups, {0, 1, 2}, 5, moe, torch::kFloat32, "", 1, dense);
    // A group of one: nothing to send, the root keeps its model.
    share(*groups, {2}, 6, dense, torch::kFloat32);
  }
  int all = 0;
  MPI_Allreduce(&failures, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    fs::remove_all(dir);
    std::printf("mpi_share: %s (%d failed check(s) over 4 ranks)\n", all ? "FAILED" : "ok", all);
  }
  MPI_Finalize();
  return all ? 1 : 0;
}

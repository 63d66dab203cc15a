// lpi-share-bench: the load time per rank of one checkpoint, read by every
// rank itself or read once and broadcast (worker/share: MPI_Bcast here,
// ncclBroadcast between GPUs in a build with NCCL), under mpirun -np N.
//   mpirun -np 4 lpi-share-bench --checkpoint DIR [--dtype bfloat16] [--repeat 3]
//   lpi-share-bench --make DIR --width olmoe-1b-7b --layers 1   (a random checkpoint first)
// --make writes a random checkpoint of OLMoE-1B-7B's widths (d 2048, 64
// experts x 1024, V 50,304) or OLMo-7B's (d 4096, FFN 11008) with the
// chosen number of layers, bfloat16, before the timing. Prints, per
// repetition, each rank's seconds: all ranks reading at once, then one
// reading and the others receiving.
#include <mpi.h>

#include <boost/program_options.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "worker/engine/model.hpp"
#include "worker/share/mpi_groups.hpp"
#include "worker/share/weight_share.hpp"
#include "worker/tools/shapes.hpp"
#include "worker/tools/tool_main.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
namespace en = lpi::engine;
namespace ck = lpi::checkpoint;

namespace {

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// max over ranks of a rank's seconds
double slowest(double s) {
  double out = 0;
  MPI_Allreduce(&s, &out, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return out;
}

int run(int argc, char** argv, int rank, int size) {
  std::string folder, make, width = "olmoe-1b-7b", dtype = "bfloat16";
  int64_t layers = 1;
  int repeat = 3;
  po::options_description opts("lpi-share-bench: a checkpoint's load time per rank, shared or not");
  // clang-format off
  opts.add_options()
      ("help,h", "show this help")
      ("checkpoint", po::value(&folder), "the checkpoint folder to load")
      ("make", po::value(&make), "write a random checkpoint here first (rank 0), then load it")
      ("width", po::value(&width)->default_value("olmoe-1b-7b"), "--make: the shape (worker/tools/shapes.hpp), e.g. olmoe-1b-7b or olmo-7b")
      ("layers", po::value(&layers)->default_value(1), "--make: the number of layers")
      ("dtype", po::value(&dtype)->default_value("bfloat16"), "the weights in memory: float32 or bfloat16")
      ("repeat", po::value(&repeat)->default_value(3), "repetitions");
  // clang-format on
  if (!lpi::tools::parse_command_line(argc, argv, opts)) return 0;
  if (folder.empty() == make.empty()) throw po::error("give --checkpoint or --make");
  if (dtype != "float32" && dtype != "bfloat16") throw po::error("--dtype: float32 or bfloat16");
  en::LoadOptions lo;
  lo.dtype = dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
  if (!make.empty()) {
    folder = make;
    if (rank == 0) {
      const auto t = std::chrono::steady_clock::now();
      en::Transformer m(lpi::tools::named_shape(width, layers));
      m->init_weights(0.02, 1);
      en::save_model(m, make, torch::kBFloat16);
      std::printf("wrote %s (%s widths, %lld layer(s), bfloat16) in %.1f s\n", make.c_str(),
                  width.c_str(), static_cast<long long>(layers), since(t));
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  const auto config = ck::read_model_config(folder);
  const auto groups = lpi::share::mpi_groups(MPI_COMM_WORLD);
  std::vector<int32_t> all;
  for (int r = 0; r < size; ++r) all.push_back(r);
  if (rank == 0) {
    std::printf("%d rank(s), %s in %s; seconds (slowest rank):\n", size, folder.c_str(),
                dtype.c_str());
    std::printf("%-6s %16s %12s %12s %16s %10s\n", "rep", "each reads", "root reads", "receive",
                "root + receive", "GB/s");
  }
  for (int k = 0; k < repeat; ++k) {
    // Every rank reads the checkpoint itself, all at once.
    MPI_Barrier(MPI_COMM_WORLD);
    auto t = std::chrono::steady_clock::now();
    { auto own = en::load_model(folder, lo); }
    const double each = slowest(since(t));
    // One reads, the others receive.
    MPI_Barrier(MPI_COMM_WORLD);
    t = std::chrono::steady_clock::now();
    en::Transformer m{nullptr};
    double read = 0;
    if (rank == 0) {
      m = en::load_model(folder, lo);
      read = since(t);
    } else {
      m = en::Transformer(config, lo.dtype);
    }
    lpi::share::ShareStats stats;
    if (size > 1) {
      const auto group = groups->open(all, k, torch::kCPU);
      const auto error = lpi::share::share_model(*group, m, std::nullopt, torch::kCPU, &stats);
      if (error) throw std::runtime_error(*error);
    }
    const double total = slowest(since(t));
    const double root = slowest(read);
    const double receive = slowest(rank == 0 ? 0 : stats.seconds);
    if (rank == 0) {
      const double gb = static_cast<double>(stats.bytes) / 1e9;
      std::printf("%-6d %16.2f %12.2f %12.2f %16.2f %10.2f\n", k, each, root, receive, total,
                  receive > 0 ? gb / receive : 0.0);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int rc =
      lpi::tools::run_tool("lpi-share-bench", [&] { return run(argc, argv, rank, size); });
  if (rc != 0 && size > 1) MPI_Abort(MPI_COMM_WORLD, rc);
  MPI_Finalize();
  return rc;
}

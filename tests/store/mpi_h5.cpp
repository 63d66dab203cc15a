// The typed HDF5 layer under MPI-IO (run with mpirun -np 2 or more): every
// rank creates one file collectively with early allocation, writes its own
// disjoint slab independently (one chunk per rank, like the sweep store's
// units), and then reads back every rank's slab. Exit 0 on success.
#include <mpi.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "common/h5/h5.hpp"

namespace h5 = lpi::h5;

namespace {

int fail(int rank, const std::string& what) {
  std::fprintf(stderr, "rank %d: FAIL: %s\n", rank, what.c_str());
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::string path;
  if (rank == 0) {
    path = (std::filesystem::temp_directory_path() /
            ("lpi_mpi_h5_" + std::to_string(::getpid()) + ".h5"))
               .string();
  }
  int n = static_cast<int>(path.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
  path.resize(static_cast<std::size_t>(n));
  MPI_Bcast(path.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
  const int64_t W = 5;
  try {
    const h5::Parallel mpi{MPI_COMM_WORLD, {{"romio_ds_write", "disable"}}};
    {
      // Collective: the file, its attribute and datasets.
      auto f = h5::File::create(path, h5::Create::exclusive, mpi);
      f.set_attribute("ranks", int64_t{size});
      h5::DatasetSpec spec = h5::DatasetSpec::plain({size, W});
      spec.chunk = {1, W};
      spec.early_allocation = true;
      spec.fill_time = h5::FillTime::never;
      const auto data = f.create_dataset("data", h5::dtype<double>::file(), spec);
      h5::DatasetSpec flags = h5::DatasetSpec::plain({size});
      flags.early_allocation = true;
      flags.fill_time = h5::FillTime::alloc;
      flags.fill_value = 0;
      const auto done = f.create_dataset("done", h5::dtype<uint8_t>::file(), flags);
      h5::DatasetSpec strings = h5::DatasetSpec::plain({size});
      strings.early_allocation = true;
      strings.fill_time = h5::FillTime::alloc;  // HDF5's default fill: empty strings
      const auto names = f.create_dataset("name", h5::Type::fixed_string(8), strings);
      f.flush();
      // Independent: each rank its own row, then its flag last.
      std::vector<double> row;
      for (int64_t i = 0; i < W; ++i) row.push_back(rank * 100.0 + static_cast<double>(i));
      data.select({rank, 0}, {1, W}).write(row);
      names.select({rank}, {1}).write(std::vector<std::string>{"rank" + std::to_string(rank)});
      const uint8_t one = 1;
      done.select({rank}, {1}).write(&one, 1);
      MPI_Barrier(MPI_COMM_WORLD);
      // Every rank reads every other rank's slab back through MPI-IO.
      for (int r = 0; r < size; ++r) {
        const auto back = data.select({r, 0}, {1, W}).read<double>();
        for (int64_t i = 0; i < W; ++i)
          if (back[i] != r * 100.0 + static_cast<double>(i))
            return fail(rank, "row " + std::to_string(r) + " read back wrong");
      }
      if (done.read<uint8_t>() != std::vector<uint8_t>(static_cast<std::size_t>(size), 1))
        return fail(rank, "done flags");
    }  // collective close
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0) {  // and serially, after the parallel close
      const auto f = h5::File::open(path);
      if (f.attribute("ranks").read<int64_t>() != size) return fail(rank, "attribute");
      const auto all = f.dataset("data").read<double>();
      if (static_cast<int64_t>(all.size()) != size * W || all.back() != (size - 1) * 100.0 + 4)
        return fail(rank, "serial read");
      const auto names = f.dataset("name").read<std::string>();
      if (names.back() != "rank" + std::to_string(size - 1)) return fail(rank, "names");
      std::filesystem::remove(path);
      std::printf("mpi_h5: %d ranks wrote disjoint slabs and read them back\n", size);
    }
  } catch (const std::exception& e) {
    return fail(rank, e.what());
  }
  MPI_Finalize();
  return 0;
}

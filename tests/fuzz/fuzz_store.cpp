// A sweep store file from arbitrary bytes (HDF5 needs a real file: the bytes
// are written to one), checked as store_checks.hpp says. The seeds are real
// stores (tiny_store.hpp, their run log cut to 16 entries); most mutations
// damage HDF5's own structures, which libhdf5 1.10.8 reads with leaks and
// unchecked allocation sizes of its own (see ci/fuzz.sh: its leaks are
// suppressed and its allocations may fail with NULL, which it handles).
// fuzz_store_edits damages what the store says instead.
#include <cstddef>
#include <cstdint>

#include "store_checks.hpp"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  lpi::fuzz::init_mpi_and_hdf5(argc, argv);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::string path = (lpi::fuzz::scratch() / "store").string();
  lpi::fuzz::write_file(path, lpi::fuzz::as_text(data, size));
  (void)lpi::fuzz::check_store_file(path);
  return 0;
}

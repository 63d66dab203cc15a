// The CPU threads of the engine's numerics: libtorch's intra-op pool and, when
// libtorch runs its matrix products through OpenBLAS, OpenBLAS's own pool.
// Results are bit for bit reproducible for a fixed count, but OpenBLAS sums
// some products in a thread-count-dependent order, and mpirun's core binding
// changes its default count: tools that must agree bit for bit (lpi-sweep,
// lpi-attribute) set the count explicitly.
#pragma once

namespace lpi::engine {

// Sets both pools to `threads` (>= 1). Returns whether OpenBLAS was found.
bool set_compute_threads(int threads);

// OpenBLAS on one thread while it lives (the count before is restored after),
// for code that spreads its own work over libtorch's threads and calls BLAS
// from each: OpenBLAS's pool would otherwise compete with them for the cores
// (its threads spin between calls) and sum in a thread-count-dependent order.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int before_ = 0;  // 0: no OpenBLAS
};

}  // namespace lpi::engine

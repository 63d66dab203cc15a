#include "worker/engine/threads.hpp"

#include <dlfcn.h>
#include <torch/torch.h>

namespace lpi::engine {

bool set_compute_threads(int threads) {
  torch::set_num_threads(threads);
  // OpenBLAS, if libtorch was linked with it (Debian's is): looked up at run
  // time so that other BLAS builds need nothing.
  using SetThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    f(threads);
    return true;
  }
  return false;
}

}  // namespace lpi::engine

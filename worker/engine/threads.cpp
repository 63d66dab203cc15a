#include "worker/engine/threads.hpp"

#include <dlfcn.h>
#include <torch/torch.h>

namespace lpi::engine {
namespace {

// OpenBLAS, if libtorch was linked with it (Debian's is): looked up at run
// time so that other BLAS builds need nothing.
using SetThreads = void (*)(int);
using GetThreads = int (*)();
SetThreads openblas_set() {
  static const auto f =
      reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  return f;
}
GetThreads openblas_get() {
  static const auto f =
      reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return f;
}

}  // namespace

bool set_compute_threads(int threads) {
  torch::set_num_threads(threads);
  if (auto f = openblas_set()) {
    f(threads);
    return true;
  }
  return false;
}

SingleThreadedBlas::SingleThreadedBlas() {
  if (openblas_set() && openblas_get()) {
    before_ = openblas_get()();
    if (before_ != 1) openblas_set()(1);
  }
}

SingleThreadedBlas::~SingleThreadedBlas() {
  if (before_ > 1) openblas_set()(before_);
}

}  // namespace lpi::engine

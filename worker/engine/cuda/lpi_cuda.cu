// The Gated-LPI GPU kernels (lpi_cuda.hpp). Compiled by nvcc when CMake's
// LPI_WITH_CUDA finds it (worker/CMakeLists.txt); the tests that run them
// skip without a device (tests/worker/test_cuda_kernels.cpp).
#include "worker/engine/cuda/lpi_cuda.hpp"

#include <cuda_runtime.h>

#include <stdexcept>

namespace lpi::engine::cuda {

namespace {

constexpr int kThreads = 256;  // per block
// relative_lse's tile: kTileM prompts x kTileN neurons = kThreads pairs (a
// warp holds one prompt and 32 neurons), vocabulary chunks of kChunkV.
constexpr int kTileM = 8, kTileN = 32, kChunkV = 128;
static_assert(kTileM * kTileN == kThreads, "one pair per thread");
static_assert(1024 % kChunkV == 0, "a float stretch is whole chunks");

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw std::runtime_error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}

// One block per output row r and vocabulary tile: each warp takes one v at a
// time, its lanes sum k = lane (mod 32) in order, then a fixed butterfly.
__global__ void row_dots_kernel(const float* x, int64_t rows, const float* w, int64_t n, int64_t d,
                                float* out) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = kThreads / 32;
  const int64_t r = blockIdx.y;
  const float* xr = x + r * d;
  for (int64_t v = static_cast<int64_t>(blockIdx.x) * warps + warp; v < n;
       v += static_cast<int64_t>(gridDim.x) * warps) {
    const float* wv = w + v * d;
    float acc = 0.0f;
    for (int64_t k = lane; k < d; k += 32) acc = fmaf(xr[k], wv[k], acc);
    for (int o = 16; o >= 1; o /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) out[r * n + v] = acc;
  }
}

// A block scores a tile of kTileM prompts x kTileN neurons, one (prompt,
// neuron) pair per thread: the tile's q and s rows and p rows come through
// shared memory in chunks of kChunkV entries (each read from global memory
// once per tile, not once per pair), and each thread sums its pair's terms
// over v in order, in float within 1024-entry stretches and in double across
// them. A pair's arithmetic never depends on the tile it is in, so the scores
// are batch-invariant; the cost is one exp per (pair, v), the bound the
// tensor-op formulation misses by reading [m, n, V] temporaries.
__global__ void relative_lse_kernel(const float* q, const float* s, const float* total,
                                    const float* p, const float* eps, const float* beta,
                                    const float* radius, const float* upper, int64_t m, int64_t n,
                                    int64_t V, float* out) {
  __shared__ float sq[kTileM][kChunkV], ss[kTileM][kChunkV];
  __shared__ float sp[kTileN][kChunkV + 1];  // +1: the warp's 32 rows fall in 32 banks
  const int tm = threadIdx.x / kTileN, tn = threadIdx.x % kTileN;
  const int64_t b0 = static_cast<int64_t>(blockIdx.y) * kTileM;
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * kTileN;
  const int64_t b = b0 + tm, i = i0 + tn;
  const bool valid = b < m && i < n;
  float e = 0, be = 0, shift = 0;
  bool small = true;
  if (valid) {
    const int64_t k = b * n + i;
    e = eps ? eps[k] : 0.0f;
    be = beta[k];
    small = radius[k] <= 0.5f;
    shift = small ? 0.0f : upper[k];
  }
  double sum = 0;
  float part = 0;
  for (int64_t c0 = 0; c0 < V; c0 += kChunkV) {
    const int64_t len = V - c0 < kChunkV ? V - c0 : kChunkV;
    for (int k = threadIdx.x; k < kTileM * kChunkV; k += kThreads) {
      const int row = k / kChunkV, col = k % kChunkV;
      const bool in = b0 + row < m && col < len;
      sq[row][col] = in ? q[(b0 + row) * V + c0 + col] : 0.0f;
      ss[row][col] = in && s ? s[(b0 + row) * V + c0 + col] : 0.0f;
    }
    for (int k = threadIdx.x; k < kTileN * kChunkV; k += kThreads) {
      const int row = k / kChunkV, col = k % kChunkV;
      sp[row][col] = i0 + row < n && col < len ? p[(i0 + row) * V + c0 + col] : 0.0f;
    }
    __syncthreads();
    if (valid) {
      for (int col = 0; col < len; ++col) {
        const float delta = fmaf(e, ss[tm][col], be * sp[tn][col]);
        part += small ? sq[tm][col] * expm1f(delta) : sq[tm][col] * expf(delta - shift);
        if ((c0 + col + 1) % 1024 == 0) {
          sum += part;
          part = 0;
        }
      }
    }
    __syncthreads();
  }
  if (!valid) return;
  sum += part;
  const double t = total[b];
  // small: log((t + sum q (e^d - 1)) / t); else log(sum q e^(d - shift) / t) + shift
  out[b * n + i] =
      small ? static_cast<float>(log1p(sum / t)) : static_cast<float>(log(sum / t) + shift);
}

}  // namespace

bool device_memory(int64_t& used, int64_t& total) {
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) return false;
  used = static_cast<int64_t>(total_bytes - free_bytes);
  total = static_cast<int64_t>(total_bytes);
  return true;
}

std::string unavailable() {
  int devices = 0;
  const auto e = cudaGetDeviceCount(&devices);
  if (e != cudaSuccess) return std::string("no CUDA device: ") + cudaGetErrorString(e);
  if (devices == 0) return "no CUDA device is visible";
  return "";
}

void row_dots(const float* x, int64_t rows, const float* w, int64_t n, int64_t d, float* out) {
  if (rows == 0 || n == 0) return;
  const int64_t warps = kThreads / 32;
  const dim3 grid(
      static_cast<unsigned>((n + warps - 1) / warps < 4096 ? (n + warps - 1) / warps : 4096),
      static_cast<unsigned>(rows));
  row_dots_kernel<<<grid, kThreads>>>(x, rows, w, n, d, out);
  check(cudaGetLastError(), "launch row_dots");
}

void relative_lse(const float* q, const float* s, const float* total, const float* p,
                  const float* eps, const float* beta, const float* radius, const float* upper,
                  int64_t m, int64_t n, int64_t V, float* out) {
  if (m == 0 || n == 0) return;
  const dim3 grid(static_cast<unsigned>((n + kTileN - 1) / kTileN),
                  static_cast<unsigned>((m + kTileM - 1) / kTileM));
  relative_lse_kernel<<<grid, kThreads>>>(q, s, total, p, eps, beta, radius, upper, m, n, V, out);
  check(cudaGetLastError(), "launch relative_lse");
}

void synchronize() {
  check(cudaDeviceSynchronize(), "a Gated-LPI kernel");
}

}  // namespace lpi::engine::cuda

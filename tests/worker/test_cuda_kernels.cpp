// The Gated-LPI GPU kernels (worker/engine/cuda) against the formula in
// double precision on the host, and their batch invariance (a row's or a
// pair's bits do not depend on the other rows or pairs of the launch). They
// run only on a machine with a CUDA device: elsewhere each test skips and
// says why (deploy/gpu-check.sh runs them on a GPU machine).
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <random>
#include <vector>

#include "worker/engine/cuda/lpi_cuda.hpp"

namespace cu = lpi::engine::cuda;

namespace {

#define SKIP_WITHOUT_DEVICE()                                                  \
  do {                                                                         \
    const auto why = cu::unavailable();                                        \
    if (!why.empty()) GTEST_SKIP() << "the CUDA kernels are not run: " << why; \
  } while (0)

// A device copy of a host vector, freed at the end of the scope.
struct Device {
  float* ptr = nullptr;
  explicit Device(const std::vector<float>& host) {
    EXPECT_EQ(cudaMalloc(&ptr, host.size() * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice),
              cudaSuccess);
  }
  explicit Device(std::size_t n) { EXPECT_EQ(cudaMalloc(&ptr, n * sizeof(float)), cudaSuccess); }
  ~Device() { cudaFree(ptr); }
  std::vector<float> host(std::size_t n) const {
    std::vector<float> out(n);
    EXPECT_EQ(cudaMemcpy(out.data(), ptr, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
};

std::vector<float> random(std::size_t n, float scale, std::mt19937& rng) {
  std::normal_distribution<float> g(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

// A prompt's base distribution q = softmax(s), and its sum as floats.
void softmax(const std::vector<float>& s, int64_t m, int64_t V, std::vector<float>& q,
             std::vector<float>& total) {
  q.resize(s.size());
  total.assign(static_cast<std::size_t>(m), 0.0f);
  for (int64_t b = 0; b < m; ++b) {
    double mx = -INFINITY, sum = 0;
    for (int64_t v = 0; v < V; ++v) mx = std::max<double>(mx, s[b * V + v]);
    for (int64_t v = 0; v < V; ++v) sum += std::exp(s[b * V + v] - mx);
    double t = 0;
    for (int64_t v = 0; v < V; ++v) {
      q[b * V + v] = static_cast<float>(std::exp(s[b * V + v] - mx) / sum);
      t += q[b * V + v];
    }
    total[b] = static_cast<float>(t);
  }
}

}  // namespace

TEST(CudaKernels, RowDotsMatchDoublePrecisionAndAreBatchInvariant) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(3);
  const int64_t rows = 7, n = 5003, d = 2048;
  const auto x = random(rows * d, 1.0f, rng), w = random(n * d, 0.02f, rng);
  const Device dx(x), dw(w), out(rows * n), one(n);
  cu::row_dots(dx.ptr, rows, dw.ptr, n, d, out.ptr);
  cu::row_dots(dx.ptr + 3 * d, 1, dw.ptr, n, d, one.ptr);  // row 3 alone
  cu::synchronize();
  const auto all = out.host(rows * n), alone = one.host(n);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t v = 0; v < n; v += 97) {
      double want = 0;
      for (int64_t k = 0; k < d; ++k) want += static_cast<double>(x[r * d + k]) * w[v * d + k];
      EXPECT_NEAR(all[r * n + v], want, 1e-4) << "row " << r << ", column " << v;
    }
  }
  for (int64_t v = 0; v < n; ++v) ASSERT_EQ(all[3 * n + v], alone[v]) << "column " << v;
}

TEST(CudaKernels, RelativeLseMatchesTheFormulaInDouble) {
  SKIP_WITHOUT_DEVICE();
  std::mt19937 rng(5);
  const int64_t m = 5, n = 37, V = 50304;
  const auto s = random(m * V, 3.0f, rng), p = random(n * V, 1.0f, rng);
  std::vector<float> q, total;
  softmax(s, m, V, q, total);
  // Both regimes: small changes (|delta| <= 1/2) and large ones.
  std::vector<float> eps(m * n), beta(m * n), radius(m * n), upper(m * n);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  float s_abs = 0, p_abs = 0;
  for (float v : s) s_abs = std::max(s_abs, std::abs(v));
  for (float v : p) p_abs = std::max(p_abs, std::abs(v));
  for (int64_t k = 0; k < m * n; ++k) {
    const bool small = k % 2 == 0;
    eps[k] = small ? 1e-4f * u(rng) : 1e-2f * u(rng);
    beta[k] = small ? 0.05f * u(rng) / p_abs : 2.0f * u(rng);
    radius[k] = std::abs(eps[k]) * s_abs + std::abs(beta[k]) * p_abs;
    upper[k] = radius[k];
  }
  const Device dq(q), ds(s), dt(total), dp(p), de(eps), db(beta), dr(radius), du(upper), out(m * n),
      one(n);
  cu::relative_lse(dq.ptr, ds.ptr, dt.ptr, dp.ptr, de.ptr, db.ptr, dr.ptr, du.ptr, m, n, V,
                   out.ptr);
  // Prompt 2 alone (its rows of every input): the same bits.
  cu::relative_lse(dq.ptr + 2 * V, ds.ptr + 2 * V, dt.ptr + 2, dp.ptr, de.ptr + 2 * n,
                   db.ptr + 2 * n, dr.ptr + 2 * n, du.ptr + 2 * n, 1, n, V, one.ptr);
  cu::synchronize();
  const auto got = out.host(m * n), alone = one.host(n);
  for (int64_t b = 0; b < m; ++b) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t k = b * n + i;
      double sum = 0;
      for (int64_t v = 0; v < V; ++v)
        sum += static_cast<double>(q[b * V + v]) *
               std::exp(static_cast<double>(eps[k]) * s[b * V + v] +
                        static_cast<double>(beta[k]) * p[i * V + v]);
      const double want = std::log(sum / total[b]);
      EXPECT_NEAR(got[k], want, 2e-6 + 2e-6 * std::abs(want)) << "prompt " << b << ", neuron " << i;
    }
  }
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[2 * n + i], alone[i]) << "neuron " << i;
}

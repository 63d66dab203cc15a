#include "worker/engine/lse_kernel_block.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "worker/engine/lse_kernel.hpp"

namespace lpi::engine::kernels {
namespace {

constexpr int64_t kColumnsPerItem = 192;  // vocabulary entries per work item of a product
constexpr int64_t kNeuronsPerItem = 16;   // a tile of P rows that stays in L2 ...
constexpr int64_t kPromptsPerItem = 8;    // ... with a block of prompts' q rows

// out [rows, cols] = a^T w^T for a [d, rows] k-major, zero past V.
torch::Tensor product(const torch::Tensor& a_kmajor, const torch::Tensor& w, int64_t cols) {
  const auto a = a_kmajor.to(torch::kFloat32).contiguous();
  const auto wc = w.contiguous();
  const int64_t d = a.size(0), rows = a.size(1), V = wc.size(0);
  TORCH_CHECK(wc.size(1) == d && cols >= V, "unembed product: shapes");
  auto out = torch::zeros({rows, cols}, a.options());
  const float* pa = a.data_ptr<float>();
  const float* pw = wc.data_ptr<float>();
  float* po = out.data_ptr<float>();
  const int64_t items = (V + kColumnsPerItem - 1) / kColumnsPerItem;
  at::parallel_for(0, items, 1, [&](int64_t i0, int64_t i1) {
    lens_product(pa, rows, rows, pw, d, i0 * kColumnsPerItem, std::min(V, i1 * kColumnsPerItem), po,
                 cols);
  });
  return out;
}

}  // namespace

int64_t padded(int64_t vocab) {
  return (vocab + kRowAlign - 1) / kRowAlign * kRowAlign;
}

torch::Tensor unembed_rows(const torch::Tensor& y, const torch::Tensor& w, int64_t cols) {
  return product(y.t(), w, cols);
}

torch::Tensor unembed_columns(const torch::Tensor& g, const torch::Tensor& w, int64_t cols) {
  return product(g, w, cols);
}

std::pair<torch::Tensor, torch::Tensor> base_distributions(const torch::Tensor& s, int64_t vocab) {
  const auto sc = s.contiguous();
  const int64_t m = sc.size(0), cols = sc.size(1);
  auto q = torch::zeros_like(sc);
  auto totals = torch::empty({m}, sc.options().dtype(torch::kFloat64));
  const float* ps = sc.data_ptr<float>();
  float* pq = q.data_ptr<float>();
  double* pt = totals.data_ptr<double>();
  at::parallel_for(0, m, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      pt[b] = base_distribution(ps + b * cols, vocab, pq + b * cols).total;
    }
  });
  return {q, totals};
}

std::pair<torch::Tensor, torch::Tensor> delta_bounds(const torch::Tensor& p, int64_t vocab,
                                                     const torch::Tensor& beta,
                                                     const torch::Tensor& s,
                                                     const torch::Tensor& eps) {
  const auto pv = p.narrow(1, 0, vocab);
  const auto p_max = pv.amax(1), p_min = pv.amin(1);
  auto radius = beta.abs() * torch::maximum(p_max.abs(), p_min.abs()).unsqueeze(0);
  auto upper = torch::maximum(beta * p_max.unsqueeze(0), beta * p_min.unsqueeze(0));
  if (eps.defined()) {
    const auto sv = s.narrow(1, 0, vocab);
    const auto s_max = sv.amax(1).unsqueeze(1), s_min = sv.amin(1).unsqueeze(1);
    radius = radius + eps.abs() * torch::maximum(s_max.abs(), s_min.abs());
    upper = upper + torch::maximum(eps * s_max, eps * s_min);
  }
  return {radius.contiguous(), upper.contiguous()};
}

torch::Tensor relative_lse_block(const torch::Tensor& q, const torch::Tensor& totals,
                                 const torch::Tensor& s, const torch::Tensor& p, int64_t vocab,
                                 const torch::Tensor& beta, const torch::Tensor& eps) {
  const int64_t m = q.size(0), cols = q.size(1), n = p.size(0);
  TORCH_CHECK(cols % kRowAlign == 0 && p.size(1) == cols, "relative_lse_block: padded rows");
  const auto be = beta.contiguous();
  const auto ep = eps.defined() ? eps.contiguous() : eps;
  const bool exact = ep.defined();
  const auto [radius, upper] = delta_bounds(p, vocab, be, s, ep);

  SmallSums args;
  args.q = q.data_ptr<float>();
  args.s = exact ? s.data_ptr<float>() : nullptr;
  args.ldq = cols;
  args.p = p.data_ptr<float>();
  args.ldp = cols;
  args.n = cols;
  args.beta = be.data_ptr<float>();
  args.eps = exact ? ep.data_ptr<float>() : nullptr;
  auto sums = torch::zeros({m, n}, q.options().dtype(torch::kFloat64));
  args.sums = sums.data_ptr<double>();
  args.ldc = n;

  // The polynomial sums for every pair, in items of a tile of neurons by a
  // block of prompts (a pair whose |delta| may exceed kSmallRadius is
  // recomputed below, its sum here discarded).
  const int64_t neuron_items = (n + kNeuronsPerItem - 1) / kNeuronsPerItem;
  const int64_t prompt_items = (m + kPromptsPerItem - 1) / kPromptsPerItem;
  at::parallel_for(0, neuron_items * prompt_items, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t i0 = k / prompt_items * kNeuronsPerItem;
      const int64_t b0 = k % prompt_items * kPromptsPerItem;
      small_sums(args, b0, std::min(m, b0 + kPromptsPerItem), i0,
                 std::min(n, i0 + kNeuronsPerItem));
    }
  });

  auto out = torch::empty({m, n}, q.options());
  float* po = out.data_ptr<float>();
  const float* pr = radius.data_ptr<float>();
  const float* pu = upper.data_ptr<float>();
  const double* pt = totals.data_ptr<double>();
  std::vector<int64_t> large;  // pairs for the shifted exp
  for (int64_t k = 0; k < m * n; ++k) {
    if (pr[k] <= kSmallRadius) {
      po[k] = static_cast<float>(std::log1p(args.sums[k] / pt[k / n]));
    } else {
      large.push_back(k);
    }
  }
  at::parallel_for(0, static_cast<int64_t>(large.size()), 1, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t k = large[j], b = k / n, i = k % n;
      po[k] = static_cast<float>(
          relative_lse(args.q + b * cols, exact ? args.s + b * cols : nullptr, args.p + i * cols,
                       cols, exact ? args.eps[k] : 0.0f, args.beta[k], pr[k], pu[k], pt[b]));
    }
  });
  return out;
}

}  // namespace lpi::engine::kernels

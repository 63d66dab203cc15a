#include "worker/tools/bench_parts.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>

#include "worker/engine/lse_kernel.hpp"
#include "worker/engine/lse_kernel_block.hpp"
#include "worker/engine/threads.hpp"

namespace lpi::bench {
namespace en = lpi::engine;
namespace ck = lpi::checkpoint;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// One block as a researcher writes it; returns [m, n] and adds the scoring time.
torch::Tensor peer_block(const torch::Tensor& wu, const torch::Tensor& gain, bool center,
                         double eps_norm, en::Lens lens, const torch::Tensor& x,
                         const torch::Tensor& c, const torch::Tensor& u, const torch::Tensor& w,
                         const torch::Tensor& sf, int64_t budget_floats, double& seconds) {
  const auto cx = center ? x - x.mean(-1, true) : x;
  const auto cu = center ? u - u.mean(0, true) : u;
  const auto P = torch::matmul(wu, cu * gain.unsqueeze(1)).t().contiguous();  // [n, V], not timed
  const auto t0 = Clock::now();
  const int64_t m = x.size(0), n = u.size(1), V = wu.size(0), d = x.size(1);
  const auto a = torch::matmul(cx * gain, wu.t());  // [m, V]
  torch::Tensor alpha, beta, alpha0;
  if (lens == en::Lens::Frozen) {
    alpha0 = 1.0 / sf;
    alpha = alpha0.unsqueeze(1).expand({m, n});
    beta = c * alpha0.unsqueeze(1);
  } else {
    const auto xx = cx.pow(2).sum(-1, true);
    const auto s =
        torch::sqrt((xx + 2 * c * torch::matmul(cx, cu) + c * c * cu.pow(2).sum(0)) / d + eps_norm);
    alpha = 1.0 / s;
    beta = c / s;
    alpha0 = 1.0 / torch::sqrt(xx.squeeze(1) / d + eps_norm);
  }
  const auto a_w = a.gather(1, w.unsqueeze(1));  // [m, 1]
  const auto base = alpha0.unsqueeze(1) * a_w - torch::logsumexp(alpha0.unsqueeze(1) * a, -1, true);
  const auto target = alpha * a_w + beta * P.t().index_select(0, w);  // [m, n]
  auto lse = torch::empty({m, n}, x.options());
  const int64_t chunk = std::max<int64_t>(1, budget_floats / (n * V));
  for (int64_t m0 = 0; m0 < m; m0 += chunk) {
    const int64_t mc = std::min(chunk, m - m0);
    const auto z = alpha.narrow(0, m0, mc).unsqueeze(2) * a.narrow(0, m0, mc).unsqueeze(1) +
                   beta.narrow(0, m0, mc).unsqueeze(2) * P.unsqueeze(0);  // [mc, n, V]
    lse.narrow(0, m0, mc).copy_(torch::logsumexp(z, -1));
  }
  const auto out = target - lse - base;
  seconds += seconds_since(t0);
  return out;
}

}  // namespace

PeerRun run_peer(en::Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                 const std::vector<int32_t>& gold, const en::LpiOptions& options,
                 const en::Importance& fast) {
  torch::NoGradGuard no_grad;
  const auto& cfg = model->config();
  en::ForwardOptions fo;
  fo.capture = {"attn_in", "head_out", "ffn_in", "ffn_coef", "expert_ids", "final_scale"};
  en::Captures cap;
  for (std::size_t b0 = 0; b0 < prompts.size(); b0 += 32) {  // batched forward passes, not timed
    const std::vector<std::vector<int32_t>> part(
        prompts.begin() + b0, prompts.begin() + std::min(prompts.size(), b0 + 32));
    cap.append(model->forward(en::make_batch(part, cfg.pad_token_id.value_or(0)), fo).captures);
  }
  const auto wu = model->lm_head().to(torch::kFloat32);
  const bool center = cfg.norm == ck::NormKind::LayerNormNoAffine;
  const auto gain = center ? torch::ones({cfg.hidden_size}) : model->final_norm_weight();
  const auto w = torch::tensor(std::vector<int64_t>(gold.begin(), gold.end()), torch::kInt64);
  const auto& sf = cap.get("final_scale");
  const int64_t budget = options.memory_budget_mb * (int64_t{1} << 20) / 4;
  PeerRun run;
  auto diff = [&](const torch::Tensor& a, const torch::Tensor& b) {
    run.max_diff = std::max(run.max_diff, (a - b).abs().max().item<double>());
  };
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    diff(peer_block(wu, gain, center, cfg.norm_eps, options.lens, cap.get("attn_in", l),
                    cap.get("head_out", l), model->o_proj(l), w, sf, budget, run.seconds),
         fast.layers[l].attn);
    const auto& x = cap.get("ffn_in", l);
    const auto& coef = cap.get("ffn_coef", l);
    if (!cfg.is_moe()) {
      diff(peer_block(wu, gain, center, cfg.norm_eps, options.lens, x, coef, model->down_proj(l), w,
                      sf, budget, run.seconds),
           fast.layers[l].ffn);
      continue;
    }
    const auto ids = cap.get("expert_ids", l);
    const auto down = model->down_proj(l);
    for (int64_t e = 0; e < cfg.num_experts; ++e) {
      const auto hits = (ids == e).nonzero();
      if (hits.size(0) == 0) continue;
      const auto rows = hits.select(1, 0), slots = hits.select(1, 1);
      diff(peer_block(wu, gain, center, cfg.norm_eps, options.lens, x.index_select(0, rows),
                      coef.index({rows, slots}), down[e], w.index_select(0, rows),
                      sf.index_select(0, rows), budget, run.seconds),
           fast.layers[l].ffn.index({rows, slots}));
    }
  }
  return run;
}

double time_forward(en::Transformer& model, const std::vector<std::vector<int32_t>>& prompts) {
  torch::NoGradGuard no_grad;
  const en::SingleThreadedBlas one_blas_thread;
  en::ForwardOptions fo;
  fo.capture = {"attn_in", "head_out", "ffn_in", "ffn_coef", "expert_ids", "final_scale"};
  const int64_t pad = model->config().pad_token_id.value_or(0);
  const auto t0 = Clock::now();
  at::parallel_for(0, static_cast<int64_t>(prompts.size()), 1, [&](int64_t b0, int64_t b1) {
    torch::NoGradGuard no_grad_here;
    for (int64_t b = b0; b < b1; ++b) (void)model->forward(en::make_batch({prompts[b]}, pad), fo);
  });
  return seconds_since(t0);
}

KernelRun run_kernel(int64_t vocab, int64_t d) {
  torch::NoGradGuard no_grad;
  KernelRun run;
  const int threads = at::get_num_threads();
  // The core's limit: every thread runs the probe on its own data.
  for (bool small : {true, false}) {
    const int64_t reps = small ? 4000000 : 2000000;
    const auto t0 = Clock::now();
    std::vector<double> sink(static_cast<std::size_t>(threads));
    at::parallel_for(0, threads, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) sink[i] = en::kernels::probe_terms(reps, small);
    });
    const double rate = 128.0 * reps * threads / seconds_since(t0);
    (small ? run.limit_small : run.limit_exp) = rate;
  }
  // The kernel alone: 64 prompts by 256 neurons of small deltas (the frozen lens).
  const int64_t m = 64, n = 256, cols = en::kernels::padded(vocab);
  torch::manual_seed(5);
  auto s = torch::zeros({m, cols});
  s.narrow(1, 0, vocab).copy_(torch::randn({m, vocab}) * 6);
  auto p = torch::zeros({n, cols});
  p.narrow(1, 0, vocab).copy_(torch::randn({n, vocab}) * 0.05);
  const auto beta = torch::rand({m, n}) * 2 - 1;
  const auto [q, totals] = en::kernels::base_distributions(s, vocab);
  (void)en::kernels::relative_lse_block(q, totals, {}, p, vocab, beta, {});  // warm up
  const int reps = 3;
  auto t0 = Clock::now();
  for (int r = 0; r < reps; ++r) {
    (void)en::kernels::relative_lse_block(q, totals, {}, p, vocab, beta, {});
  }
  run.kernel = static_cast<double>(m * n * vocab) * reps / seconds_since(t0);
  // The projection of 1024 output columns.
  const auto wu = torch::randn({vocab, d}), g = torch::randn({d, 1024});
  (void)en::kernels::unembed_columns(g.narrow(1, 0, 64), wu, cols);
  t0 = Clock::now();
  (void)en::kernels::unembed_columns(g, wu, cols);
  run.product = 2.0 * vocab * d * 1024 / seconds_since(t0) / 1e9;
  return run;
}

}  // namespace lpi::bench

#include "worker/engine/gated_lpi.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

#include <ATen/Parallel.h>
#include <torch/cuda.h>

#include <chrono>

#include "common/core/layout.hpp"
#include "worker/engine/lse_kernel_block.hpp"
#ifdef LPI_HAVE_CUDA_KERNELS
#include "worker/engine/cuda/lpi_cuda.hpp"
#endif
#include "worker/engine/threads.hpp"

namespace lpi::engine {
namespace ck = lpi::checkpoint;

const char* lens_name(Lens lens) {
  return lens == Lens::Frozen ? "frozen" : "exact";
}
const char* target_name(TargetKind target) {
  return target == TargetKind::Gold ? "gold" : "top1";
}

namespace {

// The profile's clock: after the device's queued work when on a GPU.
struct Clock {
  bool on = false, cuda = false;
  using time_point = std::chrono::steady_clock::time_point;
  time_point now() const {
    if (cuda) torch::cuda::synchronize();
    return std::chrono::steady_clock::now();
  }
  // Adds the seconds since `t` to `into` and restarts `t`.
  void lap(time_point& t, double& into) const {
    if (!on) return;
    const auto n = now();
    into += std::chrono::duration<double>(n - t).count();
    t = n;
  }
};

// The final-norm lens of a model, in float32 on the model's device.
struct LensParams {
  torch::Tensor unembed;  // [V, d]
  torch::Tensor gain;     // [d]: the final norm's weight, ones for the non-parametric LayerNorm
  bool center = false;    // LayerNorm removes the mean, RMSNorm does not
  double eps = 1e-5;
  int64_t d = 0;

  explicit LensParams(Transformer& model) {
    const auto& c = model->config();
    unembed = model->lm_head().detach().to(torch::kFloat32);
    center = c.norm == ck::NormKind::LayerNormNoAffine;
    gain = center ? torch::ones({c.hidden_size}, unembed.options())
                  : model->final_norm_weight().detach().to(torch::kFloat32);
    eps = c.norm_eps;
    d = c.hidden_size;
  }
  // C y over the last dimension (rows of residuals).
  torch::Tensor center_rows(const torch::Tensor& y) const {
    return center ? y - y.mean(-1, true) : y;
  }
  // C u for output columns U [d, n].
  torch::Tensor center_columns(const torch::Tensor& u) const {
    return center ? u - u.mean(0, true) : u;
  }
  // The real final norm's scale of rows y: sqrt(mean((C y)^2) + eps).
  torch::Tensor scale(const torch::Tensor& y) const {
    return torch::sqrt(center_rows(y).pow(2).mean(-1) + eps);
  }
};

// Everything the attribution needs from forward passes over all prompts.
struct Forward {
  Captures captures;
  torch::Tensor logits;   // [B, V]
  torch::Tensor targets;  // [B] int64
};

// The captures Gated-LPI reads.
const std::vector<std::string>& lpi_captures() {
  static const std::vector<std::string> names = {"attn_in",  "head_out",   "ffn_in",
                                                 "ffn_coef", "expert_ids", "final_scale"};
  return names;
}

Forward run_forward(Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                    const std::vector<int32_t>& gold, const LpiOptions& options) {
  if (prompts.empty()) throw EngineError("gated_lpi: no prompts");
  if (options.target == TargetKind::Gold && gold.size() != prompts.size()) {
    throw EngineError("gated_lpi: one gold target per prompt expected (got " +
                      std::to_string(gold.size()) + " for " + std::to_string(prompts.size()) +
                      " prompts)");
  }
  torch::NoGradGuard no_grad;
  const auto device = model->lm_head().device();
  const int64_t pad = model->config().pad_token_id.value_or(0);
  Forward out;
  std::vector<torch::Tensor> logits;
  ForwardOptions fo;
  fo.capture = lpi_captures();
  const auto batch_size =
      static_cast<int64_t>(options.batch_invariant ? 1 : std::max<int64_t>(1, options.batch_size));
  const auto n = static_cast<int64_t>(prompts.size());
  const int64_t batches = (n + batch_size - 1) / batch_size;
  std::vector<ForwardOutput> results(static_cast<std::size_t>(batches));
  auto run = [&](int64_t i) {
    const auto start = prompts.begin() + i * batch_size;
    const std::vector<std::vector<int32_t>> part(start,
                                                 start + std::min(batch_size, n - i * batch_size));
    results[static_cast<std::size_t>(i)] = model->forward(make_batch(part, pad, device), fo);
  };
  if (device.is_cpu()) {
    // One batch per thread at a time, each run serially (ATen does not split
    // work inside a parallel region, and OpenBLAS is on one thread): the same
    // bits whatever the thread count.
    at::parallel_for(0, batches, 1, [&](int64_t i0, int64_t i1) {
      torch::NoGradGuard no_grad_here;
      for (int64_t i = i0; i < i1; ++i) run(i);
    });
  } else {
    for (int64_t i = 0; i < batches; ++i) run(i);
  }
  for (auto& result : results) {
    out.captures.append(result.captures);
    logits.push_back(result.logits);
  }
  out.logits = torch::cat(logits, 0);
  if (options.target == TargetKind::Top1) {
    out.targets = out.logits.argmax(-1);
  } else {
    const auto vocab = model->config().vocab_size;
    for (std::size_t i = 0; i < gold.size(); ++i) {
      if (gold[i] < 0 || gold[i] >= vocab) {
        throw EngineError("gated_lpi: gold target " + std::to_string(gold[i]) + " of prompt " +
                          std::to_string(i) + " is outside the vocabulary of " +
                          std::to_string(vocab));
      }
    }
    out.targets =
        torch::tensor(std::vector<int64_t>(gold.begin(), gold.end()), torch::kInt64).to(device);
  }
  return out;
}

// f(rows) for a batch of rows, either in one call or one row at a time. One
// row at a time makes every row's bits independent of which other rows share
// the call (matrix products and reductions pick their blocking from the
// shape): the batch-invariant mode.
torch::Tensor by_rows(const torch::Tensor& x, bool invariant,
                      const std::function<torch::Tensor(const torch::Tensor&)>& f) {
  if (!invariant || x.size(0) <= 1) return f(x);
  std::vector<torch::Tensor> rows;
  rows.reserve(x.size(0));
  for (int64_t i = 0; i < x.size(0); ++i) rows.push_back(f(x.narrow(0, i, 1)));
  return torch::cat(rows, 0);
}

bool cpu_float(const torch::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat32;
}

// W_U (g . y) for centred rows y [m, d]: [m, V], or [m, padded(V)] with zeros
// after V for the CPU kernel. On the CPU the fixed-order product kernel
// (batch-invariant and the same bits for any thread count), else a matrix
// product, per row when batch-invariant.
torch::Tensor lens_logits(const LensParams& L, const torch::Tensor& y, bool invariant,
                          bool padded = false) {
  const auto scaled = y * L.gain;
  if (cpu_float(y)) {
    const int64_t V = L.unembed.size(0);
    return kernels::unembed_rows(scaled, L.unembed, padded ? kernels::padded(V) : V);
  }
  if (!invariant) return torch::matmul(scaled, L.unembed.t());
  return by_rows(scaled, true,
                 [&](const torch::Tensor& r) { return torch::matmul(r, L.unembed.t()); });
}

torch::Tensor base_logprob(const Forward& f, bool invariant) {
  return by_rows(f.logits, invariant,
                 [](const torch::Tensor& r) { return torch::log_softmax(r, -1); })
      .gather(1, f.targets.unsqueeze(1))
      .squeeze(1);
}

// Rank of each prompt's gold token among the model's logits, as evaluate() counts it.
torch::Tensor gold_rank(const Forward& f, const std::vector<int32_t>& gold) {
  if (gold.size() != static_cast<std::size_t>(f.logits.size(0))) return {};
  const auto g = torch::tensor(std::vector<int64_t>(gold.begin(), gold.end()), torch::kInt64)
                     .to(f.logits.device());
  const auto gl = f.logits.gather(1, g.unsqueeze(1));
  return (f.logits > gl).sum(1).to(torch::kInt64).cpu();
}

// Fast path for one block: residuals x [m, d], coefficients c [m, n], output
// columns u [d, n], targets w [m], frozen scales sf [m]. Returns [m, n].
//
// Relative to the base distribution (docs/METHOD.md, section 2): with base
// logits s = alpha0 a and the lens logits of x + c u equal to s + delta,
// delta = eps s + beta p (p the projection of u; eps = 0 for the frozen lens),
//   I = delta[w] - log sum_v q_v exp(delta_v),   q = softmax(s),
// so no two log-sum-exps of logit size are subtracted.
torch::Tensor block_fast(const LensParams& L, Lens lens, const torch::Tensor& x,
                         const torch::Tensor& c, const torch::Tensor& u, const torch::Tensor& w,
                         const torch::Tensor& sf, int64_t budget_bytes, bool fused, bool invariant,
                         int64_t& tiles, const Clock& clock, LpiProfile::Part& time,
                         const torch::Tensor& a_given = {}) {
  auto t = clock.on ? clock.now() : Clock::time_point{};
  const int64_t m = x.size(0), n = u.size(1), V = L.unembed.size(0);
  const auto xt = L.center_rows(x);
  const auto ut = L.center_columns(u.to(torch::kFloat32));
  const bool cpu_kernel = fused && cpu_float(x);
  // On a GPU, the fused kernel (worker/engine/cuda) when the build has it
  // and a device is visible: one exp per (prompt, neuron, token), no
  // [m, n, V] temporary. Compiled in CI, run only on a GPU (gpu-check.sh).
  bool gpu_kernel = false;
#ifdef LPI_HAVE_CUDA_KERNELS
  gpu_kernel = fused && x.is_cuda() && cuda::unavailable().empty();
#endif
  // [m, V] logits of x before scaling, padded for the CPU kernel (given when
  // the caller shares them across blocks)
  auto a = a_given.defined() ? a_given : lens_logits(L, xt, invariant, cpu_kernel);
  if (!cpu_kernel) a = a.narrow(1, 0, V);
  torch::Tensor beta, eps, alpha0;
  if (lens == Lens::Frozen) {
    alpha0 = 1.0 / sf;
    beta = c * alpha0.unsqueeze(1);
  } else {
    // |C(x + c u)|^2 = |Cx|^2 + 2c Cx.Cu + c^2 |Cu|^2, so with s0 and s the
    // norm's scales of x and x + c u, eps = s0 / s - 1 = (s0^2 - s^2) / (s (s0 + s))
    // without cancellation.
    const auto xx = xt.pow(2).sum(-1);
    const auto xu =
        cpu_float(xt)
            ? kernels::unembed_rows(xt, ut.t(), n)
            : by_rows(xt, invariant, [&](const torch::Tensor& r) { return torch::matmul(r, ut); });
    const auto uu = ut.pow(2).sum(0);
    const auto change = (2 * c * xu + c * c * uu.unsqueeze(0)) / L.d;  // s^2 - s0^2
    const auto s0_sq = (xx / L.d + L.eps).unsqueeze(1);
    const auto s0 = torch::sqrt(s0_sq);
    const auto s = torch::sqrt(s0_sq + change);
    alpha0 = 1.0 / s0.squeeze(1);
    beta = c / s;
    eps = -change / (s * (s0 + s));
  }
  const auto base = (alpha0.unsqueeze(1) * a).contiguous();         // [m, V] base logits s
  const auto s_target = base.gather(1, w.unsqueeze(1)).squeeze(1);  // [m]
  auto delta_target = [&](const torch::Tensor& p_target, int64_t n0, int64_t nt) {
    auto d = beta.narrow(1, n0, nt) * p_target;
    if (eps.defined()) d = d + eps.narrow(1, n0, nt) * s_target.unsqueeze(1);
    return d;
  };

  auto out = torch::empty({m, n}, x.options());
  const int64_t floats = std::max<int64_t>(budget_bytes / 4, V);
  const int64_t n_tile = std::clamp<int64_t>(floats / 2 / V, 1, n);
  // The base distribution of every prompt: q (CPU kernel) or log q (tensor ops).
  torch::Tensor q, q_total, log_q, log_q_lse;
  if (cpu_kernel) {
    std::tie(q, q_total) = kernels::base_distributions(base, V);
  } else if (gpu_kernel) {
    q = by_rows(base, invariant, [](const torch::Tensor& r) {
          return torch::softmax(r, -1);
        }).contiguous();
    q_total = q.sum(1).contiguous();  // 1 but for rounding: the kernel divides by it
  } else {
    log_q =
        by_rows(base, invariant, [](const torch::Tensor& r) { return torch::log_softmax(r, -1); });
    // log sum q, 0 but for rounding: subtracted so that the scores see q's own normalisation
    log_q_lse =
        by_rows(log_q, invariant, [](const torch::Tensor& r) { return torch::logsumexp(r, -1); });
  }
  clock.lap(t, time.lens);
  for (int64_t n0 = 0; n0 < n; n0 += n_tile) {
    const int64_t nt = std::min(n_tile, n - n0);
    // The projection of these columns through the lens: prompt-independent.
    const auto g = ut.narrow(1, n0, nt) * L.gain.unsqueeze(1);  // [d, nt]
    ++tiles;
    if (cpu_kernel) {
      // P^T [nt, padded V] by the fixed-order product, then the blocked kernel.
      const auto pt = kernels::unembed_columns(g, L.unembed, a.size(1));
      clock.lap(t, time.projection);
      const auto p_target = pt.index_select(1, w).t();  // [m, nt]
      const auto lse = kernels::relative_lse_block(
          q, q_total, eps.defined() ? base : torch::Tensor(), pt, V, beta.narrow(1, n0, nt),
          eps.defined() ? eps.narrow(1, n0, nt) : torch::Tensor());
      out.narrow(1, n0, nt).copy_(delta_target(p_target, n0, nt) - lse);
      clock.lap(t, time.lse);
      continue;
    }
    const auto p = torch::matmul(L.unembed, g);                      // [V, nt]
    const auto pt = p.t().contiguous();                              // [nt, V]
    const auto target = delta_target(p.index_select(0, w), n0, nt);  // [m, nt]
    clock.lap(t, time.projection);
#ifdef LPI_HAVE_CUDA_KERNELS
    if (gpu_kernel) {
      // The lens side is float32 whatever the weights (bf16 captures too).
      const auto be = beta.narrow(1, n0, nt).to(torch::kFloat32).contiguous();
      const auto ep =
          eps.defined() ? eps.narrow(1, n0, nt).to(torch::kFloat32).contiguous() : torch::Tensor();
      const auto [radius, upper] = kernels::delta_bounds(pt, V, be, base, ep);
      auto lse = torch::empty({m, nt}, q.options());
      cuda::relative_lse(q.data_ptr<float>(), ep.defined() ? base.data_ptr<float>() : nullptr,
                         q_total.data_ptr<float>(), pt.data_ptr<float>(),
                         ep.defined() ? ep.data_ptr<float>() : nullptr, be.data_ptr<float>(),
                         radius.data_ptr<float>(), upper.data_ptr<float>(), m, nt, V,
                         lse.data_ptr<float>());
      out.narrow(1, n0, nt).copy_(target - lse);
      clock.lap(t, time.lse);
      continue;
    }
#endif
    const int64_t m_tile = std::clamp<int64_t>(floats / 2 / (V * nt), 1, m);
    for (int64_t m0 = 0; m0 < m; m0 += m_tile) {
      const int64_t mt = std::min(m_tile, m - m0);
      const auto be = beta.narrow(0, m0, mt).narrow(1, n0, nt).unsqueeze(2);
      auto z = log_q.narrow(0, m0, mt).unsqueeze(1) + be * pt.unsqueeze(0);  // [mt, nt, V]
      if (eps.defined()) {
        z = z + eps.narrow(0, m0, mt).narrow(1, n0, nt).unsqueeze(2) *
                    base.narrow(0, m0, mt).unsqueeze(1);
      }
      out.narrow(0, m0, mt).narrow(1, n0, nt).copy_(
          target.narrow(0, m0, mt) -
          (torch::logsumexp(z, -1) - log_q_lse.narrow(0, m0, mt).unsqueeze(1)));
    }
    clock.lap(t, time.lse);
  }
  // x + 0 u is x: exactly no change.
  return out.masked_fill_(c == 0, 0.0);
}

// The formula for one prompt and one block: rows x + c_i u_i, the lens, log-softmax.
torch::Tensor block_reference(const LensParams& L, Lens lens, const torch::Tensor& x,
                              const torch::Tensor& c, const torch::Tensor& u, int64_t w,
                              const torch::Tensor& sf) {
  const int64_t n = u.size(1);
  auto lens_logp = [&](const torch::Tensor& y) {  // y [r, d] -> logp(w) [r]
    torch::Tensor logits;
    if (lens == Lens::Frozen) {
      logits = torch::matmul(L.center_rows(y) * L.gain, L.unembed.t()) / sf;
    } else {
      logits = torch::matmul(L.center_rows(y) / L.scale(y).unsqueeze(1) * L.gain, L.unembed.t());
    }
    return torch::log_softmax(logits, -1).select(1, w);
  };
  const auto base = lens_logp(x.unsqueeze(0));
  auto out = torch::empty({n}, x.options());
  const int64_t tile = 256;
  const auto uf = u.to(torch::kFloat32);
  for (int64_t i0 = 0; i0 < n; i0 += tile) {
    const int64_t nt = std::min(tile, n - i0);
    const auto y = x.unsqueeze(0) + c.narrow(0, i0, nt).unsqueeze(1) * uf.narrow(1, i0, nt).t();
    out.narrow(0, i0, nt).copy_(lens_logp(y) - base);
  }
  return out;
}

}  // namespace

Importance gated_lpi(Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                     const std::vector<int32_t>& gold, const LpiOptions& options) {
  torch::NoGradGuard no_grad;
  const SingleThreadedBlas one_blas_thread;  // the work is spread over libtorch's threads
  Clock clock;
  clock.on = options.profile;
  clock.cuda = options.profile && model->parameters().front().is_cuda();
  auto t = clock.on ? clock.now() : Clock::time_point{};
  double forward = 0;
  const auto f = run_forward(model, prompts, gold, options);
  const LensParams L(model);
  const auto& cfg = model->config();
  const auto& cap = f.captures;
  const int64_t budget = options.memory_budget_mb * (int64_t{1} << 20);
  const bool cpu_kernel = options.fused_cpu_kernel && cpu_float(cap.get("ffn_in", 0));
  const auto& sf = cap.get("final_scale");
  Importance out;
  out.targets = f.targets.cpu();
  out.base_logprob = base_logprob(f, options.batch_invariant).cpu();
  out.gold_rank = gold_rank(f, gold);
  clock.lap(t, forward);
  out.profile.forward = forward;
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    const auto& ffn_in = cap.get("ffn_in", l);
    const auto& ffn_coef = cap.get("ffn_coef", l);
    LayerImportance li;
    LpiProfile::Layer times;
    li.attn = block_fast(L, options.lens, cap.get("attn_in", l), cap.get("head_out", l),
                         model->o_proj(l).detach(), f.targets, sf, budget, options.fused_cpu_kernel,
                         options.batch_invariant, out.projection_tiles, clock, times.attn)
                  .cpu();
    if (!cfg.is_moe()) {
      li.ffn = block_fast(L, options.lens, ffn_in, ffn_coef, model->down_proj(l).detach(),
                          f.targets, sf, budget, options.fused_cpu_kernel, options.batch_invariant,
                          out.projection_tiles, clock, times.ffn)
                   .cpu();
    } else {
      // Group the (prompt, slot) pairs by expert: one projection per expert.
      const auto ids = cap.get("expert_ids", l);  // [B, k]
      const int64_t B = ids.size(0), k = ids.size(1), I = cfg.intermediate_size;
      auto ffn = torch::zeros({B, k, I}, ffn_in.options());
      const auto down = model->down_proj(l).detach();  // [E, d, I]
      // The lens logits of every prompt's FFN input, once for all experts.
      auto t_lens = clock.on ? clock.now() : Clock::time_point{};
      const auto a_all = lens_logits(L, L.center_rows(ffn_in), options.batch_invariant, cpu_kernel);
      clock.lap(t_lens, times.ffn.lens);
      for (int64_t e = 0; e < cfg.num_experts; ++e) {
        const auto hits = (ids == e).nonzero();  // [r, 2]: prompt, slot
        if (hits.size(0) == 0) continue;
        const auto rows = hits.select(1, 0), slots = hits.select(1, 1);
        const auto coef = ffn_coef.index({rows, slots});  // [r, I]
        const auto imp =
            block_fast(L, options.lens, ffn_in.index_select(0, rows), coef, down[e],
                       f.targets.index_select(0, rows), sf.index_select(0, rows), budget,
                       options.fused_cpu_kernel, options.batch_invariant, out.projection_tiles,
                       clock, times.ffn, a_all.index_select(0, rows));
        ffn.index_put_({rows, slots}, imp);
      }
      li.ffn = ffn.cpu();
      li.expert_ids = ids.cpu();
    }
    out.layers.push_back(std::move(li));
    if (clock.on) out.profile.layers.push_back(times);
  }
  return out;
}

LpiProfile::Part LpiProfile::sum() const {
  Part s;
  for (const auto& l : layers) {
    for (const auto* p : {&l.attn, &l.ffn}) {
      s.lens += p->lens;
      s.projection += p->projection;
      s.lse += p->lse;
    }
  }
  return s;
}

Importance gated_lpi_reference(Transformer& model, const std::vector<std::vector<int32_t>>& prompts,
                               const std::vector<int32_t>& gold, const LpiOptions& options) {
  torch::NoGradGuard no_grad;
  const SingleThreadedBlas
      one_blas_thread;  // the forward passes are spread over libtorch's threads
  LpiOptions one = options;
  one.batch_size = 1;  // one prompt at a time, no padding
  const auto f = run_forward(model, prompts, gold, one);
  const LensParams L(model);
  const auto& cfg = model->config();
  const auto& cap = f.captures;
  const auto B = static_cast<int64_t>(prompts.size());
  Importance out;
  out.targets = f.targets.cpu();
  out.base_logprob = base_logprob(f, options.batch_invariant).cpu();
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    const auto& attn_in = cap.get("attn_in", l);
    const auto& head_out = cap.get("head_out", l);
    const auto& ffn_in = cap.get("ffn_in", l);
    const auto& ffn_coef = cap.get("ffn_coef", l);
    LayerImportance li;
    li.attn = torch::empty_like(head_out);
    li.ffn = torch::empty_like(ffn_coef);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t w = f.targets[b].item<int64_t>();
      const auto sf = cap.get("final_scale")[b];
      li.attn[b].copy_(block_reference(L, options.lens, attn_in[b], head_out[b],
                                       model->o_proj(l).detach(), w, sf));
      if (!cfg.is_moe()) {
        li.ffn[b].copy_(block_reference(L, options.lens, ffn_in[b], ffn_coef[b],
                                        model->down_proj(l).detach(), w, sf));
        continue;
      }
      const auto& ids = cap.get("expert_ids", l);
      for (int64_t s = 0; s < ids.size(1); ++s) {
        const int64_t e = ids[b][s].item<int64_t>();
        li.ffn[b][s].copy_(block_reference(L, options.lens, ffn_in[b], ffn_coef[b][s],
                                           model->down_proj(l).detach()[e], w, sf));
      }
    }
    li.attn = li.attn.cpu();
    li.ffn = li.ffn.cpu();
    if (cfg.is_moe()) li.expert_ids = cap.get("expert_ids", l).cpu();
    out.layers.push_back(std::move(li));
  }
  return out;
}

torch::Tensor expand_experts(const LayerImportance& layer, int64_t num_experts) {
  if (!layer.expert_ids.defined()) throw EngineError("expand_experts: the layer is dense");
  const int64_t B = layer.ffn.size(0), k = layer.ffn.size(1), I = layer.ffn.size(2);
  // The domain core's scatter (common/core/layout.hpp), one prompt = one layer of shape E x I.
  core::ModelShape one;
  one.num_layers = 1;
  one.intermediate_size = I;
  one.num_experts = num_experts;
  one.experts_per_token = k;
  const auto values = layer.ffn.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto ids = layer.expert_ids.to(torch::kCPU, torch::kInt32).contiguous();
  auto full = torch::empty({B, num_experts, I}, torch::kFloat32);
  std::vector<double> row(static_cast<std::size_t>(num_experts * I));  // one prompt at a time
  for (int64_t b = 0; b < B; ++b) {
    std::fill(row.begin(), row.end(), 0.0);
    core::add_ffn_values(one, values[b].data_ptr<float>(), ids[b].data_ptr<int32_t>(), 1.0,
                         row.data(), "expand_experts, prompt " + std::to_string(b));
    std::copy(row.begin(), row.end(), full[b].data_ptr<float>());
  }
  return full.to(layer.ffn.options());
}

torch::Tensor frozen_lens(Transformer& model, const torch::Tensor& y, const torch::Tensor& scale) {
  torch::NoGradGuard no_grad;
  const LensParams L(model);
  return torch::matmul(L.center_rows(y.to(torch::kFloat32)) * L.gain, L.unembed.t()) /
         scale.unsqueeze(1);
}

}  // namespace lpi::engine

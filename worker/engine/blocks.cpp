#include "worker/engine/blocks.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace lpi::engine::blocks {
namespace ck = lpi::checkpoint;
using torch::indexing::Slice;

namespace {

// Ones with zeros at the given indices of a [n] vector (ablation masks).
torch::Tensor keep_mask(int64_t n, const std::vector<int64_t>& zeroed, int64_t block,
                        const torch::TensorOptions& options, const std::string& what) {
  auto mask = torch::ones({n}, options);
  for (int64_t index : zeroed) {
    if (index < 0 || (index + 1) * block > n) {
      throw EngineError("ablation: " + what + " " + std::to_string(index) +
                        " is out of range [0, " + std::to_string(n / block) + ")");
    }
    mask.index_put_({Slice(index * block, (index + 1) * block)}, 0);
  }
  return mask;
}

const std::vector<int64_t>* find_layer(const std::map<int64_t, std::vector<int64_t>>& by_layer,
                                       int64_t layer) {
  const auto it = by_layer.find(layer);
  return it == by_layer.end() ? nullptr : &it->second;
}

}  // namespace

Recorder::Recorder(const std::vector<std::string>& names, torch::Tensor last_flat, int64_t B,
                   int64_t T, Captures* out)
    : names_(names), last_flat_(std::move(last_flat)), B_(B), T_(T), out_(out) {
  for (const auto& name : names_) {
    if (!Captures::known(name)) throw EngineError("forward: no capture named '" + name + "'");
  }
}

bool Recorder::wants(const char* name) const {
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

torch::Tensor Recorder::at_last(const torch::Tensor& x) const {
  return x.reshape({B_ * T_, x.size(-1)}).index_select(0, last_flat_).to(torch::kFloat32);
}

void Recorder::last(const char* name, int64_t layer, const torch::Tensor& x) {
  if (wants(name)) out_->set(name, layer, at_last(x));
}
void Recorder::last(const char* name, const torch::Tensor& x) {
  if (wants(name)) out_->set(name, at_last(x));
}
void Recorder::put(const char* name, int64_t layer, torch::Tensor value) {
  if (wants(name)) out_->set(name, layer, std::move(value));
}
void Recorder::put(const char* name, torch::Tensor value) {
  if (wants(name)) out_->set(name, std::move(value));
}

Context::Context(const Batch& batch, const ForwardOptions& opts, bool training,
                 torch::Device device, ForwardOutput* output)
    : B(batch.ids.size(0)),
      T(batch.ids.size(1)),
      ids(batch.ids.to(device)),
      last_flat(torch::arange(B, torch::TensorOptions().dtype(torch::kInt64).device(device)) * T +
                batch.last.to(device)),
      positions(torch::arange(T, torch::TensorOptions().dtype(torch::kFloat32).device(device))),
      real_tokens(positions.unsqueeze(0) < batch.lengths.to(device).unsqueeze(1)),
      options(opts),
      router_losses(training || opts.all_positions),
      out(*output),
      rec(opts.capture, last_flat, B, T, &output->captures) {}

const std::vector<int64_t>* Context::ablated_heads(int64_t layer) const {
  return options.ablation ? find_layer(options.ablation->heads, layer) : nullptr;
}
const std::vector<int64_t>* Context::ablated_ffn(int64_t layer) const {
  return options.ablation ? find_layer(options.ablation->ffn_neurons, layer) : nullptr;
}

torch::Tensor Norm::operator()(const torch::Tensor& x, const torch::Tensor& weight) const {
  const auto x32 = x.to(torch::kFloat32);
  if (kind == ck::NormKind::RMSNorm) {
    auto y = x32 * torch::rsqrt(x32.pow(2).mean(-1, true) + eps);
    return weight * y.to(x.scalar_type());
  }
  return torch::layer_norm(x32, {x.size(-1)}, {}, {}, eps).to(x.scalar_type());
}

torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight) {
  return torch::matmul(x, weight.t());
}

torch::Tensor embed(const Context& ctx, const torch::Tensor& table) {
  return table.index_select(0, ctx.ids.reshape({-1})).view({ctx.B, ctx.T, table.size(1)});
}

Rope rope(const Context& ctx, int64_t hd, double theta, torch::ScalarType dtype) {
  const auto& positions = ctx.positions;
  const auto inv_freq =
      torch::pow(theta, -torch::arange(0, hd, 2, positions.options()) / static_cast<double>(hd));
  const auto freqs = torch::outer(positions, inv_freq);
  const auto emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

Qkv qkv_projection(const torch::Tensor& x, const LayerWeights& w) {
  return {project(x, w.wq), project(x, w.wk), project(x, w.wv)};
}

void clip_qkv(Qkv& qkv, double clip) {
  qkv.q = qkv.q.clamp(-clip, clip);
  qkv.k = qkv.k.clamp(-clip, clip);
  qkv.v = qkv.v.clamp(-clip, clip);
}

torch::Tensor attention_heads(Context& ctx, int64_t layer, const Qkv& qkv, const Rope& rope,
                              int64_t H, int64_t KV, int64_t hd) {
  const int64_t B = ctx.B, T = ctx.T;
  auto q = qkv.q.view({B, T, H, hd}).transpose(1, 2);
  auto k = qkv.k.view({B, T, KV, hd}).transpose(1, 2);
  auto v = qkv.v.view({B, T, KV, hd}).transpose(1, 2);
  auto rotate_half = [hd](const torch::Tensor& t) {
    return torch::cat({-t.narrow(-1, hd / 2, hd - hd / 2), t.narrow(-1, 0, hd / 2)}, -1);
  };
  q = q * rope.cos + rotate_half(q) * rope.sin;
  k = k * rope.cos + rotate_half(k) * rope.sin;
  if (KV != H) {
    k = k.repeat_interleave(H / KV, 1);
    v = v.repeat_interleave(H / KV, 1);
  }
  auto scores = torch::matmul(q, k.transpose(2, 3)) / std::sqrt(static_cast<double>(hd));
  auto causal =
      torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(q.device())).triu(1);
  scores = scores.masked_fill(causal, -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(scores.to(torch::kFloat32), -1).to(q.scalar_type());
  auto out = torch::matmul(probs, v).transpose(1, 2).reshape({B, T, H * hd});
  if (const auto* heads = ctx.ablated_heads(layer)) {
    out = out * keep_mask(H * hd, *heads, hd, out.options(), "head");
  }
  ctx.rec.last("head_out", layer, out);
  return out;
}

torch::Tensor add_attention(Context& ctx, int64_t layer, const torch::Tensor& x, Qkv qkv,
                            const Rope& rope, const checkpoint::ModelConfig& c,
                            const LayerWeights& w) {
  if (c.clip_qkv) clip_qkv(qkv, *c.clip_qkv);
  const auto heads =
      attention_heads(ctx, layer, qkv, rope, c.num_heads, c.num_kv_heads, c.head_dim);
  const auto a = project(heads, w.wo);
  auto out = x + a;
  ctx.rec.last("attn_out", layer, a);
  ctx.rec.last("ffn_in", layer, out);
  return out;
}

torch::Tensor add_ffn(Context& ctx, int64_t layer, const torch::Tensor& x, const torch::Tensor& f) {
  auto out = x + f;
  ctx.rec.last("ffn_out", layer, f);
  return out;
}

torch::Tensor dense_ffn(Context& ctx, int64_t layer, const torch::Tensor& z, const LayerWeights& w,
                        int64_t intermediate) {
  auto c = torch::silu(project(z, w.w_gate)) * project(z, w.w_up);
  if (const auto* neurons = ctx.ablated_ffn(layer)) {
    c = c * keep_mask(intermediate, *neurons, 1, c.options(), "FFN neuron");
  }
  ctx.rec.last("ffn_coef", layer, c);
  return project(c, w.w_down);
}

torch::Tensor moe_ffn(Context& ctx, int64_t layer, const torch::Tensor& z, const LayerWeights& w,
                      const MoeShape& shape) {
  const int64_t B = z.size(0), T = z.size(1), d = z.size(2), E = shape.experts;
  const int64_t K = shape.top_k, I = shape.intermediate;
  const auto flat = z.reshape({B * T, d});
  const auto router_logits = project(flat, w.router).to(torch::kFloat32);
  const auto probs = torch::softmax(router_logits, -1);
  auto [top_w, top_i] = probs.topk(K, -1);
  if (shape.norm_topk_prob) top_w = top_w / top_w.sum(-1, true);
  const auto weights = top_w.to(z.scalar_type());

  if (ctx.router_losses) {
    // Switch load balancing over real tokens: E * sum_e f_e * P_e, and the
    // router z-loss mean(logsumexp(logits)^2).
    const auto real = ctx.real_tokens.reshape({B * T}).to(torch::kFloat32);
    const auto n_real = real.sum().clamp_min(1.0);
    const auto chosen = torch::zeros({B * T, E}, probs.options()).scatter_(1, top_i, 1.0);
    const auto f = (chosen * real.unsqueeze(1)).sum(0) / (n_real * K);
    const auto p = (probs * real.unsqueeze(1)).sum(0) / n_real;
    const auto lb = (f * p).sum() * E;
    const auto zl = (torch::logsumexp(router_logits, -1).pow(2) * real).sum() / n_real;
    auto& out = ctx.out;
    out.load_balancing_loss = out.load_balancing_loss.defined() ? out.load_balancing_loss + lb : lb;
    out.router_z_loss = out.router_z_loss.defined() ? out.router_z_loss + zl : zl;
  }

  torch::Tensor mask;  // [E, I] ablation mask
  if (const auto* neurons = ctx.ablated_ffn(layer)) {
    mask = keep_mask(E * I, *neurons, 1, z.options(), "expert neuron").view({E, I});
  }
  // Row of the flat token index in the batch when it is a last position, else -1.
  const bool capture = ctx.rec.wants("ffn_coef");
  torch::Tensor last_row, coef;
  if (capture) {
    last_row =
        torch::full({B * T}, -1, torch::TensorOptions().dtype(torch::kInt64).device(z.device()));
    last_row.index_put_({ctx.last_flat}, torch::arange(B, last_row.options()));
    coef = torch::zeros({B, K, I}, z.options());
  }
  auto result = torch::zeros_like(flat);
  for (int64_t e = 0; e < E; ++e) {
    const auto hits = (top_i == e).nonzero();  // [n, 2]: token, slot
    if (hits.size(0) == 0) continue;
    const auto tok = hits.select(1, 0), slot = hits.select(1, 1);
    const auto xe = flat.index_select(0, tok);
    auto ce = torch::silu(project(xe, w.w_gate[e])) * project(xe, w.w_up[e]);
    if (mask.defined()) ce = ce * mask[e];
    ce = ce * weights.index({tok, slot}).unsqueeze(1);
    result = result.index_add(0, tok, project(ce, w.w_down[e]));
    if (capture) {
      const auto rows = last_row.index_select(0, tok);
      const auto sel = (rows >= 0).nonzero().squeeze(1);
      if (sel.size(0) > 0) {
        coef.index_put_({rows.index_select(0, sel), slot.index_select(0, sel)},
                        ce.index_select(0, sel));
      }
    }
  }
  if (capture) ctx.rec.put("ffn_coef", layer, coef.to(torch::kFloat32));
  ctx.rec.put("router_probs", layer, probs.index_select(0, ctx.last_flat));
  ctx.rec.put("expert_ids", layer, top_i.index_select(0, ctx.last_flat));
  if (ctx.rec.wants("expert_weights")) {
    ctx.rec.put("expert_weights", layer,
                weights.index_select(0, ctx.last_flat).to(torch::kFloat32));
  }
  return result.view({B, T, d});
}

void output(Context& ctx, const torch::Tensor& x, const Norm& norm, const torch::Tensor& final_norm,
            const torch::Tensor& lm_head) {
  auto& out = ctx.out;
  if (ctx.options.all_positions) {
    out.logits = project(norm(x, final_norm), lm_head).to(torch::kFloat32);
  } else {
    const auto x_last = x.reshape({ctx.B * ctx.T, x.size(-1)}).index_select(0, ctx.last_flat);
    out.logits = project(norm(x_last, final_norm), lm_head).to(torch::kFloat32);
  }
  auto& rec = ctx.rec;
  if (!rec.wants("final_resid") && !rec.wants("final_mean") && !rec.wants("final_scale")) return;
  const auto y = rec.at_last(x);
  rec.put("final_resid", y);
  if (norm.kind == ck::NormKind::RMSNorm) {
    rec.put("final_mean", torch::zeros({ctx.B}, y.options()));
    rec.put("final_scale", torch::sqrt(y.pow(2).mean(-1) + norm.eps));
  } else {
    rec.put("final_mean", y.mean(-1));
    rec.put("final_scale", torch::sqrt(y.var(-1, /*unbiased=*/false) + norm.eps));
  }
}

}  // namespace lpi::engine::blocks

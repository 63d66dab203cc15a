#include "worker/engine/model.hpp"

#include <cmath>
#include <sstream>

#include "common/checkpoint/safetensors.hpp"

namespace lpi::engine {
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

}  // namespace

Batch make_batch(const std::vector<std::vector<int32_t>>& sequences, int64_t pad_id,
                 torch::Device device) {
  if (sequences.empty()) throw EngineError("make_batch: no sequences");
  int64_t longest = 0;
  for (const auto& s : sequences) {
    if (s.empty()) throw EngineError("make_batch: an empty sequence has no last position");
    longest = std::max<int64_t>(longest, static_cast<int64_t>(s.size()));
  }
  const auto batch = static_cast<int64_t>(sequences.size());
  auto ids = torch::full({batch, longest}, pad_id, torch::kInt64);
  auto lengths = torch::empty({batch}, torch::kInt64);
  auto ids_a = ids.accessor<int64_t, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    const auto& s = sequences[b];
    for (std::size_t t = 0; t < s.size(); ++t) ids_a[b][t] = s[t];
    lengths[b] = static_cast<int64_t>(s.size());
  }
  Batch out{ids.to(device), lengths.to(device), (lengths - 1).to(device)};
  return out;
}

TransformerImpl::TransformerImpl(const ck::ModelConfig& config) : config_(config) {
  const auto& c = config_;
  const int64_t d = c.hidden_size, hd = c.head_dim, H = c.num_heads, KV = c.num_kv_heads;
  const int64_t I = c.intermediate_size, E = c.num_experts;
  const bool rms = c.norm == ck::NormKind::RMSNorm;
  embed_ = register_parameter("embed", torch::zeros({c.vocab_size, d}));
  if (rms) final_norm_ = register_parameter("final_norm", torch::ones({d}));
  if (!c.tie_word_embeddings)
    lm_head_ = register_parameter("lm_head", torch::zeros({c.vocab_size, d}));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    // torch::nn refuses dots in parameter names (they separate submodules).
    const std::string p = "layers_" + std::to_string(i) + "_";
    Layer L;
    if (rms) {
      L.attn_norm = register_parameter(p + "attn_norm", torch::ones({d}));
      L.ffn_norm = register_parameter(p + "ffn_norm", torch::ones({d}));
    }
    L.wq = register_parameter(p + "wq", torch::zeros({H * hd, d}));
    L.wk = register_parameter(p + "wk", torch::zeros({KV * hd, d}));
    L.wv = register_parameter(p + "wv", torch::zeros({KV * hd, d}));
    L.wo = register_parameter(p + "wo", torch::zeros({d, H * hd}));
    if (c.qk_norm) {
      L.q_norm = register_parameter(p + "q_norm", torch::ones({H * hd}));
      L.k_norm = register_parameter(p + "k_norm", torch::ones({KV * hd}));
    }
    if (c.is_moe()) {
      L.router = register_parameter(p + "router", torch::zeros({E, d}));
      L.w_gate = register_parameter(p + "w_gate", torch::zeros({E, I, d}));
      L.w_up = register_parameter(p + "w_up", torch::zeros({E, I, d}));
      L.w_down = register_parameter(p + "w_down", torch::zeros({E, d, I}));
    } else {
      L.w_gate = register_parameter(p + "w_gate", torch::zeros({I, d}));
      L.w_up = register_parameter(p + "w_up", torch::zeros({I, d}));
      L.w_down = register_parameter(p + "w_down", torch::zeros({d, I}));
    }
    layers_.push_back(L);
  }
}

void TransformerImpl::init_weights(double stddev, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& item : named_parameters()) {
    auto& t = item.value();
    const bool is_norm = item.key().find("norm") != std::string::npos;
    if (is_norm) {
      t.fill_(1.0);
    } else {
      auto values =
          at::normal(0.0, stddev, t.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
      t.copy_(values);
    }
  }
}

torch::Tensor TransformerImpl::norm(const torch::Tensor& x, const torch::Tensor& weight) const {
  const auto x32 = x.to(torch::kFloat32);
  if (config_.norm == ck::NormKind::RMSNorm) {
    auto y = x32 * torch::rsqrt(x32.pow(2).mean(-1, true) + config_.norm_eps);
    return weight * y.to(x.scalar_type());
  }
  return torch::layer_norm(x32, {x.size(-1)}, {}, {}, config_.norm_eps).to(x.scalar_type());
}

torch::Tensor TransformerImpl::attention(const Layer& L, int64_t index, const torch::Tensor& x,
                                         const torch::Tensor& cos, const torch::Tensor& sin,
                                         const ForwardOptions& options,
                                         torch::Tensor* head_out) const {
  const auto& c = config_;
  const int64_t B = x.size(0), T = x.size(1), H = c.num_heads, KV = c.num_kv_heads, hd = c.head_dim;
  auto q = torch::matmul(x, L.wq.t());
  auto k = torch::matmul(x, L.wk.t());
  auto v = torch::matmul(x, L.wv.t());
  if (c.qk_norm) {
    q = norm(q, L.q_norm);
    k = norm(k, L.k_norm);
  }
  if (c.clip_qkv) {
    const double clip = *c.clip_qkv;
    q = q.clamp(-clip, clip);
    k = k.clamp(-clip, clip);
    v = v.clamp(-clip, clip);
  }
  q = q.view({B, T, H, hd}).transpose(1, 2);
  k = k.view({B, T, KV, hd}).transpose(1, 2);
  v = v.view({B, T, KV, hd}).transpose(1, 2);
  auto rotate_half = [hd](const torch::Tensor& t) {
    return torch::cat({-t.narrow(-1, hd / 2, hd - hd / 2), t.narrow(-1, 0, hd / 2)}, -1);
  };
  q = q * cos + rotate_half(q) * sin;
  k = k * cos + rotate_half(k) * sin;
  if (KV != H) {
    k = k.repeat_interleave(H / KV, 1);
    v = v.repeat_interleave(H / KV, 1);
  }
  auto scores = torch::matmul(q, k.transpose(2, 3)) / std::sqrt(static_cast<double>(hd));
  auto causal =
      torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).triu(1);
  scores = scores.masked_fill(causal, -std::numeric_limits<float>::infinity());
  auto probs = torch::softmax(scores.to(torch::kFloat32), -1).to(q.scalar_type());
  auto out = torch::matmul(probs, v).transpose(1, 2).reshape({B, T, H * hd});
  if (options.ablation) {
    if (auto it = options.ablation->heads.find(index); it != options.ablation->heads.end()) {
      out = out * keep_mask(H * hd, it->second, hd, out.options(), "head");
    }
  }
  if (head_out) *head_out = out;
  return torch::matmul(out, L.wo.t());
}

torch::Tensor TransformerImpl::dense_ffn(const Layer& L, int64_t index, const torch::Tensor& z,
                                         const ForwardOptions& options, torch::Tensor* coef) const {
  auto c = torch::silu(torch::matmul(z, L.w_gate.t())) * torch::matmul(z, L.w_up.t());
  if (options.ablation) {
    if (auto it = options.ablation->ffn_neurons.find(index);
        it != options.ablation->ffn_neurons.end()) {
      c = c * keep_mask(config_.intermediate_size, it->second, 1, c.options(), "FFN neuron");
    }
  }
  if (coef) *coef = c;
  return torch::matmul(c, L.w_down.t());
}

torch::Tensor TransformerImpl::moe_ffn(const Layer& L, int64_t index, const torch::Tensor& z,
                                       const ForwardOptions& options,
                                       const torch::Tensor& real_tokens, ForwardOutput& out,
                                       bool capture, const torch::Tensor& last_flat) const {
  const auto& c = config_;
  const int64_t B = z.size(0), T = z.size(1), d = z.size(2), E = c.num_experts;
  const int64_t K = c.num_experts_per_tok, I = c.intermediate_size;
  const auto flat = z.reshape({B * T, d});
  const auto router_logits = torch::matmul(flat, L.router.t()).to(torch::kFloat32);
  const auto probs = torch::softmax(router_logits, -1);
  auto [top_w, top_i] = probs.topk(K, -1);
  if (c.norm_topk_prob) top_w = top_w / top_w.sum(-1, true);
  const auto weights = top_w.to(z.scalar_type());

  if (is_training() || options.all_positions) {
    // Switch load balancing over real tokens: E * sum_e f_e * P_e, and the
    // router z-loss mean(logsumexp(logits)^2).
    const auto real = real_tokens.reshape({B * T}).to(torch::kFloat32);
    const auto n_real = real.sum().clamp_min(1.0);
    const auto chosen = torch::zeros({B * T, E}, probs.options()).scatter_(1, top_i, 1.0);
    const auto f = (chosen * real.unsqueeze(1)).sum(0) / (n_real * K);
    const auto p = (probs * real.unsqueeze(1)).sum(0) / n_real;
    const auto lb = (f * p).sum() * E;
    const auto zl = (torch::logsumexp(router_logits, -1).pow(2) * real).sum() / n_real;
    out.load_balancing_loss = out.load_balancing_loss.defined() ? out.load_balancing_loss + lb : lb;
    out.router_z_loss = out.router_z_loss.defined() ? out.router_z_loss + zl : zl;
  }

  torch::Tensor mask;  // [E, I] ablation mask
  if (options.ablation) {
    if (auto it = options.ablation->ffn_neurons.find(index);
        it != options.ablation->ffn_neurons.end()) {
      mask = keep_mask(E * I, it->second, 1, z.options(), "expert neuron").view({E, I});
    }
  }
  // Row of the flat token index in the batch when it is a last position, else -1.
  torch::Tensor last_row, coef;
  if (capture) {
    last_row =
        torch::full({B * T}, -1, torch::TensorOptions().dtype(torch::kInt64).device(z.device()));
    last_row.index_put_({last_flat}, torch::arange(B, last_row.options()));
    coef = torch::zeros({B, K, I}, z.options());
  }
  auto result = torch::zeros_like(flat);
  for (int64_t e = 0; e < E; ++e) {
    const auto hits = (top_i == e).nonzero();  // [n, 2]: token, slot
    if (hits.size(0) == 0) continue;
    const auto tok = hits.select(1, 0), slot = hits.select(1, 1);
    const auto xe = flat.index_select(0, tok);
    auto ce = torch::silu(torch::matmul(xe, L.w_gate[e].t())) * torch::matmul(xe, L.w_up[e].t());
    if (mask.defined()) ce = ce * mask[e];
    ce = ce * weights.index({tok, slot}).unsqueeze(1);
    result = result.index_add(0, tok, torch::matmul(ce, L.w_down[e].t()));
    if (capture) {
      const auto rows = last_row.index_select(0, tok);
      const auto sel = (rows >= 0).nonzero().squeeze(1);
      if (sel.size(0) > 0) {
        coef.index_put_({rows.index_select(0, sel), slot.index_select(0, sel)},
                        ce.index_select(0, sel));
      }
    }
  }
  if (capture) {
    out.captures.ffn_coef.push_back(coef.to(torch::kFloat32));
    out.captures.router_probs.push_back(probs.index_select(0, last_flat));
    out.captures.expert_ids.push_back(top_i.index_select(0, last_flat));
    out.captures.expert_weights.push_back(weights.index_select(0, last_flat).to(torch::kFloat32));
  }
  return result.view({B, T, d});
}

ForwardOutput TransformerImpl::forward(const Batch& batch, const ForwardOptions& options) {
  const auto& c = config_;
  const int64_t B = batch.ids.size(0), T = batch.ids.size(1), hd = c.head_dim;
  const auto device = embed_.device();
  const auto dtype = embed_.scalar_type();
  ForwardOutput out;
  const auto ids = batch.ids.to(device);
  const auto last = batch.last.to(device);
  const auto rows = torch::arange(B, torch::TensorOptions().dtype(torch::kInt64).device(device));
  const auto last_flat = rows * T + last;
  const auto positions =
      torch::arange(T, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  const auto real_tokens = positions.unsqueeze(0) < batch.lengths.to(device).unsqueeze(1);

  // RoPE tables [T, hd], rotate_half convention.
  const auto inv_freq = torch::pow(
      c.rope_theta, -torch::arange(0, hd, 2, positions.options()) / static_cast<double>(hd));
  const auto freqs = torch::outer(positions, inv_freq);
  const auto emb = torch::cat({freqs, freqs}, -1);
  const auto cos = emb.cos().to(dtype), sin = emb.sin().to(dtype);

  auto at_last = [&](const torch::Tensor& x) {
    return x.reshape({B * T, x.size(-1)}).index_select(0, last_flat).to(torch::kFloat32);
  };
  const bool capture = options.capture;
  auto x = embed_.index_select(0, ids.reshape({-1})).view({B, T, c.hidden_size});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const Layer& L = layers_[l];
    torch::Tensor head_out;
    if (capture) out.captures.attn_in.push_back(at_last(x));
    auto a =
        attention(L, l, norm(x, L.attn_norm), cos, sin, options, capture ? &head_out : nullptr);
    x = x + a;
    if (capture) {
      out.captures.head_out.push_back(at_last(head_out));
      out.captures.attn_out.push_back(at_last(a));
      out.captures.ffn_in.push_back(at_last(x));
    }
    torch::Tensor f;
    if (c.is_moe()) {
      f = moe_ffn(L, l, norm(x, L.ffn_norm), options, real_tokens, out, capture, last_flat);
    } else {
      torch::Tensor coef;
      f = dense_ffn(L, l, norm(x, L.ffn_norm), options, capture ? &coef : nullptr);
      if (capture) out.captures.ffn_coef.push_back(at_last(coef));
    }
    x = x + f;
    if (capture) out.captures.ffn_out.push_back(at_last(f));
  }
  const auto head = lm_head();
  if (options.all_positions) {
    out.logits = torch::matmul(norm(x, final_norm_), head.t()).to(torch::kFloat32);
  } else {
    const auto x_last = x.reshape({B * T, c.hidden_size}).index_select(0, last_flat);
    out.logits = torch::matmul(norm(x_last, final_norm_), head.t()).to(torch::kFloat32);
  }
  if (capture) {
    auto& cap = out.captures;
    cap.final_resid = at_last(x);
    if (c.norm == ck::NormKind::RMSNorm) {
      cap.final_mean = torch::zeros({B}, cap.final_resid.options());
      cap.final_scale = torch::sqrt(cap.final_resid.pow(2).mean(-1) + c.norm_eps);
    } else {
      cap.final_mean = cap.final_resid.mean(-1);
      cap.final_scale = torch::sqrt(cap.final_resid.var(-1, /*unbiased=*/false) + c.norm_eps);
    }
  }
  if (!out.load_balancing_loss.defined()) {
    out.load_balancing_loss = torch::zeros({}, torch::TensorOptions().device(device));
    out.router_z_loss = torch::zeros({}, torch::TensorOptions().device(device));
  }
  return out;
}

torch::Tensor TransformerImpl::o_proj(int64_t layer) const {
  return layers_.at(layer).wo;
}
torch::Tensor TransformerImpl::down_proj(int64_t layer) const {
  return layers_.at(layer).w_down;
}
torch::Tensor TransformerImpl::final_norm_weight() const {
  return final_norm_;
}
torch::Tensor TransformerImpl::lm_head() const {
  return config_.tie_word_embeddings ? embed_ : lm_head_;
}

}  // namespace lpi::engine

#include "reference_model.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <stdexcept>

#include "common/checkpoint/safetensors.hpp"

namespace lpi::engine::testing {
namespace ck = lpi::checkpoint;
namespace fs = std::filesystem;
using torch::Tensor;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kFloat64);

Tensor silu_of(const Tensor& x) {
  return x / (1.0 + torch::exp(-x));
}

double dot_value(const Tensor& a, const Tensor& b) {
  return (a * b).sum().item<double>();
}

// Zeroes entries [index * block, (index + 1) * block) of a vector.
void zero_blocks(Tensor& v, const std::vector<int64_t>& indices, int64_t block) {
  for (int64_t index : indices) {
    if (index < 0 || (index + 1) * block > v.size(-1)) throw std::out_of_range("ablation index");
    v.narrow(-1, index * block, block).zero_();
  }
}

const std::vector<int64_t>* find(const std::map<int64_t, std::vector<int64_t>>& m, int64_t layer) {
  const auto it = m.find(layer);
  return it == m.end() ? nullptr : &it->second;
}

}  // namespace

ReferenceModel::ReferenceModel(ck::ModelConfig config, const std::map<std::string, Tensor>& weights)
    : config_(std::move(config)) {
  const auto& c = config_;
  auto get = [&](const std::string& name) {
    const auto it = weights.find(name);
    if (it == weights.end()) throw std::runtime_error("reference model: no tensor " + name);
    return it->second.to(torch::kFloat64).contiguous();
  };
  const int64_t q_rows = c.num_heads * c.head_dim, kv_rows = c.num_kv_heads * c.head_dim;
  const int64_t I = c.intermediate_size;
  if (c.layout == ck::Layout::OlmoFused) {
    embed_ = get("model.transformer.wte.weight");
    lm_head_ = c.tie_word_embeddings ? embed_ : get("model.transformer.ff_out.weight");
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string p = "model.transformer.blocks." + std::to_string(i) + ".";
      LayerWeights L;
      const Tensor att = get(p + "att_proj.weight");  // rows: q, k, v
      L.wq = att.slice(0, 0, q_rows);
      L.wk = att.slice(0, q_rows, q_rows + kv_rows);
      L.wv = att.slice(0, q_rows + kv_rows, q_rows + 2 * kv_rows);
      L.wo = get(p + "attn_out.weight");
      const Tensor ff = get(p + "ff_proj.weight");  // rows: up, gate
      L.up.push_back(ff.slice(0, 0, I));
      L.gate.push_back(ff.slice(0, I, 2 * I));
      L.down.push_back(get(p + "ff_out.weight"));
      layers_.push_back(L);
    }
    return;
  }
  const bool rms = c.norm == ck::NormKind::RMSNorm;
  embed_ = get("model.embed_tokens.weight");
  lm_head_ = c.tie_word_embeddings ? embed_ : get("lm_head.weight");
  if (rms) final_norm_ = get("model.norm.weight");
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    LayerWeights L;
    if (rms) {
      L.attn_norm = get(p + "input_layernorm.weight");
      L.ffn_norm = get(p + "post_attention_layernorm.weight");
    }
    L.wq = get(p + "self_attn.q_proj.weight");
    L.wk = get(p + "self_attn.k_proj.weight");
    L.wv = get(p + "self_attn.v_proj.weight");
    L.wo = get(p + "self_attn.o_proj.weight");
    if (c.qk_norm) {
      L.q_norm = get(p + "self_attn.q_norm.weight");
      L.k_norm = get(p + "self_attn.k_norm.weight");
    }
    if (c.is_moe()) {
      L.router = get(p + "mlp.gate.weight");
      for (int64_t e = 0; e < c.num_experts; ++e) {
        const std::string q = p + "mlp.experts." + std::to_string(e) + ".";
        L.gate.push_back(get(q + "gate_proj.weight"));
        L.up.push_back(get(q + "up_proj.weight"));
        L.down.push_back(get(q + "down_proj.weight"));
      }
    } else {
      L.gate.push_back(get(p + "mlp.gate_proj.weight"));
      L.up.push_back(get(p + "mlp.up_proj.weight"));
      L.down.push_back(get(p + "mlp.down_proj.weight"));
    }
    layers_.push_back(L);
  }
}

ReferenceModel ReferenceModel::from_folder(const fs::path& folder) {
  const ck::ModelConfig config = ck::read_model_config(folder);
  const ck::Checkpoint checkpoint(folder);
  std::map<std::string, Tensor> weights;
  for (const auto& name : checkpoint.names()) {
    const auto view = checkpoint.view(name);
    const std::vector<float> values = ck::to_float32(view);
    weights[name] = torch::tensor(values, torch::kFloat32).reshape(view.info->shape);
  }
  return ReferenceModel(config, weights);
}

// RMSNorm with weight (sqrt(mean x^2 + eps)), or LayerNorm without weight or
// bias (biased variance), over one vector.
Tensor ReferenceModel::normalise(const Tensor& x, const Tensor& weight) const {
  const double n = static_cast<double>(x.numel());
  if (config_.norm == ck::NormKind::RMSNorm) {
    const double scale = std::sqrt(dot_value(x, x) / n + config_.norm_eps);
    return weight.defined() ? weight * (x / scale) : x / scale;
  }
  const double mean = x.sum().item<double>() / n;
  const Tensor centred = x - mean;
  return centred / std::sqrt(dot_value(centred, centred) / n + config_.norm_eps);
}

// rotate_half RoPE of one head vector at `position`: pairs (i, i + dh/2) turn
// by position * theta^(-2i/dh).
Tensor ReferenceModel::rope(const Tensor& v, int64_t position) const {
  const int64_t hd = v.numel(), half = hd / 2;
  auto in = v.accessor<double, 1>();
  Tensor out = torch::empty({hd}, kF64);
  auto o = out.accessor<double, 1>();
  for (int64_t i = 0; i < half; ++i) {
    const double angle = static_cast<double>(position) *
                         std::pow(config_.rope_theta, -2.0 * i / static_cast<double>(hd));
    const double c = std::cos(angle), s = std::sin(angle);
    o[i] = in[i] * c - in[i + half] * s;
    o[i + half] = in[i + half] * c + in[i] * s;
  }
  return out;
}

RefOutput ReferenceModel::run(const std::vector<int32_t>& prompt,
                              const RefAblation& ablation) const {
  torch::NoGradGuard no_grad;
  const auto& c = config_;
  const int64_t T = static_cast<int64_t>(prompt.size());
  if (T == 0) throw std::invalid_argument("reference model: empty prompt");
  const int64_t H = c.num_heads, KV = c.num_kv_heads, hd = c.head_dim, I = c.intermediate_size;
  const int64_t group = H / KV;  // query heads per key/value head
  const int64_t last = T - 1;

  RefOutput out;
  std::vector<Tensor> h(T);  // residual stream, one [d] vector per position
  for (int64_t t = 0; t < T; ++t) h[t] = embed_[prompt[t]].clone();
  out.embedding = h[last].clone();

  for (int64_t l = 0; l < c.num_layers; ++l) {
    const LayerWeights& L = layers_[l];
    RefLayerCapture cap;
    cap.attn_in = h[last].clone();

    // q, k, v of every position; heads rotated by RoPE.
    std::vector<std::vector<Tensor>> q(T), k(T), v(T);
    for (int64_t t = 0; t < T; ++t) {
      const Tensor x = normalise(h[t], L.attn_norm);
      Tensor qt = torch::mv(L.wq, x), kt = torch::mv(L.wk, x), vt = torch::mv(L.wv, x);
      if (c.qk_norm) {
        qt = qt * L.q_norm / std::sqrt(dot_value(qt, qt) / qt.numel() + c.norm_eps);
        kt = kt * L.k_norm / std::sqrt(dot_value(kt, kt) / kt.numel() + c.norm_eps);
      }
      if (c.clip_qkv) {
        qt = qt.clamp(-*c.clip_qkv, *c.clip_qkv);
        kt = kt.clamp(-*c.clip_qkv, *c.clip_qkv);
        vt = vt.clamp(-*c.clip_qkv, *c.clip_qkv);
      }
      for (int64_t j = 0; j < H; ++j) q[t].push_back(rope(qt.slice(0, j * hd, (j + 1) * hd), t));
      for (int64_t g = 0; g < KV; ++g) {
        k[t].push_back(rope(kt.slice(0, g * hd, (g + 1) * hd), t));
        v[t].push_back(vt.slice(0, g * hd, (g + 1) * hd));
      }
    }
    // Causal softmax attention, head by head, position by position.
    std::vector<Tensor> attn(T);
    for (int64_t t = 0; t < T; ++t) {
      Tensor heads = torch::zeros({H * hd}, kF64);
      for (int64_t j = 0; j < H; ++j) {
        const int64_t g = j / group;
        std::vector<double> score(t + 1);
        for (int64_t p = 0; p <= t; ++p)
          score[p] = dot_value(q[t][j], k[p][g]) / std::sqrt(double(hd));
        const double top = *std::max_element(score.begin(), score.end());
        double total = 0;
        for (double& s : score) total += (s = std::exp(s - top));
        Tensor o = heads.slice(0, j * hd, (j + 1) * hd);
        for (int64_t p = 0; p <= t; ++p) o += (score[p] / total) * v[p][g];
      }
      if (const auto* zeroed = find(ablation.heads, l)) zero_blocks(heads, *zeroed, hd);
      attn[t] = torch::mv(L.wo, heads);
      if (t == last) cap.head_out = heads;
    }
    for (int64_t t = 0; t < T; ++t) h[t] = h[t] + attn[t];
    cap.attn_out = attn[last];
    cap.ffn_in = h[last].clone();

    // FFN (SwiGLU), or the router and the chosen experts.
    const auto* zeroed = find(ablation.ffn_neurons, l);
    for (int64_t t = 0; t < T; ++t) {
      const Tensor z = normalise(h[t], L.ffn_norm);
      Tensor f = torch::zeros_like(z);
      if (!c.is_moe()) {
        Tensor coef = silu_of(torch::mv(L.gate[0], z)) * torch::mv(L.up[0], z);
        if (zeroed) zero_blocks(coef, *zeroed, 1);
        f = torch::mv(L.down[0], coef);
        if (t == last) cap.ffn_coef = coef;
      } else {
        const Tensor logits = torch::mv(L.router, z);
        const Tensor probs =
            torch::exp(logits - logits.max()) / torch::exp(logits - logits.max()).sum();
        std::vector<int64_t> order(c.num_experts);
        std::iota(order.begin(), order.end(), 0);
        auto pa = probs.accessor<double, 1>();
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t a, int64_t b) { return pa[a] > pa[b]; });
        order.resize(c.num_experts_per_tok);
        std::vector<double> weight;
        double chosen = 0;
        for (int64_t e : order) chosen += pa[e];
        for (int64_t e : order) weight.push_back(c.norm_topk_prob ? pa[e] / chosen : pa[e]);
        Tensor coefs = torch::zeros({c.num_experts_per_tok, I}, kF64);
        for (std::size_t slot = 0; slot < order.size(); ++slot) {
          const int64_t e = order[slot];
          Tensor ce = weight[slot] * silu_of(torch::mv(L.gate[e], z)) * torch::mv(L.up[e], z);
          if (zeroed) {
            for (int64_t n : *zeroed) {
              if (n < 0 || n >= c.num_experts * I) throw std::out_of_range("ablation index");
              if (n / I == e) ce[n % I] = 0.0;
            }
          }
          f += torch::mv(L.down[e], ce);
          coefs[slot] = ce;
        }
        if (t == last) {
          cap.ffn_coef = coefs;
          cap.router_probs = probs;
          cap.expert_ids = order;
          cap.expert_weights = weight;
        }
      }
      if (t == last) cap.ffn_out = f;
      h[t] = h[t] + f;
    }
    out.layers.push_back(cap);
  }

  const Tensor& y = h[last];
  out.final_resid = y.clone();
  const double n = static_cast<double>(y.numel());
  if (c.norm == ck::NormKind::RMSNorm) {
    out.final_mean = 0;
    out.final_scale = std::sqrt(dot_value(y, y) / n + c.norm_eps);
  } else {
    out.final_mean = y.sum().item<double>() / n;
    const Tensor centred = y - out.final_mean;
    out.final_scale = std::sqrt(dot_value(centred, centred) / n + c.norm_eps);
  }
  out.logits = torch::mv(lm_head_, normalise(y, final_norm_));
  return out;
}

}  // namespace lpi::engine::testing

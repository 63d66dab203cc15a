#include "tiny_models.hpp"

#include <stdlib.h>

#include <fstream>
#include <stdexcept>
#include <vector>

namespace lpi::engine::testing {
namespace fs = std::filesystem;
namespace ck = lpi::checkpoint;
using nlohmann::json;

TinySpec tiny_olmoe() {
  return TinySpec{};
}

TinySpec tiny_olmoe_gqa_clip() {
  TinySpec s;
  s.kv_heads = 2;
  s.clip_qkv = 1.5;  // q and k are RMS-normalised (~N(0, 1)): a good share is clamped
  s.norm_topk_prob = true;
  s.rope_theta = 500000.0;
  s.rms_eps = 1e-6;
  s.seed = 2;
  return s;
}

TinySpec tiny_dense() {
  TinySpec s;
  s.kind = TinyKind::OlmoDense;
  s.intermediate = 48;
  s.experts = 0;
  s.top_k = 0;
  s.seed = 3;
  return s;
}

TinySpec tiny_dense_tied_gqa_clip() {
  TinySpec s = tiny_dense();
  s.tie_embeddings = true;
  s.kv_heads = 2;
  s.clip_qkv = 2.0;  // q, k, v ~ N(0, 1.7^2) without a QK-norm
  s.vocab_used = 90;
  s.seed = 4;
  return s;
}

TensorMap make_tiny_weights(const TinySpec& s) {
  auto gen = at::detail::createCPUGenerator(s.seed);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  auto randn = [&](std::vector<int64_t> shape) { return at::randn(shape, gen, f32) * s.stddev; };
  auto norm_weight = [&](int64_t n) { return 1.0 + 0.1 * at::randn({n}, gen, f32); };
  const bool moe = s.kind == TinyKind::Olmoe;
  const int64_t d = s.hidden, hd = s.hidden / s.heads, I = s.intermediate;
  const int64_t q_rows = s.heads * hd, kv_rows = s.kv_heads * hd;

  TensorMap w;
  w["model.embed_tokens.weight"] = randn({s.vocab, d});
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    if (moe) w[p + "input_layernorm.weight"] = norm_weight(d);
    w[p + "self_attn.q_proj.weight"] = randn({q_rows, d});
    w[p + "self_attn.k_proj.weight"] = randn({kv_rows, d});
    w[p + "self_attn.v_proj.weight"] = randn({kv_rows, d});
    w[p + "self_attn.o_proj.weight"] = randn({d, q_rows});
    if (moe) {
      w[p + "self_attn.q_norm.weight"] = norm_weight(q_rows);
      w[p + "self_attn.k_norm.weight"] = norm_weight(kv_rows);
      w[p + "post_attention_layernorm.weight"] = norm_weight(d);
      // A larger router spread gives clear top-k choices.
      w[p + "mlp.gate.weight"] = randn({s.experts, d}) * 2.0;
      for (int64_t e = 0; e < s.experts; ++e) {
        const std::string q = p + "mlp.experts." + std::to_string(e) + ".";
        w[q + "gate_proj.weight"] = randn({I, d});
        w[q + "up_proj.weight"] = randn({I, d});
        w[q + "down_proj.weight"] = randn({d, I});
      }
    } else {
      w[p + "mlp.gate_proj.weight"] = randn({I, d});
      w[p + "mlp.up_proj.weight"] = randn({I, d});
      w[p + "mlp.down_proj.weight"] = randn({d, I});
    }
  }
  if (moe) w["model.norm.weight"] = norm_weight(d);
  if (!s.tie_embeddings) w["lm_head.weight"] = randn({s.vocab, d});
  return w;
}

TensorMap to_fused_layout(const TensorMap& hf, const TinySpec& s) {
  if (s.kind != TinyKind::OlmoDense) throw std::invalid_argument("hf_olmo holds dense models only");
  TensorMap w;
  w["model.transformer.wte.weight"] = hf.at("model.embed_tokens.weight");
  for (int64_t i = 0; i < s.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    const std::string b = "model.transformer.blocks." + std::to_string(i) + ".";
    w[b + "att_proj.weight"] =
        torch::cat({hf.at(p + "self_attn.q_proj.weight"), hf.at(p + "self_attn.k_proj.weight"),
                    hf.at(p + "self_attn.v_proj.weight")},
                   0);
    w[b + "attn_out.weight"] = hf.at(p + "self_attn.o_proj.weight");
    w[b + "ff_proj.weight"] =
        torch::cat({hf.at(p + "mlp.up_proj.weight"), hf.at(p + "mlp.gate_proj.weight")}, 0);
    w[b + "ff_out.weight"] = hf.at(p + "mlp.down_proj.weight");
  }
  if (!s.tie_embeddings) w["model.transformer.ff_out.weight"] = hf.at("lm_head.weight");
  return w;
}

json hf_config_json(const TinySpec& s) {
  const bool moe = s.kind == TinyKind::Olmoe;
  json j;
  j["architectures"] = json::array({moe ? "OlmoeForCausalLM" : "OlmoForCausalLM"});
  j["model_type"] = moe ? "olmoe" : "olmo";
  j["hidden_size"] = s.hidden;
  j["intermediate_size"] = s.intermediate;
  j["num_hidden_layers"] = s.layers;
  j["num_attention_heads"] = s.heads;
  j["num_key_value_heads"] = s.kv_heads;
  j["vocab_size"] = s.vocab;
  j["max_position_embeddings"] = 64;
  j["rope_theta"] = s.rope_theta;
  j["rope_scaling"] = nullptr;
  j["clip_qkv"] = s.clip_qkv ? json(*s.clip_qkv) : json(nullptr);
  j["tie_word_embeddings"] = s.tie_embeddings;
  j["hidden_act"] = "silu";
  j["attention_bias"] = false;
  j["pad_token_id"] = 1;
  j["eos_token_id"] = 0;
  j["torch_dtype"] = "float32";
  if (moe) {
    j["rms_norm_eps"] = s.rms_eps;
    j["num_experts"] = s.experts;
    j["num_experts_per_tok"] = s.top_k;
    j["norm_topk_prob"] = s.norm_topk_prob;
    j["router_aux_loss_coef"] = 0.01;
  }
  return j;
}

json fused_config_json(const TinySpec& s) {
  if (s.kind != TinyKind::OlmoDense) throw std::invalid_argument("hf_olmo holds dense models only");
  json j;
  j["architectures"] = json::array({"OLMoForCausalLM"});
  j["model_type"] = "olmo";
  j["d_model"] = s.hidden;
  j["n_layers"] = s.layers;
  j["n_heads"] = s.heads;
  j["n_kv_heads"] = s.kv_heads;
  j["mlp_hidden_size"] = 2 * s.intermediate;
  j["weight_tying"] = s.tie_embeddings;
  j["vocab_size"] = s.vocab_used;
  j["embedding_size"] = s.vocab;
  j["rope"] = true;
  j["rope_theta"] = s.rope_theta;
  j["clip_qkv"] = s.clip_qkv ? json(*s.clip_qkv) : json(nullptr);
  j["layer_norm_type"] = "default";
  j["layer_norm_with_affine"] = false;
  j["activation_type"] = "swiglu";
  j["include_bias"] = false;
  j["alibi"] = false;
  j["block_type"] = "sequential";
  j["max_sequence_length"] = 64;
  j["pad_token_id"] = 1;
  j["eos_token_id"] = 0;
  return j;
}

void write_checkpoint(const fs::path& folder, const json& config, const TensorMap& tensors,
                      ck::DType dtype) {
  fs::create_directories(folder);
  const auto scalar = dtype == ck::DType::BF16  ? torch::kBFloat16
                      : dtype == ck::DType::F16 ? torch::kFloat16
                                                : torch::kFloat32;
  std::vector<torch::Tensor> keep;
  keep.reserve(tensors.size());
  std::vector<ck::TensorToWrite> out;
  for (const auto& [name, tensor] : tensors) {
    keep.push_back(tensor.detach().to(torch::kCPU, scalar).contiguous());
    const auto& t = keep.back();
    out.push_back({name, dtype, t.sizes().vec(), t.data_ptr(),
                   static_cast<std::size_t>(t.numel()) * t.element_size()});
  }
  ck::write_safetensors(folder / "model.safetensors", out, {{"format", "pt"}});
  std::ofstream file(folder / "config.json");
  file << config.dump(2) << "\n";
  if (!file) throw std::runtime_error("cannot write " + (folder / "config.json").string());
}

void write_tiny_model(const fs::path& folder, const TinySpec& spec, bool fused) {
  const auto weights = make_tiny_weights(spec);
  if (fused) {
    write_checkpoint(folder, fused_config_json(spec), to_fused_layout(weights, spec));
  } else {
    write_checkpoint(folder, hf_config_json(spec), weights);
  }
}

std::vector<std::vector<int32_t>> make_prompts(const std::vector<int64_t>& lengths, int64_t vocab,
                                               uint64_t seed) {
  uint64_t state = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  std::vector<std::vector<int32_t>> out;
  for (int64_t n : lengths) {
    std::vector<int32_t> prompt;
    for (int64_t i = 0; i < n; ++i) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      prompt.push_back(static_cast<int32_t>(2 + (state >> 33) % static_cast<uint64_t>(vocab - 2)));
    }
    out.push_back(prompt);
  }
  return out;
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) {
    throw std::invalid_argument("max_abs_diff: shapes " + c10::str(a.sizes()) + " and " +
                                c10::str(b.sizes()) + " differ");
  }
  if (a.numel() == 0) return 0.0;
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace lpi::engine::testing

// The tensors each layout requires (names as the checkpoints on the Hub spell
// them) and the HF config.json written for the engine's own checkpoints.
#include <string>

#include "common/checkpoint/model_config.hpp"
#include "common/checkpoint/safetensors.hpp"

namespace lpi::checkpoint {

using nlohmann::json;

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& c) {
  const int64_t d = c.hidden_size;
  const int64_t q_rows = c.num_heads * c.head_dim;
  const int64_t kv_rows = c.num_kv_heads * c.head_dim;
  const int64_t inter = c.intermediate_size;
  const int64_t vocab = c.vocab_size;
  std::vector<ExpectedTensor> out;
  auto add = [&out](std::string name, std::vector<int64_t> shape) {
    out.push_back({std::move(name), std::move(shape)});
  };

  if (c.layout == Layout::OlmoFused) {
    // hf_olmo: OLMoForCausalLM.model (olmo.model.OLMo) -> "model.transformer.*"
    add("model.transformer.wte.weight", {vocab, d});
    for (int64_t i = 0; i < c.num_layers; ++i) {
      const std::string p = "model.transformer.blocks." + std::to_string(i) + ".";
      add(p + "att_proj.weight", {q_rows + 2 * kv_rows, d});  // rows: q, k, v
      add(p + "attn_out.weight", {d, q_rows});
      add(p + "ff_proj.weight", {2 * inter, d});  // rows: up (first half), gate (second half)
      add(p + "ff_out.weight", {d, inter});
    }
    if (!c.tie_word_embeddings) add("model.transformer.ff_out.weight", {vocab, d});
    return out;
  }

  const bool moe = c.layout == Layout::Olmoe;
  const bool norm_weights = c.norm == NormKind::RMSNorm;
  add("model.embed_tokens.weight", {vocab, d});
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    if (norm_weights) add(p + "input_layernorm.weight", {d});
    add(p + "self_attn.q_proj.weight", {q_rows, d});
    add(p + "self_attn.k_proj.weight", {kv_rows, d});
    add(p + "self_attn.v_proj.weight", {kv_rows, d});
    add(p + "self_attn.o_proj.weight", {d, q_rows});
    if (c.qk_norm) {
      add(p + "self_attn.q_norm.weight", {q_rows});
      add(p + "self_attn.k_norm.weight", {kv_rows});
    }
    if (norm_weights) add(p + "post_attention_layernorm.weight", {d});
    if (moe) {
      add(p + "mlp.gate.weight", {c.num_experts, d});
      for (int64_t e = 0; e < c.num_experts; ++e) {
        const std::string x = p + "mlp.experts." + std::to_string(e) + ".";
        add(x + "gate_proj.weight", {inter, d});
        add(x + "up_proj.weight", {inter, d});
        add(x + "down_proj.weight", {d, inter});
      }
    } else {
      add(p + "mlp.gate_proj.weight", {inter, d});
      add(p + "mlp.up_proj.weight", {inter, d});
      add(p + "mlp.down_proj.weight", {d, inter});
    }
  }
  if (norm_weights) add("model.norm.weight", {d});
  if (!c.tie_word_embeddings) add("lm_head.weight", {vocab, d});
  return out;
}

json to_hf_config_json(const ModelConfig& c) {
  const bool moe = c.layout == Layout::Olmoe;
  const std::string what = std::string("to_hf_config_json(") + layout_name(c.layout) + "): ";
  if (c.layout == Layout::OlmoFused)
    throw CheckpointError(what +
                          "the hf_olmo layout has no transformers config; "
                          "write Olmoe or OlmoHF checkpoints instead");
  if (moe && (c.norm != NormKind::RMSNorm || !c.qk_norm))
    throw CheckpointError(what + "OlmoeForCausalLM always has RMSNorm weights and q/k norms");
  if (!moe &&
      (c.norm != NormKind::LayerNormNoAffine || c.qk_norm || c.norm_eps != 1e-5 || c.is_moe()))
    throw CheckpointError(what +
                          "OlmoForCausalLM is dense, with a non-parametric LayerNorm "
                          "(eps 1e-5) and no q/k norms");
  if (c.head_dim * c.num_heads != c.hidden_size)
    throw CheckpointError(what + "head_dim must be hidden_size / num_heads");
  auto id = [](const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); };

  json j = json::object();
  j["architectures"] = json::array({moe ? "OlmoeForCausalLM" : "OlmoForCausalLM"});
  j["model_type"] = moe ? "olmoe" : "olmo";
  j["hidden_size"] = c.hidden_size;
  j["intermediate_size"] = c.intermediate_size;
  j["num_hidden_layers"] = c.num_layers;
  j["num_attention_heads"] = c.num_heads;
  j["num_key_value_heads"] = c.num_kv_heads;
  j["vocab_size"] = c.vocab_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["rope_theta"] = c.rope_theta;
  j["rope_scaling"] = nullptr;
  j["clip_qkv"] = c.clip_qkv ? json(*c.clip_qkv) : json(nullptr);
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["hidden_act"] = c.hidden_act;
  j["attention_bias"] = false;
  j["attention_dropout"] = 0.0;
  j["initializer_range"] = 0.02;
  j["use_cache"] = true;
  j["pad_token_id"] = id(c.pad_token_id);
  j["eos_token_id"] = id(c.eos_token_id);
  j["bos_token_id"] = id(c.bos_token_id);
  if (!c.torch_dtype.empty()) j["torch_dtype"] = c.torch_dtype;
  if (moe) {
    j["rms_norm_eps"] = c.norm_eps;
    j["num_experts"] = c.num_experts;
    j["num_experts_per_tok"] = c.num_experts_per_tok;
    j["norm_topk_prob"] = c.norm_topk_prob;
    j["router_aux_loss_coef"] = c.router_aux_loss_coef;
    j["output_router_logits"] = false;
    if (c.router_z_loss_coef != 0.0) j["router_z_loss_coef"] = c.router_z_loss_coef;
  }
  j["transformers_version"] = "4.46.0";
  return j;
}

}  // namespace lpi::checkpoint

// config.json -> one model description for the three layouts the engine runs:
// HF OlmoeForCausalLM, HF OlmoForCausalLM (OLMo-7B-hf, 0424, 0724) and the
// original allenai/OLMo-7B hf_olmo layout. Anything else is refused by name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lpi::checkpoint {

enum class Layout {
  Olmoe,      // OlmoeForCausalLM: model.layers.{i}.mlp.experts.{e}.{gate,up,down}_proj
  OlmoHF,     // OlmoForCausalLM: model.layers.{i}.self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj
  OlmoFused,  // hf_olmo (allenai/OLMo-7B):
              // model.transformer.blocks.{i}.{att_proj,attn_out,ff_proj,ff_out}
};

enum class NormKind {
  RMSNorm,            // RMSNorm with a weight (OLMoE)
  LayerNormNoAffine,  // non-parametric LayerNorm (original OLMo-7B, OLMo-7B-hf)
};

const char* layout_name(Layout layout);

struct ModelConfig {
  Layout layout = Layout::OlmoHF;
  std::string architecture;  // as in config.json, e.g. "OlmoeForCausalLM"
  std::string model_type;    // "olmoe" or "olmo"

  int64_t vocab_size = 0;         // rows of the embedding / LM head (e.g. 50304)
  int64_t hidden_size = 0;        // d
  int64_t intermediate_size = 0;  // dense FFN width, or one expert's width for MoE
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_heads
  int64_t max_position_embeddings = 0;

  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  NormKind norm = NormKind::RMSNorm;
  bool qk_norm = false;            // OLMoE: RMSNorm over the whole q and k projections
  std::optional<double> clip_qkv;  // clamp q, k, v to [-c, c]
  bool tie_word_embeddings = false;
  std::string hidden_act = "silu";

  // Mixture of experts (num_experts == 0 for dense models).
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
  bool norm_topk_prob = false;
  double router_aux_loss_coef = 0.0;
  double router_z_loss_coef = 0.0;

  std::optional<int64_t> pad_token_id;
  std::optional<int64_t> eos_token_id;
  std::optional<int64_t> bos_token_id;
  std::string torch_dtype;  // informational ("float32", "bfloat16")

  bool is_moe() const { return num_experts > 0; }
};

// Reads and validates folder/config.json (or a path to a config.json).
// Throws CheckpointError naming the file and the field.
ModelConfig read_model_config(const std::filesystem::path& folder_or_file);
ModelConfig parse_model_config(const nlohmann::json& json, const std::filesystem::path& source);

// The HF config.json the engine writes for checkpoints of its own
// (Olmoe and OlmoHF layouts only).
nlohmann::json to_hf_config_json(const ModelConfig& config);

struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
};

// Every tensor the layout requires, with its shape, in a stable order.
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config);

}  // namespace lpi::checkpoint

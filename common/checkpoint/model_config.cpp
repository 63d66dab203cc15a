// config.json -> ModelConfig for the three supported layouts. Defaults follow
// transformers' OlmoeConfig / OlmoConfig and allenai/OLMo's olmo.config.ModelConfig
// (what hf_olmo's OLMoConfig falls back to for an absent key).
#include "common/checkpoint/model_config.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <limits>

#include "common/checkpoint/safetensors.hpp"
#include "common/json/json_text.hpp"

namespace lpi::checkpoint {

namespace fs = std::filesystem;
using nlohmann::json;

const char* layout_name(Layout layout) {
  static const char* const names[] = {"Olmoe", "OlmoHF", "OlmoFused"};  // in Layout's order
  const auto i = static_cast<std::size_t>(layout);
  return i < std::size(names) ? names[i] : "?";
}

namespace {

constexpr const char* kSupported =
    "supported: OlmoeForCausalLM, OlmoForCausalLM, OLMoForCausalLM (hf_olmo)";

// Typed access to one config.json object; every error names the file and field.
class Fields {
 public:
  Fields(const json& object, const fs::path& source)
      : j_(object), where_(source.empty() ? std::string("config.json") : source.string()) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw CheckpointError(where_ + ": " + what);
  }
  [[noreturn]] void fail_field(const char* key, const std::string& what) const {
    fail(std::string("field '") + key + "' " + what);
  }

  bool present(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
  const json& at(const char* key) const { return j_.at(key); }

  int64_t integer(const char* key) const {
    if (!j_.contains(key)) fail_field(key, "is missing (expected an integer)");
    return as_integer(key, j_.at(key));
  }
  int64_t integer(const char* key, int64_t fallback) const {
    return present(key) ? as_integer(key, j_.at(key)) : fallback;
  }
  int64_t positive(const char* key) const { return check_positive(key, integer(key)); }
  int64_t positive(const char* key, int64_t fallback) const {
    return check_positive(key, integer(key, fallback));
  }
  std::optional<int64_t> optional_integer(const char* key, std::optional<int64_t> fallback) const {
    if (!j_.contains(key)) return fallback;
    if (j_.at(key).is_null()) return std::nullopt;
    // transformers allows a list of eos ids; the first is the one generation stops on.
    if (j_.at(key).is_array() && !j_.at(key).empty()) return as_integer(key, j_.at(key).front());
    return as_integer(key, j_.at(key));
  }
  double number(const char* key, double fallback) const {
    if (!present(key)) return fallback;
    if (!j_.at(key).is_number())
      fail_field(key, "is " + describe(j_.at(key)) + ", expected a number");
    return j_.at(key).get<double>();
  }
  std::optional<double> optional_number(const char* key) const {
    if (!present(key)) return std::nullopt;
    return number(key, 0.0);
  }
  bool boolean(const char* key, bool fallback) const {
    if (!present(key)) return fallback;
    if (!j_.at(key).is_boolean())
      fail_field(key, "is " + describe(j_.at(key)) + ", expected true or false");
    return j_.at(key).get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) const {
    if (!present(key)) return fallback;
    if (!j_.at(key).is_string())
      fail_field(key, "is " + describe(j_.at(key)) + ", expected a string");
    return j_.at(key).get<std::string>();
  }

  // hf_olmo: an absent key takes olmo.config.ModelConfig's default; refuse unsupported values.
  void require_bool(const char* key, bool fallback, bool wanted) const {
    if (boolean(key, fallback) != wanted)
      fail_field(key, std::string("is ") + (wanted ? "false" : "true") +
                          (present(key) ? "" : " (hf_olmo's default when the field is absent)") +
                          "; only " + (wanted ? "true" : "false") + " is supported");
  }
  void require_string(const char* key, const std::string& fallback,
                      std::initializer_list<const char*> wanted) const {
    const std::string value = string(key, fallback);
    std::string list;
    for (const char* w : wanted) {
      if (value == w) return;
      list += std::string(list.empty() ? "'" : ", '") + w + "'";
    }
    fail_field(key, "is '" + value + "'" +
                        (present(key) ? "" : " (hf_olmo's default when the field is absent)") +
                        "; supported: " + list);
  }

  static std::string describe(const json& value) {
    return std::string("a JSON ") + value.type_name() + " (" + json_text::brief(value) + ")";
  }

 private:
  int64_t as_integer(const char* key, const json& value) const {
    if (!value.is_number_integer())
      fail_field(key, "is " + describe(value) + ", expected an integer");
    if (value.is_number_unsigned() &&
        value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail_field(key, "is too large (" + value.dump() + ")");
    return value.get<int64_t>();
  }
  int64_t check_positive(const char* key, int64_t value) const {
    if (value <= 0)
      fail_field(key, "is " + std::to_string(value) + ", expected a positive integer");
    return value;
  }

  const json& j_;
  std::string where_;
};

// rope_theta at the top level (transformers < 5) or inside rope_parameters /
// rope_scaling (transformers >= 5); only the default (unscaled) RoPE is supported.
double parse_rope_theta(const Fields& f) {
  double theta = f.number("rope_theta", 10000.0);
  for (const char* key : {"rope_scaling", "rope_parameters"}) {  // later wins
    if (!f.present(key)) continue;
    const json& rope = f.at(key);
    if (!rope.is_object())
      f.fail_field(key, "is " + Fields::describe(rope) + ", expected an object or null");
    bool typed = false;
    for (const char* type_key : {"rope_type", "type"}) {
      if (!rope.contains(type_key)) continue;
      typed = true;
      if (!rope.at(type_key).is_string() || rope.at(type_key).get<std::string>() != "default")
        f.fail_field(key, std::string("has ") + type_key + " " +
                              json_text::brief(rope.at(type_key)) +
                              "; only \"default\" (unscaled RoPE) is supported");
    }
    // A scaling block without a type, or with a scale factor, is some other RoPE.
    if (rope.contains("factor") &&
        !(rope.at("factor").is_number() && rope.at("factor").get<double>() == 1.0))
      f.fail_field(key,
                   "has factor " + json_text::brief(rope.at("factor")) +
                       "; scaled RoPE is not supported (expected null or rope_type \"default\")");
    if (!typed && std::string(key) == "rope_scaling" && !rope.empty())
      f.fail_field(key,
                   "is " + json_text::brief(rope) +
                       "; scaled RoPE is not supported (expected null or rope_type \"default\")");
    if (rope.contains("rope_theta")) {
      if (!rope.at("rope_theta").is_number())
        f.fail_field(key, "has rope_theta " + json_text::brief(rope.at("rope_theta")) +
                              ", expected a number");
      theta = rope.at("rope_theta").get<double>();
    }
  }
  if (!(theta > 0)) f.fail_field("rope_theta", "must be positive");
  return theta;
}

void parse_hf(const Fields& f, ModelConfig& c) {
  const bool moe = c.layout == Layout::Olmoe;
  c.hidden_size = f.positive("hidden_size");
  c.intermediate_size = f.positive("intermediate_size");
  c.num_layers = f.positive("num_hidden_layers");
  c.num_heads = f.positive("num_attention_heads");
  c.num_kv_heads = f.positive("num_key_value_heads", c.num_heads);  // null -> heads
  c.vocab_size = f.positive("vocab_size");
  c.max_position_embeddings = f.positive("max_position_embeddings", moe ? 4096 : 2048);
  c.rope_theta = parse_rope_theta(f);
  c.clip_qkv = f.optional_number("clip_qkv");
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  c.hidden_act = f.string("hidden_act", "silu");
  c.pad_token_id = f.optional_integer("pad_token_id", 1);
  c.eos_token_id = f.optional_integer("eos_token_id", 50279);
  c.bos_token_id = f.optional_integer("bos_token_id", std::nullopt);
  c.torch_dtype = f.string("torch_dtype", f.string("dtype", ""));
  if (f.boolean("attention_bias", false))
    f.fail_field("attention_bias", "is true; only bias-free q/k/v/o projections are supported");
  if (f.present("head_dim") &&
      (c.hidden_size % c.num_heads != 0 || f.integer("head_dim") != c.hidden_size / c.num_heads))
    f.fail_field("head_dim", "is " + std::to_string(f.integer("head_dim")) +
                                 ", expected hidden_size / num_attention_heads");
  if (moe) {
    c.norm = NormKind::RMSNorm;  // OlmoeRMSNorm with weight
    c.norm_eps = f.number("rms_norm_eps", 1e-5);
    c.qk_norm = true;  // OlmoeAttention always has q_norm and k_norm
    c.num_experts = f.positive("num_experts", 64);
    c.num_experts_per_tok = f.positive("num_experts_per_tok", 8);
    c.norm_topk_prob = f.boolean("norm_topk_prob", false);
    c.router_aux_loss_coef = f.number("router_aux_loss_coef", 0.01);
    c.router_z_loss_coef = f.number("router_z_loss_coef", 0.0);
  } else {
    c.norm = NormKind::LayerNormNoAffine;  // OlmoLayerNorm: F.layer_norm(x, None, None, eps=1e-5)
    c.norm_eps = 1e-5;
    c.qk_norm = false;
  }
}

void parse_hf_olmo(const Fields& f, ModelConfig& c) {
  c.hidden_size = f.positive("d_model");
  c.num_heads = f.positive("n_heads");
  c.num_layers = f.positive("n_layers");
  // effective_n_kv_heads (hf_olmo/configuration_olmo.py)
  const bool has_mqa = f.present("multi_query_attention");
  const bool mqa = f.boolean("multi_query_attention", false);
  if (!f.present("n_kv_heads")) {
    c.num_kv_heads = has_mqa && mqa ? 1 : c.num_heads;
  } else {
    c.num_kv_heads = f.positive("n_kv_heads");
    if (has_mqa && c.num_kv_heads != (mqa ? 1 : c.num_heads))
      f.fail_field("n_kv_heads", "contradicts 'multi_query_attention'");
  }
  // ff_proj has mlp_hidden_size rows (or mlp_ratio * d_model); SwiGLU halves it.
  int64_t fused = 0;
  if (f.present("mlp_hidden_size")) {
    fused = f.positive("mlp_hidden_size");
  } else if (__builtin_mul_overflow(f.positive("mlp_ratio", 4), c.hidden_size, &fused)) {
    f.fail_field("mlp_ratio",
                 "times d_model (" + std::to_string(c.hidden_size) + ") does not fit in 64 bits");
  }
  if (fused % 2 != 0) f.fail_field("mlp_hidden_size", "must be even for SwiGLU (fused up+gate)");
  c.intermediate_size = fused / 2;
  const int64_t vocab = f.positive("vocab_size");
  c.vocab_size = f.present("embedding_size") ? f.positive("embedding_size") : vocab;
  if (c.vocab_size < vocab) f.fail_field("embedding_size", "is smaller than vocab_size");
  c.max_position_embeddings = f.positive("max_sequence_length", 1024);
  c.rope_theta = f.number("rope_theta", 10000.0);
  if (!(c.rope_theta > 0)) f.fail_field("rope_theta", "must be positive");
  c.clip_qkv = f.optional_number("clip_qkv");
  c.tie_word_embeddings = f.boolean("weight_tying", true);
  c.norm = NormKind::LayerNormNoAffine;
  c.norm_eps = f.number("layer_norm_eps", 1e-5);
  c.qk_norm = false;
  c.hidden_act = "silu";
  c.eos_token_id = f.optional_integer("eos_token_id", 50256);
  c.pad_token_id = f.optional_integer("pad_token_id", 50256);
  c.bos_token_id = std::nullopt;
  c.torch_dtype = f.string("torch_dtype", f.string("dtype", ""));

  // What this engine implements of olmo/model.py; refuse the rest by name.
  f.require_string("activation_type", "swiglu", {"swiglu"});
  f.require_string("block_type", "sequential", {"sequential"});
  f.require_string("layer_norm_type", "default", {"default", "low_precision"});
  f.require_bool("layer_norm_with_affine", true, false);
  f.require_bool("attention_layer_norm", false, false);
  f.require_bool("include_bias", true, false);
  f.require_bool("rope", false, true);
  f.require_bool("alibi", false, false);
  f.require_bool("scale_logits", false, false);
  f.require_bool("embedding_layer_norm", false, false);
  f.require_bool("norm_after", false, false);
  if (f.integer("block_group_size", 1) != 1)
    f.fail_field("block_group_size", "is not 1 (tensors would be named block_groups.*)");
}

}  // namespace

ModelConfig parse_model_config(const json& j, const fs::path& source) {
  const Fields f(j, source);
  if (!j.is_object()) f.fail("expected a JSON object, got " + Fields::describe(j));

  ModelConfig c;
  c.model_type = f.string("model_type", "");
  if (f.present("architectures")) {
    const json& archs = f.at("architectures");
    if (!archs.is_array() || archs.empty() || !archs.front().is_string())
      f.fail_field("architectures", "is " + Fields::describe(archs) + ", expected a list of names");
    c.architecture = archs.front().get<std::string>();
  }

  auto check_model_type = [&](std::initializer_list<const char*> allowed) {
    if (c.model_type.empty()) return;
    for (const char* a : allowed)
      if (c.model_type == a) return;
    f.fail_field("model_type", "is '" + c.model_type + "', which does not match architecture '" +
                                   c.architecture + "'");
  };
  if (c.architecture == "OlmoeForCausalLM") {
    c.layout = Layout::Olmoe;
    check_model_type({"olmoe"});
  } else if (c.architecture == "OlmoForCausalLM") {
    c.layout = Layout::OlmoHF;
    check_model_type({"olmo"});
  } else if (c.architecture == "OLMoForCausalLM" || c.architecture == "OlmoModelForCausalLM") {
    // hf_olmo: OLMoForCausalLM on the Hub; early hf_olmo defaulted to OlmoModelForCausalLM.
    c.layout = Layout::OlmoFused;
    check_model_type({"olmo", "hf_olmo"});
  } else if (!c.architecture.empty()) {
    f.fail("architecture '" + c.architecture + "' is not supported; " + kSupported);
  } else if (c.model_type == "olmoe") {
    c.layout = Layout::Olmoe;
    c.architecture = "OlmoeForCausalLM";
  } else if (c.model_type == "hf_olmo" || (c.model_type == "olmo" && j.contains("d_model"))) {
    c.layout = Layout::OlmoFused;
    c.architecture = "OLMoForCausalLM";
  } else if (c.model_type == "olmo") {
    c.layout = Layout::OlmoHF;
    c.architecture = "OlmoForCausalLM";
  } else if (c.model_type.empty()) {
    f.fail("has neither 'architectures' nor 'model_type'; " + std::string(kSupported));
  } else {
    f.fail("model_type '" + c.model_type + "' is not supported; " + kSupported);
  }
  if (c.model_type.empty()) c.model_type = c.layout == Layout::Olmoe ? "olmoe" : "olmo";

  if (c.layout == Layout::OlmoFused)
    parse_hf_olmo(f, c);
  else
    parse_hf(f, c);

  // Checks common to all layouts.
  const char* heads_key = c.layout == Layout::OlmoFused ? "n_heads" : "num_attention_heads";
  const char* kv_key = c.layout == Layout::OlmoFused ? "n_kv_heads" : "num_key_value_heads";
  if (c.hidden_size % c.num_heads != 0)
    f.fail_field(heads_key, "(" + std::to_string(c.num_heads) +
                                ") does not divide the hidden size (" +
                                std::to_string(c.hidden_size) + ")");
  c.head_dim = c.hidden_size / c.num_heads;
  if (c.head_dim % 2 != 0)
    f.fail_field(heads_key, "gives an odd head dimension; RoPE needs it even");
  if (c.num_kv_heads > c.num_heads || c.num_heads % c.num_kv_heads != 0)
    f.fail_field(kv_key, "(" + std::to_string(c.num_kv_heads) +
                             ") must divide the number of heads (" + std::to_string(c.num_heads) +
                             ")");
  if (c.hidden_act != "silu")
    f.fail_field("hidden_act", "is '" + c.hidden_act + "'; only 'silu' (SwiGLU) is supported");
  if (c.clip_qkv && !(*c.clip_qkv > 0)) f.fail_field("clip_qkv", "must be positive or null");
  if (!(c.norm_eps > 0))
    f.fail_field(c.is_moe() ? "rms_norm_eps" : "layer_norm_eps", "must be positive");
  // Every tensor and neuron count of the layout fits in 64 bits: all FFN
  // weights (2 * L * E * I * d, which bounds the neuron count L * E * I), the
  // attention projections (3 * d * d per layer, times L) and the embedding.
  int64_t n = 0;
  const int64_t experts = std::max<int64_t>(1, c.num_experts);
  for (const auto& factors :
       {std::vector<int64_t>{2, c.num_layers, experts, c.intermediate_size, c.hidden_size},
        std::vector<int64_t>{3, c.num_layers, c.hidden_size, c.hidden_size},
        std::vector<int64_t>{c.vocab_size, c.hidden_size}}) {
    n = 1;
    for (const int64_t x : factors) {
      if (__builtin_mul_overflow(n, x, &n))
        f.fail("sizes (layers " + std::to_string(c.num_layers) + ", hidden " +
               std::to_string(c.hidden_size) + ", intermediate " +
               std::to_string(c.intermediate_size) + ", experts " + std::to_string(c.num_experts) +
               ", vocab " + std::to_string(c.vocab_size) +
               ") give tensors larger than 64-bit sizes hold; this is not a real model");
    }
  }
  if (c.is_moe() && c.num_experts_per_tok > c.num_experts)
    f.fail_field("num_experts_per_tok", "(" + std::to_string(c.num_experts_per_tok) +
                                            ") exceeds num_experts (" +
                                            std::to_string(c.num_experts) + ")");
  return c;
}

ModelConfig read_model_config(const fs::path& folder_or_file) {
  std::error_code ec;
  const fs::path file =
      fs::is_directory(folder_or_file, ec) ? folder_or_file / "config.json" : folder_or_file;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw CheckpointError(file.string() + ": cannot open (expected a model config.json)");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw CheckpointError(file.string() + ": not valid JSON: " + e.what());
  }
  return parse_model_config(j, file);
}

}  // namespace lpi::checkpoint

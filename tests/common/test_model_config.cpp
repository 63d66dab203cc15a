// config.json -> ModelConfig for OLMoE, OLMo (HF) and the original hf_olmo
// layout; refusals that name the file and the field; expected tensor lists.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/checkpoint/model_config.hpp"
#include "common/checkpoint/safetensors.hpp"
#include "expect_error.hpp"
#include "temp_dir.hpp"

namespace ck = lpi::checkpoint;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using TempDir = lpi::test::TempDir;

// Writes `config` as folder/config.json and reads it back through the public reader.
struct ConfigFolder {
  TempDir dir;
  fs::path file;
  explicit ConfigFolder(const json& config) : file(dir.path() / "config.json") {
    std::ofstream(file) << config.dump(2);
  }
  ck::ModelConfig read() const { return ck::read_model_config(dir.path()); }
};

// OLMoE-1B-7B-0924's config.json.
json olmoe_1b_7b_0924() {
  return json::parse(R"({
    "architectures": ["OlmoeForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "clip_qkv": null, "eos_token_id": 50279, "hidden_act": "silu", "hidden_size": 2048,
    "initializer_range": 0.02, "intermediate_size": 1024, "max_position_embeddings": 4096,
    "model_type": "olmoe", "norm_topk_prob": false, "num_attention_heads": 16,
    "num_experts": 64, "num_experts_per_tok": 8, "num_hidden_layers": 16,
    "num_key_value_heads": 16, "output_router_logits": false, "pad_token_id": 1,
    "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0,
    "router_aux_loss_coef": 0.01, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
    "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 50304})");
}

// OLMo-7B-hf's config.json.
json olmo_7b_hf() {
  return json::parse(R"({
    "architectures": ["OlmoForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
    "bos_token_id": null, "clip_qkv": null, "eos_token_id": 50279, "hidden_act": "silu",
    "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 11008,
    "max_position_embeddings": 2048, "model_type": "olmo", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 32, "pad_token_id": 1,
    "pretraining_tp": 1, "rope_scaling": null, "rope_theta": 10000.0,
    "tie_word_embeddings": false, "torch_dtype": "float32",
    "transformers_version": "4.40.0.dev0", "use_cache": true, "vocab_size": 50304})");
}

json olmo_7b_0424_hf() {
  json j = olmo_7b_hf();
  j["clip_qkv"] = 8.0;
  j["max_position_embeddings"] = 4096;
  return j;
}

// OLMo-7B-0724-hf as transformers >= 5 writes it: rope_parameters, no rope_theta.
json olmo_7b_0724_hf() {
  json j = olmo_7b_0424_hf();
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_theta", 10000.0}, {"rope_type", "default"}};
  return j;
}

// allenai/OLMo-7B (hf_olmo) config.json.
json olmo_7b_hf_olmo() {
  return json::parse(R"({
    "activation_type": "swiglu", "alibi": false, "alibi_bias_max": 8.0,
    "architectures": ["OLMoForCausalLM"], "attention_dropout": 0.0,
    "attention_layer_norm": false, "attention_layer_norm_with_affine": false,
    "bias_for_layer_norm": false, "block_group_size": 1, "block_type": "sequential",
    "clip_qkv": null, "d_model": 4096, "embedding_dropout": 0.0, "embedding_size": 50304,
    "eos_token_id": 50279, "flash_attention": false, "include_bias": false,
    "init_cutoff_factor": null, "init_device": "meta", "init_fn": "mitchell", "init_std": 0.02,
    "layer_norm_type": "default", "layer_norm_with_affine": false, "max_sequence_length": 2048,
    "mlp_hidden_size": 22016, "mlp_ratio": 4, "model_type": "olmo",
    "multi_query_attention": false, "n_heads": 32, "n_kv_heads": null, "n_layers": 32,
    "pad_token_id": 1, "precision": "amp_bf16", "residual_dropout": 0.0, "rope": true,
    "rope_full_precision": true, "rope_theta": 10000, "scale_logits": false,
    "transformers_version": "4.36.2", "use_cache": true, "vocab_size": 50280,
    "weight_tying": false})");
}

template <typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  lpi::test::expect_error<ck::CheckpointError>(std::forward<F>(f), parts);
}

// Writes `config` to a fresh folder and expects the read to fail with a message
// naming that config.json and every one of `parts`.
void expect_refused(const json& config, std::vector<std::string> parts) {
  const ConfigFolder folder(config);
  parts.push_back(folder.file.string());
  expect_error([&] { folder.read(); }, parts);
}

std::map<std::string, std::vector<int64_t>> by_name(const std::vector<ck::ExpectedTensor>& list) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& t : list)
    EXPECT_TRUE(out.emplace(t.name, t.shape).second) << "twice: " << t.name;
  return out;
}

using Shape = std::vector<int64_t>;

}  // namespace

// --- the five real configurations --------------------------------------------

TEST(RealConfigs, Olmoe1B7B0924) {
  const ck::ModelConfig c = ConfigFolder(olmoe_1b_7b_0924()).read();
  EXPECT_EQ(c.layout, ck::Layout::Olmoe);
  EXPECT_EQ(c.architecture, "OlmoeForCausalLM");
  EXPECT_EQ(c.model_type, "olmoe");
  EXPECT_EQ(c.hidden_size, 2048);
  EXPECT_EQ(c.intermediate_size, 1024);
  EXPECT_EQ(c.num_layers, 16);
  EXPECT_EQ(c.num_heads, 16);
  EXPECT_EQ(c.num_kv_heads, 16);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.num_experts, 64);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_TRUE(c.is_moe());
  EXPECT_FALSE(c.norm_topk_prob);
  EXPECT_EQ(c.vocab_size, 50304);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);
  EXPECT_EQ(c.norm, ck::NormKind::RMSNorm);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.clip_qkv.has_value());
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.router_aux_loss_coef, 0.01);
  EXPECT_EQ(c.pad_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 50279);
  EXPECT_FALSE(c.bos_token_id.has_value());
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

TEST(RealConfigs, Olmo7BHf) {
  const ck::ModelConfig c = ConfigFolder(olmo_7b_hf()).read();
  EXPECT_EQ(c.layout, ck::Layout::OlmoHF);
  EXPECT_EQ(c.model_type, "olmo");
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 11008);
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 32);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.vocab_size, 50304);
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_FALSE(c.clip_qkv.has_value());
  EXPECT_FALSE(c.is_moe());
  EXPECT_EQ(c.norm, ck::NormKind::LayerNormNoAffine);
  EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.pad_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 50279);
}

TEST(RealConfigs, Olmo7B0424Hf) {
  const ck::ModelConfig c = ConfigFolder(olmo_7b_0424_hf()).read();
  EXPECT_EQ(c.layout, ck::Layout::OlmoHF);
  ASSERT_TRUE(c.clip_qkv.has_value());
  EXPECT_DOUBLE_EQ(*c.clip_qkv, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.max_position_embeddings, 4096);
  EXPECT_EQ(c.intermediate_size, 11008);
}

TEST(RealConfigs, Olmo7B0724HfWithRopeParameters) {
  const ck::ModelConfig c = ConfigFolder(olmo_7b_0724_hf()).read();
  EXPECT_EQ(c.layout, ck::Layout::OlmoHF);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  ASSERT_TRUE(c.clip_qkv.has_value());
  EXPECT_DOUBLE_EQ(*c.clip_qkv, 8.0);
  // The value really comes from rope_parameters.
  json j = olmo_7b_0724_hf();
  j["rope_parameters"]["rope_theta"] = 500000.0;
  EXPECT_DOUBLE_EQ(ConfigFolder(j).read().rope_theta, 500000.0);
}

TEST(RealConfigs, Olmo7BHfOlmo) {
  const ConfigFolder folder(olmo_7b_hf_olmo());
  const ck::ModelConfig c = ck::read_model_config(folder.file);  // a path to the file works too
  EXPECT_EQ(c.layout, ck::Layout::OlmoFused);
  EXPECT_EQ(c.architecture, "OLMoForCausalLM");
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 32);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.intermediate_size, 11008);  // mlp_hidden_size 22016 / 2
  EXPECT_EQ(c.vocab_size, 50304);         // embedding_size, not vocab_size 50280
  EXPECT_EQ(c.max_position_embeddings, 2048);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.clip_qkv.has_value());
  EXPECT_EQ(c.norm, ck::NormKind::LayerNormNoAffine);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_DOUBLE_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.eos_token_id, 50279);
}

TEST(RealConfigs, HfOlmoVariants) {
  json j = olmo_7b_hf_olmo();
  j.erase("mlp_hidden_size");  // mlp_ratio * d_model, halved by SwiGLU
  EXPECT_EQ(ConfigFolder(j).read().intermediate_size, 8192);
  j = olmo_7b_hf_olmo();
  j.erase("architectures");  // model_type "olmo" with d_model is still hf_olmo
  EXPECT_EQ(ConfigFolder(j).read().layout, ck::Layout::OlmoFused);
  j["architectures"] = {"OlmoModelForCausalLM"};  // early hf_olmo default
  EXPECT_EQ(ConfigFolder(j).read().layout, ck::Layout::OlmoFused);
  j = olmo_7b_hf_olmo();
  j["layer_norm_type"] = "low_precision";
  j["clip_qkv"] = 8.0;
  j["weight_tying"] = true;
  const ck::ModelConfig c = ConfigFolder(j).read();
  EXPECT_DOUBLE_EQ(c.clip_qkv.value_or(0), 8.0);
  EXPECT_TRUE(c.tie_word_embeddings);
}

// --- refusals -----------------------------------------------------------------

TEST(Refusals, OtherArchitecturesByName) {
  json j = olmo_7b_hf();
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  expect_refused(j, {"'LlamaForCausalLM'", "not supported", "OlmoeForCausalLM"});
  j["architectures"] = {"MixtralForCausalLM"};
  expect_refused(j, {"'MixtralForCausalLM'", "not supported"});
  j["architectures"] = {"Olmo2ForCausalLM"};
  expect_refused(j, {"'Olmo2ForCausalLM'", "not supported"});
  j.erase("architectures");
  expect_refused(j, {"model_type 'llama'", "not supported"});
  j.erase("model_type");
  expect_refused(j, {"neither 'architectures' nor 'model_type'"});
  j = olmo_7b_hf();
  j["model_type"] = "olmoe";
  expect_refused(j, {"'model_type'", "'olmoe'", "OlmoForCausalLM"});
}

TEST(Refusals, UnsupportedFeaturesNameTheField) {
  json j = olmo_7b_hf_olmo();
  j["include_bias"] = true;
  expect_refused(j, {"'include_bias'", "only false"});
  j.erase("include_bias");  // olmo's default is true
  expect_refused(j, {"'include_bias'", "default"});
  j = olmo_7b_hf_olmo();
  j["activation_type"] = "gelu";
  expect_refused(j, {"'activation_type'", "'gelu'", "'swiglu'"});
  j = olmo_7b_hf_olmo();
  j["layer_norm_type"] = "rms";
  expect_refused(j, {"'layer_norm_type'", "'rms'"});
  j = olmo_7b_hf_olmo();
  j["layer_norm_with_affine"] = true;
  expect_refused(j, {"'layer_norm_with_affine'"});
  j = olmo_7b_hf_olmo();
  j["attention_layer_norm"] = true;
  expect_refused(j, {"'attention_layer_norm'"});
  j = olmo_7b_hf_olmo();
  j["alibi"] = true;
  expect_refused(j, {"'alibi'"});
  j = olmo_7b_hf_olmo();
  j["block_type"] = "llama";
  expect_refused(j, {"'block_type'", "'llama'"});

  j = olmo_7b_hf();
  j["attention_bias"] = true;
  expect_refused(j, {"'attention_bias'"});
  j = olmoe_1b_7b_0924();
  j["hidden_act"] = "gelu";
  expect_refused(j, {"'hidden_act'", "'gelu'", "silu"});
}

TEST(Refusals, RopeScaling) {
  json j = olmo_7b_hf();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  expect_refused(j, {"'rope_scaling'", "\"linear\""});
  j["rope_scaling"] = {{"factor", 4.0}};
  expect_refused(j, {"'rope_scaling'", "scaled RoPE"});
  j = olmo_7b_0724_hf();
  j["rope_parameters"] = {{"rope_theta", 10000.0}, {"rope_type", "yarn"}, {"factor", 4.0}};
  expect_refused(j, {"'rope_parameters'", "\"yarn\"", "default"});
  j["rope_parameters"] = {{"rope_theta", 10000.0}, {"rope_type", "llama3"}};
  expect_refused(j, {"'rope_parameters'", "\"llama3\""});
  j["rope_parameters"] = "default";
  expect_refused(j, {"'rope_parameters'", "expected an object"});
  j = olmoe_1b_7b_0924();
  j["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  expect_refused(j, {"'rope_scaling'", "\"dynamic\""});
}

TEST(Refusals, MissingAndMistypedFields) {
  for (const char* field : {"hidden_size", "intermediate_size", "num_hidden_layers",
                            "num_attention_heads", "vocab_size"}) {
    json j = olmoe_1b_7b_0924();
    j.erase(field);
    expect_refused(j, {std::string("'") + field + "'", "missing", "integer"});
  }
  for (const char* field : {"d_model", "n_layers", "n_heads", "vocab_size"}) {
    json j = olmo_7b_hf_olmo();
    j.erase(field);
    expect_refused(j, {std::string("'") + field + "'", "missing", "integer"});
  }
  json j = olmoe_1b_7b_0924();
  j["hidden_size"] = "2048";
  expect_refused(j, {"'hidden_size'", "string", "expected an integer"});
  j = olmoe_1b_7b_0924();
  j["num_hidden_layers"] = 0;
  expect_refused(j, {"'num_hidden_layers'", "positive"});
  j = olmoe_1b_7b_0924();
  j["rope_theta"] = "big";
  expect_refused(j, {"'rope_theta'", "expected a number"});
  j = olmoe_1b_7b_0924();
  j["norm_topk_prob"] = 1;
  expect_refused(j, {"'norm_topk_prob'", "true or false"});
  j = olmoe_1b_7b_0924();
  j["num_experts_per_tok"] = 65;
  expect_refused(j, {"'num_experts_per_tok'", "num_experts"});
  j = olmoe_1b_7b_0924();
  j["num_key_value_heads"] = 5;
  expect_refused(j, {"'num_key_value_heads'", "divide"});
  j = olmoe_1b_7b_0924();
  j["num_attention_heads"] = 15;
  expect_refused(j, {"'num_attention_heads'", "divide"});
  j = olmo_7b_hf();
  j["clip_qkv"] = -1.0;
  expect_refused(j, {"'clip_qkv'", "positive"});
  j = olmo_7b_hf_olmo();
  j["mlp_hidden_size"] = 22015;
  expect_refused(j, {"'mlp_hidden_size'", "even"});
  j = olmo_7b_hf_olmo();
  j["embedding_size"] = 50000;
  expect_refused(j, {"'embedding_size'", "vocab_size"});
  j = olmo_7b_hf_olmo();
  j["n_kv_heads"] = 8;  // contradicts multi_query_attention false
  expect_refused(j, {"'n_kv_heads'", "multi_query_attention"});
}

// Sizes whose products do not fit in 64 bits (signed overflow, undefined
// behaviour, in the parser and in every neuron count after it); the inputs
// are tests/fuzz/corpus/model_config/crash-*-overflow.
TEST(Refusals, SizesPast64Bits) {
  json j = olmo_7b_hf();
  j["head_dim"] = 4611686018427387904;  // 2^62: head_dim * heads overflowed
  expect_refused(j, {"'head_dim'", "expected hidden_size / num_attention_heads"});
  j = olmo_7b_hf();
  j["head_dim"] = 64;  // hidden 4096 / 32 heads is 128
  expect_refused(j, {"'head_dim'", "is 64"});
  j = olmo_7b_hf_olmo();
  j.erase("mlp_hidden_size");
  j["d_model"] = 4611686018427387904;  // mlp_ratio * d_model overflowed
  j["mlp_ratio"] = 4;
  expect_refused(j, {"'mlp_ratio'", "does not fit in 64 bits"});
  j = olmoe_1b_7b_0924();  // each size fine, their products not (attn_neurons overflowed)
  for (const char* field : {"hidden_size", "intermediate_size", "num_hidden_layers"})
    j[field] = 4611686018427387904;
  expect_refused(j, {"larger than 64-bit sizes hold", "layers 4611686018427387904"});
  j = olmo_7b_hf();
  j["vocab_size"] = 4611686018427387904;  // the embedding: vocab * d
  expect_refused(j, {"larger than 64-bit sizes hold", "vocab 4611686018427387904"});
}

// A field nested 200000 deep: the message quoted it with the recursive
// dump() and overflowed the stack (tests/fuzz/corpus/model_config/
// review-deep-nesting is a shallower one that the fuzz runs start from).
TEST(Refusals, DeeplyNestedField) {
  json j = olmo_7b_hf();
  j["hidden_size"] = "DEEP";  // replaced in the text: dump() itself would recurse
  std::string text = j.dump();
  text.replace(text.find("\"DEEP\""), 6, std::string(200000, '[') + std::string(200000, ']'));
  TempDir dir;
  std::ofstream(dir.path() / "config.json") << text;
  expect_error(
      [&] { ck::read_model_config(dir.path()); },
      {"config.json", "'hidden_size'", "nested more than 16 levels deep", "expected an integer"});
}

TEST(Refusals, UnreadableFiles) {
  TempDir dir;
  expect_error([&] { ck::read_model_config(dir.path()); },
               {(dir.path() / "config.json").string(), "cannot open"});
  std::ofstream(dir.path() / "config.json") << "{\"hidden_size\": ";
  expect_error([&] { ck::read_model_config(dir.path()); },
               {(dir.path() / "config.json").string(), "not valid JSON"});
  std::ofstream(dir.path() / "config.json") << "[1, 2]";
  expect_error([&] { ck::read_model_config(dir.path()); },
               {(dir.path() / "config.json").string(), "expected a JSON object"});
}

// --- token ids and defaults -----------------------------------------------------

TEST(Fields, TokenIdsAndDefaults) {
  json j = olmoe_1b_7b_0924();
  j["eos_token_id"] = json::array({50279, 50280});  // a list: the first one
  j["bos_token_id"] = 0;
  j["pad_token_id"] = nullptr;
  j.erase("num_key_value_heads");  // defaults to the number of heads
  j["num_key_value_heads"] = nullptr;
  const ck::ModelConfig c = ConfigFolder(j).read();
  EXPECT_EQ(c.eos_token_id, 50279);
  EXPECT_EQ(c.bos_token_id, 0);
  EXPECT_FALSE(c.pad_token_id.has_value());
  EXPECT_EQ(c.num_kv_heads, 16);
  // Grouped-query attention.
  j["num_key_value_heads"] = 4;
  EXPECT_EQ(ConfigFolder(j).read().num_kv_heads, 4);
}

// --- expected tensors -----------------------------------------------------------

TEST(ExpectedTensors, Olmoe) {
  json j = olmoe_1b_7b_0924();
  j["num_key_value_heads"] = 4;  // GQA, so that q_norm and k_norm differ
  const ck::ModelConfig c = ConfigFolder(j).read();
  const auto t = by_name(ck::expected_tensors(c));
  // embed + 16 * (2 norms + 4 attn + 2 qk norms + router + 64 * 3) + final norm + lm_head
  EXPECT_EQ(t.size(), 1u + 16 * (2 + 4 + 2 + 1 + 64 * 3) + 1 + 1);
  EXPECT_EQ(t.at("model.embed_tokens.weight"), (Shape{50304, 2048}));
  EXPECT_EQ(t.at("model.layers.0.self_attn.q_proj.weight"), (Shape{2048, 2048}));
  EXPECT_EQ(t.at("model.layers.0.self_attn.k_proj.weight"), (Shape{512, 2048}));
  EXPECT_EQ(t.at("model.layers.0.self_attn.v_proj.weight"), (Shape{512, 2048}));
  EXPECT_EQ(t.at("model.layers.0.self_attn.o_proj.weight"), (Shape{2048, 2048}));
  EXPECT_EQ(t.at("model.layers.15.self_attn.q_norm.weight"), (Shape{2048}));
  EXPECT_EQ(t.at("model.layers.15.self_attn.k_norm.weight"), (Shape{512}));
  EXPECT_EQ(t.at("model.layers.3.mlp.gate.weight"), (Shape{64, 2048}));
  EXPECT_EQ(t.at("model.layers.3.mlp.experts.63.gate_proj.weight"), (Shape{1024, 2048}));
  EXPECT_EQ(t.at("model.layers.3.mlp.experts.0.up_proj.weight"), (Shape{1024, 2048}));
  EXPECT_EQ(t.at("model.layers.3.mlp.experts.7.down_proj.weight"), (Shape{2048, 1024}));
  EXPECT_EQ(t.at("model.layers.0.input_layernorm.weight"), (Shape{2048}));
  EXPECT_EQ(t.at("model.layers.0.post_attention_layernorm.weight"), (Shape{2048}));
  EXPECT_EQ(t.at("model.norm.weight"), (Shape{2048}));
  EXPECT_EQ(t.at("lm_head.weight"), (Shape{50304, 2048}));
  EXPECT_EQ(t.count("model.layers.16.mlp.gate.weight"), 0u);
  EXPECT_EQ(t.count("model.layers.0.mlp.experts.64.up_proj.weight"), 0u);
  j["tie_word_embeddings"] = true;
  const auto tied = by_name(ck::expected_tensors(ConfigFolder(j).read()));
  EXPECT_EQ(tied.size(), t.size() - 1);
  EXPECT_EQ(tied.count("lm_head.weight"), 0u);
}

TEST(ExpectedTensors, OlmoHf) {
  const ck::ModelConfig c = ConfigFolder(olmo_7b_0424_hf()).read();
  const auto t = by_name(ck::expected_tensors(c));
  EXPECT_EQ(t.size(), 1u + 32 * 7 + 1);  // embed, 4 attn + 3 mlp per layer, lm_head
  EXPECT_EQ(t.at("model.embed_tokens.weight"), (Shape{50304, 4096}));
  EXPECT_EQ(t.at("model.layers.31.self_attn.q_proj.weight"), (Shape{4096, 4096}));
  EXPECT_EQ(t.at("model.layers.31.self_attn.k_proj.weight"), (Shape{4096, 4096}));
  EXPECT_EQ(t.at("model.layers.31.self_attn.v_proj.weight"), (Shape{4096, 4096}));
  EXPECT_EQ(t.at("model.layers.31.self_attn.o_proj.weight"), (Shape{4096, 4096}));
  EXPECT_EQ(t.at("model.layers.0.mlp.gate_proj.weight"), (Shape{11008, 4096}));
  EXPECT_EQ(t.at("model.layers.0.mlp.up_proj.weight"), (Shape{11008, 4096}));
  EXPECT_EQ(t.at("model.layers.0.mlp.down_proj.weight"), (Shape{4096, 11008}));
  EXPECT_EQ(t.at("lm_head.weight"), (Shape{50304, 4096}));
  for (const char* absent :
       {"model.norm.weight", "model.layers.0.input_layernorm.weight",
        "model.layers.0.post_attention_layernorm.weight", "model.layers.0.self_attn.q_norm.weight"})
    EXPECT_EQ(t.count(absent), 0u) << absent;  // non-parametric LayerNorm, no QK-norm
  json j = olmo_7b_hf();
  j["tie_word_embeddings"] = true;
  EXPECT_EQ(by_name(ck::expected_tensors(ConfigFolder(j).read())).count("lm_head.weight"), 0u);
}

TEST(ExpectedTensors, HfOlmoFused) {
  const ck::ModelConfig c = ConfigFolder(olmo_7b_hf_olmo()).read();
  const auto t = by_name(ck::expected_tensors(c));
  EXPECT_EQ(t.size(), 1u + 32 * 4 + 1);
  EXPECT_EQ(t.at("model.transformer.wte.weight"), (Shape{50304, 4096}));
  EXPECT_EQ(t.at("model.transformer.blocks.0.att_proj.weight"), (Shape{3 * 4096, 4096}));
  EXPECT_EQ(t.at("model.transformer.blocks.0.attn_out.weight"), (Shape{4096, 4096}));
  EXPECT_EQ(t.at("model.transformer.blocks.31.ff_proj.weight"), (Shape{22016, 4096}));
  EXPECT_EQ(t.at("model.transformer.blocks.31.ff_out.weight"), (Shape{4096, 11008}));
  EXPECT_EQ(t.at("model.transformer.ff_out.weight"), (Shape{50304, 4096}));  // the LM head
  EXPECT_EQ(t.count("model.transformer.ln_f.weight"), 0u);
  json j = olmo_7b_hf_olmo();
  j["weight_tying"] = true;
  j["n_kv_heads"] = 8;
  j["multi_query_attention"] = nullptr;
  const auto tied = by_name(ck::expected_tensors(ConfigFolder(j).read()));
  EXPECT_EQ(tied.count("model.transformer.ff_out.weight"), 0u);
  EXPECT_EQ(tied.at("model.transformer.blocks.0.att_proj.weight"), (Shape{4096 + 2 * 1024, 4096}));
}

// --- HF config.json out ----------------------------------------------------------

TEST(HfConfigJson, RoundTripsOlmoeAndOlmo) {
  for (const json& source : {olmoe_1b_7b_0924(), olmo_7b_0424_hf(), olmo_7b_0724_hf()}) {
    const ck::ModelConfig a = ConfigFolder(source).read();
    const json out = ck::to_hf_config_json(a);
    const ck::ModelConfig b = ConfigFolder(out).read();
    SCOPED_TRACE(out.dump());
    EXPECT_EQ(b.layout, a.layout);
    EXPECT_EQ(b.architecture, a.architecture);
    EXPECT_EQ(b.hidden_size, a.hidden_size);
    EXPECT_EQ(b.intermediate_size, a.intermediate_size);
    EXPECT_EQ(b.num_layers, a.num_layers);
    EXPECT_EQ(b.num_heads, a.num_heads);
    EXPECT_EQ(b.num_kv_heads, a.num_kv_heads);
    EXPECT_EQ(b.vocab_size, a.vocab_size);
    EXPECT_EQ(b.max_position_embeddings, a.max_position_embeddings);
    EXPECT_EQ(b.rope_theta, a.rope_theta);
    EXPECT_EQ(b.clip_qkv, a.clip_qkv);
    EXPECT_EQ(b.tie_word_embeddings, a.tie_word_embeddings);
    EXPECT_EQ(b.num_experts, a.num_experts);
    EXPECT_EQ(b.num_experts_per_tok, a.num_experts_per_tok);
    EXPECT_EQ(b.norm_topk_prob, a.norm_topk_prob);
    EXPECT_EQ(b.router_aux_loss_coef, a.router_aux_loss_coef);
    EXPECT_EQ(b.norm_eps, a.norm_eps);
    EXPECT_EQ(b.pad_token_id, a.pad_token_id);
    EXPECT_EQ(b.eos_token_id, a.eos_token_id);
    EXPECT_EQ(b.bos_token_id, a.bos_token_id);
  }
}

TEST(HfConfigJson, RefusesTheHfOlmoLayout) {
  const ck::ModelConfig c = ConfigFolder(olmo_7b_hf_olmo()).read();
  expect_error([&] { ck::to_hf_config_json(c); }, {"OlmoFused", "hf_olmo"});
}

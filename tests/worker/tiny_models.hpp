// Tiny random OLMoE and OLMo dense checkpoints written as real HuggingFace
// folders (config.json + model.safetensors), in the Olmoe, OlmoHF and hf_olmo
// (fused) layouts, for the engine tests. Weights come from a fixed seed; the
// tensors are returned by HF name so that a test can also hand them to the
// reference model or tamper with them before writing.
#pragma once

#include "temp_dir.hpp"

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/checkpoint/safetensors.hpp"

namespace lpi::engine::testing {

using TensorMap = std::map<std::string, torch::Tensor>;

enum class TinyKind { Olmoe, OlmoDense };

struct TinySpec {
  TinyKind kind = TinyKind::Olmoe;
  int64_t hidden = 32;
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t kv_heads = 4;
  int64_t intermediate = 16;  // one expert's width (MoE) or the dense FFN width
  int64_t experts = 8;
  int64_t top_k = 2;
  int64_t vocab = 97;       // rows of the embedding and LM head
  int64_t vocab_used = 97;  // hf_olmo's vocab_size (embedding_size is `vocab`)
  double rope_theta = 10000.0;
  double rms_eps = 1e-5;
  std::optional<double> clip_qkv;
  bool norm_topk_prob = false;
  bool tie_embeddings = false;
  double stddev = 0.3;  // of the projection and embedding weights
  uint64_t seed = 1;
};

// The variants the tests use.
TinySpec tiny_olmoe();                // H = KV = 4, no clip, norm_topk_prob false
TinySpec tiny_olmoe_gqa_clip();       // KV = 2, clip_qkv 1.5, norm_topk_prob true, theta 5e5
TinySpec tiny_dense();                // I = 48, untied, no clip
TinySpec tiny_dense_tied_gqa_clip();  // tied, KV = 2, clip_qkv 2.0, vocab_used 90

// Random float32 weights under their HF names (Olmoe or OlmoHF layout).
// RMSNorm weights are 1 + 0.1 N(0, 1) so that they matter.
TensorMap make_tiny_weights(const TinySpec& spec);

// The same dense weights under hf_olmo names: att_proj = [q; k; v] rows,
// ff_proj = [up; gate] rows, ff_out, wte, and ff_out as the LM head unless tied.
TensorMap to_fused_layout(const TensorMap& hf, const TinySpec& spec);

nlohmann::json hf_config_json(const TinySpec& spec);     // OlmoeForCausalLM / OlmoForCausalLM
nlohmann::json fused_config_json(const TinySpec& spec);  // hf_olmo OLMoForCausalLM

// Writes folder/config.json and folder/model.safetensors (tensors converted to `dtype`).
void write_checkpoint(const std::filesystem::path& folder, const nlohmann::json& config,
                      const TensorMap& tensors, checkpoint::DType dtype = checkpoint::DType::F32);

// make_tiny_weights + the config of the chosen layout, written to `folder`.
void write_tiny_model(const std::filesystem::path& folder, const TinySpec& spec,
                      bool fused = false);

// Prompts of the given lengths with token ids in [2, vocab) (ids 0 and 1 are
// eos and pad), from a fixed seed.
std::vector<std::vector<int32_t>> make_prompts(const std::vector<int64_t>& lengths, int64_t vocab,
                                               uint64_t seed);

// max |a - b| over all entries, in float64 (shapes must match).
double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b);

using ScratchDir = lpi::test::TempDir;

}  // namespace lpi::engine::testing

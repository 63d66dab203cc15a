// config.json from arbitrary bytes, for the three layouts (OlmoeForCausalLM,
// OlmoForCausalLM, hf_olmo's OLMoForCausalLM): read_model_config, then for a
// config it accepts the domain shape (shape_of and its neuron counts), the
// tensors the layout requires, and the HF config.json the engine would write
// read back to the same config.
#include <cstddef>
#include <cstdint>

#include "common/checkpoint/model_config.hpp"
#include "common/checkpoint/model_shape.hpp"
#include "common/checkpoint/safetensors.hpp"
#include "fuzz_support.hpp"

namespace ck = lpi::checkpoint;
namespace fs = std::filesystem;

namespace {

void check_accepted(const ck::ModelConfig& c) {
  LPI_FUZZ_CHECK(c.hidden_size > 0 && c.num_layers > 0 && c.num_heads > 0 && c.vocab_size > 0);
  LPI_FUZZ_CHECK(c.intermediate_size > 0 && c.num_kv_heads > 0);
  LPI_FUZZ_CHECK(c.head_dim * c.num_heads == c.hidden_size && c.head_dim % 2 == 0);
  LPI_FUZZ_CHECK(c.num_heads % c.num_kv_heads == 0);
  LPI_FUZZ_CHECK(!c.is_moe() ||
                 (c.num_experts_per_tok > 0 && c.num_experts_per_tok <= c.num_experts));

  // The neuron layout every component computes from the shape.
  const lpi::core::ModelShape shape = ck::shape_of(c);
  LPI_FUZZ_CHECK(shape.attn_width() == c.hidden_size);
  LPI_FUZZ_CHECK(shape.attn_neurons() > 0 && shape.ffn_neurons() > 0 && shape.heads() > 0);
  LPI_FUZZ_CHECK(shape.ffn_active_width() > 0 && shape.ffn_active_width() <= shape.ffn_width());
  (void)shape.describe();

  // The expected tensors, when there are few enough to list.
  if (c.num_layers * (c.num_experts + 1) <= 2048) {
    for (const ck::ExpectedTensor& t : ck::expected_tensors(c))
      for (int64_t d : t.shape) LPI_FUZZ_CHECK(d > 0);
  }

  // The engine's own config.json (Olmoe and OlmoHF) reads back as the same model.
  if (c.layout == ck::Layout::OlmoFused) return;
  const nlohmann::json written = ck::to_hf_config_json(c);
  const ck::ModelConfig back =
      ck::parse_model_config(nlohmann::json::parse(written.dump()), "written config.json");
  LPI_FUZZ_CHECK(back.layout == c.layout && back.architecture == c.architecture);
  LPI_FUZZ_CHECK(ck::shape_of(back) == shape);
  LPI_FUZZ_CHECK(back.num_kv_heads == c.num_kv_heads && back.rope_theta == c.rope_theta);
  LPI_FUZZ_CHECK(back.norm_eps == c.norm_eps && back.clip_qkv == c.clip_qkv);
  LPI_FUZZ_CHECK(back.tie_word_embeddings == c.tie_word_embeddings);
  LPI_FUZZ_CHECK(back.max_position_embeddings == c.max_position_embeddings);
  LPI_FUZZ_CHECK(back.eos_token_id == c.eos_token_id && back.pad_token_id == c.pad_token_id);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const fs::path file = lpi::fuzz::scratch() / "config.json";
  lpi::fuzz::write_file(file, lpi::fuzz::as_text(data, size));
  ck::ModelConfig config;
  try {
    config = ck::read_model_config(file);
  } catch (const ck::CheckpointError&) {
    return 0;
  }
  check_accepted(config);
  return 0;
}

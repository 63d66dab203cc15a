// Loading and saving engine checkpoints: tensors that are missing or have the
// wrong shape are refused with a message naming them, and save_model ->
// load_model keeps the logits bit for bit.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/checkpoint/safetensors.hpp"
#include "reference_model.hpp"
#include "tiny_models.hpp"
#include "worker/engine/model.hpp"

namespace lpi::engine::testing {
namespace {
namespace fs = std::filesystem;

// The message of the EngineError or CheckpointError that loading throws, or
// "" when it loads.
std::string load_error(const fs::path& folder) {
  try {
    load_model(folder);
  } catch (const EngineError& e) {
    return e.what();
  } catch (const checkpoint::CheckpointError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(EngineLoad, TinyCheckpointsLoad) {
  ScratchDir dir;
  write_tiny_model(dir / "moe", tiny_olmoe());
  write_tiny_model(dir / "fused", tiny_dense_tied_gqa_clip(), /*fused=*/true);
  EXPECT_EQ(load_error(dir / "moe"), "");
  EXPECT_EQ(load_error(dir / "fused"), "");
}

TEST(EngineLoad, MissingTensorIsNamed) {
  struct Case {
    TinySpec spec;
    bool fused;
    std::string missing;
  };
  const std::vector<Case> cases = {
      {tiny_dense(), false, "model.layers.1.mlp.up_proj.weight"},
      {tiny_olmoe(), false, "model.layers.0.mlp.experts.5.gate_proj.weight"},
      {tiny_olmoe(), false, "model.layers.1.self_attn.k_norm.weight"},
      {tiny_dense(), true, "model.transformer.blocks.1.ff_proj.weight"},
      {tiny_dense(), true, "model.transformer.ff_out.weight"},
  };
  for (const auto& c : cases) {
    ScratchDir dir;
    auto weights = make_tiny_weights(c.spec);
    if (c.fused) weights = to_fused_layout(weights, c.spec);
    ASSERT_EQ(weights.erase(c.missing), 1u) << c.missing;
    write_checkpoint(dir / "m", c.fused ? fused_config_json(c.spec) : hf_config_json(c.spec),
                     weights);
    const std::string message = load_error(dir / "m");
    EXPECT_TRUE(contains(message, "'" + c.missing + "'") || contains(message, c.missing))
        << "message: '" << message << "'";
  }
}

TEST(EngineLoad, WrongShapeNamesTensorAndBothShapes) {
  struct Case {
    TinySpec spec;
    bool fused;
    std::string name;
    std::vector<int64_t> wrong;
    std::string expected;  // as the message should spell it
  };
  const std::vector<Case> cases = {
      {tiny_dense(), false, "model.layers.0.mlp.gate_proj.weight", {49, 32}, "[48, 32]"},
      {tiny_dense(), false, "lm_head.weight", {96, 32}, "[97, 32]"},
      {tiny_olmoe(), false, "model.layers.1.mlp.experts.3.down_proj.weight", {32, 15}, "[32, 16]"},
      {tiny_olmoe(), false, "model.layers.0.self_attn.q_norm.weight", {31}, "[32]"},
      {tiny_olmoe(), false, "model.layers.1.mlp.gate.weight", {7, 32}, "[8, 32]"},
      {tiny_olmoe_gqa_clip(),
       false,
       "model.layers.0.self_attn.k_proj.weight",
       {32, 32},
       "[16, 32]"},
      {tiny_dense(), true, "model.transformer.blocks.0.att_proj.weight", {95, 32}, "[96, 32]"},
      {tiny_dense(), true, "model.transformer.blocks.1.ff_proj.weight", {48, 32}, "[96, 32]"},
      {tiny_dense(), true, "model.transformer.blocks.1.ff_out.weight", {32, 47}, "[32, 48]"},
  };
  for (const auto& c : cases) {
    ScratchDir dir;
    auto weights = make_tiny_weights(c.spec);
    if (c.fused) weights = to_fused_layout(weights, c.spec);
    ASSERT_EQ(weights.count(c.name), 1u) << c.name;
    weights[c.name] = torch::zeros(c.wrong);
    write_checkpoint(dir / "m", c.fused ? fused_config_json(c.spec) : hf_config_json(c.spec),
                     weights);
    const std::string message = load_error(dir / "m");
    std::string wrong = "[";
    for (std::size_t i = 0; i < c.wrong.size(); ++i)
      wrong += (i ? ", " : "") + std::to_string(c.wrong[i]);
    wrong += "]";
    EXPECT_TRUE(contains(message, c.name)) << "message: '" << message << "'";
    EXPECT_TRUE(contains(message, wrong))
        << "actual shape " << wrong << " not in '" << message << "'";
    EXPECT_TRUE(contains(message, c.expected))
        << "expected shape " << c.expected << " not in '" << message << "'";
  }
}

TEST(EngineBatch, RightPaddedLayout) {
  const auto batch = make_batch({{5, 6, 7}, {8}, {9, 10}}, /*pad_id=*/1);
  EXPECT_TRUE(torch::equal(
      batch.ids, torch::tensor({5, 6, 7, 8, 1, 1, 9, 10, 1}, torch::kInt64).view({3, 3})));
  EXPECT_TRUE(torch::equal(batch.lengths, torch::tensor({3, 1, 2}, torch::kInt64)));
  EXPECT_TRUE(torch::equal(batch.last, torch::tensor({2, 0, 1}, torch::kInt64)));
  EXPECT_THROW(make_batch({{5}, {}}, 1), EngineError);
  EXPECT_THROW(make_batch({}, 1), EngineError);
}

TEST(EngineSave, RoundTripGivesIdenticalLogits) {
  for (const auto& spec : {tiny_olmoe_gqa_clip(), tiny_dense_tied_gqa_clip(), tiny_dense()}) {
    ScratchDir dir;
    write_tiny_model(dir / "original", spec);
    auto model = load_model(dir / "original");
    save_model(model, dir / "saved");
    ASSERT_TRUE(fs::exists(dir / "saved" / "config.json"));
    ASSERT_TRUE(fs::exists(dir / "saved" / "model.safetensors"));
    auto reloaded = load_model(dir / "saved");
    const auto& a = model->config();
    const auto& b = reloaded->config();
    EXPECT_EQ(b.layout, a.layout);
    EXPECT_EQ(b.num_kv_heads, a.num_kv_heads);
    EXPECT_EQ(b.clip_qkv, a.clip_qkv);
    EXPECT_EQ(b.norm_topk_prob, a.norm_topk_prob);
    EXPECT_EQ(b.tie_word_embeddings, a.tie_word_embeddings);
    EXPECT_EQ(b.rope_theta, a.rope_theta);
    EXPECT_EQ(b.norm_eps, a.norm_eps);
    EXPECT_EQ(b.num_experts, a.num_experts);
    const auto batch = make_batch(make_prompts({4, 2, 6}, spec.vocab, 5), 1);
    const auto before = model->forward(batch).logits;
    const auto after = reloaded->forward(batch).logits;
    EXPECT_TRUE(torch::equal(before, after)) << "max diff " << max_abs_diff(before, after);
    // The saved tensors are the original ones, under the same names.
    const auto ref_original = ReferenceModel::from_folder(dir / "original");
    const auto ref_saved = ReferenceModel::from_folder(dir / "saved");
    const auto prompt = make_prompts({5}, spec.vocab, 9)[0];
    EXPECT_EQ(max_abs_diff(ref_original.run(prompt).logits, ref_saved.run(prompt).logits), 0.0);
  }
}

// A bf16 load builds its parameters in bf16 (no float32 copy of the model):
// the same bits as a float32 load cast to bf16.
TEST(EngineLoad, Bf16LoadHoldsBf16ParametersOnly) {
  ScratchDir dir;
  const auto spec = tiny_olmoe();
  write_tiny_model(dir / "m", spec);
  LoadOptions bf16;
  bf16.dtype = torch::kBFloat16;
  auto a = load_model(dir / "m", bf16);
  auto b = load_model(dir / "m");
  const auto pa = a->parameters(), pb = b->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].scalar_type(), torch::kBFloat16) << i;
    EXPECT_TRUE(torch::equal(pa[i], pb[i].to(torch::kBFloat16))) << i;
  }
  Transformer skeleton(a->config(), torch::kBFloat16);
  for (const auto& p : skeleton->parameters()) EXPECT_EQ(p.scalar_type(), torch::kBFloat16);
}

TEST(EngineSave, Bf16CheckpointLoadsAsFloat32Weights) {
  ScratchDir dir;
  const auto spec = tiny_dense();
  write_tiny_model(dir / "original", spec);
  auto model = load_model(dir / "original");
  save_model(model, dir / "bf16", torch::kBFloat16);
  auto reloaded = load_model(dir / "bf16");
  EXPECT_EQ(reloaded->config().torch_dtype, "bfloat16");
  EXPECT_EQ(reloaded->lm_head().scalar_type(), torch::kFloat32);
  // Weights are the bf16 roundings of the originals.
  EXPECT_TRUE(
      torch::equal(reloaded->lm_head(), model->lm_head().to(torch::kBFloat16).to(torch::kFloat32)));
  EXPECT_TRUE(torch::equal(reloaded->down_proj(1),
                           model->down_proj(1).to(torch::kBFloat16).to(torch::kFloat32)));
}

// Shards as on the hub: the index names every tensor's file, and the sharded
// folder loads to the same weights as one file.
TEST(EngineSave, ShardedCheckpointLoadsToTheSameWeights) {
  ScratchDir dir;
  const auto spec = tiny_olmoe();
  write_tiny_model(dir / "original", spec);
  auto model = load_model(dir / "original");
  save_model(model, dir / "one", torch::kBFloat16);
  save_model(model, dir / "sharded", torch::kBFloat16, 20000);  // bytes per shard at most
  ASSERT_TRUE(fs::exists(dir / "sharded" / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir / "sharded" / "model.safetensors"));
  int shards = 0;
  for (const auto& e : fs::directory_iterator(dir / "sharded")) {
    if (e.path().extension() != ".safetensors") continue;
    ++shards;
    EXPECT_EQ(e.path().filename().string().rfind("model-", 0), 0u) << e.path();
    // A shard's tensors are within the limit, or it holds one tensor only
    // (larger than the limit).
    const checkpoint::SafetensorsFile one(e.path());
    std::size_t bytes = 0;
    for (const auto& [name, info] : one.tensors()) bytes += info.nbytes;
    if (bytes > 20000) {
      EXPECT_EQ(one.tensors().size(), 1u) << e.path();
    }
  }
  EXPECT_GE(shards, 3);
  auto a = load_model(dir / "one");
  auto b = load_model(dir / "sharded");
  const auto pa = a->parameters(), pb = b->parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
}

}  // namespace
}  // namespace lpi::engine::testing

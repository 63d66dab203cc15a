// The architecture registry (worker/engine/models/registry.hpp): it lists
// exactly the three architectures, and every registered architecture's HF
// tensor names and shapes are those of its layout (checkpoint::expected_tensors),
// are read from the tensors of those names, and round-trip through a written
// checkpoint. That each one's forward pass matches the reference model is
// EngineVsReference in test_model.cpp (RegistryCoverage checks that it covers
// every registered architecture).
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "tiny_models.hpp"
#include "worker/engine/model.hpp"
#include "worker/engine/models/registry.hpp"

namespace lpi::engine::testing {
namespace {
namespace ck = lpi::checkpoint;

TEST(Registry, ListsExactlyTheThreeArchitectures) {
  std::vector<std::string> names;
  std::set<ck::Layout> layouts;
  for (const Architecture* a : architectures()) {
    names.push_back(a->name());
    layouts.insert(a->layout());
    EXPECT_EQ(&architecture_of(a->layout()), a) << a->name();
  }
  EXPECT_EQ(names, (std::vector<std::string>{"olmoe", "olmo", "hf_olmo"}));
  EXPECT_EQ(layouts,
            (std::set<ck::Layout>{ck::Layout::Olmoe, ck::Layout::OlmoHF, ck::Layout::OlmoFused}));
}

// A tiny checkpoint of a layout: its weights by HF name and its config.json.
struct TinyCheckpoint {
  TensorMap weights;
  nlohmann::json config;
};

TinyCheckpoint tiny_checkpoint(ck::Layout layout) {
  switch (layout) {
    case ck::Layout::Olmoe: {
      const auto spec = tiny_olmoe_gqa_clip();
      return {make_tiny_weights(spec), hf_config_json(spec)};
    }
    case ck::Layout::OlmoHF: {
      const auto spec = tiny_dense();
      return {make_tiny_weights(spec), hf_config_json(spec)};
    }
    case ck::Layout::OlmoFused: {
      const auto spec = tiny_dense();
      return {to_fused_layout(make_tiny_weights(spec), spec), fused_config_json(spec)};
    }
  }
  return {};
}

TEST(Registry, TensorNamesRoundTripThroughSaveAndLoad) {
  for (const Architecture* arch : architectures()) {
    SCOPED_TRACE(arch->name());
    ScratchDir dir;
    const auto tiny = tiny_checkpoint(arch->layout());
    ASSERT_FALSE(tiny.weights.empty()) << "no tiny checkpoint for this architecture";
    write_checkpoint(dir / "original", tiny.config, tiny.weights);
    auto model = load_model(dir / "original");
    ASSERT_EQ(&model->architecture(), arch);

    // The names and shapes are the layout's, and each holds the checkpoint's tensor.
    const auto tensors = model->hf_tensors();
    const auto expected = ck::expected_tensors(model->config());
    ASSERT_EQ(tensors.size(), expected.size());
    ASSERT_EQ(tensors.size(), tiny.weights.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const auto& [name, tensor] = tensors[i];
      EXPECT_EQ(name, expected[i].name);
      EXPECT_EQ(tensor.sizes().vec(), expected[i].shape) << name;
      ASSERT_EQ(tiny.weights.count(name), 1u) << name;
      EXPECT_TRUE(torch::equal(tensor, tiny.weights.at(name))) << name;
    }

    // Other weights, written under the engine's names and read back.
    model->init_weights(0.5, 7);
    TensorMap written;
    for (const auto& [name, tensor] : model->hf_tensors()) written[name] = tensor.clone();
    write_checkpoint(dir / "written", tiny.config, written);
    auto reloaded = load_model(dir / "written");
    for (const auto& [name, tensor] : reloaded->hf_tensors()) {
      EXPECT_TRUE(torch::equal(tensor, written.at(name))) << name;
    }
    // save_model writes the layouts that have a transformers config.
    if (arch->layout() == ck::Layout::OlmoFused) continue;
    save_model(model, dir / "saved");
    auto saved = load_model(dir / "saved");
    for (const auto& [name, tensor] : saved->hf_tensors()) {
      EXPECT_TRUE(torch::equal(tensor, written.at(name))) << name;
    }
  }
}

TEST(Registry, ConfigOfAnotherArchitectureIsRefused) {
  auto config = ck::parse_model_config(hf_config_json(tiny_olmoe()), "olmoe.json");
  config.layout = ck::Layout::OlmoHF;  // MoE weights under a dense architecture
  EXPECT_THROW(Transformer{config}, EngineError);
}

TEST(Captures, UnknownNameIsRefusedAndAbsentNameIsNamed) {
  ScratchDir dir;
  write_tiny_model(dir / "m", tiny_dense());
  auto model = load_model(dir / "m");
  const auto batch = make_batch({{3, 4, 5}}, 1);
  ForwardOptions options;
  options.capture = {"ffn_coef", "expert_ids"};
  const auto out = model->forward(batch, options);
  EXPECT_EQ(out.captures.layers("ffn_coef"), model->config().num_layers);
  EXPECT_FALSE(out.captures.has("expert_ids"));  // a dense model has no experts
  EXPECT_FALSE(out.captures.has("attn_in"));     // not asked for
  EXPECT_THROW(out.captures.get("attn_in", 0), EngineError);
  options.capture = {"attention_output"};
  EXPECT_THROW(model->forward(batch, options), EngineError);
}

}  // namespace
}  // namespace lpi::engine::testing

// lpi-attribute end to end on a checkpoint the test trains (the tiny test
// job): the printed view, the HDF5 file read back with the store layer and
// with h5py, equal to gated_lpi() in process; bad options; and the ablation
// check (top heads by Gated-LPI matter more than random heads).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>

#include "common/h5/h5.hpp"
#include "common/relations/relations.hpp"
#include "tiny_models.hpp"
#include "worker/engine/evaluate.hpp"
#include "worker/engine/gated_lpi.hpp"
#include "worker/pretrain/trainer.hpp"

namespace lpi::engine::testing {
namespace {
namespace fs = std::filesystem;

struct Command {
  int status = -1;
  std::string output;
};

Command run(const std::string& command) {
  Command out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return out;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe)) out.output += buffer.data();
  const int status = ::pclose(pipe);
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

std::string tool(const std::string& name) {
  const char* dir = std::getenv("LPI_TOOLS_DIR");
  return (fs::path(dir ? dir : ".") / name).string();
}

// The tiny test job trained longer, so that the model knows some facts.
struct Trained {
  ScratchDir dir{"lpi_attribute_test"};
  fs::path checkpoint;
  relations::PromptSet set;
};

Trained& trained() {
  static std::unique_ptr<Trained> t = [] {
    auto t = std::make_unique<Trained>();
    std::string text;
    {
      std::ifstream in(fs::path(LPI_TEST_FIXTURES_DIR) / "pretrain" / "tiny-test.ini");
      text.assign(std::istreambuf_iterator<char>(in), {});
    }
    for (const auto& [from, to] :
         std::vector<std::pair<std::string, std::string>>{{"steps = 24", "steps = 160"},
                                                          {"layers = 2", "layers = 3"},
                                                          {"heads = 2", "heads = 4"}}) {
      const auto at = text.find(from);
      text.replace(at, from.size(), to);
    }
    std::ofstream(t->dir / "job.ini") << text;
    const auto report =
        pretrain::pretrain(pretrain::read_job(t->dir / "job.ini"), t->dir / "run", {});
    t->checkpoint = t->dir / "run" / report.checkpoints.back().name;
    const auto tok = tokenizer::Tokenizer::from_file(t->checkpoint / "tokenizer.json");
    t->set =
        relations::build_prompts(relations::load_relations(t->dir / "run" / "relations"), tok, {});
    return t;
  }();
  return *t;
}

TEST(Attribute, WritesTheStoreEqualToGatedLpi) {
  auto& t = trained();
  const fs::path h5 = t.dir / "imp.h5";
  const auto cmd =
      run(tool("lpi-attribute") + " --model " + t.checkpoint.string() + " --relations " +
          (t.dir / "run" / "relations").string() + " --out " + h5.string() + " --top 5");
  ASSERT_EQ(cmd.status, 0) << cmd.output;
  EXPECT_NE(cmd.output.find("overall"), std::string::npos) << cmd.output;
  EXPECT_NE(cmd.output.find("country_capital_city"), std::string::npos) << cmd.output;
  EXPECT_FALSE(fs::exists(h5.string() + ".partial"));

  auto model = load_model(t.checkpoint);
  const auto prompts = relations::prompt_ids(t.set);
  const auto gold = relations::target_ids(t.set);
  const auto imp = gated_lpi(model, prompts, gold);
  const auto& c = model->config();
  const auto P = static_cast<int64_t>(prompts.size());
  for (const auto& l : imp.layers) {
    EXPECT_TRUE(torch::isfinite(l.attn).all().item<bool>());
    EXPECT_TRUE(torch::isfinite(l.ffn).all().item<bool>());
  }
  const auto again = gated_lpi(model, prompts, gold);
  for (std::size_t l = 0; l < imp.layers.size(); ++l) {
    EXPECT_TRUE(torch::equal(imp.layers[l].attn, again.layers[l].attn)) << "deterministic";
    EXPECT_TRUE(torch::equal(imp.layers[l].ffn, again.layers[l].ffn)) << "deterministic";
  }

  const auto file = lpi::h5::File::open(h5.string());
  EXPECT_EQ(file.attribute("lens").read<std::string>(), "frozen");
  EXPECT_EQ(file.attribute("architecture").read<std::string>(), "OlmoeForCausalLM");
  EXPECT_EQ(file.attribute("num_experts").read<int64_t>(), c.num_experts);
  const auto g = file.group("importance");
  EXPECT_EQ(g.dataset("attn").shape(),
            (std::vector<int64_t>{P, c.num_layers, c.num_heads * c.head_dim}));
  EXPECT_EQ(g.dataset("ffn").shape(),
            (std::vector<int64_t>{P, c.num_layers, c.num_experts_per_tok, c.intermediate_size}));
  const auto attn = g.dataset("attn").read<float>();
  const auto ffn = g.dataset("ffn").read<float>();
  const auto ids = g.dataset("expert_ids").read<int32_t>();
  std::vector<torch::Tensor> a, f, e;
  for (const auto& l : imp.layers) {
    a.push_back(l.attn);
    f.push_back(l.ffn);
    e.push_back(l.expert_ids.to(torch::kInt32));
  }
  const auto ea = torch::stack(a, 1).contiguous(), ef = torch::stack(f, 1).contiguous();
  const auto ee = torch::stack(e, 1).contiguous();
  EXPECT_LE(max_abs_diff(torch::from_blob(const_cast<float*>(attn.data()), ea.sizes()), ea), 1e-6);
  EXPECT_LE(max_abs_diff(torch::from_blob(const_cast<float*>(ffn.data()), ef.sizes()), ef), 1e-6);
  EXPECT_TRUE(torch::equal(
      torch::from_blob(const_cast<int32_t*>(ids.data()), ee.sizes(), torch::kInt32), ee));
  const auto p = file.group("prompts");
  const auto gold_stored = p.dataset("gold_target").read<int32_t>();
  EXPECT_EQ(gold_stored, gold);
  const auto offsets = p.dataset("token_offsets").read<int64_t>();
  const auto tokens = p.dataset("token_ids").read<int32_t>();
  ASSERT_EQ(offsets.size(), prompts.size() + 1);
  EXPECT_EQ(std::vector<int32_t>(tokens.begin() + offsets[3], tokens.begin() + offsets[4]),
            prompts[3]);
  EXPECT_EQ(p.dataset("text").read<std::string>()[0], t.set.prompts[0].text);

  // Another tool reads it: the h5py summary script of docs/STORE.md.
  if (fs::exists("/usr/bin/python3")) {
    const auto py = run("/usr/bin/python3 " + std::string(LPI_SOURCE_DIR) +
                        "/analysis/scripts/store_summary.py " + h5.string() + " --top 3");
    ASSERT_EQ(py.status, 0) << py.output;
    EXPECT_NE(py.output.find("prompts " + std::to_string(P)), std::string::npos) << py.output;
    EXPECT_NE(py.output.find("expert neuron L"), std::string::npos) << py.output;
  }
}

TEST(Attribute, BadInputIsAClearError) {
  auto& t = trained();
  const std::string rel = " --relations " + (t.dir / "run" / "relations").string();
  auto cmd =
      run(tool("lpi-attribute") + " --model " + t.checkpoint.string() + rel + " --lens sideways");
  EXPECT_EQ(cmd.status, 2);
  EXPECT_NE(cmd.output.find("--lens"), std::string::npos) << cmd.output;
  cmd = run(tool("lpi-attribute") + " --model " + (t.dir / "nowhere").string() + rel);
  EXPECT_EQ(cmd.status, 1);
  EXPECT_NE(cmd.output.find("nowhere"), std::string::npos) << cmd.output;
}

// The paper's head ablation, scaled to the test model's 12 heads: the 3 heads
// with the highest mean Gated-LPI lower HIT@10 more than 3 random heads (mean
// of 5 draws).
TEST(Attribute, TopHeadsMatterMoreThanRandomHeads) {
  auto& t = trained();
  auto model = load_model(t.checkpoint);
  const auto prompts = relations::prompt_ids(t.set);
  const auto gold = relations::target_ids(t.set);
  const auto& c = model->config();
  const double base = hit_at_10(evaluate(model, prompts, gold));
  ASSERT_GT(base, 0.3) << "the test model must know some facts";
  const auto imp = gated_lpi(model, prompts, gold);
  std::vector<torch::Tensor> scores;
  for (const auto& l : imp.layers)
    scores.push_back(l.attn.view({l.attn.size(0), c.num_heads, -1}).sum(2).mean(0));
  const auto flat = torch::stack(scores).reshape({-1});
  const int64_t n_heads = flat.numel(), k = n_heads / 4;  // 3 of 12
  auto ablate = [&](const std::vector<int64_t>& heads) {
    Ablation ab;
    for (int64_t h : heads) ab.heads[h / c.num_heads].push_back(h % c.num_heads);
    EvaluateOptions o;
    o.ablation = &ab;
    return hit_at_10(evaluate(model, prompts, gold, o));
  };
  const auto top = std::get<1>(flat.topk(k));
  const double top_hit =
      ablate(std::vector<int64_t>(top.data_ptr<int64_t>(), top.data_ptr<int64_t>() + k));
  std::mt19937 rng(5);
  double random_hit = 0;
  for (int draw = 0; draw < 5; ++draw) {
    std::vector<int64_t> all(n_heads);
    for (int64_t i = 0; i < n_heads; ++i) all[i] = i;
    std::shuffle(all.begin(), all.end(), rng);
    random_hit += ablate(std::vector<int64_t>(all.begin(), all.begin() + k)) / 5;
  }
  std::printf("HIT@10 %.3f; ablating the top %lld of %lld heads: %.3f; %lld random heads: %.3f\n",
              base, static_cast<long long>(k), static_cast<long long>(n_heads), top_hit,
              static_cast<long long>(k), random_hit);
  EXPECT_LT(top_hit, random_hit);
}

}  // namespace
}  // namespace lpi::engine::testing

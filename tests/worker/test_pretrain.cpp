// lpi-pretrain: job files, the checkpoint schedule, a short training run that
// learns, checkpoints that reload with the logits of training, determinism,
// resume after an interruption, and refusal of another job's output folder.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include "common/checkpoint/model_config.hpp"
#include "common/relations/relations.hpp"
#include "tiny_models.hpp"
#include "worker/pretrain/trainer.hpp"

namespace lpi::pretrain {
namespace {
namespace fs = std::filesystem;
using engine::testing::ScratchDir;

const fs::path kTestJob = fs::path(LPI_TEST_FIXTURES_DIR) / "pretrain" / "tiny-test.ini";

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The test job with some lines replaced ("key = value" lines matched by key).
fs::path job_variant(const ScratchDir& dir, const std::string& name,
                     const std::vector<std::pair<std::string, std::string>>& replace) {
  std::string text = read_file(kTestJob);
  for (const auto& [key, value] : replace) {
    const std::regex line("(^|\n)" + key + " = [^\n]*");
    EXPECT_TRUE(std::regex_search(text, line)) << key;
    text = std::regex_replace(text, line, "$1" + key + " = " + value);
  }
  const fs::path file = dir / name;
  std::ofstream(file) << text;
  return file;
}

std::string expect_job_error(const std::string& text, const ScratchDir& dir) {
  const fs::path file = dir / "bad.ini";
  std::ofstream(file) << text;
  try {
    read_job(file);
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error for:\n" << text;
  return "";
}

TEST(PretrainJob, ReadsTheTestJob) {
  const auto job = read_job(kTestJob);
  EXPECT_EQ(job.name, "tiny-test");
  EXPECT_EQ(job.model.architecture, "OlmoeForCausalLM");
  EXPECT_EQ(job.model.layout, checkpoint::Layout::Olmoe);
  EXPECT_TRUE(job.model.qk_norm);
  EXPECT_EQ(job.model.num_experts, 4);
  EXPECT_EQ(job.model.num_experts_per_tok, 2);
  EXPECT_EQ(job.model.head_dim, 16);
  EXPECT_EQ(job.train.steps, 24);
  EXPECT_EQ(job.world.countries, 6);
}

TEST(PretrainJob, BadFilesNameTheFileAndTheKey) {
  ScratchDir dir("lpi_pretrain_test");
  const std::string base = read_file(kTestJob);
  EXPECT_NE(expect_job_error(base + "\n[model]\nwidth = 3\n", dir).find("model.width"),
            std::string::npos);
  EXPECT_NE(
      expect_job_error(
          std::regex_replace(base, std::regex("architecture = olmoe"), "architecture = llama"), dir)
          .find("llama"),
      std::string::npos);
  EXPECT_NE(expect_job_error(
                std::regex_replace(base, std::regex("hidden_size = 32"), "hidden_size = many"), dir)
                .find("hidden_size"),
            std::string::npos);
  EXPECT_NE(expect_job_error(std::regex_replace(base, std::regex("steps = 24"), ""), dir)
                .find("train.steps"),
            std::string::npos);
  EXPECT_NE(
      expect_job_error(std::regex_replace(base, std::regex("experts = 4"), "experts = 1"), dir)
          .find("experts"),
      std::string::npos);
  try {
    read_job(dir / "missing.ini");
    ADD_FAILURE() << "a missing job file was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("missing.ini"), std::string::npos);
  }
}

TEST(PretrainJob, ScheduleIsDenseEarlyAndSparseLate) {
  auto job = read_job(kTestJob);
  job.train.steps = 1000;
  job.schedule.count = 12;
  job.schedule.first_step = 10;
  const auto steps = checkpoint_steps(job);
  ASSERT_EQ(steps.size(), 12u);
  EXPECT_EQ(steps.front(), 0);
  EXPECT_EQ(steps[1], 10);
  EXPECT_EQ(steps.back(), 1000);
  for (std::size_t i = 2; i < steps.size(); ++i) EXPECT_GT(steps[i], steps[i - 1]);
  for (std::size_t i = 3; i < steps.size(); ++i) {  // geometric after first_step
    EXPECT_GE(steps[i] - steps[i - 1], steps[i - 1] - steps[i - 2]) << "gaps must widen";
  }
  EXPECT_EQ(checkpoint_name(job, 10), "step10-tokens" + std::to_string(10 * 8 * 32));
}

TEST(PretrainJob, EvenSpacingHasEveryStepTheEarlyOnesAndTheLast) {
  ScratchDir dir("lpi_pretrain_even");
  const auto file = job_variant(dir, "even.ini", {{"steps", "100"}, {"count", "4"}});
  std::string text = read_file(file);
  text += "spacing = even\nevery = 30\nearly = 2, 5\n";
  std::ofstream(file) << text;
  const auto job = read_job(file);
  EXPECT_EQ(checkpoint_steps(job), (std::vector<int64_t>{0, 2, 5, 30, 60, 90, 100}));
  for (const auto& [line, what] : std::vector<std::pair<std::string, std::string>>{
           {"spacing = even\nevery = 0\n", "1 <= every"},
           {"spacing = even\nevery = 10\nearly = 3,x\n", "early '3,x'"},
           {"spacing = even\nevery = 10\nearly = 100\n", "early '100'"},
           {"spacing = log\n", "spacing 'log'"}}) {
    std::string bad = read_file(kTestJob);
    bad.replace(bad.find("[checkpoints]\n") + 14, 0, line);
    EXPECT_NE(expect_job_error(bad, dir).find(what), std::string::npos) << line;
  }
}

TEST(PretrainJob, WarmupStableDecayHoldsThePeakThenDecaysLinearly) {
  TrainOptions t;
  t.steps = 100;
  t.warmup_steps = 10;
  t.learning_rate = 1e-2;
  t.min_learning_rate = 1e-3;
  t.schedule = "wsd";
  t.decay_fraction = 0.2;  // stable to step 80, then linear to step 100
  EXPECT_DOUBLE_EQ(learning_rate(t, 5), 5e-3);
  EXPECT_DOUBLE_EQ(learning_rate(t, 10), 1e-2);
  EXPECT_DOUBLE_EQ(learning_rate(t, 50), 1e-2);
  EXPECT_DOUBLE_EQ(learning_rate(t, 80), 1e-2);
  EXPECT_DOUBLE_EQ(learning_rate(t, 90), 5.5e-3);
  EXPECT_DOUBLE_EQ(learning_rate(t, 100), 1e-3);
  t.schedule = "cosine";  // the default: half-way through the decay, the midpoint
  EXPECT_DOUBLE_EQ(learning_rate(t, 55), 5.5e-3);
  EXPECT_DOUBLE_EQ(learning_rate(t, 100), 1e-3);
  ScratchDir dir("lpi_pretrain_wsd");
  std::string bad = read_file(kTestJob);
  bad.replace(bad.find("[train]\n") + 8, 0, "schedule = linear\n");
  EXPECT_NE(expect_job_error(bad, dir).find("schedule 'linear'"), std::string::npos);
}

TEST(PretrainData, WorldAndCorpusAreDeterministicAndTokenised) {
  const auto job = read_job(kTestJob);
  const auto a = prepare_data(job);
  const auto b = prepare_data(job);
  EXPECT_EQ(a.tokenizer_json, b.tokenizer_json);
  EXPECT_EQ(a.stream, b.stream);
  EXPECT_GT(a.stream.size(), 5000u);
  const auto tok = tokenizer::Tokenizer::from_json_string(a.tokenizer_json, "trained");
  EXPECT_EQ(tok.vocab_size(), 320u);
  // The batches are a function of (seed, step) only.
  EXPECT_TRUE(torch::equal(training_batch(job, a, 5), training_batch(job, b, 5)));
  EXPECT_FALSE(torch::equal(training_batch(job, a, 5), training_batch(job, a, 6)));
}

// One training run of the test job, shared by the tests below (a few seconds).
struct Run {
  ScratchDir dir{"lpi_pretrain_run"};
  PretrainReport report;
  std::vector<double> max_reload_diff;  // per checkpoint: |logits(trained) - logits(reloaded)|
};

Run& olmoe_run() {
  static Run* run = [] {
    auto* r_ptr = new Run;  // lives for the whole test program (its folder is removed at exit)
    static std::unique_ptr<Run> owner(r_ptr);
    Run& r = *r_ptr;
    PretrainOptions options;
    options.on_checkpoint = [&r](int64_t, const fs::path& dir, engine::Transformer& model) {
      torch::NoGradGuard no_grad;
      const bool training = model->is_training();
      model->eval();
      auto batch = engine::make_batch({{5, 6, 7, 8, 9, 10}, {11, 12, 13}}, 1);
      const auto trained = model->forward(batch).logits;
      model->train(training);
      auto reloaded = engine::load_model(dir);
      r.max_reload_diff.push_back(
          engine::testing::max_abs_diff(trained, reloaded->forward(batch).logits));
    };
    r.report = pretrain(read_job(kTestJob), r.dir.path(), options);
    return r_ptr;
  }();
  return *run;
}

TEST(Pretrain, ShortRunLowersTheLossAndWritesHfCheckpoints) {
  auto& run = olmoe_run();
  const auto& cps = run.report.checkpoints;
  ASSERT_EQ(cps.size(), 4u);
  EXPECT_EQ(cps.front().step, 0);
  EXPECT_EQ(cps.back().step, 24);
  EXPECT_LT(cps.back().loss, cps[1].loss - 0.5) << "the loss must fall";
  for (const auto& c : cps) {
    const fs::path dir = run.dir / c.name;
    ASSERT_TRUE(fs::exists(dir / "model.safetensors")) << dir;
    ASSERT_TRUE(fs::exists(dir / "tokenizer.json")) << dir;
    const auto config = checkpoint::read_model_config(dir);
    EXPECT_EQ(config.architecture, "OlmoeForCausalLM");
    EXPECT_EQ(config.model_type, "olmoe");
    EXPECT_EQ(config.num_experts, 4);
    EXPECT_EQ(config.vocab_size, 320);
  }
  EXPECT_FALSE(fs::exists(run.dir / (cps.back().name + ".partial")));
  // The curve file holds every checkpoint, per relation and overall.
  const auto curve = read_curve(run.dir.path());
  EXPECT_EQ(curve.size(), cps.size() * 13);
}

TEST(Pretrain, CheckpointsReloadWithTheLogitsOfTraining) {
  auto& run = olmoe_run();
  ASSERT_EQ(run.max_reload_diff.size(), 4u);
  for (double d : run.max_reload_diff) EXPECT_LE(d, 1e-5);
}

TEST(Pretrain, WorldFolderPassesTheRelationsLoader) {
  auto& run = olmoe_run();
  const auto relations = relations::load_relations(run.dir / "relations");
  ASSERT_EQ(relations.size(), 12u);
  for (std::size_t i = 0; i < relations.size(); ++i) {
    EXPECT_EQ(relations[i].id, relations::paper_relation_ids()[i]);
    EXPECT_GE(relations[i].prompt_templates.size(), 3u);
  }
  const auto tok = tokenizer::Tokenizer::from_file(run.dir / "tokenizer.json");
  const auto set = relations::build_prompts(relations, tok, {});
  for (const auto& p : set.problems) EXPECT_FALSE(p.fatal) << relations::describe_problem(p);
}

TEST(Pretrain, SameSeedGivesTheSameBytes) {
  auto& run = olmoe_run();
  ScratchDir again("lpi_pretrain_again");
  const auto report = pretrain(read_job(kTestJob), again.path(), {});
  const std::string last = report.checkpoints.back().name;
  EXPECT_EQ(read_file(run.dir / last / "model.safetensors"),
            read_file(again / last / "model.safetensors"));
  EXPECT_EQ(read_file(run.dir / "tokenizer.json"), read_file(again / "tokenizer.json"));
}

TEST(Pretrain, InterruptedRunResumesToTheSameWeights) {
  auto& run = olmoe_run();
  ScratchDir dir("lpi_pretrain_resume");
  // Killed after step 15: the last checkpoint before it is step 10 (4, 10, 24).
  PretrainOptions stop;
  stop.stop_after_step = 15;
  const auto first = pretrain(read_job(kTestJob), dir.path(), stop);
  EXPECT_FALSE(first.resumed);
  ASSERT_FALSE(fs::exists(dir / run.report.checkpoints.back().name));
  const auto second = pretrain(read_job(kTestJob), dir.path(), {});
  EXPECT_TRUE(second.resumed);
  EXPECT_EQ(second.resumed_from_step, first.checkpoints.back().step);
  const std::string last = run.report.checkpoints.back().name;
  EXPECT_EQ(read_file(run.dir / last / "model.safetensors"),
            read_file(dir / last / "model.safetensors"))
      << "resumed training must give the bytes of an uninterrupted run";
  EXPECT_EQ(read_curve(dir.path()).size(), read_curve(run.dir.path()).size());
}

TEST(Pretrain, RefusesTheFolderOfAnotherJob) {
  auto& run = olmoe_run();
  ScratchDir dir("lpi_pretrain_other");
  const auto other = job_variant(dir, "other.ini", {{"name", "other"}, {"learning_rate", "0.004"}});
  const auto before = read_file(run.dir / "train_state.safetensors");
  try {
    pretrain(read_job(other), run.dir.path(), {});
    FAIL() << "training into another job's folder was accepted";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("train_state.safetensors"), std::string::npos) << what;
    EXPECT_NE(what.find("tiny-test"), std::string::npos) << what;
    EXPECT_NE(what.find("other.ini"), std::string::npos) << what;
  }
  EXPECT_EQ(before, read_file(run.dir / "train_state.safetensors")) << "nothing may be overwritten";
}

TEST(Pretrain, AnotherSeedTrainsOtherWeightsAndRefusesTheFirstSeedsFolder) {
  auto& run = olmoe_run();
  ScratchDir dir("lpi_pretrain_seed");
  const auto job = with_seed(read_job(kTestJob), 4);
  PretrainOptions stop;
  stop.stop_after_step = 4;  // the first checkpoint is enough to differ
  const auto report = pretrain(job, dir.path(), stop);
  const std::string first = report.checkpoints.back().name;
  EXPECT_NE(read_file(run.dir / first / "model.safetensors"),
            read_file(dir / first / "model.safetensors"));
  EXPECT_EQ(read_file(run.dir / "tokenizer.json"), read_file(dir / "tokenizer.json"));
  for (const auto& file : fs::directory_iterator(run.dir / "relations"))
    EXPECT_EQ(read_file(file.path()), read_file(dir / "relations" / file.path().filename()))
        << "the seed changes the training, not the world: " << file.path();
  EXPECT_THROW(pretrain(read_job(kTestJob), dir.path(), {}), std::runtime_error)
      << "a folder trained with --seed 4 resumed without it";
}

TEST(Pretrain, DenseVariantTrainsWithMatchedShape) {
  ScratchDir dir("lpi_pretrain_dense");
  const auto file = job_variant(dir, "dense.ini",
                                {{"architecture", "olmo"},
                                 {"intermediate_size", "32"},
                                 {"experts", "0"},
                                 {"experts_per_token", "0"},
                                 {"steps", "12"},
                                 {"count", "3"}});
  auto job = read_job(file);
  const auto report = pretrain(job, dir / "out", {});
  ASSERT_EQ(report.checkpoints.size(), 3u);
  EXPECT_LT(report.checkpoints.back().loss, report.checkpoints[1].loss);
  const auto config = checkpoint::read_model_config(dir / "out" / report.checkpoints.back().name);
  EXPECT_EQ(config.architecture, "OlmoForCausalLM");
  EXPECT_EQ(config.norm, checkpoint::NormKind::LayerNormNoAffine);
  // Matched active parameters: 2 experts of width 16 vs one FFN of width 32.
  auto moe = read_job(kTestJob);
  moe.model.vocab_size = job.model.vocab_size = 320;
  const double ratio = static_cast<double>(active_parameter_count(moe.model)) /
                       static_cast<double>(active_parameter_count(job.model));
  EXPECT_NEAR(ratio, 1.0, 0.02);
}

// The tokenizer trained for the embedded default (jobs/tiny-olmoe.ini) gives
// the ids of HuggingFace `tokenizers` (fixture made with
// fixtures/pretrain/generate_tokenizer_ids.js).
TEST(PretrainData, DefaultTokenizerMatchesHuggingFace) {
  const auto job = read_job(fs::path(LPI_JOBS_DIR) / "tiny-olmoe.ini");
  const auto data = prepare_data(job);
  std::ifstream in(fs::path(LPI_TEST_FIXTURES_DIR) / "pretrain" / "default_tokenizer_ids.jsonl");
  ASSERT_TRUE(in) << "fixture missing";
  std::string line;
  std::getline(in, line);
  uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : data.tokenizer_json) hash = (hash ^ c) * 1099511628211ULL;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  ASSERT_EQ(nlohmann::json::parse(line)["tokenizer_fnv1a64"], hex)
      << "the trained tokenizer changed: regenerate the fixture (see generate_tokenizer_ids.js)";
  const auto tok = tokenizer::Tokenizer::from_json_string(data.tokenizer_json, "default tokenizer");
  std::size_t checked = 0;
  while (std::getline(in, line)) {
    const auto row = nlohmann::json::parse(line);
    const std::string text = row["text"];
    const auto expected = row["ids"].get<std::vector<int32_t>>();
    ASSERT_EQ(tok.encode(text), expected) << "text: " << text;
    ++checked;
  }
  EXPECT_GT(checked, 1000u);
  std::printf("default tokenizer: %zu texts equal to HuggingFace tokenizers\n", checked);
}

}  // namespace
}  // namespace lpi::pretrain

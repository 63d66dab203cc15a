// evaluate(): scores from hand-made logits (ranks with ties, top-10, HIT@10)
// and, over a tiny model in length-sorted batches, the reference model's
// log-probability and rank of each prompt's target, with and without ablation.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <utility>
#include <vector>

#include "reference_model.hpp"
#include "tiny_models.hpp"
#include "worker/engine/evaluate.hpp"

namespace lpi::engine::testing {
namespace {

double log_softmax_at(const std::vector<double>& logits, std::size_t target) {
  double top = logits[0];
  for (double x : logits) top = std::max(top, x);
  double total = 0;
  for (double x : logits) total += std::exp(x - top);
  return logits[target] - top - std::log(total);
}

TEST(ScoreLogits, RanksTiesTopTenAndLogProb) {
  const std::vector<std::vector<double>> rows = {
      {0.5, 2.0, 2.0, -1.0, 3.0, 0.0, 1.0, 2.0, -2.0, 0.25, 1.5, -0.5},
      {0.5, 2.0, 2.0, -1.0, 3.0, 0.0, 1.0, 2.0, -2.0, 0.25, 1.5, -0.5},
      {0.5, 2.0, 2.0, -1.0, 3.0, 0.0, 1.0, 2.0, -2.0, 0.25, 1.5, -0.5},
      {0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11},
      {0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11},
  };
  const std::vector<int64_t> targets = {2, 8, 4, 10, 9};
  // Tokens with a strictly higher logit: ties with the target do not count.
  const std::vector<int64_t> ranks = {1, 11, 0, 10, 9};
  auto logits = torch::empty({5, 12}, torch::kFloat32);
  for (int64_t b = 0; b < 5; ++b) {
    for (int64_t v = 0; v < 12; ++v) logits[b][v] = rows[b][v];
  }
  const auto scores = score_logits(logits, torch::tensor(targets, torch::kInt64));
  ASSERT_EQ(scores.size(), 5u);
  for (std::size_t b = 0; b < 5; ++b) {
    EXPECT_EQ(scores[b].target_rank, ranks[b]) << "row " << b;
    EXPECT_EQ(scores[b].hit_at_10(), ranks[b] < 10) << "row " << b;
    EXPECT_NEAR(scores[b].target_logprob, log_softmax_at(rows[b], targets[b]), 1e-6) << "row " << b;
    ASSERT_EQ(scores[b].top10.size(), 10u);
  }
  // Highest first; tied tokens 1, 2, 7 (logit 2.0) follow 4 (3.0) in some order.
  EXPECT_EQ(scores[0].top10[0], 4);
  EXPECT_EQ(std::set<int64_t>(scores[0].top10.begin() + 1, scores[0].top10.begin() + 4),
            (std::set<int64_t>{1, 2, 7}));
  EXPECT_EQ(scores[0].top10[4], 10);
  EXPECT_EQ(scores[3].top10, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_DOUBLE_EQ(hit_at_10(scores), 3.0 / 5.0);
  EXPECT_DOUBLE_EQ(hit_at_10({}), 0.0);
}

TEST(ScoreLogits, SmallVocabularyGivesShortTopList) {
  const auto logits = torch::tensor({0.0f, 3.0f, 1.0f}).view({1, 3});
  const auto scores = score_logits(logits, torch::tensor({2}, torch::kInt64));
  EXPECT_EQ(scores[0].top10, (std::vector<int64_t>{1, 2, 0}));
  EXPECT_EQ(scores[0].target_rank, 1);
}

class EvaluateTinyModel : public ::testing::Test {
 protected:
  void SetUp() override {
    write_tiny_model(dir_ / "olmoe", tiny_olmoe());
    model_ = load_model(dir_ / "olmoe");
    reference_ = std::make_unique<ReferenceModel>(ReferenceModel::from_folder(dir_ / "olmoe"));
    prompts_ = make_prompts({5, 1, 9, 3, 7, 2, 8, 4, 6, 3, 1}, 97, 21);
    for (std::size_t i = 0; i < prompts_.size(); ++i)
      targets_.push_back(static_cast<int32_t>(2 + 7 * i % 95));
  }

  void expect_matches_reference(const std::vector<PromptScore>& scores,
                                const RefAblation& ablation) {
    ASSERT_EQ(scores.size(), prompts_.size());
    for (std::size_t i = 0; i < prompts_.size(); ++i) {
      const auto ref = reference_->run(prompts_[i], ablation);
      std::vector<double> logits(ref.logits.data_ptr<double>(),
                                 ref.logits.data_ptr<double>() + ref.logits.numel());
      const auto t = static_cast<std::size_t>(targets_[i]);
      EXPECT_NEAR(scores[i].target_logprob, log_softmax_at(logits, t), 1e-4) << "prompt " << i;
      int64_t rank = 0;
      for (double x : logits) rank += x > logits[t];
      EXPECT_EQ(scores[i].target_rank, rank) << "prompt " << i;
      EXPECT_EQ(scores[i].top10.at(0), ref.logits.argmax().item<int64_t>()) << "prompt " << i;
    }
  }

  ScratchDir dir_{"lpi_test_evaluate"};
  Transformer model_{nullptr};
  std::unique_ptr<ReferenceModel> reference_;
  std::vector<std::vector<int32_t>> prompts_;
  std::vector<int32_t> targets_;
};

TEST_F(EvaluateTinyModel, MatchesReferenceInInputOrder) {
  EvaluateOptions options;
  options.batch_size = 4;
  std::vector<std::pair<std::size_t, std::size_t>> progress;
  options.progress = [&](std::size_t done, std::size_t total) {
    progress.emplace_back(done, total);
  };
  const auto scores = evaluate(model_, prompts_, targets_, options);
  expect_matches_reference(scores, {});
  const std::vector<std::pair<std::size_t, std::size_t>> expected = {{4, 11}, {8, 11}, {11, 11}};
  EXPECT_EQ(progress, expected);
  // One batch of all prompts gives the same scores.
  options.batch_size = 64;
  options.progress = nullptr;
  const auto one_batch = evaluate(model_, prompts_, targets_, options);
  for (std::size_t i = 0; i < scores.size(); ++i) {
    EXPECT_NEAR(one_batch[i].target_logprob, scores[i].target_logprob, 1e-5);
    EXPECT_EQ(one_batch[i].target_rank, scores[i].target_rank);
  }
}

TEST_F(EvaluateTinyModel, AblationMatchesReference) {
  RefAblation ref_ablation;
  ref_ablation.heads = {{0, {2}}, {1, {1}}};
  ref_ablation.ffn_neurons = {{0, {0, 17, 50, 127}}};
  Ablation ablation;
  ablation.heads = ref_ablation.heads;
  ablation.ffn_neurons = ref_ablation.ffn_neurons;
  EvaluateOptions options;
  options.batch_size = 3;
  options.ablation = &ablation;
  const auto scores = evaluate(model_, prompts_, targets_, options);
  expect_matches_reference(scores, ref_ablation);
  const auto plain = evaluate(model_, prompts_, targets_);
  double change = 0;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    change = std::max(change, double(std::abs(scores[i].target_logprob - plain[i].target_logprob)));
  }
  EXPECT_GT(change, 1e-3) << "the ablation changed nothing";
}

TEST_F(EvaluateTinyModel, RefusesBadInput) {
  EXPECT_THROW(evaluate(model_, prompts_, {1, 2}), EngineError);
  auto bad_targets = targets_;
  bad_targets[3] = 97;
  EXPECT_THROW(evaluate(model_, prompts_, bad_targets), EngineError);
  auto bad_prompts = prompts_;
  bad_prompts[2][1] = -1;
  EXPECT_THROW(evaluate(model_, bad_prompts, targets_), EngineError);
  EvaluateOptions zero;
  zero.batch_size = 0;
  EXPECT_THROW(evaluate(model_, prompts_, targets_, zero), EngineError);
}

}  // namespace
}  // namespace lpi::engine::testing

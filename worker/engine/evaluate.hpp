// Evaluation forward passes: for each prompt, the target token's
// log-probability and rank and the top-10 ids at the last position, in
// length-sorted batches, optionally with an ablation. HIT@10 is rank < 10.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "common/core/ranking.hpp"
#include "worker/engine/model.hpp"

namespace lpi::engine {

struct PromptScore {
  float target_logprob = 0;    // log_softmax of the final logits (fp32)
  int64_t target_rank = 0;     // tokens with a strictly higher logit; 0 = top-1
  std::vector<int64_t> top10;  // ids of the 10 highest logits, highest first
  bool hit_at_10() const { return core::is_hit(target_rank); }
};

struct EvaluateOptions {
  int64_t batch_size = 32;
  int64_t pad_id = 1;
  const Ablation* ablation = nullptr;
  // Called after each batch with (prompts done, total).
  std::function<void(std::size_t, std::size_t)> progress;
};

std::vector<PromptScore> evaluate(Transformer& model,
                                  const std::vector<std::vector<int32_t>>& prompts,
                                  const std::vector<int32_t>& targets,
                                  const EvaluateOptions& options = {});

// Scores from final logits [B, V] (float32) and target ids [B].
std::vector<PromptScore> score_logits(const torch::Tensor& logits, const torch::Tensor& targets);

double hit_at_10(const std::vector<PromptScore>& scores);

}  // namespace lpi::engine

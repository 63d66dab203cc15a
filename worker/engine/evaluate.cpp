#include "worker/engine/evaluate.hpp"

#include <algorithm>
#include <numeric>

namespace lpi::engine {

std::vector<PromptScore> score_logits(const torch::Tensor& logits, const torch::Tensor& targets) {
  const auto lg = logits.to(torch::kCPU, torch::kFloat32);
  const auto tg = targets.to(torch::kCPU, torch::kInt64);
  const auto logp = torch::log_softmax(lg, -1);
  const auto target_logit = lg.gather(1, tg.unsqueeze(1));
  const auto rank = (lg > target_logit).sum(1);
  const auto top = std::get<1>(lg.topk(std::min<int64_t>(10, lg.size(1)), -1));
  const auto target_logp = logp.gather(1, tg.unsqueeze(1)).squeeze(1);
  std::vector<PromptScore> out(lg.size(0));
  auto top_a = top.accessor<int64_t, 2>();
  for (int64_t b = 0; b < lg.size(0); ++b) {
    out[b].target_logprob = target_logp[b].item<float>();
    out[b].target_rank = rank[b].item<int64_t>();
    for (int64_t k = 0; k < top.size(1); ++k) out[b].top10.push_back(top_a[b][k]);
  }
  return out;
}

std::vector<PromptScore> evaluate(Transformer& model,
                                  const std::vector<std::vector<int32_t>>& prompts,
                                  const std::vector<int32_t>& targets,
                                  const EvaluateOptions& options) {
  if (prompts.size() != targets.size())
    throw EngineError("evaluate: one target per prompt expected");
  if (options.batch_size < 1) throw EngineError("evaluate: batch size must be at least 1");
  torch::NoGradGuard no_grad;
  const auto vocab = model->config().vocab_size;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    for (int32_t id : prompts[i]) {
      if (id < 0 || id >= vocab) {
        throw EngineError("evaluate: prompt " + std::to_string(i) + " has token id " +
                          std::to_string(id) + " outside the model's vocabulary of " +
                          std::to_string(vocab));
      }
    }
    if (targets[i] < 0 || targets[i] >= vocab) {
      throw EngineError("evaluate: target id " + std::to_string(targets[i]) + " of prompt " +
                        std::to_string(i) + " is outside the vocabulary of " +
                        std::to_string(vocab));
    }
  }
  // Length-sorted batches waste the least on padding; results go back in input order.
  std::vector<std::size_t> order(prompts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return prompts[a].size() < prompts[b].size();
  });
  std::vector<PromptScore> out(prompts.size());
  const auto device = model->lm_head().device();
  ForwardOptions forward;
  forward.ablation = options.ablation;
  for (std::size_t start = 0; start < order.size(); start += options.batch_size) {
    const std::size_t end =
        std::min(order.size(), start + static_cast<std::size_t>(options.batch_size));
    std::vector<std::vector<int32_t>> seqs;
    std::vector<int64_t> tg;
    for (std::size_t i = start; i < end; ++i) {
      seqs.push_back(prompts[order[i]]);
      tg.push_back(targets[order[i]]);
    }
    const auto batch = make_batch(seqs, options.pad_id, device);
    const auto logits = model->forward(batch, forward).logits;
    auto scores = score_logits(logits, torch::tensor(tg, torch::kInt64));
    for (std::size_t i = start; i < end; ++i) out[order[i]] = std::move(scores[i - start]);
    if (options.progress) options.progress(end, order.size());
  }
  return out;
}

double hit_at_10(const std::vector<PromptScore>& scores) {
  if (scores.empty()) return 0.0;
  const auto hits =
      std::count_if(scores.begin(), scores.end(), [](const auto& s) { return s.hit_at_10(); });
  return static_cast<double>(hits) / static_cast<double>(scores.size());
}

}  // namespace lpi::engine

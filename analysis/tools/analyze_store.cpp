#include "analysis/tools/analyze_store.hpp"

#include <cstdlib>
#include <map>
#include <set>
#include <stdexcept>

#include "common/h5/h5.hpp"
#include "common/store/store_reader.hpp"

namespace lpi::analysis {

namespace {

std::string prompt_key(const store::SweepDescription& d, std::size_t p) {
  return d.relation_ids.at(static_cast<std::size_t>(d.prompt_relation[p])) + '\x1f' +
         std::to_string(d.prompt_sample[p]) + '\x1f' + d.prompt_text[p];
}

}  // namespace

std::vector<StorePlan> plan_stores(const std::vector<std::string>& paths,
                                   const AnalyzeOptions& options, const Warn& warn) {
  if (paths.empty()) throw std::runtime_error("no store given (--store FILE)");
  std::vector<StorePlan> plans;
  std::vector<store::StoreInfo> infos;
  for (const auto& path : paths) {
    store::StoreInfo info;
    try {
      info = store::read_store_info(path);  // throws naming the file if it is not ours
    } catch (const h5::Error& e) {
      const bool locked = std::string(e.what()).find("unable to lock") != std::string::npos;
      throw std::runtime_error("store " + path + " cannot be read" +
                               (locked ? " (another process has it open for writing: is lpi-sweep "
                                         "still running on it?)"
                                       : "") +
                               ": " + e.what());
    }
    const auto& d = info.description;
    if (!d.per_prompt_attn || !d.per_prompt_ffn)
      throw std::runtime_error("store " + path + " keeps no per-prompt " +
                               (d.per_prompt_attn ? "FFN" : "attention") +
                               " importance (job store.per_prompt); lpi-analyze needs the "
                               "per-prompt tensors for relations and bootstrap intervals");
    StorePlan p;
    p.path = path;
    p.job_name = d.job_name;
    p.model_name = d.model_name;
    p.shape = d.shape;
    p.relations = d.relation_ids;
    p.conditions = info.ablation_conditions;
    std::vector<std::string> missing;
    for (std::size_t c = 0; c < d.grid.checkpoints.size(); ++c) {
      const bool done = info.aggregated.at(c) && (p.conditions.empty() || info.ablation_done.at(c));
      if (done) {
        p.checkpoints.push_back(static_cast<int32_t>(c));
        p.steps.push_back(d.grid.checkpoints[c].step);
      } else {
        missing.push_back(d.grid.checkpoints[c].name);
      }
    }
    if (!missing.empty()) {
      std::string list;
      for (std::size_t i = 0; i < missing.size() && i < 8; ++i)
        list += (i ? ", " : "") + missing[i];
      if (missing.size() > 8) list += ", ... (" + std::to_string(missing.size()) + " in all)";
      const std::string what =
          "store " + path + ": the sweep is not complete; " + std::to_string(missing.size()) +
          " of " + std::to_string(d.grid.checkpoints.size()) + " checkpoints are not done" +
          (p.conditions.empty() ? "" : " (attribution and ablation)") + ": " + list;
      if (!options.allow_partial)
        throw std::runtime_error(what +
                                 ". Finish it (lpi-sweep --resume) or pass --allow-partial "
                                 "to analyse the checkpoints that are done");
      warn(what + "; analysing the " + std::to_string(p.checkpoints.size()) +
           " that are (--allow-partial)");
      p.partial = true;
    }
    if (p.checkpoints.size() < 2)
      throw std::runtime_error("store " + path + " has " + std::to_string(p.checkpoints.size()) +
                               " complete checkpoint(s); the temporal metrics need at least 2");
    plans.push_back(std::move(p));
    infos.push_back(std::move(info));
  }
  // The prompts common to every store, by (relation, sample, text).
  std::map<std::string, int> seen;
  for (const auto& info : infos) {
    const auto& d = info.description;
    std::set<std::string> keys;
    for (std::size_t p = 0; p < d.prompt_relation.size(); ++p) keys.insert(prompt_key(d, p));
    for (const auto& k : keys) ++seen[k];
  }
  for (std::size_t s = 0; s < plans.size(); ++s) {
    const auto& d = infos[s].description;
    for (std::size_t p = 0; p < d.prompt_relation.size(); ++p) {
      if (seen[prompt_key(d, p)] != static_cast<int>(infos.size())) continue;
      plans[s].prompts.push_back(static_cast<int32_t>(p));
      plans[s].prompt_relation.push_back(d.prompt_relation[p]);
    }
    if (plans[s].prompts.empty())
      throw std::runtime_error("store " + plans[s].path +
                               " shares no prompt (relation, sample, text) "
                               "with the other stores given");
    if (plans[s].prompts.size() != d.prompt_relation.size())
      warn("store " + plans[s].path +
           ": its relations or prompts differ from the other stores'; "
           "comparing only the " +
           std::to_string(plans[s].prompts.size()) + " common prompts of its " +
           std::to_string(d.prompt_relation.size()));
    for (std::size_t o = 0; o < plans.size(); ++o)
      if (o != s) plans[s].compared_with.push_back(plans[o].path);
  }
  return plans;
}

namespace {

std::vector<std::vector<uint8_t>> read_hits(const store::Reader& store, const StorePlan& plan,
                                            int32_t c) {
  const auto M = static_cast<int64_t>(plan.conditions.size());
  const auto all = store.ablation_hits(c);  // [P, M]
  std::vector<std::vector<uint8_t>> out;
  for (auto p : plan.prompts) out.emplace_back(all.begin() + p * M, all.begin() + (p + 1) * M);
  return out;
}

}  // namespace

StoreAnalysis analyze_store(const StorePlan& plan, const AnalyzeOptions& options, const Warn& warn,
                            const std::function<void(std::size_t, std::size_t)>& progress) {
  StoreAnalysis a;
  a.plan = plan;
  a.design = make_design(plan.prompt_relation, static_cast<int32_t>(plan.relations.size()),
                         options.reduction.bootstrap, options.reduction.seed);
  a.scopes.push_back("all");
  a.scopes.insert(a.scopes.end(), plan.relations.begin(), plan.relations.end());
  a.ranges = options.ranges;
  a.consolidation = a.ranges.size();
  a.ranges.push_back(options.consolidation);
  a.ranges.back().name = "consolidation";
  a.ranges.push_back({plan.steps.front(), plan.steps.back(), "trajectory"});
  for (const auto& r : a.ranges) {
    int32_t n = 0;
    for (auto s : plan.steps) n += s >= r.first && s <= r.last;
    a.range_checkpoints.push_back(n);
    if (n < 2)
      warn("store " + plan.path + ": step range " + r.label() +
           (r.name.empty() ? "" : " (" + r.name + ")") + " holds " + std::to_string(n) +
           " analysed checkpoint(s) (steps " + std::to_string(plan.steps.front()) + " to " +
           std::to_string(plan.steps.back()) + "); its statistics need 2 and are NaN");
  }
  const auto C = plan.steps.size();
  // The analysed checkpoint nearest to `step` (a warning unless it is at it).
  const auto nearest = [&](int64_t step, const std::string& what) {
    std::size_t best = 0;
    for (std::size_t c = 1; c < C; ++c)
      if (std::llabs(plan.steps[c] - step) < std::llabs(plan.steps[best] - step)) best = c;
    if (plan.steps[best] != step)
      warn("store " + plan.path + ": no analysed checkpoint at step " + std::to_string(step) +
           "; the " + what + " uses step " + std::to_string(plan.steps[best]));
    return static_cast<int32_t>(best);
  };
  if (options.snapshot_steps.empty()) {
    for (std::size_t pos : {std::size_t{0}, C / 2, C - 1})
      if (a.snapshots.empty() || a.snapshots.back() != static_cast<int32_t>(pos))
        a.snapshots.push_back(static_cast<int32_t>(pos));
  } else {
    for (auto step : options.snapshot_steps) a.snapshots.push_back(nearest(step, "snapshot"));
  }
  std::vector<int64_t> kept;
  for (const auto& [first, second] : options.overlap_steps) {
    const StepPair o{nearest(first, "overlap"), nearest(second, "overlap")};
    if (o.first == o.second)
      warn("store " + plan.path + ": the overlap " + std::to_string(first) + ":" +
           std::to_string(second) + " compares step " + std::to_string(plan.steps[o.first]) +
           " with itself");
    a.overlaps.push_back(o);
    kept.push_back(o.first);
    kept.push_back(o.second);
  }

  const auto& sh = plan.shape;
  const int64_t L = sh.num_layers, I = sh.intermediate_size, k = sh.experts_per_token;
  const bool moe = sh.is_moe();
  const int64_t ffn_neurons = sh.ffn_neurons(), attn_neurons = sh.attn_neurons();
  FamilyReduction ffn(ffn_neurons, L, a.design, options.reduction, moe ? I : 0);
  FamilyReduction attn(attn_neurons, L, a.design, options.reduction);
  ffn.keep_top_sets(kept);
  attn.keep_top_sets(kept);
  std::vector<std::vector<std::vector<uint8_t>>> hits;
  a.has_ablation = !plan.conditions.empty();
  a.ablation_min_hit = options.reduction.ablation_min_hit;

  const store::Reader store(plan.path);
  const auto prompts = static_cast<int64_t>(store.description().prompt_relation.size());
  for (std::size_t pos = 0; pos < C; ++pos) {
    const int32_t c = plan.checkpoints[pos];
    const auto data = store.prompts(c, 0, prompts);
    store.check_unit_sums(c, data);  // a damaged or altered file is not analysed
    attn.add_checkpoint([&](int32_t source, const Accumulator& to) {
      to.add(data.attn.data() + plan.prompts[source] * attn_neurons, attn_neurons);
    });
    if (!moe) {
      ffn.add_checkpoint([&](int32_t source, const Accumulator& to) {
        to.add(data.ffn.data() + plan.prompts[source] * ffn_neurons, ffn_neurons);
      });
    } else {
      ffn.add_checkpoint([&](int32_t source, const Accumulator& to) {
        const int64_t p = plan.prompts[source];
        core::add_ffn_values(plan.shape, data.ffn.data() + p * L * k * I,
                             data.expert_ids.data() + p * L * k, to.weight, to.acc,
                             "store " + plan.path + ": importance/expert_ids of checkpoint " +
                                 std::to_string(c) + ", prompt " + std::to_string(p),
                             core::FfnAdd{to.absolute, to.routed});
      });
    }
    if (a.has_ablation) hits.push_back(read_hits(store, plan, c));
    if (progress) progress(pos + 1, C);
  }
  a.ffn = ffn.finish(plan.steps, a.ranges, a.overlaps);
  a.attn = attn.finish(plan.steps, a.ranges, a.overlaps);
  if (a.has_ablation) a.ablation = reduce_ablation(hits, a.design, options.reduction);
  return a;
}

}  // namespace lpi::analysis

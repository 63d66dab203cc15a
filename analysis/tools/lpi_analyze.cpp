// lpi-analyze: the reduction phase. Reads every analysed checkpoint of one or
// more sweep stores and computes the paper's temporal metrics per neuron
// family (top-1% Jaccard, R_t, layer profiles, rho_avg, sigma_rel), per
// relation and overall, with random-set baselines and bootstrap intervals
// over prompts, and the ablation summary; writes them into each store's
// `analysis` group (replaced whole) and, with --csv, into CSV files; prints
// the paper's Tables 2-4 (docs/STORE.md).
//   lpi-analyze --store runs/sweep-tiny-olmoe.h5 --store runs/sweep-tiny-olmo.h5 --csv
//   runs/analysis
#include <algorithm>
#include <boost/program_options.hpp>
#include <iostream>
#include <thread>

#include "analysis/tools/analyze_store.hpp"
#include "common/store/sweep_store.hpp"

namespace po = boost::program_options;
namespace an = lpi::analysis;

namespace {

an::StepRange parse_range(const std::string& text) {
  const auto colon = text.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no colon");
    std::size_t a = 0, b = 0;
    const auto first = std::stoll(text.substr(0, colon), &a);
    const auto last = std::stoll(text.substr(colon + 1), &b);
    if (a != colon || b != text.size() - colon - 1 || first > last)
      throw std::invalid_argument("order");
    return {first, last};
  } catch (const std::exception&) {
    throw po::error("--range '" + text + "': expected FIRST:LAST steps, FIRST <= LAST");
  }
}

an::SetScope parse_scope(const std::string& text, const char* option) {
  if (text == "family") return an::SetScope::Family;
  if (text == "layer") return an::SetScope::Layer;
  throw po::error(std::string("--") + option + " '" + text + "': family or layer");
}

// One of two spellings: the first gives `first`, the second `second`.
template <typename E>
E parse_choice(const std::string& text, const char* option, const char* a, E first, const char* b,
               E second) {
  if (text == a) return first;
  if (text == b) return second;
  throw po::error(std::string("--") + option + " '" + text + "': " + a + " or " + b);
}

std::pair<int64_t, int64_t> parse_pair(const std::string& text) {
  try {
    const auto r = parse_range(text);
    return {r.first, r.last};
  } catch (const po::error&) {
    throw po::error("--overlap '" + text + "': expected FIRST:SECOND steps, FIRST <= SECOND");
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> stores, ranges, overlaps;
  std::string csv, top_scope, gain_scope, consolidation, aggregate, expert_mean, gain_rank,
      gain_baseline, layer_importance;
  an::AnalyzeOptions opt;
  bool help = false, quiet = false;
  int64_t seed = 1;
  // clang-format off
  po::options_description o("lpi-analyze: the paper's temporal metrics, ablation summary and tables from sweep stores");
  o.add_options()
      ("help,h", po::bool_switch(&help), "show this help")
      ("store", po::value(&stores)->composing(), "a sweep store (repeatable: a MoE and a dense one)")
      ("allow-partial", po::bool_switch(&opt.allow_partial), "analyse the checkpoints that are done in an incomplete sweep")
      ("range", po::value(&ranges)->composing(),
       "a step range FIRST:LAST for the means, rho_avg and sigma_rel (repeatable; default: the paper's "
       "10000:70000 100000:600000 10000:600000 10000:1200000); the whole trajectory is always added")
      ("snapshot", po::value(&opt.snapshot_steps)->composing(), "a step for the layer snapshots of Figures 3 and 4 (repeatable; default: first, middle, last)")
      ("fraction", po::value(&opt.reduction.fraction)->default_value(0.01), "the top fraction of neurons (the paper: 1%)")
      ("bootstrap", po::value(&opt.reduction.bootstrap)->default_value(100), "bootstrap resamples of the prompts (0: no intervals)")
      ("seed", po::value(&seed)->default_value(1), "seed of the resamples and the random sets")
      ("top-scope", po::value(&top_scope)->default_value("family"), "J_stab's top set: over the family, or per layer")
      ("gain-scope", po::value(&gain_scope)->default_value("layer"), "R_t's share: of each layer's gain (the paper), or the family's")
      ("gain-rank", po::value(&gain_rank)->default_value("gain"),
       "R_t's top set: ranked by the gain (the paper's definition), or by |S_t| (its reading \"reinforce the same top-1% neurons\")")
      ("gain-baseline", po::value(&gain_baseline)->default_value("same"),
       "R_t's random baseline: a random set at R_t's scope (same), or the whole family's gain held by the Jaccard's random set (family)")
      ("consolidation", po::value(&consolidation)->default_value("200000:1200000"),
       "the step range FIRST:LAST of Table 2's mean R_t (the paper's consolidation, after the dip at 200K)")
      ("overlap", po::value(&overlaps)->composing(),
       "two steps FIRST:SECOND whose top-1% sets are compared (repeatable; default: the paper's 100000:300000)")
      ("aggregate", po::value(&aggregate)->default_value("signed"),
       "a scope's score: the mean of the signed importance (signed), or of its absolute value (absolute)")
      ("expert-mean", po::value(&expert_mean)->default_value("all"),
       "an expert neuron's mean: over every prompt of the scope (all), or over the prompts routed to the expert (routed)")
      ("layer-importance", po::value(&layer_importance)->default_value("signed"),
       "I(s, l): the sum of S over the layer's neurons (signed), or of |S| (absolute)")
      ("threads", po::value(&opt.reduction.threads)->default_value(static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))),
       "threads over the bootstrap resamples (results do not depend on it)")
      ("ablation-min-hit", po::value(&opt.reduction.ablation_min_hit)->default_value(0.0),
       "leave out of the ablation's drop the checkpoints (and resamples) whose unmasked HIT@10 is below this")
      ("csv", po::value(&csv), "also write the results as CSV files into this folder")
      ("quiet,q", po::bool_switch(&quiet), "no progress lines");
  // clang-format on
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, o), vm);
    po::notify(vm);
    if (help) {
      std::cout << o << "\n";
      return 0;
    }
    if (stores.empty()) throw po::error("--store is required");
    if (!(opt.reduction.fraction > 0 && opt.reduction.fraction <= 1))
      throw po::error("--fraction must be in (0, 1]");
    if (opt.reduction.bootstrap < 0) throw po::error("--bootstrap must be >= 0");
    if (opt.reduction.threads < 1) throw po::error("--threads must be >= 1");
    if (!(opt.reduction.ablation_min_hit >= 0 && opt.reduction.ablation_min_hit <= 1))
      throw po::error("--ablation-min-hit must be in [0, 1]");
    opt.reduction.seed = static_cast<uint64_t>(seed);
    opt.reduction.top_scope = parse_scope(top_scope, "top-scope");
    opt.reduction.gain_scope = parse_scope(gain_scope, "gain-scope");
    opt.reduction.gain_rank = parse_choice(gain_rank, "gain-rank", "gain", an::GainRank::Gain,
                                           "score", an::GainRank::Score);
    opt.reduction.gain_baseline =
        parse_choice(gain_baseline, "gain-baseline", "same", an::BaselineScope::SameAsGain,
                     "family", an::BaselineScope::Family);
    opt.reduction.aggregate = parse_choice(aggregate, "aggregate", "signed", an::Aggregate::Signed,
                                           "absolute", an::Aggregate::Absolute);
    opt.reduction.expert_mean =
        parse_choice(expert_mean, "expert-mean", "all", an::ExpertMean::AllPrompts, "routed",
                     an::ExpertMean::Routed);
    opt.reduction.layer_importance =
        parse_choice(layer_importance, "layer-importance", "signed", an::LayerImportance::Signed,
                     "absolute", an::LayerImportance::Absolute);
    if (ranges.empty()) ranges = {"10000:70000", "100000:600000", "10000:600000", "10000:1200000"};
    for (const auto& r : ranges) opt.ranges.push_back(parse_range(r));
    try {
      opt.consolidation = parse_range(consolidation);
    } catch (const po::error&) {
      throw po::error("--consolidation '" + consolidation +
                      "': expected FIRST:LAST steps, FIRST <= LAST");
    }
    opt.consolidation.name = "consolidation";
    if (!overlaps.empty()) {
      opt.overlap_steps.clear();
      for (const auto& o : overlaps) opt.overlap_steps.push_back(parse_pair(o));
    }
    for (int i = 0; i < argc; ++i) opt.command += (i ? " " : "") + std::string(argv[i]);
  } catch (const po::error& e) {
    std::cerr << "lpi-analyze: " << e.what() << "\n" << o << "\n";
    return 2;
  }
  const auto warn = [](const std::string& w) {
    std::cerr << "lpi-analyze: warning: " << w << "\n";
  };
  std::vector<an::StoreAnalysis> done;
  try {
    const auto plans = an::plan_stores(stores, opt, warn);
    for (const auto& plan : plans) {
      if (!quiet)
        std::cerr << "lpi-analyze: " << plan.path << ": " << plan.checkpoints.size()
                  << " checkpoints, " << plan.prompts.size() << " prompts, "
                  << opt.reduction.bootstrap << " bootstrap resamples\n";
      auto a = an::analyze_store(plan, opt, warn, [&](std::size_t i, std::size_t n) {
        if (!quiet && (i == n || i % 10 == 0))
          std::cerr << "lpi-analyze: " << plan.path << ": checkpoint " << i << "/" << n << "\n";
      });
      an::write_analysis(a, opt);
      if (!csv.empty())
        for (const auto& f : an::write_csv(a, csv))
          if (!quiet) std::cerr << "lpi-analyze: wrote " << f << "\n";
      done.push_back(std::move(a));
    }
  } catch (const std::exception& e) {
    std::cerr << "lpi-analyze: " << e.what() << "\n";
    return 2;
  }
  std::cout << an::tables_text(done);
  return 0;
}

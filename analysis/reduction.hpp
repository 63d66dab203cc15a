// The reduction phase's arithmetic (docs/STORE.md, "The `analysis` group"),
// without HDF5: per-prompt importance vectors stream in one checkpoint at a
// time; out come, for every scope (all prompts, then each relation) and for
// the point estimate and every bootstrap resample, the top-1% Jaccard
// trajectory, the positive-gain concentration R_t, the layer profiles, and
// their means, rho_avg and sigma_rel over step ranges, with random-set
// baselines and bootstrap quantiles. The ablation summary (HIT@10 drop per
// checkpoint and its mean) comes from per-prompt hits the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/core/rng.hpp"

namespace lpi::analysis {

enum class SetScope { Family, Layer };  // one top set over all neurons, or one per layer

// The readings the paper leaves open (docs/STORE.md, "The `analysis` group");
// the first of each is the paper's (and the default).
enum class Aggregate { Signed, Absolute };  // S = mean of I, or of |I|, over a scope's prompts
enum class ExpertMean {
  AllPrompts,
  Routed
};                                    // an expert's neurons over every prompt, or
                                      // over the prompts routed to the expert only
enum class GainRank { Gain, Score };  // R_t's top set by the gain, or by |S_t|
enum class BaselineScope {
  SameAsGain,
  Family
};                                                // R_t's random baseline: at R_t's scope, or
                                                  // the whole family's gain (the former reading)
enum class LayerImportance { Signed, Absolute };  // I(s, l) = sum of S over the layer, or of |S|

struct StepRange {
  StepRange() = default;
  StepRange(int64_t first_step, int64_t last_step, std::string range_name = "")
      : first(first_step), last(last_step), name(std::move(range_name)) {}
  int64_t first = 0, last = 0;  // inclusive steps
  std::string name;             // "consolidation", "trajectory", or "" for a --range
  std::string label() const;    // "10000-70000"
};

// Two analysed checkpoints whose top sets are compared (the paper's
// non-consecutive overlap, 100K against 300K): positions into the steps.
struct StepPair {
  int64_t first = 0, second = 0;
};

struct ReductionOptions {
  double fraction = 0.01;
  int bootstrap = 100;  // resamples of the prompts (0: no intervals)
  uint64_t seed = 1;
  SetScope top_scope = SetScope::Family;  // for J_stab
  SetScope gain_scope = SetScope::Layer;  // for R_t (the paper: "all neurons in the layer")
  Aggregate aggregate = Aggregate::Signed;
  ExpertMean expert_mean = ExpertMean::AllPrompts;  // MoE FFN only
  GainRank gain_rank = GainRank::Gain;
  BaselineScope gain_baseline = BaselineScope::SameAsGain;
  LayerImportance layer_importance = LayerImportance::Signed;
  double confidence = 0.95;  // the bootstrap interval's coverage
  int threads = 1;           // draws computed in parallel (results do not depend on it)
  // The ablation's drop is left out (NaN) where the unmasked HIT@10 is below
  // this (or 0): before the model has learned, a drop in % is noise.
  double ablation_min_hit = 0;
};

// The analysed prompts: each position's relation (0..relations-1), and the
// stratified bootstrap resamples (B rows of P positions, each drawn among the
// positions of the same relation; the same draw at every checkpoint).
struct PromptDesign {
  std::vector<int32_t> relation;  // [P]
  int32_t relations = 0;
  std::vector<std::vector<int32_t>> resamples;  // [B][P]
  int32_t scopes() const { return relations + 1; }
};
PromptDesign make_design(const std::vector<int32_t>& relation, int32_t relations, int bootstrap,
                         uint64_t seed);

// The q-quantile of the finite values, interpolating linearly between order
// statistics (numpy.quantile's default); NaN when none is finite.
double quantile(std::vector<double> values, double q);

// A statistic for every scope and position, with its bootstrap interval: row-major [scopes, n].
struct Stat {
  int64_t scopes = 0, n = 0;
  std::vector<double> value, lo, hi;
  double at(int64_t s, int64_t i) const { return value[static_cast<std::size_t>(s * n + i)]; }
};

struct FamilyResult {
  int64_t neurons = 0, layers = 0, top_count = 0, gain_top_count = 0;
  Stat jaccard, gain_concentration;                  // [S, C-1], pair q = checkpoints q, q+1
  std::vector<double> jaccard_random;                // [C-1]
  std::vector<double> gain_random;                   // [S, C-1]
  Stat layer_profile;                                // [S, C * L]
  Stat layer_mean;                                   // [S, C]
  std::vector<int64_t> random_sets;                  // [C, K]
  std::vector<int64_t> gain_random_sets;             // [C, K_gain] (R_t's scope)
  Stat jaccard_mean, gain_mean, rho_avg, sigma_rel;  // [S, Q]
  std::vector<double> jaccard_mean_random;           // [Q]
  std::vector<double> gain_mean_random;              // [S, Q]
  // Non-consecutive pairs (O of them): Jaccard and survival |A & B| / |A| of
  // the top sets, and of the random sets at the same checkpoints.
  Stat overlap_jaccard, overlap_survival;                               // [S, O]
  std::vector<double> overlap_jaccard_random, overlap_survival_random;  // [O]
};

// Where one prompt's vector goes: acc [neurons] += weight x (|v| if
// absolute, else v); with routed means, routed [neurons / group] += weight
// for each group (an expert of a layer) the prompt was routed to.
struct Accumulator {
  double weight = 1;
  bool absolute = false;
  double* acc = nullptr;
  double* routed = nullptr;                                       // null unless ExpertMean::Routed
  void add(const float* v, int64_t n, int64_t offset = 0) const;  // a dense block
  void add(const double* v, int64_t n, int64_t offset = 0) const;
};

// Adds prompt `source`'s vector through `to`.
using AddPrompt = std::function<void(int32_t source, const Accumulator& to)>;

// One neuron family (FFN/expert or attention) over the analysed checkpoints.
class FamilyReduction {
 public:
  // `group`: neurons per routing group (an expert's I neurons) for routed
  // means, 0 for a family without routing (attention, dense FFN).
  FamilyReduction(int64_t neurons, int64_t layers, const PromptDesign& design,
                  const ReductionOptions& options, int64_t group = 0);
  // Keep the top sets of these checkpoint positions for overlap pairs.
  void keep_top_sets(const std::vector<int64_t>& positions);
  // The next checkpoint's per-prompt vectors, through `add`.
  void add_checkpoint(const AddPrompt& add);
  // `steps`: the analysed checkpoints' steps; `ranges`: the step ranges;
  // `overlaps`: pairs of positions kept by keep_top_sets.
  FamilyResult finish(const std::vector<int64_t>& steps, const std::vector<StepRange>& ranges,
                      const std::vector<StepPair>& overlaps = {}) const;

  int64_t top_count() const;       // |T|: the size of a top set (and of a random set)
  int64_t gain_top_count() const;  // the size of R_t's top set
  std::size_t state_bytes() const;

 private:
  std::vector<int64_t> top_set(const std::vector<double>& x) const;
  std::vector<int64_t> top_by(const std::vector<double>& x, SetScope scope, bool absolute) const;
  double share_held(const std::vector<double>& gain, const std::vector<int64_t>& set) const;
  std::vector<int64_t> draw_set(core::Rng& rng, SetScope scope) const;
  int64_t neurons_, layers_, group_;
  const PromptDesign& design_;
  ReductionOptions options_;
  int64_t checkpoints_ = 0;
  core::Rng rng_, gain_rng_;
  std::vector<int64_t> keep_;                            // positions whose top sets are kept
  std::vector<std::vector<std::vector<int64_t>>> kept_;  // [slot][kept position]
  // Per draw (0: the point estimate, 1..B: resamples) and scope.
  std::vector<std::vector<double>> previous_;  // |S| of the previous checkpoint
  std::vector<std::vector<int64_t>> previous_top_;
  std::vector<std::vector<double>> jaccard_, gain_;  // per pair
  std::vector<std::vector<double>> profiles_;        // [C * L]
  std::vector<int64_t> random_sets_;                 // [C, K]
  std::vector<int64_t> gain_random_sets_;            // [C, K_gain]
  std::vector<double> jaccard_random_;               // [C-1]
  std::vector<std::vector<double>> gain_random_;     // per scope, [C-1]
};

// The ablation summary from per-prompt hits [C][P][M] (condition 0 = none).
struct AblationResult {
  int64_t conditions = 0;  // M - 1
  Stat hit_before;         // [S, C]
  Stat hit_after;          // [S, C * (M-1)]
  Stat drop_percent;       // [S, C * (M-1)]
  Stat drop_mean;          // [S, M-1]
};
AblationResult reduce_ablation(const std::vector<std::vector<std::vector<uint8_t>>>& hits,
                               const PromptDesign& design, const ReductionOptions& options);

}  // namespace lpi::analysis

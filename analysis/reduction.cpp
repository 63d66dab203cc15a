#include "analysis/reduction.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iterator>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "analysis/metrics.hpp"
#include "common/core/layout.hpp"

namespace lpi::analysis {

std::string StepRange::label() const {
  return std::to_string(first) + "-" + std::to_string(last);
}

PromptDesign make_design(const std::vector<int32_t>& relation, int32_t relations, int bootstrap,
                         uint64_t seed) {
  PromptDesign d;
  d.relation = relation;
  d.relations = relations;
  std::vector<std::vector<int32_t>> members(static_cast<std::size_t>(relations));
  for (std::size_t j = 0; j < relation.size(); ++j) {
    if (relation[j] < 0 || relation[j] >= relations)
      throw std::invalid_argument("make_design: prompt " + std::to_string(j) + " has relation " +
                                  std::to_string(relation[j]) + " of " + std::to_string(relations));
    members[static_cast<std::size_t>(relation[j])].push_back(static_cast<int32_t>(j));
  }
  core::Rng rng(seed);
  for (int b = 0; b < bootstrap; ++b) {
    std::vector<int32_t> row(relation.size());
    for (std::size_t j = 0; j < relation.size(); ++j) {
      const auto& m = members[static_cast<std::size_t>(relation[j])];
      row[j] = m[rng.below(m.size())];
    }
    d.resamples.push_back(std::move(row));
  }
  return d;
}

double quantile(std::vector<double> values, double q) {
  values.erase(
      std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }),
      values.end());
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  const double h = q * static_cast<double>(values.size() - 1);
  const auto i = static_cast<std::size_t>(std::floor(h));
  if (i + 1 >= values.size()) return values.back();
  return values[i] + (h - static_cast<double>(i)) * (values[i + 1] - values[i]);
}

namespace {

// The point estimate (draw 0) as value, the resamples' quantiles as lo and hi.
// `draws[d][s][i]`.
Stat summarise(const std::vector<std::vector<std::vector<double>>>& draws, int64_t n,
               double confidence) {
  Stat st;
  st.scopes = static_cast<int64_t>(draws.at(0).size());
  st.n = n;
  const double tail = (1 - confidence) / 2;
  for (int64_t s = 0; s < st.scopes; ++s) {
    for (int64_t i = 0; i < n; ++i) {
      st.value.push_back(draws[0][s][i]);
      std::vector<double> r;
      for (std::size_t d = 1; d < draws.size(); ++d) r.push_back(draws[d][s][i]);
      st.lo.push_back(quantile(r, tail));
      st.hi.push_back(quantile(std::move(r), 1 - tail));
    }
  }
  return st;
}

// Mean over the pairs (q, q+1) whose both steps lie in `r`, NaN entries skipped.
double pair_mean(const std::vector<double>& v, const std::vector<int64_t>& steps,
                 const StepRange& r) {
  double sum = 0;
  int64_t n = 0;
  for (std::size_t q = 0; q < v.size(); ++q) {
    if (steps[q] < r.first || steps[q + 1] > r.last || std::isnan(v[q])) continue;
    sum += v[q];
    ++n;
  }
  return n ? sum / static_cast<double>(n) : NAN;
}

}  // namespace

void Accumulator::add(const float* v, int64_t n, int64_t offset) const {
  core::add_scaled(v, n, weight, absolute, acc + offset);
}

void Accumulator::add(const double* v, int64_t n, int64_t offset) const {
  core::add_scaled(v, n, weight, absolute, acc + offset);
}

FamilyReduction::FamilyReduction(int64_t neurons, int64_t layers, const PromptDesign& design,
                                 const ReductionOptions& options, int64_t group)
    : neurons_(neurons),
      layers_(layers),
      group_(options.expert_mean == ExpertMean::Routed ? group : 0),
      design_(design),
      options_(options),
      rng_(options.seed ^ 0x5eedULL),
      gain_rng_(options.seed ^ 0x6a1eULL) {
  if (layers < 1 || neurons % layers != 0)
    throw std::invalid_argument("FamilyReduction: " + std::to_string(neurons) +
                                " neurons do not split into " + std::to_string(layers) + " layers");
  if (group_ < 0 || (group_ > 0 && neurons % group_ != 0))
    throw std::invalid_argument("FamilyReduction: " + std::to_string(neurons) +
                                " neurons do not split into groups of " + std::to_string(group));
  const std::size_t slots =
      (design.resamples.size() + 1) * static_cast<std::size_t>(design.scopes());
  previous_.resize(slots);
  previous_top_.resize(slots);
  jaccard_.resize(slots);
  gain_.resize(slots);
  profiles_.resize(slots);
  gain_random_.resize(static_cast<std::size_t>(design.scopes()));
  kept_.resize(slots);
}

void FamilyReduction::keep_top_sets(const std::vector<int64_t>& positions) {
  if (checkpoints_ > 0)
    throw std::logic_error("FamilyReduction::keep_top_sets after the first checkpoint");
  keep_ = positions;
  std::sort(keep_.begin(), keep_.end());
  keep_.erase(std::unique(keep_.begin(), keep_.end()), keep_.end());
}

namespace {

// max(1, floor(fraction * n)): the size of a top set among n.
int64_t fraction_count(double fraction, int64_t n) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::floor(fraction * static_cast<double>(n))));
}

}  // namespace

int64_t FamilyReduction::top_count() const {
  return options_.top_scope == SetScope::Family
             ? fraction_count(options_.fraction, neurons_)
             : layers_ * fraction_count(options_.fraction, neurons_ / layers_);
}

int64_t FamilyReduction::gain_top_count() const {
  return options_.gain_scope == SetScope::Family
             ? fraction_count(options_.fraction, neurons_)
             : layers_ * fraction_count(options_.fraction, neurons_ / layers_);
}

std::size_t FamilyReduction::state_bytes() const {
  return previous_.size() * static_cast<std::size_t>(neurons_) * sizeof(double);
}

std::vector<int64_t> FamilyReduction::top_by(const std::vector<double>& x, SetScope scope,
                                             bool absolute) const {
  if (scope == SetScope::Family) return top_fraction(x, options_.fraction, absolute);
  const auto per = neurons_ / layers_;
  std::vector<int64_t> out;
  for (int64_t l = 0; l < layers_; ++l) {
    const std::vector<double> seg(x.begin() + l * per, x.begin() + (l + 1) * per);
    for (auto i : top_fraction(seg, options_.fraction, absolute)) out.push_back(l * per + i);
  }
  return out;
}

std::vector<int64_t> FamilyReduction::top_set(const std::vector<double>& x) const {
  return top_by(x, options_.top_scope, true);
}

// The share of the gain held by `set` (ascending) at R_t's scope: of the
// family's total, or per layer of the layer's total and then the mean over
// the layers with a gain. NaN when nothing gained.
double FamilyReduction::share_held(const std::vector<double>& gain,
                                   const std::vector<int64_t>& set) const {
  const std::size_t groups = options_.gain_scope == SetScope::Family ? 1 : layers_;
  const std::size_t per = gain.size() / groups;
  std::vector<double> total(groups, 0.0), held(groups, 0.0);
  for (std::size_t i = 0; i < gain.size(); ++i) total[i / per] += gain[i];
  for (auto i : set) held[static_cast<std::size_t>(i) / per] += gain[static_cast<std::size_t>(i)];
  double sum = 0;
  int64_t used = 0;
  for (std::size_t g = 0; g < groups; ++g) {
    if (!(total[g] > 0)) continue;
    sum += held[g] / total[g];
    ++used;
  }
  return used ? sum / static_cast<double>(used) : NAN;
}

// A uniform draw without replacement of R_t's top-set size: over the family,
// or that of a layer's top set from each layer; ascending.
std::vector<int64_t> FamilyReduction::draw_set(core::Rng& rng, SetScope scope) const {
  const int64_t groups = scope == SetScope::Family ? 1 : layers_;
  const int64_t per = neurons_ / groups;
  const int64_t k = fraction_count(options_.fraction, per);
  std::vector<int64_t> out;
  std::vector<int64_t> pool(static_cast<std::size_t>(per));
  for (int64_t g = 0; g < groups; ++g) {
    std::iota(pool.begin(), pool.end(), g * per);
    for (int64_t i = 0; i < k; ++i)
      std::swap(pool[static_cast<std::size_t>(i)],
                pool[static_cast<std::size_t>(i) + rng.below(static_cast<uint64_t>(per - i))]);
    out.insert(out.end(), pool.begin(), pool.begin() + k);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void FamilyReduction::add_checkpoint(const AddPrompt& add) {
  const auto S = design_.scopes();
  const auto R = design_.relations;
  const auto P = design_.relation.size();
  const auto N = static_cast<std::size_t>(neurons_);
  const std::size_t G = group_ > 0 ? N / static_cast<std::size_t>(group_) : 0;
  std::vector<int64_t> count(static_cast<std::size_t>(R), 0);
  for (auto r : design_.relation) ++count[static_cast<std::size_t>(r)];
  const bool absolute = options_.aggregate == Aggregate::Absolute;
  const bool by_score = options_.gain_rank == GainRank::Score;
  const auto kept_at = std::find(keep_.begin(), keep_.end(), checkpoints_);
  const bool keep = kept_at != keep_.end();

  // This checkpoint's random set (uniform, without replacement), sorted.
  const auto K = top_count();
  std::vector<int64_t> pool(N);
  std::iota(pool.begin(), pool.end(), 0);
  for (int64_t i = 0; i < K; ++i)
    std::swap(pool[static_cast<std::size_t>(i)],
              pool[static_cast<std::size_t>(i) + rng_.below(N - static_cast<uint64_t>(i))]);
  std::vector<int64_t> random_set(pool.begin(), pool.begin() + K);
  std::sort(random_set.begin(), random_set.end());
  if (checkpoints_ > 0) {
    const std::vector<int64_t> last(random_sets_.end() - K, random_sets_.end());
    jaccard_random_.push_back(jaccard(last, random_set));
  }
  // R_t's random set, at R_t's scope (its own generator: random_set does not
  // depend on the baseline's reading).
  const auto gain_set = draw_set(gain_rng_, options_.gain_scope);

  // One draw (0: the point estimate, then each resample): its scores, top
  // sets, gains and profiles. Draws touch only their own slots, so they run
  // on `threads` threads with the same results.
  const auto one_draw = [&](std::size_t d, std::vector<std::vector<double>>& acc,
                            std::vector<std::vector<double>>& routed) {
    for (auto& a : acc) std::fill(a.begin(), a.end(), 0.0);
    for (auto& a : routed) std::fill(a.begin(), a.end(), 0.0);
    for (std::size_t j = 0; j < P; ++j) {
      const int32_t source = d == 0 ? static_cast<int32_t>(j) : design_.resamples[d - 1][j];
      const auto r = static_cast<std::size_t>(design_.relation[j]);
      add(source, Accumulator{1.0, absolute, acc[r].data(), G ? routed[r].data() : nullptr});
    }
    for (int32_t s = 0; s < S; ++s) {
      std::vector<double> score(N, 0.0);
      const bool empty = s > 0 && count[static_cast<std::size_t>(s - 1)] == 0;
      if (empty) {
        std::fill(score.begin(), score.end(), NAN);
      } else if (G) {  // each expert's neurons over the scope's prompts routed to it
        std::vector<double> sum(N, 0.0), n(G, 0.0);
        for (std::size_t r = 0; r < acc.size(); ++r) {
          if (s > 0 && r != static_cast<std::size_t>(s - 1)) continue;
          for (std::size_t i = 0; i < N; ++i) sum[i] += acc[r][i];
          for (std::size_t g = 0; g < G; ++g) n[g] += routed[r][g];
        }
        for (std::size_t i = 0; i < N; ++i) {
          const double m = n[i / static_cast<std::size_t>(group_)];
          score[i] = m > 0 ? sum[i] / m : 0.0;
        }
      } else if (s == 0) {
        for (const auto& a : acc)
          for (std::size_t i = 0; i < N; ++i) score[i] += a[i];
        for (auto& v : score) v /= static_cast<double>(P);
      } else {
        const auto& a = acc[static_cast<std::size_t>(s - 1)];
        for (std::size_t i = 0; i < N; ++i) score[i] = a[i] / static_cast<double>(count[s - 1]);
      }
      const std::size_t slot = d * static_cast<std::size_t>(S) + static_cast<std::size_t>(s);
      auto profile = empty ? std::vector<double>(static_cast<std::size_t>(layers_), NAN)
                           : layer_profile(score, layers_);  // signed
      std::vector<int64_t> top = empty ? std::vector<int64_t>{} : top_set(score);
      for (auto& v : score) v = std::fabs(v);
      if (options_.layer_importance == LayerImportance::Absolute && !empty)
        profile = layer_profile(score, layers_);
      profiles_[slot].insert(profiles_[slot].end(), profile.begin(), profile.end());
      if (checkpoints_ > 0) {
        const auto& prev = previous_[slot];
        std::vector<double> gain(N);
        for (std::size_t i = 0; i < N; ++i) gain[i] = std::max(0.0, score[i] - prev[i]);
        const bool any = !empty && !std::isnan(prev[0]);
        jaccard_[slot].push_back(any ? jaccard(previous_top_[slot], top) : NAN);
        const auto ranked = by_score ? top_by(score, options_.gain_scope, true)
                                     : top_by(gain, options_.gain_scope, false);
        gain_[slot].push_back(any ? share_held(gain, ranked) : NAN);
        if (d == 0) {
          double baseline = NAN;
          if (any && options_.gain_baseline == BaselineScope::SameAsGain) {
            baseline = share_held(gain, gain_set);
          } else if (any) {  // the whole family's gain held by the Jaccard's random set
            double total = 0, held = 0;
            for (double g : gain) total += g;
            for (auto i : random_set) held += gain[static_cast<std::size_t>(i)];
            baseline = total > 0 ? held / total : NAN;
          }
          gain_random_[static_cast<std::size_t>(s)].push_back(baseline);
        }
      }
      if (keep) kept_[slot].push_back(top);
      previous_[slot] = std::move(score);
      previous_top_[slot] = std::move(top);
    }
  };
  const std::size_t draws = design_.resamples.size() + 1;
  const auto threads =
      std::min<std::size_t>(draws, static_cast<std::size_t>(std::max(1, options_.threads)));
  std::atomic<std::size_t> next{0};
  std::vector<std::exception_ptr> errors(threads);
  const auto worker = [&](std::size_t t) {
    try {
      std::vector<std::vector<double>> acc(static_cast<std::size_t>(R), std::vector<double>(N));
      std::vector<std::vector<double>> routed(static_cast<std::size_t>(R), std::vector<double>(G));
      for (std::size_t d = next++; d < draws; d = next++) one_draw(d, acc, routed);
    } catch (...) {
      errors[t] = std::current_exception();
      next = draws;
    }
  };
  std::vector<std::thread> helpers;
  for (std::size_t t = 1; t < threads; ++t) helpers.emplace_back(worker, t);
  worker(0);
  for (auto& h : helpers) h.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  random_sets_.insert(random_sets_.end(), random_set.begin(), random_set.end());
  gain_random_sets_.insert(gain_random_sets_.end(), gain_set.begin(), gain_set.end());
  ++checkpoints_;
}

namespace {

std::size_t common_count(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> both;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
  return both.size();
}

double survival(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  return a.empty() || b.empty()
             ? NAN
             : static_cast<double>(common_count(a, b)) / static_cast<double>(a.size());
}

}  // namespace

FamilyResult FamilyReduction::finish(const std::vector<int64_t>& steps,
                                     const std::vector<StepRange>& ranges,
                                     const std::vector<StepPair>& overlaps) const {
  if (static_cast<int64_t>(steps.size()) != checkpoints_)
    throw std::invalid_argument("FamilyReduction::finish: " + std::to_string(steps.size()) +
                                " steps for " + std::to_string(checkpoints_) + " checkpoints");
  const auto S = static_cast<std::size_t>(design_.scopes());
  const std::size_t D = design_.resamples.size() + 1;
  const auto C = static_cast<std::size_t>(checkpoints_);
  const auto L = static_cast<std::size_t>(layers_);
  const auto Q = ranges.size();
  using Draws = std::vector<std::vector<std::vector<double>>>;
  Draws jac(D, std::vector<std::vector<double>>(S)), gain = jac, prof = jac, mean = jac;
  Draws jm = jac, gm = jac, rho = jac, sig = jac, oj = jac, os = jac;
  const auto kept = [&](int64_t position) {
    const auto at = std::find(keep_.begin(), keep_.end(), position);
    if (at == keep_.end() || position >= checkpoints_)
      throw std::invalid_argument("FamilyReduction::finish: the top sets of checkpoint position " +
                                  std::to_string(position) + " were not kept");
    return static_cast<std::size_t>(at - keep_.begin());
  };
  for (std::size_t d = 0; d < D; ++d) {
    for (std::size_t s = 0; s < S; ++s) {
      const std::size_t slot = d * S + s;
      for (const auto& o : overlaps) {
        const auto& a = kept_[slot][kept(o.first)];
        const auto& b = kept_[slot][kept(o.second)];
        oj[d][s].push_back(a.empty() || b.empty() ? NAN : jaccard(a, b));
        os[d][s].push_back(survival(a, b));
      }
      jac[d][s] = jaccard_[slot];
      gain[d][s] = gain_[slot];
      prof[d][s] = profiles_[slot];
      std::vector<std::vector<double>> by_step;
      for (std::size_t c = 0; c < C; ++c) {
        std::vector<double> p(profiles_[slot].begin() + static_cast<std::ptrdiff_t>(c * L),
                              profiles_[slot].begin() + static_cast<std::ptrdiff_t>((c + 1) * L));
        mean[d][s].push_back(std::accumulate(p.begin(), p.end(), 0.0) / static_cast<double>(L));
        by_step.push_back(std::move(p));
      }
      for (const auto& r : ranges) {
        jm[d][s].push_back(pair_mean(jaccard_[slot], steps, r));
        gm[d][s].push_back(pair_mean(gain_[slot], steps, r));
        std::vector<std::vector<double>> in;
        for (std::size_t c = 0; c < C; ++c)
          if (steps[c] >= r.first && steps[c] <= r.last && !std::isnan(by_step[c][0]))
            in.push_back(by_step[c]);
        rho[d][s].push_back(in.size() >= 2 ? mean_pairwise_pearson(in) : NAN);
        sig[d][s].push_back(in.size() >= 2 ? mean_coefficient_of_variation(in) : NAN);
      }
    }
  }
  FamilyResult out;
  out.neurons = neurons_;
  out.layers = layers_;
  out.top_count = top_count();
  out.gain_top_count = gain_top_count();
  out.overlap_jaccard = summarise(oj, static_cast<int64_t>(overlaps.size()), options_.confidence);
  out.overlap_survival = summarise(os, static_cast<int64_t>(overlaps.size()), options_.confidence);
  const auto K = static_cast<std::size_t>(top_count());
  for (const auto& o : overlaps) {
    const auto row = [&](int64_t c) {
      return std::vector<int64_t>(random_sets_.begin() + static_cast<std::ptrdiff_t>(c * K),
                                  random_sets_.begin() + static_cast<std::ptrdiff_t>((c + 1) * K));
    };
    out.overlap_jaccard_random.push_back(jaccard(row(o.first), row(o.second)));
    out.overlap_survival_random.push_back(survival(row(o.first), row(o.second)));
  }
  const auto pairs = static_cast<int64_t>(C > 0 ? C - 1 : 0);
  out.jaccard = summarise(jac, pairs, options_.confidence);
  out.gain_concentration = summarise(gain, pairs, options_.confidence);
  out.layer_profile = summarise(prof, static_cast<int64_t>(C * L), options_.confidence);
  out.layer_mean = summarise(mean, static_cast<int64_t>(C), options_.confidence);
  out.jaccard_mean = summarise(jm, static_cast<int64_t>(Q), options_.confidence);
  out.gain_mean = summarise(gm, static_cast<int64_t>(Q), options_.confidence);
  out.rho_avg = summarise(rho, static_cast<int64_t>(Q), options_.confidence);
  out.sigma_rel = summarise(sig, static_cast<int64_t>(Q), options_.confidence);
  out.jaccard_random = jaccard_random_;
  out.random_sets = random_sets_;
  out.gain_random_sets = gain_random_sets_;
  for (const auto& g : gain_random_)
    out.gain_random.insert(out.gain_random.end(), g.begin(), g.end());
  for (const auto& r : ranges)
    out.jaccard_mean_random.push_back(pair_mean(jaccard_random_, steps, r));
  for (const auto& g : gain_random_)
    for (const auto& r : ranges) out.gain_mean_random.push_back(pair_mean(g, steps, r));
  return out;
}

AblationResult reduce_ablation(const std::vector<std::vector<std::vector<uint8_t>>>& hits,
                               const PromptDesign& design, const ReductionOptions& options) {
  const auto C = hits.size();
  const auto P = design.relation.size();
  const auto S = static_cast<std::size_t>(design.scopes());
  const std::size_t M = C ? hits[0].at(0).size() : 1;
  const std::size_t D = design.resamples.size() + 1;
  using Draws = std::vector<std::vector<std::vector<double>>>;
  Draws before(D, std::vector<std::vector<double>>(S)), after = before, drop = before,
                                                        mean = before;
  for (std::size_t d = 0; d < D; ++d) {
    for (std::size_t s = 0; s < S; ++s) {
      std::vector<double> sum_drop(M - 1, 0.0);
      std::vector<int64_t> used(M - 1, 0);
      for (std::size_t c = 0; c < C; ++c) {
        std::vector<double> hit(M, 0.0);
        double n = 0;
        for (std::size_t j = 0; j < P; ++j) {
          if (s > 0 && design.relation[j] != static_cast<int32_t>(s - 1)) continue;
          const auto src = d == 0 ? j : static_cast<std::size_t>(design.resamples[d - 1][j]);
          for (std::size_t m = 0; m < M; ++m) hit[m] += hits[c][src][m];
          n += 1;
        }
        for (auto& h : hit) h = n > 0 ? h / n : NAN;
        before[d][s].push_back(hit[0]);
        for (std::size_t m = 1; m < M; ++m) {
          after[d][s].push_back(hit[m]);
          const bool defined = hit[0] > 0 && hit[0] >= options.ablation_min_hit;
          const double pct = defined ? 100.0 * (hit[0] - hit[m]) / hit[0] : NAN;
          drop[d][s].push_back(pct);
          if (!std::isnan(pct)) {
            sum_drop[m - 1] += pct;
            ++used[m - 1];
          }
        }
      }
      for (std::size_t m = 0; m + 1 < M; ++m)
        mean[d][s].push_back(used[m] ? sum_drop[m] / static_cast<double>(used[m]) : NAN);
    }
  }
  AblationResult out;
  out.conditions = static_cast<int64_t>(M - 1);
  out.hit_before = summarise(before, static_cast<int64_t>(C), options.confidence);
  out.hit_after = summarise(after, static_cast<int64_t>(C * (M - 1)), options.confidence);
  out.drop_percent = summarise(drop, static_cast<int64_t>(C * (M - 1)), options.confidence);
  out.drop_mean = summarise(mean, static_cast<int64_t>(M - 1), options.confidence);
  return out;
}

}  // namespace lpi::analysis

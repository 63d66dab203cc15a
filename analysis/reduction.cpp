#include "analysis/reduction.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "analysis/metrics.hpp"

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

FamilyReduction::FamilyReduction(int64_t neurons, int64_t layers, const PromptDesign& design,
                                 const ReductionOptions& options)
    : neurons_(neurons),
      layers_(layers),
      design_(design),
      options_(options),
      rng_(options.seed ^ 0x5eedULL) {
  if (layers < 1 || neurons % layers != 0)
    throw std::invalid_argument("FamilyReduction: " + std::to_string(neurons) +
                                " neurons do not split into " + std::to_string(layers) + " layers");
  const std::size_t slots =
      (design.resamples.size() + 1) * static_cast<std::size_t>(design.scopes());
  previous_.resize(slots);
  previous_top_.resize(slots);
  jaccard_.resize(slots);
  gain_.resize(slots);
  profiles_.resize(slots);
  gain_random_.resize(static_cast<std::size_t>(design.scopes()));
}

int64_t FamilyReduction::top_count() const {
  const auto count = [&](int64_t n) {
    return std::max<int64_t>(
        1, static_cast<int64_t>(std::floor(options_.fraction * static_cast<double>(n))));
  };
  return options_.top_scope == SetScope::Family ? count(neurons_)
                                                : layers_ * count(neurons_ / layers_);
}

std::size_t FamilyReduction::state_bytes() const {
  return previous_.size() * static_cast<std::size_t>(neurons_) * sizeof(double);
}

std::vector<int64_t> FamilyReduction::top_set(const std::vector<double>& x) const {
  if (options_.top_scope == SetScope::Family) return top_fraction(x, options_.fraction, true);
  const auto per = neurons_ / layers_;
  std::vector<int64_t> out;
  for (int64_t l = 0; l < layers_; ++l) {
    const std::vector<double> seg(x.begin() + l * per, x.begin() + (l + 1) * per);
    for (auto i : top_fraction(seg, options_.fraction, true)) out.push_back(l * per + i);
  }
  return out;
}

namespace {

// The share of the total of gain[first, first + n) held by its top
// `fraction` (ties to the lower index); NaN when the total is 0.
double top_share(const std::vector<double>& gain, std::size_t first, std::size_t n,
                 double fraction) {
  const std::vector<double> seg(gain.begin() + static_cast<std::ptrdiff_t>(first),
                                gain.begin() + static_cast<std::ptrdiff_t>(first + n));
  const double total = std::accumulate(seg.begin(), seg.end(), 0.0);
  if (!(total > 0)) return NAN;
  double held = 0;
  for (auto i : top_fraction(seg, fraction, false)) held += seg[static_cast<std::size_t>(i)];
  return held / total;
}

}  // namespace

// R_t: over the family, or per layer and then averaged over the layers with a gain.
double FamilyReduction::concentration(const std::vector<double>& gain) const {
  if (options_.gain_scope == SetScope::Family)
    return top_share(gain, 0, gain.size(), options_.fraction);
  const auto per = static_cast<std::size_t>(neurons_ / layers_);
  double sum = 0;
  int64_t used = 0;
  for (std::size_t l = 0; l < static_cast<std::size_t>(layers_); ++l) {
    const double r = top_share(gain, l * per, per, options_.fraction);
    if (std::isnan(r)) continue;
    sum += r;
    ++used;
  }
  return used ? sum / static_cast<double>(used) : NAN;
}

void FamilyReduction::add_checkpoint(const AddPrompt& add) {
  const auto S = design_.scopes();
  const auto R = design_.relations;
  const auto P = design_.relation.size();
  const auto N = static_cast<std::size_t>(neurons_);
  std::vector<int64_t> count(static_cast<std::size_t>(R), 0);
  for (auto r : design_.relation) ++count[static_cast<std::size_t>(r)];

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

  // One draw (0: the point estimate, then each resample): its scores, top
  // sets, gains and profiles. Draws touch only their own slots, so they run
  // on `threads` threads with the same results.
  const auto one_draw = [&](std::size_t d, std::vector<std::vector<double>>& acc) {
    for (auto& a : acc) std::fill(a.begin(), a.end(), 0.0);
    for (std::size_t j = 0; j < P; ++j) {
      const int32_t source = d == 0 ? static_cast<int32_t>(j) : design_.resamples[d - 1][j];
      add(source, 1.0, acc[static_cast<std::size_t>(design_.relation[j])].data());
    }
    for (int32_t s = 0; s < S; ++s) {
      std::vector<double> score(N, 0.0);
      if (s == 0) {
        for (const auto& a : acc)
          for (std::size_t i = 0; i < N; ++i) score[i] += a[i];
        for (auto& v : score) v /= static_cast<double>(P);
      } else if (count[static_cast<std::size_t>(s - 1)] > 0) {
        const auto& a = acc[static_cast<std::size_t>(s - 1)];
        for (std::size_t i = 0; i < N; ++i) score[i] = a[i] / static_cast<double>(count[s - 1]);
      } else {
        std::fill(score.begin(), score.end(), NAN);
      }
      const std::size_t slot = d * static_cast<std::size_t>(S) + static_cast<std::size_t>(s);
      const bool empty = std::isnan(score[0]);
      auto profile = empty ? std::vector<double>(static_cast<std::size_t>(layers_), NAN)
                           : layer_profile(score, layers_);
      profiles_[slot].insert(profiles_[slot].end(), profile.begin(), profile.end());
      std::vector<int64_t> top = empty ? std::vector<int64_t>{} : top_set(score);
      for (auto& v : score) v = std::fabs(v);
      if (checkpoints_ > 0) {
        const auto& prev = previous_[slot];
        std::vector<double> gain(N);
        for (std::size_t i = 0; i < N; ++i) gain[i] = std::max(0.0, score[i] - prev[i]);
        const bool any = !empty && !std::isnan(prev[0]);
        jaccard_[slot].push_back(any ? jaccard(previous_top_[slot], top) : NAN);
        gain_[slot].push_back(any ? concentration(gain) : NAN);
        if (d == 0) {
          double total = 0, held = 0;
          for (double g : gain) total += g;
          for (auto i : random_set) held += gain[static_cast<std::size_t>(i)];
          gain_random_[static_cast<std::size_t>(s)].push_back(any && total > 0 ? held / total
                                                                               : NAN);
        }
      }
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
      for (std::size_t d = next++; d < draws; d = next++) one_draw(d, acc);
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
  ++checkpoints_;
}

FamilyResult FamilyReduction::finish(const std::vector<int64_t>& steps,
                                     const std::vector<StepRange>& ranges) const {
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
  Draws jm = jac, gm = jac, rho = jac, sig = jac;
  for (std::size_t d = 0; d < D; ++d) {
    for (std::size_t s = 0; s < S; ++s) {
      const std::size_t slot = d * S + s;
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

// lpi-analyze's output: the /analysis group (in FILE.analysis.h5, linked
// from the store), the CSV files and the paper's tables as text.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "analysis/tools/analyze_store.hpp"
#include "common/h5/h5.hpp"
#include "common/store/store_lock.hpp"
#include "lpi/lpi_config.hpp"

namespace lpi::analysis {
namespace fs = std::filesystem;

namespace {

std::string fmt(double v, int digits = 4) {
  if (std::isnan(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string csv_number(double v) {
  if (std::isnan(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void write_stat(const h5::Group& group, const std::string& name, const Stat& st,
                const std::vector<int64_t>& shape) {
  group.write_dataset(name, shape, st.value);
  group.write_dataset(name + "_lo", shape, st.lo);
  group.write_dataset(name + "_hi", shape, st.hi);
}

void write_family(const h5::Group& root, const std::string& name, const FamilyResult& f, int64_t S,
                  int64_t C, int64_t Q, int64_t O) {
  const auto g = root.create_group(name);
  g.set_attribute("neurons", f.neurons);
  g.set_attribute("top_count", f.top_count);
  g.set_attribute("gain_top_count", f.gain_top_count);
  write_stat(g, "jaccard", f.jaccard, {S, C - 1});
  g.write_dataset("jaccard_random", {C - 1}, f.jaccard_random);
  write_stat(g, "gain_concentration", f.gain_concentration, {S, C - 1});
  g.write_dataset("gain_concentration_random", {S, C - 1}, f.gain_random);
  write_stat(g, "layer_profile", f.layer_profile, {S, C, f.layers});
  write_stat(g, "layer_mean", f.layer_mean, {S, C});
  g.write_dataset("random_set", {C, f.top_count}, f.random_sets);
  write_stat(g, "jaccard_mean", f.jaccard_mean, {S, Q});
  g.write_dataset("jaccard_mean_random", {Q}, f.jaccard_mean_random);
  write_stat(g, "gain_concentration_mean", f.gain_mean, {S, Q});
  g.write_dataset("gain_concentration_mean_random", {S, Q}, f.gain_mean_random);
  write_stat(g, "rho_avg", f.rho_avg, {S, Q});
  write_stat(g, "sigma_rel", f.sigma_rel, {S, Q});
  g.write_dataset("gain_random_set", {C, f.gain_top_count}, f.gain_random_sets);
  write_stat(g, "overlap_jaccard", f.overlap_jaccard, {S, O});
  g.write_dataset("overlap_jaccard_random", {O}, f.overlap_jaccard_random);
  write_stat(g, "overlap_survival", f.overlap_survival, {S, O});
  g.write_dataset("overlap_survival_random", {O}, f.overlap_survival_random);
}

const char* scope_name(SetScope s) {
  return s == SetScope::Family ? "family" : "layer";
}

// The readings of docs/STORE.md, as the attributes and lpi-analyze's options spell them.
void set_readings(const h5::Group& g, const ReductionOptions& r) {
  g.set_attribute("top_scope", std::string(scope_name(r.top_scope)));
  g.set_attribute("gain_scope", std::string(scope_name(r.gain_scope)));
  g.set_attribute("aggregate",
                  std::string(r.aggregate == Aggregate::Signed ? "signed" : "absolute"));
  g.set_attribute("expert_mean",
                  std::string(r.expert_mean == ExpertMean::AllPrompts ? "all" : "routed"));
  g.set_attribute("gain_rank", std::string(r.gain_rank == GainRank::Gain ? "gain" : "score"));
  g.set_attribute("gain_baseline",
                  std::string(r.gain_baseline == BaselineScope::SameAsGain ? "same" : "family"));
  g.set_attribute(
      "layer_importance",
      std::string(r.layer_importance == LayerImportance::Signed ? "signed" : "absolute"));
}

}  // namespace

std::string analysis_file(const std::string& store_path) {
  const fs::path store(store_path);
  return (store.parent_path() / (store.stem().string() + ".analysis.h5")).string();
}

namespace {

// The store's /analysis: an external link to FILE.analysis.h5:/analysis
// (the name relative, found beside the store). Touches the store only when
// the link is missing or points elsewhere.
void link_analysis(const std::string& store_path, const std::string& target) {
  const auto name = fs::path(target).filename().string();
  const auto linked = [&](const h5::File& file) {
    const auto link = file.external_link("analysis");
    return link && link->first == name && link->second == "/analysis";
  };
  if (linked(h5::File::open(store_path))) return;
  h5::File file;
  try {
    file = h5::File::open(store_path, h5::Mode::read_write);
  } catch (const h5::Error& e) {
    throw std::runtime_error("store " + store_path +
                             " cannot be opened to link its /analysis (is lpi-sweep still running "
                             "on it, or is the file read-only?): " +
                             e.what());
  }
  if (file.exists("analysis")) file.remove("analysis");
  file.create_external_link("analysis", name, "/analysis");
  file.flush();
}

}  // namespace

void write_analysis(const StoreAnalysis& a, const AnalyzeOptions& options) {
  const auto& p = a.plan;
  // No lpi-sweep (and no other lpi-analyze) writes the store meanwhile.
  const store::StoreLock lock(p.path, "lpi-analyze");
  // Written whole as FILE.analysis.h5.partial, renamed into place: a rerun
  // replaces it atomically, and a kill leaves the old results (or none).
  const auto target = analysis_file(p.path), partial = target + ".partial";
  write_group(a, options, partial);
  fs::rename(partial, target);
  link_analysis(p.path, target);
}

void write_group(const StoreAnalysis& a, const AnalyzeOptions& options, const std::string& path) {
  const auto& p = a.plan;
  const auto file = h5::File::create(path);
  const auto g = file.create_group("analysis");
  g.set_attribute("store", fs::absolute(p.path).lexically_normal().string());
  g.set_attribute("format", std::string("lpi-analyze results"));
  g.set_attribute("format_version", int64_t{1});
  g.set_attribute("tool_version", std::string(LPI_VERSION));
  g.set_attribute("command", options.command);
  g.set_attribute("fraction", options.reduction.fraction);
  g.set_attribute("bootstrap", int64_t{options.reduction.bootstrap});
  g.set_attribute("seed", static_cast<int64_t>(options.reduction.seed));
  g.set_attribute("confidence", options.reduction.confidence);
  set_readings(g, options.reduction);
  g.set_attribute("consolidation_range", static_cast<int64_t>(a.consolidation));
  g.set_attribute("partial", int64_t{p.partial});
  g.set_attribute("ablation_min_hit", options.reduction.ablation_min_hit);
  std::string others;
  for (const auto& o : p.compared_with) others += (others.empty() ? "" : ";") + o;
  g.set_attribute("compared_with", others);
  const auto C = static_cast<int64_t>(p.steps.size());
  const auto P = static_cast<int64_t>(p.prompts.size());
  const auto S = static_cast<int64_t>(a.scopes.size());
  const auto Q = static_cast<int64_t>(a.ranges.size());
  const auto B = static_cast<int64_t>(a.design.resamples.size());
  g.write_dataset("checkpoint", {C}, p.checkpoints);
  g.write_dataset("step", {C}, p.steps);
  g.write_dataset("prompt", {P}, p.prompts);
  std::vector<int32_t> boot;
  for (const auto& row : a.design.resamples) boot.insert(boot.end(), row.begin(), row.end());
  g.write_dataset("bootstrap", {B, P}, boot);
  g.write_dataset("scope", a.scopes);
  std::vector<int64_t> first, last;
  std::vector<std::string> names;
  for (const auto& r : a.ranges) {
    first.push_back(r.first);
    last.push_back(r.last);
    names.push_back(r.name);
  }
  g.write_dataset("range_first", {Q}, first);
  g.write_dataset("range_last", {Q}, last);
  g.write_dataset("range_name", names);
  const auto O = static_cast<int64_t>(a.overlaps.size());
  std::vector<int64_t> overlap_first, overlap_second;
  for (const auto& o : a.overlaps) {
    overlap_first.push_back(p.steps[static_cast<std::size_t>(o.first)]);
    overlap_second.push_back(p.steps[static_cast<std::size_t>(o.second)]);
  }
  g.write_dataset("overlap_first_step", {O}, overlap_first);
  g.write_dataset("overlap_second_step", {O}, overlap_second);
  g.write_dataset("range_checkpoints", {Q}, a.range_checkpoints);
  g.write_dataset("snapshot", {static_cast<int64_t>(a.snapshots.size())}, a.snapshots);
  write_family(g, "ffn", a.ffn, S, C, Q, O);
  write_family(g, "attn", a.attn, S, C, Q, O);
  if (a.has_ablation) {
    const auto ab = g.create_group("ablation");
    const std::vector<std::string> conditions(p.conditions.begin() + 1, p.conditions.end());
    const auto M1 = static_cast<int64_t>(conditions.size());
    ab.write_dataset("condition", conditions);
    write_stat(ab, "hit_before", a.ablation.hit_before, {S, C});
    write_stat(ab, "hit_after", a.ablation.hit_after, {S, C, M1});
    write_stat(ab, "drop_percent", a.ablation.drop_percent, {S, C, M1});
    write_stat(ab, "drop_percent_mean", a.ablation.drop_mean, {S, M1});
  }
  file.flush();
}

std::vector<std::string> write_csv(const StoreAnalysis& a, const std::string& dir) {
  std::filesystem::create_directories(dir);
  const auto& p = a.plan;
  const auto base = (std::filesystem::path(dir) / p.job_name).string();
  std::vector<std::string> written;
  const auto open = [&](const std::string& suffix, const std::string& header) {
    written.push_back(base + suffix);
    std::ofstream out(written.back());
    if (!out) throw std::runtime_error("cannot write " + written.back());
    out << header << '\n';
    return out;
  };
  const auto C = static_cast<int64_t>(p.steps.size());
  const auto S = static_cast<int64_t>(a.scopes.size());
  const auto L = p.shape.num_layers;
  const std::pair<const char*, const FamilyResult*> families[] = {{"ffn", &a.ffn},
                                                                  {"attn", &a.attn}};
  {
    auto out = open("-trajectory.csv",
                    "model,family,scope,step,jaccard,jaccard_lo,jaccard_hi,jaccard_random,"
                    "gain_concentration,gain_concentration_lo,gain_concentration_hi,"
                    "gain_concentration_random,layer_mean,layer_mean_lo,layer_mean_hi");
    for (const auto& [name, f] : families) {
      for (int64_t s = 0; s < S; ++s) {
        for (int64_t c = 0; c < C; ++c) {
          out << p.job_name << ',' << name << ',' << a.scopes[s] << ',' << p.steps[c];
          const auto at = [&](const std::vector<double>& v, int64_t n, int64_t i) {
            return csv_number(v[static_cast<std::size_t>(s * n + i)]);
          };
          if (c > 0) {
            const auto q = c - 1;
            out << ',' << at(f->jaccard.value, C - 1, q) << ',' << at(f->jaccard.lo, C - 1, q)
                << ',' << at(f->jaccard.hi, C - 1, q) << ','
                << csv_number(f->jaccard_random[static_cast<std::size_t>(q)]) << ','
                << at(f->gain_concentration.value, C - 1, q) << ','
                << at(f->gain_concentration.lo, C - 1, q) << ','
                << at(f->gain_concentration.hi, C - 1, q) << ',' << at(f->gain_random, C - 1, q);
          } else {
            out << ",,,,,,,,";
          }
          out << ',' << at(f->layer_mean.value, C, c) << ',' << at(f->layer_mean.lo, C, c) << ','
              << at(f->layer_mean.hi, C, c) << '\n';
        }
      }
    }
  }
  {
    auto out = open("-layers.csv", "model,family,scope,step,layer,importance,lo,hi");
    for (const auto& [name, f] : families)
      for (int64_t s = 0; s < S; ++s)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t l = 0; l < L; ++l) {
            const auto i = static_cast<std::size_t>((s * C + c) * L + l);
            out << p.job_name << ',' << name << ',' << a.scopes[s] << ',' << p.steps[c] << ',' << l
                << ',' << csv_number(f->layer_profile.value[i]) << ','
                << csv_number(f->layer_profile.lo[i]) << ',' << csv_number(f->layer_profile.hi[i])
                << '\n';
          }
  }
  {
    auto out =
        open("-summary.csv",
             "model,family,scope,range_first,range_last,checkpoints,metric,value,lo,hi,random,"
             "range_name");
    const auto Q = static_cast<int64_t>(a.ranges.size());
    for (const auto& [name, f] : families) {
      const std::tuple<const char*, const Stat*, const std::vector<double>*, bool> metrics[] = {
          {"jaccard_mean", &f->jaccard_mean, &f->jaccard_mean_random, false},
          {"gain_concentration_mean", &f->gain_mean, &f->gain_mean_random, true},
          {"rho_avg", &f->rho_avg, nullptr, false},
          {"sigma_rel", &f->sigma_rel, nullptr, false}};
      for (int64_t s = 0; s < S; ++s)
        for (int64_t q = 0; q < Q; ++q)
          for (const auto& [metric, st, random, per_scope] : metrics) {
            const auto i = static_cast<std::size_t>(s * Q + q);
            out << p.job_name << ',' << name << ',' << a.scopes[s] << ',' << a.ranges[q].first
                << ',' << a.ranges[q].last << ',' << a.range_checkpoints[q] << ',' << metric << ','
                << csv_number(st->value[i]) << ',' << csv_number(st->lo[i]) << ','
                << csv_number(st->hi[i]) << ','
                << (random ? csv_number((*random)[per_scope ? i : static_cast<std::size_t>(q)])
                           : "")
                << ',' << a.ranges[q].name << '\n';
          }
    }
  }
  {
    auto out =
        open("-overlap.csv", "model,family,scope,first_step,second_step,metric,value,lo,hi,random");
    const auto O = a.overlaps.size();
    for (const auto& [name, f] : families) {
      const std::tuple<const char*, const Stat*, const std::vector<double>*> metrics[] = {
          {"jaccard", &f->overlap_jaccard, &f->overlap_jaccard_random},
          {"survival", &f->overlap_survival, &f->overlap_survival_random}};
      for (int64_t s = 0; s < S; ++s)
        for (std::size_t o = 0; o < O; ++o)
          for (const auto& [metric, st, random] : metrics) {
            const auto i = static_cast<std::size_t>(s) * O + o;
            out << p.job_name << ',' << name << ',' << a.scopes[s] << ','
                << p.steps[static_cast<std::size_t>(a.overlaps[o].first)] << ','
                << p.steps[static_cast<std::size_t>(a.overlaps[o].second)] << ',' << metric << ','
                << csv_number(st->value[i]) << ',' << csv_number(st->lo[i]) << ','
                << csv_number(st->hi[i]) << ',' << csv_number((*random)[o]) << '\n';
          }
    }
  }
  if (a.has_ablation) {
    auto out =
        open("-ablation.csv", "model,scope,step,condition,hit_before,hit_after,drop_percent");
    const auto M1 = a.ablation.conditions;
    for (int64_t s = 0; s < S; ++s)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t m = 0; m < M1; ++m) {
          const auto i = static_cast<std::size_t>((s * C + c) * M1 + m);
          out << p.job_name << ',' << a.scopes[s] << ',' << p.steps[c] << ','
              << p.conditions[static_cast<std::size_t>(m + 1)] << ','
              << csv_number(a.ablation.hit_before.value[static_cast<std::size_t>(s * C + c)]) << ','
              << csv_number(a.ablation.hit_after.value[i]) << ','
              << csv_number(a.ablation.drop_percent.value[i]) << '\n';
        }
  }
  return written;
}

std::string tables_text(const std::vector<StoreAnalysis>& analyses) {
  std::ostringstream out;
  const auto cell = [](const Stat& st, std::size_t i, double scale, int digits) {
    return fmt(st.value[i] * scale, digits) + " [" + fmt(st.lo[i] * scale, digits) + ", " +
           fmt(st.hi[i] * scale, digits) + "]";
  };
  out << "Table 2 (neuron-level stability; all prompts; 95% bootstrap intervals)\n";
  for (const auto& a : analyses) {
    const auto& r = a.ranges;
    const std::size_t cons = a.consolidation;
    for (const auto& [name, f] : {std::pair{"FFN", &a.ffn}, std::pair{"ATTN", &a.attn}}) {
      out << "  " << a.plan.job_name << " " << name << ":";
      for (std::size_t q = 0; q < std::min<std::size_t>(2, cons); ++q)
        out << "  mean J_stab % " << r[q].label() << " " << cell(f->jaccard_mean, q, 100, 1)
            << " (random " << fmt(f->jaccard_mean_random[q] * 100, 2) << ")";
      out << "  mean R_t % " << r[cons].label() << " " << cell(f->gain_mean, cons, 100, 1)
          << " (random " << fmt(f->gain_mean_random[cons] * 100, 1) << ")\n";
      for (std::size_t o = 0; o < a.overlaps.size(); ++o)
        out << "    top-set overlap, steps " << a.plan.steps[a.overlaps[o].first] << " and "
            << a.plan.steps[a.overlaps[o].second] << ": J % " << cell(f->overlap_jaccard, o, 100, 1)
            << " (random " << fmt(f->overlap_jaccard_random[o] * 100, 2) << "), survival % "
            << cell(f->overlap_survival, o, 100, 1) << " (random "
            << fmt(f->overlap_survival_random[o] * 100, 2) << ")\n";
    }
  }
  out << "Table 3 (layer-level stability: rho_avg, sigma_rel)\n";
  for (const auto& a : analyses) {
    for (std::size_t q = 0; q < a.ranges.size(); ++q) {
      out << "  " << a.plan.job_name << " " << a.ranges[q].label() << " (" << a.range_checkpoints[q]
          << " checkpoints):  FFN rho " << cell(a.ffn.rho_avg, q, 1, 2) << " sigma "
          << cell(a.ffn.sigma_rel, q, 1, 2) << "  ATTN rho " << cell(a.attn.rho_avg, q, 1, 2)
          << " sigma " << cell(a.attn.sigma_rel, q, 1, 2) << "\n";
    }
  }
  out << "Table 4 (HIT@10 drop % from masking, mean over the checkpoints with an unmasked HIT@10 > "
         "0";
  if (!analyses.empty() && analyses[0].ablation_min_hit > 0)
    out << " and >= " << fmt(analyses[0].ablation_min_hit, 2);
  out << ")\n";
  for (const auto& a : analyses) {
    out << "  " << a.plan.job_name << ":";
    if (!a.has_ablation) {
      out << " no ablation data (the job's [ablation] enabled = 0)\n";
      continue;
    }
    for (int64_t m = 0; m < a.ablation.conditions; ++m)
      out << "  " << a.plan.conditions[static_cast<std::size_t>(m + 1)] << " "
          << cell(a.ablation.drop_mean, static_cast<std::size_t>(m), 1, 2);
    out << "\n";
  }
  return out.str();
}

}  // namespace lpi::analysis

#include "analysis/tools/analyze_store.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "common/store/h5.hpp"
#include "common/store/sweep_schema.hpp"
#include "common/store/sweep_store.hpp"
#include "lpi/lpi_config.hpp"

namespace lpi::analysis {
namespace h5 = lpi::store;
namespace fs = std::filesystem;

namespace {

std::string prompt_key(const store::SweepDescription& d, std::size_t p) {
  return d.relation_ids.at(static_cast<std::size_t>(d.prompt_relation[p])) + '\x1f' +
         std::to_string(d.prompt_sample[p]) + '\x1f' + d.prompt_text[p];
}

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
    } catch (const h5::H5Error& e) {
      const bool locked = std::string(e.what()).find("lock") != std::string::npos;
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
    p.architecture = d.shape.architecture;
    p.layers = d.shape.num_layers;
    p.heads = d.shape.num_heads;
    p.head_dim = d.shape.head_dim;
    p.intermediate = d.shape.intermediate_size;
    p.experts = d.shape.num_experts;
    p.experts_per_token = d.shape.experts_per_token;
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

// One checkpoint's per-prompt tensors of a store, all prompts.
struct CheckpointData {
  std::vector<float> attn, ffn;     // [P, L, A], [P, L, (k,) I]
  std::vector<int32_t> expert_ids;  // [P, L, k] (MoE)
};

CheckpointData read_checkpoint(hid_t file, const StorePlan& plan, int64_t prompts, int32_t c) {
  CheckpointData out;
  const int64_t L = plan.layers, A = plan.heads * plan.head_dim, I = plan.intermediate;
  const int64_t k = plan.experts_per_token;
  const auto read = [&](const char* name, std::vector<int64_t> count, auto& into, hid_t type) {
    int64_t n = 1;
    for (auto x : count) n *= x;
    into.resize(static_cast<std::size_t>(n));
    std::vector<int64_t> start(count.size(), 0);
    start[0] = c;
    const auto ds = store::schema::open_dataset(file, name);
    store::schema::read_slab(ds.id(), type, start, count, into.data(), H5P_DEFAULT,
                             std::string(name) + " of " + plan.path);
  };
  read(store::schema::kAttn, {1, prompts, L, A}, out.attn, H5T_NATIVE_FLOAT);
  if (plan.experts > 0) {
    read(store::schema::kFfn, {1, prompts, L, k, I}, out.ffn, H5T_NATIVE_FLOAT);
    read(store::schema::kExpertIds, {1, prompts, L, k}, out.expert_ids, H5T_NATIVE_INT32);
  } else {
    read(store::schema::kFfn, {1, prompts, L, I}, out.ffn, H5T_NATIVE_FLOAT);
  }
  return out;
}

std::vector<std::vector<uint8_t>> read_hits(hid_t file, const StorePlan& plan, int64_t prompts,
                                            int32_t c) {
  const auto M = static_cast<int64_t>(plan.conditions.size());
  std::vector<uint8_t> all(static_cast<std::size_t>(prompts * M));
  const auto ds = store::schema::open_dataset(file, "ablation/hit_at_10");
  store::schema::read_slab(ds.id(), H5T_NATIVE_UINT8, {c, 0, 0}, {1, prompts, M}, all.data(),
                           H5P_DEFAULT, "ablation/hit_at_10 of " + plan.path);
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
  a.ranges.push_back({plan.steps.front(), plan.steps.back()});
  for (const auto& r : a.ranges) {
    int32_t n = 0;
    for (auto s : plan.steps) n += s >= r.first && s <= r.last;
    a.range_checkpoints.push_back(n);
    if (n < 2)
      warn("store " + plan.path + ": step range " + r.label() + " holds " + std::to_string(n) +
           " analysed checkpoint(s) (steps " + std::to_string(plan.steps.front()) + " to " +
           std::to_string(plan.steps.back()) + "); its statistics need 2 and are NaN");
  }
  const auto C = plan.steps.size();
  if (options.snapshot_steps.empty()) {
    for (std::size_t pos : {std::size_t{0}, C / 2, C - 1})
      if (a.snapshots.empty() || a.snapshots.back() != static_cast<int32_t>(pos))
        a.snapshots.push_back(static_cast<int32_t>(pos));
  } else {
    for (auto step : options.snapshot_steps) {
      std::size_t best = 0;
      for (std::size_t c = 1; c < C; ++c)
        if (std::llabs(plan.steps[c] - step) < std::llabs(plan.steps[best] - step)) best = c;
      if (plan.steps[best] != step)
        warn("store " + plan.path + ": no analysed checkpoint at step " + std::to_string(step) +
             "; the snapshot uses step " + std::to_string(plan.steps[best]));
      a.snapshots.push_back(static_cast<int32_t>(best));
    }
  }

  const int64_t L = plan.layers, A = plan.heads * plan.head_dim, I = plan.intermediate;
  const int64_t E = plan.experts, k = plan.experts_per_token;
  const bool moe = E > 0;
  const int64_t ffn_neurons = L * (moe ? E * I : I), attn_neurons = L * A;
  FamilyReduction ffn(ffn_neurons, L, a.design, options.reduction);
  FamilyReduction attn(attn_neurons, L, a.design, options.reduction);
  std::vector<std::vector<std::vector<uint8_t>>> hits;
  a.has_ablation = !plan.conditions.empty();
  a.ablation_min_hit = options.reduction.ablation_min_hit;

  const auto file = h5::open_file(plan.path);
  const auto prompts = static_cast<int64_t>(h5::dataset_shape(file.id(), "prompts/relation").at(0));
  for (std::size_t pos = 0; pos < C; ++pos) {
    const int32_t c = plan.checkpoints[pos];
    const auto data = read_checkpoint(file.id(), plan, prompts, c);
    attn.add_checkpoint([&](int32_t source, double w, double* acc) {
      const float* v = data.attn.data() + plan.prompts[source] * attn_neurons;
      for (int64_t i = 0; i < attn_neurons; ++i) acc[i] += w * v[i];
    });
    if (!moe) {
      ffn.add_checkpoint([&](int32_t source, double w, double* acc) {
        const float* v = data.ffn.data() + plan.prompts[source] * ffn_neurons;
        for (int64_t i = 0; i < ffn_neurons; ++i) acc[i] += w * v[i];
      });
    } else {
      ffn.add_checkpoint([&](int32_t source, double w, double* acc) {
        const int64_t p = plan.prompts[source];
        for (int64_t l = 0; l < L; ++l) {
          for (int64_t slot = 0; slot < k; ++slot) {
            const int32_t e = data.expert_ids[static_cast<std::size_t>((p * L + l) * k + slot)];
            if (e < 0 || e >= E)
              throw std::runtime_error("store " + plan.path + ": importance/expert_ids[" +
                                       std::to_string(c) + ", " + std::to_string(p) + ", " +
                                       std::to_string(l) + "] holds expert " + std::to_string(e) +
                                       ", expected 0.." + std::to_string(E - 1));
            const float* v = data.ffn.data() + ((p * L + l) * k + slot) * I;
            double* out = acc + (l * E + e) * I;
            for (int64_t i = 0; i < I; ++i) out[i] += w * v[i];
          }
        }
      });
    }
    if (a.has_ablation) hits.push_back(read_hits(file.id(), plan, prompts, c));
    if (progress) progress(pos + 1, C);
  }
  a.ffn = ffn.finish(plan.steps, a.ranges);
  a.attn = attn.finish(plan.steps, a.ranges);
  if (a.has_ablation) a.ablation = reduce_ablation(hits, a.design, options.reduction);
  return a;
}

namespace {

void write_stat(hid_t group, const std::string& name, const Stat& st,
                const std::vector<int64_t>& shape) {
  h5::write_f64(group, name, shape, st.value.data());
  h5::write_f64(group, name + "_lo", shape, st.lo.data());
  h5::write_f64(group, name + "_hi", shape, st.hi.data());
}

void write_family(hid_t root, const std::string& name, const FamilyResult& f, int64_t S, int64_t C,
                  int64_t Q) {
  const auto g = h5::create_group(root, name);
  h5::set_attr(g.id(), "neurons", f.neurons);
  h5::set_attr(g.id(), "top_count", f.top_count);
  write_stat(g.id(), "jaccard", f.jaccard, {S, C - 1});
  h5::write_f64(g.id(), "jaccard_random", {C - 1}, f.jaccard_random.data());
  write_stat(g.id(), "gain_concentration", f.gain_concentration, {S, C - 1});
  h5::write_f64(g.id(), "gain_concentration_random", {S, C - 1}, f.gain_random.data());
  write_stat(g.id(), "layer_profile", f.layer_profile, {S, C, f.layers});
  write_stat(g.id(), "layer_mean", f.layer_mean, {S, C});
  h5::write_i64(g.id(), "random_set", {C, f.top_count}, f.random_sets.data());
  write_stat(g.id(), "jaccard_mean", f.jaccard_mean, {S, Q});
  h5::write_f64(g.id(), "jaccard_mean_random", {Q}, f.jaccard_mean_random.data());
  write_stat(g.id(), "gain_concentration_mean", f.gain_mean, {S, Q});
  h5::write_f64(g.id(), "gain_concentration_mean_random", {S, Q}, f.gain_mean_random.data());
  write_stat(g.id(), "rho_avg", f.rho_avg, {S, Q});
  write_stat(g.id(), "sigma_rel", f.sigma_rel, {S, Q});
}

const char* scope_name(SetScope s) {
  return s == SetScope::Family ? "family" : "layer";
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
  const auto linked = [&](hid_t file) {
    if (H5Lexists(file, "analysis", H5P_DEFAULT) <= 0) return false;
    H5L_info_t info;
    h5::check(H5Lget_info(file, "analysis", &info, H5P_DEFAULT), "the /analysis link of " + store_path);
    if (info.type != H5L_TYPE_EXTERNAL) return false;
    std::string value(info.u.val_size, '\0');
    h5::check(H5Lget_val(file, "analysis", value.data(), value.size(), H5P_DEFAULT),
              "the /analysis link of " + store_path);
    const char *file_name = nullptr, *object = nullptr;
    unsigned flags = 0;
    h5::check(H5Lunpack_elink_val(value.data(), value.size(), &flags, &file_name, &object),
              "the /analysis link of " + store_path);
    return name == file_name && std::string(object) == "/analysis";
  };
  if (linked(h5::open_file(store_path).id())) return;
  h5::Handle file;
  try {
    file = h5::open_file_rw(store_path);
  } catch (const h5::H5Error& e) {
    throw std::runtime_error("store " + store_path +
                             " cannot be opened to link its /analysis (is lpi-sweep still running "
                             "on it, or is the file read-only?): " + e.what());
  }
  if (H5Lexists(file.id(), "analysis", H5P_DEFAULT) > 0)
    h5::check(H5Ldelete(file.id(), "analysis", H5P_DEFAULT), "replace /analysis of " + store_path);
  h5::check(H5Lcreate_external(name.c_str(), "/analysis", file.id(), "analysis", H5P_DEFAULT,
                               H5P_DEFAULT),
            "link /analysis of " + store_path + " to " + name);
  h5::check(H5Fflush(file.id(), H5F_SCOPE_GLOBAL), "flush " + store_path);
}

}  // namespace

void write_analysis(const StoreAnalysis& a, const AnalyzeOptions& options) {
  const auto& p = a.plan;
  // Written whole as FILE.analysis.h5.partial, renamed into place: a rerun
  // replaces it atomically, and a kill leaves the old results (or none).
  const auto target = analysis_file(p.path), partial = target + ".partial";
  write_group(a, options, partial);
  fs::rename(partial, target);
  link_analysis(p.path, target);
}

void write_group(const StoreAnalysis& a, const AnalyzeOptions& options, const std::string& path) {
  const auto& p = a.plan;
  const auto file = h5::create_file(path);
  const auto g = h5::create_group(file.id(), "analysis");
  h5::set_attr(g.id(), "store", fs::absolute(p.path).lexically_normal().string());
  h5::set_attr(g.id(), "format", std::string("lpi-analyze results"));
  h5::set_attr(g.id(), "format_version", int64_t{1});
  h5::set_attr(g.id(), "tool_version", std::string(LPI_VERSION));
  h5::set_attr(g.id(), "command", options.command);
  h5::set_attr(g.id(), "fraction", options.reduction.fraction);
  h5::set_attr(g.id(), "bootstrap", int64_t{options.reduction.bootstrap});
  h5::set_attr(g.id(), "seed", static_cast<int64_t>(options.reduction.seed));
  h5::set_attr(g.id(), "confidence", options.reduction.confidence);
  h5::set_attr(g.id(), "top_scope", std::string(scope_name(options.reduction.top_scope)));
  h5::set_attr(g.id(), "gain_scope", std::string(scope_name(options.reduction.gain_scope)));
  h5::set_attr(g.id(), "partial", int64_t{p.partial});
  h5::set_attr(g.id(), "ablation_min_hit", options.reduction.ablation_min_hit);
  std::string others;
  for (const auto& o : p.compared_with) others += (others.empty() ? "" : ";") + o;
  h5::set_attr(g.id(), "compared_with", others);
  const auto C = static_cast<int64_t>(p.steps.size());
  const auto P = static_cast<int64_t>(p.prompts.size());
  const auto S = static_cast<int64_t>(a.scopes.size());
  const auto Q = static_cast<int64_t>(a.ranges.size());
  const auto B = static_cast<int64_t>(a.design.resamples.size());
  h5::write_i32(g.id(), "checkpoint", {C}, p.checkpoints.data());
  h5::write_i64(g.id(), "step", {C}, p.steps.data());
  h5::write_i32(g.id(), "prompt", {P}, p.prompts.data());
  std::vector<int32_t> boot;
  for (const auto& row : a.design.resamples) boot.insert(boot.end(), row.begin(), row.end());
  h5::write_i32(g.id(), "bootstrap", {B, P}, boot.data());
  h5::write_strings(g.id(), "scope", a.scopes);
  std::vector<int64_t> first, last;
  for (const auto& r : a.ranges) {
    first.push_back(r.first);
    last.push_back(r.last);
  }
  h5::write_i64(g.id(), "range_first", {Q}, first.data());
  h5::write_i64(g.id(), "range_last", {Q}, last.data());
  h5::write_i32(g.id(), "range_checkpoints", {Q}, a.range_checkpoints.data());
  h5::write_i32(g.id(), "snapshot", {static_cast<int64_t>(a.snapshots.size())}, a.snapshots.data());
  write_family(g.id(), "ffn", a.ffn, S, C, Q);
  write_family(g.id(), "attn", a.attn, S, C, Q);
  if (a.has_ablation) {
    const auto ab = h5::create_group(g.id(), "ablation");
    const std::vector<std::string> conditions(p.conditions.begin() + 1, p.conditions.end());
    const auto M1 = static_cast<int64_t>(conditions.size());
    h5::write_strings(ab.id(), "condition", conditions);
    write_stat(ab.id(), "hit_before", a.ablation.hit_before, {S, C});
    write_stat(ab.id(), "hit_after", a.ablation.hit_after, {S, C, M1});
    write_stat(ab.id(), "drop_percent", a.ablation.drop_percent, {S, C, M1});
    write_stat(ab.id(), "drop_percent_mean", a.ablation.drop_mean, {S, M1});
  }
  h5::check(H5Fflush(file.id(), H5F_SCOPE_GLOBAL), "flush " + path);
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
  const auto L = p.layers;
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
             "model,family,scope,range_first,range_last,checkpoints,metric,value,lo,hi,random");
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
                << '\n';
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
    const std::size_t whole = r.size() - 1;
    for (const auto& [name, f] : {std::pair{"FFN", &a.ffn}, std::pair{"ATTN", &a.attn}}) {
      out << "  " << a.plan.job_name << " " << name << ":";
      for (std::size_t q = 0; q < std::min<std::size_t>(2, whole); ++q)
        out << "  mean J_stab % " << r[q].label() << " " << cell(f->jaccard_mean, q, 100, 1)
            << " (random " << fmt(f->jaccard_mean_random[q] * 100, 2) << ")";
      out << "  mean R_t % " << cell(f->gain_mean, whole, 100, 1) << " (random "
          << fmt(f->gain_mean_random[whole] * 100, 1) << ")\n";
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

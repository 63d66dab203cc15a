#include "analysis/query/query.hpp"

#include "common/core/ablation.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <sstream>

#include "common/core/ranking.hpp"
#include "common/store/sweep_schema.hpp"

namespace lpi::query {

namespace schema = store::schema;

namespace {

// "0..N-1 (N what)", or "none" when N is 0.
std::string range_text(int64_t n, const std::string& what) {
  if (n <= 0) return "none (0 " + what + ")";
  return "0.." + std::to_string(n - 1) + " (" + std::to_string(n) + " " + what + ")";
}

template <class T>
std::string list_text(const std::vector<T>& values) {
  std::ostringstream s;
  const std::size_t shown = 24;
  for (std::size_t i = 0; i < values.size() && i < shown; ++i) s << (i ? ", " : "") << values[i];
  if (values.size() > shown) s << ", ... (" << values.size() << " in all)";
  return s.str();
}

}  // namespace

Family parse_family(const std::string& name) {
  if (name == "attn") return Family::attn;
  if (name == "ffn") return Family::ffn;
  throw QueryError("--family must be 'ffn' or 'attn', not '" + name + "'");
}

StoreReader::StoreReader(const std::string& path) : path_(path) {
  try {
    store_.emplace(path);
  } catch (const store::StoreError& e) {
    throw QueryError(e.what());
  } catch (const h5::Error& e) {
    throw QueryError("store " + path + " cannot be read as a sweep store: " + e.what());
  }
}

int32_t StoreReader::checkpoint_count() const {
  return static_cast<int32_t>(info().description.grid.checkpoints.size());
}

int64_t StoreReader::prompt_count(int32_t relation) const {
  return std::count(info().description.prompt_relation.begin(),
                    info().description.prompt_relation.end(), relation);
}

int32_t StoreReader::checkpoint_at_step(int64_t step) const {
  std::vector<int64_t> steps;
  for (const auto& c : info().description.grid.checkpoints) steps.push_back(c.step);
  const auto it = std::find(steps.begin(), steps.end(), step);
  if (it == steps.end()) {
    throw QueryError("store " + path_ + " has no checkpoint at step " + std::to_string(step) +
                     "; its steps are " + list_text(steps));
  }
  return static_cast<int32_t>(it - steps.begin());
}

int32_t StoreReader::checkpoint_at_index(int64_t index) const {
  if (index < 0 || index >= checkpoint_count()) {
    throw QueryError("--checkpoint " + std::to_string(index) + " is out of range for store " +
                     path_ + ": expected " + range_text(checkpoint_count(), "checkpoints"));
  }
  return static_cast<int32_t>(index);
}

void StoreReader::require_done(int32_t checkpoint) const {
  if (done(checkpoint)) return;
  std::vector<int64_t> done_steps;
  for (int32_t c = 0; c < checkpoint_count(); ++c)
    if (done(c)) done_steps.push_back(info().description.grid.checkpoints[c].step);
  const auto& ref = info().description.grid.checkpoints.at(checkpoint);
  throw QueryError("checkpoint " + std::to_string(checkpoint) + " (" + ref.name + ", step " +
                   std::to_string(ref.step) + ") of store " + path_ +
                   " is not done: its aggregates are not written yet (lpi-sweep --resume); "
                   "steps done: " +
                   (done_steps.empty() ? std::string("none") : list_text(done_steps)));
}

int32_t StoreReader::relation(const std::string& id) const {
  const auto& ids = info().description.relation_ids;
  const auto it = std::find(ids.begin(), ids.end(), id);
  if (it == ids.end()) {
    throw QueryError("store " + path_ + " has no relation '" + id + "'; its relations are " +
                     list_text(ids));
  }
  return static_cast<int32_t>(it - ids.begin());
}

std::vector<int32_t> StoreReader::prompts_of(int32_t relation) const {
  std::vector<int32_t> out;
  const auto& rel = info().description.prompt_relation;
  for (std::size_t p = 0; p < rel.size(); ++p)
    if (rel[p] == relation) out.push_back(static_cast<int32_t>(p));
  if (out.empty()) {
    throw QueryError("relation '" + info().description.relation_ids.at(relation) + "' of store " +
                     path_ + " has no prompts");
  }
  return out;
}

void StoreReader::require_per_prompt(Family f) const {
  const auto& d = info().description;
  if (f == Family::attn ? d.per_prompt_attn : d.per_prompt_ffn) return;
  throw QueryError(std::string("store ") + path_ + " keeps no per-prompt " + family_name(f) +
                   " importance (root attribute per_prompt_" + family_name(f) +
                   " = 0), which --relation needs; without --relation the mean over all "
                   "prompts is available");
}

int64_t StoreReader::layer_width(Family f) const {
  return core::layer_width(shape(), f);
}

int64_t StoreReader::flat_index(Family f, const NeuronRef& r) const {
  const auto& s = shape();
  const bool moe_ffn = f == Family::ffn && s.is_moe();
  // What this family takes, each with its range.
  struct Field {
    const char* option;
    const std::optional<int64_t>& value;
    int64_t size;
    const char* plural;
    bool used;
  };
  const Field fields[] = {
      {"--layer", r.layer, s.num_layers, "layers", true},
      {"--head", r.head, s.num_heads, "heads", f == Family::attn},
      {"--dim", r.dim, s.head_dim, "dims per head", f == Family::attn},
      {"--expert", r.expert, s.num_experts, "experts", moe_ffn},
      {"--neuron", r.neuron, s.intermediate_size, "neurons per expert", f == Family::ffn}};
  std::string needed;
  for (const auto& x : fields) {
    if (x.used) needed += std::string(needed.empty() ? "" : ", ") + x.option;
  }
  const std::string kind = f == Family::attn ? "attention"
                           : moe_ffn         ? "mixture-of-experts FFN"
                                             : "dense FFN";
  for (const auto& x : fields) {
    if (!x.used && x.value) {
      throw QueryError(std::string(x.option) + " does not apply to the " + kind +
                       " neurons of store " + path_ + ": --family " + family_name(f) + " takes " +
                       needed);
    }
  }
  for (const auto& x : fields) {
    if (x.used && !x.value) {
      throw QueryError("--family " + std::string(family_name(f)) + " of store " + path_ +
                       " needs " + needed + " (missing " + x.option + ", expected " +
                       range_text(x.size, x.plural) + ")");
    }
    if (x.used && (*x.value < 0 || *x.value >= x.size)) {
      throw QueryError(std::string(x.option) + " " + std::to_string(*x.value) +
                       " is out of range for store " + path_ + ": expected " +
                       range_text(x.size, x.plural));
    }
  }
  if (f == Family::attn) return core::attn_index(s, *r.layer, *r.head, *r.dim);
  return core::ffn_index(s, *r.layer, moe_ffn ? *r.expert : 0, *r.neuron);
}

NeuronRef StoreReader::neuron_at(Family f, int64_t flat) const {
  const auto c = core::coords_of(shape(), f, flat);
  NeuronRef r;
  r.layer = c.layer;
  if (f == Family::attn) {
    r.head = c.head;
    r.dim = c.dim;
  } else {
    if (shape().is_moe()) r.expert = c.expert;
    r.neuron = c.neuron;
  }
  return r;
}

std::vector<double> StoreReader::means(int32_t c, Family f, std::optional<int32_t> relation) const {
  require_done(c);
  const auto& s = shape();
  const int64_t L = s.num_layers, W = layer_width(f);
  const bool moe_ffn = f == Family::ffn && s.is_moe();
  std::vector<double> out(static_cast<std::size_t>(L * W), 0.0);
  if (!relation) {
    const auto mean = f == Family::attn ? store_->attn_mean(c) : store_->ffn_mean(c);
    std::copy(mean.begin(), mean.end(), out.begin());
    return out;
  }
  require_per_prompt(f);
  const auto prompts = prompts_of(*relation);
  const int64_t I = s.intermediate_size, k = s.experts_per_token;
  // One prompt at a time: one chunk of the per-prompt tensor each.
  for (const int32_t p : prompts) {
    if (!moe_ffn) {
      const auto v = store_->read<float>(f == Family::attn ? schema::kAttn : schema::kFfn,
                                         {c, p, 0, 0}, {1, 1, L, W});
      for (std::size_t i = 0; i < v.size(); ++i) out[i] += v[i];
      continue;
    }
    const auto v = store_->read<float>(schema::kFfn, {c, p, 0, 0, 0}, {1, 1, L, k, I});
    const auto ids = store_->read<int32_t>(schema::kExpertIds, {c, p, 0, 0}, {1, 1, L, k});
    core::add_ffn_values(s, v.data(), ids.data(), 1.0, out.data(),
                         "store " + path_ + ": importance/expert_ids of checkpoint " +
                             std::to_string(c) + ", prompt " + std::to_string(p));
  }
  for (auto& x : out) x /= static_cast<double>(prompts.size());
  return out;
}

double StoreReader::neuron_mean(int32_t c, Family f, int64_t flat,
                                std::optional<int32_t> relation) const {
  const auto& s = shape();
  const bool moe_ffn = f == Family::ffn && s.is_moe();
  const auto n = core::coords_of(s, f, flat);
  const int64_t l = n.layer, w = flat % layer_width(f), e = n.expert, i = n.neuron;
  const int64_t k = s.experts_per_token;
  const auto& st = *store_;
  if (!relation) {
    if (moe_ffn) return st.read<float>(schema::kFfnMean, {c, l, e, i}, {1, 1, 1, 1})[0];
    return st.read<float>(f == Family::attn ? schema::kAttnMean : schema::kFfnMean, {c, l, w},
                          {1, 1, 1})[0];
  }
  const auto prompts = prompts_of(*relation);
  double sum = 0;
  for (const int32_t p : prompts) {
    if (!moe_ffn) {
      sum += st.read<float>(f == Family::attn ? schema::kAttn : schema::kFfn, {c, p, l, w},
                            {1, 1, 1, 1})[0];
      continue;
    }
    // Expert e's neuron counts where e is among the prompt's chosen experts, else 0.
    const auto ids = st.read<int32_t>(schema::kExpertIds, {c, p, l, 0}, {1, 1, 1, k});
    const auto v = st.read<float>(schema::kFfn, {c, p, l, 0, i}, {1, 1, 1, k, 1});
    for (int64_t j = 0; j < k; ++j)
      if (ids[j] == e) sum += v[j];
  }
  return sum / static_cast<double>(prompts.size());
}

std::vector<TrajectoryPoint> StoreReader::trajectory(Family f, int64_t flat,
                                                     std::optional<int32_t> relation) const {
  if (relation) require_per_prompt(f);
  std::vector<TrajectoryPoint> out;
  for (int32_t c = 0; c < checkpoint_count(); ++c) {
    TrajectoryPoint t;
    t.checkpoint = c;
    t.done = done(c);
    if (t.done) t.value = neuron_mean(c, f, flat, relation);
    out.push_back(t);
  }
  return out;
}

std::vector<RankedNeuron> top_k(const StoreReader& store, Family f,
                                const std::vector<double>& values, int64_t k) {
  if (k < 1) throw QueryError("--k must be at least 1, not " + std::to_string(k));
  const auto order = core::top_k_indices(values, k, true);
  const auto n = static_cast<int64_t>(order.size());
  std::vector<RankedNeuron> out;
  for (int64_t r = 0; r < n; ++r)
    out.push_back({r + 1, store.neuron_at(f, order[r]), values[order[r]]});
  return out;
}

std::vector<RankedHead> top_heads(const StoreReader& store, const std::vector<double>& attn_means,
                                  int64_t k) {
  if (k < 1) throw QueryError("--k must be at least 1, not " + std::to_string(k));
  const auto& s = store.shape();
  // In float, as the sweep ranks the store's float aggregates for the masks.
  const std::vector<float> means(attn_means.begin(), attn_means.end());
  const auto scores = core::head_scores(s, means);
  const auto order = core::top_k_indices(scores, k, true);
  std::vector<RankedHead> out;
  for (std::size_t r = 0; r < order.size(); ++r)
    out.push_back({static_cast<int64_t>(r) + 1, order[r] / s.num_heads, order[r] % s.num_heads,
                   scores[static_cast<std::size_t>(order[r])]});
  return out;
}

}  // namespace lpi::query

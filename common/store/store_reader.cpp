// Reading a sweep store without MPI: its self-description (status, resume
// checks, tools) and the Reader of lpi-analyze and lpi-query.
#include "common/store/store_reader.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <utility>

#include "common/store/sweep_schema.hpp"

namespace lpi::store {
using namespace schema;

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw StoreError(path + ": " + what);
}

// The shape's sizes are positive (experts: 0 for a dense model, else k of E)
// and the neuron counts the schema sizes datasets with fit in 64 bits.
void check_shape(const std::string& path, const ModelShape& sh) {
  for (const auto& [name, field] : kShapeAttributes) {
    const int64_t v = sh.*field;
    const bool experts =
        field == &ModelShape::num_experts || field == &ModelShape::experts_per_token;
    if (v < 0 || (v == 0 && !experts))
      fail(path, "attribute '" + std::string(name) + "' is " + std::to_string(v) +
                     ", expected a positive size");
  }
  if (sh.is_moe() && (sh.experts_per_token < 1 || sh.experts_per_token > sh.num_experts))
    fail(path, "attribute 'experts_per_token' is " + std::to_string(sh.experts_per_token) +
                   ", expected 1.." + std::to_string(sh.num_experts) + " (num_experts)");
  // H*dh, L*H*dh, E*I (or I) and L*E*I: the attention and FFN layouts.
  int64_t attn = 0, ffn = 0, n = 0;
  if (__builtin_mul_overflow(sh.num_heads, sh.head_dim, &attn) ||
      __builtin_mul_overflow(sh.num_layers, attn, &n) ||
      __builtin_mul_overflow(sh.expert_slots(), sh.intermediate_size, &ffn) ||
      __builtin_mul_overflow(sh.num_layers, ffn, &n))
    fail(path, "its model shape " + sh.describe() + " has more neurons than 64-bit indices hold");
}

// The description's lists agree: one entry per checkpoint, relation and
// prompt in each, token offsets that cut token_ids, and units that cover
// prompts of their relation at a checkpoint of the store.
void check_lists(const std::string& path, const SweepDescription& d,
                 const std::vector<int64_t>& offsets, std::size_t tokens,
                 const std::vector<std::size_t>& list_sizes) {
  const auto C = d.grid.checkpoints.size(), R = d.relation_ids.size(), P = d.prompt_relation.size(),
             U = d.grid.units.size();
  const std::size_t expected[] = {C, C, C, C, R, P, P, P, U, U, U};
  const char* names[] = {"checkpoints/path",    "checkpoints/step",  "checkpoints/tokens",
                         "checkpoints/bytes",   "relations/file",    "prompts/sample",
                         "prompts/gold_target", "prompts/text",      "units/relation",
                         "units/first_prompt",  "units/prompt_count"};
  for (std::size_t i = 0; i < list_sizes.size(); ++i) {
    if (list_sizes[i] != expected[i])
      fail(path, std::string(names[i]) + " has " + std::to_string(list_sizes[i]) +
                     " entries, expected " + std::to_string(expected[i]));
  }
  if (d.checkpoint_hashes.size() != C)
    fail(path, "checkpoints/header_hash has " + std::to_string(d.checkpoint_hashes.size()) +
                   " entries, expected " + std::to_string(C));
  if (offsets.size() != P + 1 || offsets.front() != 0 ||
      offsets.back() != static_cast<int64_t>(tokens) ||
      !std::is_sorted(offsets.begin(), offsets.end()))
    fail(path, "prompts/token_offsets is not " + std::to_string(P + 1) +
                   " non-decreasing offsets from 0 to the " + std::to_string(tokens) +
                   " entries of prompts/token_ids");
  for (std::size_t p = 0; p < P; ++p) {
    if (d.prompt_relation[p] < 0 || static_cast<std::size_t>(d.prompt_relation[p]) >= R)
      fail(path, "prompts/relation[" + std::to_string(p) + "] is " +
                     std::to_string(d.prompt_relation[p]) + ", expected a relation 0.." +
                     std::to_string(static_cast<int64_t>(R) - 1));
  }
  for (const auto& u : d.grid.units) {
    const int64_t end = int64_t{u.first_prompt} + u.prompt_count;
    bool ok = u.checkpoint >= 0 && static_cast<std::size_t>(u.checkpoint) < C && u.relation >= 0 &&
              static_cast<std::size_t>(u.relation) < R && u.first_prompt >= 0 &&
              u.prompt_count >= 1 && end <= static_cast<int64_t>(P);
    for (int64_t p = u.first_prompt; ok && p < end; ++p) ok = d.prompt_relation[p] == u.relation;
    if (!ok)
      fail(path, "unit " + std::to_string(u.id) + " (checkpoint " + std::to_string(u.checkpoint) +
                     ", relation " + std::to_string(u.relation) + ", prompts " +
                     std::to_string(u.first_prompt) + " +" + std::to_string(u.prompt_count) +
                     ") is not a block of one relation's prompts at one of the " +
                     std::to_string(C) + " checkpoints");
  }
}

StoreInfo read_info(const std::string& path) {
  std::error_code ec;
  const auto file_bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  const auto f = h5::File::open(path);
  const auto str = [&](const h5::Node& n, const std::string& name) {
    return n.attribute(name).read<std::string>();
  };
  const auto integer = [&](const std::string& name) { return f.attribute(name).read<int64_t>(); };
  // A 1-d dataset of the description, no larger than the file, read whole.
  const auto list = [&](const char* name) {
    auto ds = f.dataset(name, false);
    const auto shape = ds.shape();
    const auto item = std::max<int64_t>(1, static_cast<int64_t>(ds.type().size()));
    if (shape.size() != 1 || shape[0] > file_bytes / item)
      fail(path, std::string("dataset ") + name + " is not a 1-d list that the file can hold");
    return ds;
  };
  const auto strings = [&](const char* name) {
    const auto ds = list(name);
    if (!ds.type().is_string() || ds.type().is_variable_string())
      fail(path, std::string("dataset ") + name + " is not a fixed-length string dataset");
    return ds.read<std::string>();
  };
  const auto i32 = [&](const char* name) { return list(name).read<int32_t>(); };
  const auto i64 = [&](const char* name) { return list(name).read<int64_t>(); };
  std::string format = "(none)";
  if (f.has_attribute("format")) {  // ours is a fixed-length string
    const auto a = f.attribute("format");
    if (a.type().is_string() && !a.type().is_variable_string()) format = a.read<std::string>();
  }
  if (format != kSweepFormat) {
    throw StoreError(path + " is not an lpi-sweep store: its 'format' attribute is '" + format +
                     "', expected '" + kSweepFormat + "'");
  }
  const auto version = integer("format_version");
  if (version != kSweepFormatVersion) {
    throw StoreError(path + " has store format version " + std::to_string(version) +
                     "; this lpi-sweep reads version " + std::to_string(kSweepFormatVersion));
  }
  StoreInfo info;
  auto& d = info.description;
  d.job_name = str(f, "job_name");
  d.model_name = str(f, "model_name");
  d.lens = str(f, "lens");
  d.target = str(f, "target");
  d.per_prompt_attn = integer("per_prompt_attn") != 0;
  d.per_prompt_ffn = integer("per_prompt_ffn") != 0;
  // Stores written before the option hold float32.
  if (f.has_attribute("per_prompt_dtype")) {
    d.per_prompt_dtype = str(f, "per_prompt_dtype");
    try {
      schema::check_per_prompt_dtype(d.per_prompt_dtype);
    } catch (const std::invalid_argument& e) {
      throw StoreError(path + ": attribute per_prompt_dtype is " + e.what());
    }
  }
  auto& sh = d.shape;
  sh.architecture = str(f, "architecture");
  for (const auto& [name, field] : kShapeAttributes) sh.*field = integer(name);
  check_shape(path, sh);
  {
    const auto job = f.group(kJob);
    for (const auto& k : job.attribute_names()) d.job[k] = str(job, k);
  }
  const auto names = strings("checkpoints/name");
  const auto paths = strings("checkpoints/path");
  const auto steps = i64("checkpoints/step");
  const auto tokens = i64("checkpoints/tokens");
  d.checkpoint_hashes = strings("checkpoints/header_hash");
  d.checkpoint_bytes = i64("checkpoints/bytes");
  d.relation_ids = strings("relations/id");
  d.relation_files = strings("relations/file");
  d.prompt_relation = i32("prompts/relation");
  d.prompt_sample = i32("prompts/sample");
  d.prompt_gold = i32("prompts/gold_target");
  d.prompt_text = strings("prompts/text");
  const auto flat = i32("prompts/token_ids");
  const auto offsets = i64("prompts/token_offsets");
  const auto uc = i32("units/checkpoint"), ur = i32("units/relation"),
             uf = i32("units/first_prompt"), un = i32("units/prompt_count");
  for (std::size_t i = 0; i < names.size(); ++i)
    d.grid.checkpoints.push_back({names[i], i < paths.size() ? paths[i] : "",
                                  i < steps.size() ? steps[i] : 0,
                                  i < tokens.size() ? tokens[i] : 0});
  for (std::size_t u = 0; u < uc.size(); ++u) {
    d.grid.units.push_back({static_cast<int32_t>(u), uc[u], u < ur.size() ? ur[u] : 0,
                            u < uf.size() ? uf[u] : 0, u < un.size() ? un[u] : 0});
  }
  check_lists(path, d, offsets, flat.size(),
              {paths.size(), steps.size(), tokens.size(), d.checkpoint_bytes.size(),
               d.relation_files.size(), d.prompt_sample.size(), d.prompt_gold.size(),
               d.prompt_text.size(), ur.size(), uf.size(), un.size()});
  for (std::size_t p = 0; p + 1 < offsets.size(); ++p)
    d.prompt_ids.emplace_back(flat.begin() + offsets[p], flat.begin() + offsets[p + 1]);
  d.grid.prompts_per_relation.assign(d.relation_ids.size(), 0);
  for (auto r : d.prompt_relation) ++d.grid.prompts_per_relation[r];
  if (f.exists(kAblationGroup)) {
    info.ablation_conditions = strings(kAblCondition);
    const auto spec = sweep::ablation_from_conditions(info.ablation_conditions);
    if (!spec)
      throw StoreError(path + ": ablation/condition holds no valid list of masking conditions");
    d.ablation = *spec;
  }
  check_datasets(f, d, file_bytes);  // the table's datasets, as large as `d` says
  const auto u8 = [&](const char* name) { return f.dataset(name, false).read<uint8_t>(); };
  info.unit_done = u8(kUnitDone);
  info.aggregated = u8(kAggDone);
  info.runs = read_run_log(f);
  if (d.ablation.enabled) {
    info.ablation_unit_done = u8(kAblUnitDone);
    info.ablation_done = u8(kAblDone);
  }
  return info;
}

}  // namespace

StoreInfo read_store_info(const std::string& path) {
  if (!std::filesystem::exists(path)) throw StoreError("store " + path + " does not exist");
  if (!h5::File::is_hdf5(path))
    throw StoreError(path + " is not an HDF5 file, so not a sweep store");
  try {
    return read_info(path);
  } catch (const h5::Error& e) {
    // Held open for writing by another process: the caller says so.
    if (std::string(e.what()).find("unable to lock") != std::string::npos) throw;
    throw StoreError("store " + path + " cannot be read: it is truncated or damaged (" + e.what() +
                     ")");
  }
}

Reader::Reader(const std::string& path)
    : path_(path), info_(read_store_info(path)), file_(h5::File::open(path)) {}

std::vector<float> Reader::attn_mean(int32_t c) const {
  const auto& sh = description().shape;
  return read<float>(kAttnMean, {c, 0, 0}, {1, sh.num_layers, sh.attn_width()});
}

std::vector<float> Reader::ffn_mean(int32_t c) const {
  const auto& sh = description().shape;
  if (sh.is_moe())
    return read<float>(kFfnMean, {c, 0, 0, 0},
                       {1, sh.num_layers, sh.num_experts, sh.intermediate_size});
  return read<float>(kFfnMean, {c, 0, 0}, {1, sh.num_layers, sh.intermediate_size});
}

PromptSlab Reader::prompts(int32_t c, int64_t first, int64_t n) const {
  const auto& sh = description().shape;
  const int64_t L = sh.num_layers, A = sh.attn_width(), I = sh.intermediate_size;
  const int64_t k = sh.experts_per_token;
  PromptSlab out;
  out.attn = read<float>(kAttn, {c, first, 0, 0}, {1, n, L, A});
  if (sh.is_moe()) {
    out.ffn = read<float>(kFfn, {c, first, 0, 0, 0}, {1, n, L, k, I});
    out.expert_ids = read<int32_t>(kExpertIds, {c, first, 0, 0}, {1, n, L, k});
  } else {
    out.ffn = read<float>(kFfn, {c, first, 0, 0}, {1, n, L, I});
  }
  return out;
}

void Reader::check_unit_sums(int32_t c, const PromptSlab& all) const {
  const auto& d = description();
  const auto& sh = d.shape;
  const int64_t L = sh.num_layers, A = sh.attn_width(), k = sh.experts_per_token;
  const int64_t F = L * sh.ffn_active_width();
  // The sums were taken over the float32 values; 16-bit tensors hold each
  // within half an ulp of it, so a sum may differ by that much of the sum
  // of magnitudes (float32 ones are compared bit for bit).
  const double half_ulp = d.per_prompt_dtype == "float16"    ? std::ldexp(1.0, -11)
                          : d.per_prompt_dtype == "bfloat16" ? std::ldexp(1.0, -8)
                                                             : 0.0;
  // Below the smallest normal number the spacing is fixed: half of it, per term.
  const double floor = d.per_prompt_dtype == "float16"    ? std::ldexp(1.0, -25)
                       : d.per_prompt_dtype == "bfloat16" ? std::ldexp(1.0, -134)
                                                          : 0.0;
  const auto magnitudes = [](const std::vector<float>& v, int64_t first, int64_t n) {
    std::vector<float> out(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) out[i] = std::abs(v[first + i]);
    return out;
  };
  for (const auto& u : d.grid.units) {
    if (u.checkpoint != c) continue;
    const std::string what = "store " + path_ + ": unit " + std::to_string(u.id) + " (checkpoint " +
                             d.grid.checkpoints[c].name + ", prompts " +
                             std::to_string(u.first_prompt) + ".." +
                             std::to_string(u.first_prompt + u.prompt_count - 1) + ")";
    const int64_t p = u.first_prompt, n = u.prompt_count;
    const bool attn = !all.attn.empty(), ffn = !all.ffn.empty();
    const int32_t* ids = ffn && sh.is_moe() ? &all.expert_ids[p * L * k] : nullptr;
    const auto sums = unit_sums(sh, n, attn ? &all.attn[p * L * A] : nullptr,
                                ffn ? &all.ffn[p * F] : nullptr, ids, what);
    UnitSums bounds;
    if (half_ulp > 0) {
      const auto attn_abs =
          attn ? magnitudes(all.attn, p * L * A, n * L * A) : std::vector<float>{};
      const auto ffn_abs = ffn ? magnitudes(all.ffn, p * F, n * F) : std::vector<float>{};
      bounds = unit_sums(sh, n, attn ? attn_abs.data() : nullptr, ffn ? ffn_abs.data() : nullptr,
                         ids, what);
    }
    const auto compare = [&](const char* family, const char* dataset,
                             const std::vector<double>& got, const std::vector<double>& bound) {
      const auto want =
          read<double>(dataset, {u.id, 0, 0}, {1, L, static_cast<int64_t>(got.size()) / L});
      for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i]))) continue;
        const double allowed =
            bound.empty() ? 0.0
                          : (bound[i] * half_ulp + static_cast<double>(n) * floor) * (1 + 1e-6);
        if (!(std::abs(got[i] - want[i]) <= allowed)) {
          throw StoreError(what + ": its per-prompt " + family +
                           " importances do not add up to the sums written with them (neuron " +
                           std::to_string(i) + ": " + std::to_string(got[i]) + ", recorded " +
                           std::to_string(want[i]) +
                           "): the file was changed or damaged after the sweep wrote it");
        }
      }
    };
    if (attn) compare("attention", kUnitAttnSum, sums.attn, bounds.attn);
    if (ffn) compare("FFN", kUnitFfnSum, sums.ffn, bounds.ffn);
  }
}

std::vector<uint8_t> Reader::ablation_hits(int32_t c) const {
  const auto P = static_cast<int64_t>(description().prompt_relation.size());
  const auto M = static_cast<int64_t>(info_.ablation_conditions.size());
  return read<uint8_t>(kAblHit, {c, 0, 0}, {1, P, M});
}

}  // namespace lpi::store

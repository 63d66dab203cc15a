// Reading a sweep store without MPI: its self-description (status, resume
// checks, tools) and the Reader of lpi-analyze and lpi-query.
#include "common/store/store_reader.hpp"

#include <cmath>
#include <filesystem>

#include "common/store/sweep_schema.hpp"

namespace lpi::store {
using namespace schema;

namespace {

StoreInfo read_info(const std::string& path) {
  const auto f = h5::File::open(path);
  const auto str = [&](const h5::Node& n, const std::string& name) {
    return n.attribute(name).read<std::string>();
  };
  const auto integer = [&](const std::string& name) { return f.attribute(name).read<int64_t>(); };
  const auto strings = [&](const char* name) {
    const auto ds = f.dataset(name, false);
    if (!ds.type().is_string() || ds.type().is_variable_string())
      throw StoreError(std::string(name) + " is not a fixed-length string dataset");
    return ds.read<std::string>();
  };
  const auto i32 = [&](const char* name) { return f.dataset(name).read<int32_t>(); };
  const auto i64 = [&](const char* name) { return f.dataset(name).read<int64_t>(); };
  const auto u8 = [&](const char* name) { return f.dataset(name, false).read<uint8_t>(); };
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
  auto& sh = d.shape;
  sh.architecture = str(f, "architecture");
  for (const auto& [name, field] : kShapeAttributes) sh.*field = integer(name);
  {
    const auto job = f.group(kJob);
    for (const auto& k : job.attribute_names()) d.job[k] = str(job, k);
  }
  const auto names = strings("checkpoints/name");
  const auto paths = strings("checkpoints/path");
  const auto steps = i64("checkpoints/step");
  const auto tokens = i64("checkpoints/tokens");
  for (std::size_t i = 0; i < names.size(); ++i)
    d.grid.checkpoints.push_back({names[i], paths[i], steps[i], tokens[i]});
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
  for (std::size_t p = 0; p + 1 < offsets.size(); ++p)
    d.prompt_ids.emplace_back(flat.begin() + offsets[p], flat.begin() + offsets[p + 1]);
  d.grid.prompts_per_relation.assign(d.relation_ids.size(), 0);
  for (auto r : d.prompt_relation) ++d.grid.prompts_per_relation.at(r);
  const auto uc = i32("units/checkpoint"), ur = i32("units/relation"),
             uf = i32("units/first_prompt"), un = i32("units/prompt_count");
  for (std::size_t u = 0; u < uc.size(); ++u)
    d.grid.units.push_back({static_cast<int32_t>(u), uc[u], ur[u], uf[u], un[u]});
  info.unit_done = u8(kUnitDone);
  info.aggregated = u8(kAggDone);
  info.runs = read_run_log(f);
  if (f.exists(kAblationGroup)) {
    info.ablation_conditions = strings(kAblCondition);
    const auto spec = sweep::ablation_from_conditions(info.ablation_conditions);
    if (!spec)
      throw StoreError(path + ": ablation/condition holds no valid list of masking conditions");
    d.ablation = *spec;
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
  for (const auto& u : d.grid.units) {
    if (u.checkpoint != c) continue;
    const std::string what = "store " + path_ + ": unit " + std::to_string(u.id) + " (checkpoint " +
                             d.grid.checkpoints[c].name + ", prompts " +
                             std::to_string(u.first_prompt) + ".." +
                             std::to_string(u.first_prompt + u.prompt_count - 1) + ")";
    const int64_t p = u.first_prompt;
    const bool attn = !all.attn.empty(), ffn = !all.ffn.empty();
    const auto sums = unit_sums(sh, u.prompt_count, attn ? &all.attn[p * L * A] : nullptr,
                                ffn ? &all.ffn[p * F] : nullptr,
                                ffn && sh.is_moe() ? &all.expert_ids[p * L * k] : nullptr, what);
    const auto compare = [&](const char* family, const char* dataset,
                             const std::vector<double>& got) {
      const auto want =
          read<double>(dataset, {u.id, 0, 0}, {1, L, static_cast<int64_t>(got.size()) / L});
      for (std::size_t i = 0; i < got.size(); ++i) {
        if (got[i] != want[i] && !(std::isnan(got[i]) && std::isnan(want[i]))) {
          throw StoreError(what + ": its per-prompt " + family +
                           " importances do not add up to the sums written with them (neuron " +
                           std::to_string(i) + ": " + std::to_string(got[i]) + ", recorded " +
                           std::to_string(want[i]) +
                           "): the file was changed or damaged after the sweep wrote it");
        }
      }
    };
    if (attn) compare("attention", kUnitAttnSum, sums.attn);
    if (ffn) compare("FFN", kUnitFfnSum, sums.ffn);
  }
}

std::vector<uint8_t> Reader::ablation_hits(int32_t c) const {
  const auto P = static_cast<int64_t>(description().prompt_relation.size());
  const auto M = static_cast<int64_t>(info_.ablation_conditions.size());
  return read<uint8_t>(kAblHit, {c, 0, 0}, {1, P, M});
}

}  // namespace lpi::store

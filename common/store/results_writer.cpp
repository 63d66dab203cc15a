#include "common/store/results_writer.hpp"

#include <cmath>
#include <filesystem>

#include "common/store/sweep_schema.hpp"
#include "lpi/lpi_config.hpp"

namespace lpi::store {

namespace {

std::vector<int64_t> concat(std::vector<int64_t> a, const std::vector<int64_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Non-finite importances are refused by name before anything is written: a
// unit never stores NaN or Inf silently (its flag stays unset).
void check_finite(const char* name, const float* v, int64_t n, int64_t per_prompt) {
  if (!v) return;
  int64_t bad = 0, first = -1;
  for (int64_t i = 0; i < n * per_prompt; ++i) {
    if (!std::isfinite(v[i]) && bad++ == 0) first = i;
  }
  if (bad > 0) {
    throw StoreError(std::to_string(bad) + " non-finite value(s) (NaN or Inf) in " + name +
                     ", the first at prompt " + std::to_string(first / per_prompt) +
                     " of the block, element " + std::to_string(first % per_prompt) +
                     ": nothing of it is written");
  }
}

}  // namespace

void write_results(const std::map<std::string, h5::Dataset>& datasets,
                   const std::vector<int64_t>& offset, const std::vector<int64_t>& count,
                   const core::ModelShape& sh, const PromptResults& r) {
  const int64_t L = sh.num_layers, A = sh.attn_width(), I = sh.intermediate_size;
  const int64_t k = sh.experts_per_token;
  check_finite(schema::kBaseLogprob, r.base_logprob, r.n, 1);
  check_finite(schema::kAttn, r.attn, r.n, L * A);
  check_finite(schema::kFfn, r.ffn, r.n, L * sh.ffn_active_width());
  const auto write = [&](const char* name, const std::vector<int64_t>& inner, const auto* data) {
    const auto it = datasets.find(name);
    if (it == datasets.end()) return;  // not kept ([store] per_prompt) or not this kind of model
    const auto sel = it->second.select(concat(offset, std::vector<int64_t>(inner.size(), 0)),
                                       concat(count, inner));
    sel.write(data, static_cast<std::size_t>(sel.size()));
  };
  write(schema::kAttn, {L, A}, r.attn);
  if (sh.is_moe()) {
    write(schema::kFfn, {L, k, I}, r.ffn);
    write(schema::kExpertIds, {L, k}, r.expert_ids);
  } else {
    write(schema::kFfn, {L, I}, r.ffn);
  }
  write(schema::kTarget, {}, r.target);
  write(schema::kBaseLogprob, {}, r.base_logprob);
}

void write_attribution_file(const std::string& path, const std::string& model_dir,
                            const SweepDescription& d, const PromptResults& r) {
  namespace fs = std::filesystem;
  const std::string partial = path + ".partial";
  {
    const auto file = h5::File::create(partial);
    file.set_attribute("format", "lpi-sweep importance");
    file.set_attribute("format_version", int64_t{1});
    file.set_attribute("tool_version", LPI_VERSION);
    file.set_attribute("model_dir", model_dir);
    file.set_attribute("architecture", d.shape.architecture);
    file.set_attribute("lens", d.lens);
    file.set_attribute("target", d.target);
    for (const auto& [name, field] : kShapeAttributes) file.set_attribute(name, d.shape.*field);
    // The table's entries of the file, without the checkpoint dim.
    auto x = schema::extents(d);
    x.v[static_cast<int>(schema::Dim::P)] = r.n;
    std::map<std::string, h5::Dataset> results;
    for (const auto& e : schema::table()) {
      if (!e.attribution_file || !schema::present(e, d)) continue;
      const std::string group = std::string(e.path).substr(0, std::string(e.path).find('/'));
      if (!file.exists(group)) file.create_group(group);
      if (e.writer == schema::Writer::creation) {
        const auto v = schema::creation_values(e.path, d);
        const auto n = static_cast<int64_t>(v.str.size() + v.i32.size() + v.i64.size());
        if (e.type == schema::Dtype::str) file.write_dataset(e.path, v.str);
        if (e.type == schema::Dtype::i32) file.write_dataset(e.path, {n}, v.i32);
        if (e.type == schema::Dtype::i64) file.write_dataset(e.path, {n}, v.i64);
        continue;
      }
      auto dims = schema::dims(e, x);
      dims.erase(dims.begin());  // the checkpoint
      const auto type =
          e.type == schema::Dtype::i32 ? h5::dtype<int32_t>::file() : schema::file_type(e.type, d);
      results.emplace(e.path, file.create_dataset(e.path, type, h5::DatasetSpec::plain(dims)));
    }
    write_results(results, {0}, {r.n}, d.shape, r);
  }
  fs::rename(partial, path);
}

}  // namespace lpi::store

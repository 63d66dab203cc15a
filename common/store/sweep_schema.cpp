#include "common/store/sweep_schema.hpp"

#include <algorithm>
#include <functional>
#include <numeric>
#include <stdexcept>

#include "common/core/ablation.hpp"
#include "lpi/lpi_config.hpp"

namespace lpi::store::schema {

namespace {

// Groups created before the datasets, in this order; others (ablation) when first needed.
constexpr const char* kGroups[] = {"job",        "checkpoints", "relations",  "prompts", "units",
                                   "importance", "evaluation",  "aggregates", "runs"};

std::string group_of(const std::string& path) {
  return path.substr(0, path.find('/'));
}

int64_t element_size(Dtype t, const SweepDescription& d) {
  switch (t) {
    case Dtype::u8:
      return 1;
    case Dtype::pp:
      return d.per_prompt_dtype == "float32" ? 4 : 2;
    case Dtype::i32:
    case Dtype::f32:
      return 4;
    case Dtype::i64:
    case Dtype::f64:
      return 8;
    case Dtype::log:
      return kRunLogWidth;
    case Dtype::str:
      break;
  }
  return 0;  // strings: as wide as their longest value
}

std::size_t width_of(const std::vector<std::string>& values) {
  std::size_t width = 1;
  for (const auto& v : values) width = std::max(width, v.size());
  return width;
}

}  // namespace

void check_per_prompt_dtype(const std::string& name) {
  if (name != "float32" && name != "float16" && name != "bfloat16")
    throw std::invalid_argument("'" + name + "': float32, float16 or bfloat16");
}

h5::Type file_type(Dtype t, const SweepDescription& d, std::size_t width) {
  switch (t) {
    case Dtype::pp:
      check_per_prompt_dtype(d.per_prompt_dtype);
      if (d.per_prompt_dtype == "float16") return h5::Type::float16();
      if (d.per_prompt_dtype == "bfloat16") return h5::Type::bfloat16();
      return h5::dtype<float>::file();
    case Dtype::u8:
      return h5::dtype<uint8_t>::file();
    case Dtype::i32:
      return h5::dtype<int32_t>::file();
    case Dtype::i64:
      return h5::dtype<int64_t>::file();
    case Dtype::f32:
      return h5::dtype<float>::file();
    case Dtype::f64:
      return h5::dtype<double>::file();
    case Dtype::log:
      return h5::Type::fixed_string(kRunLogWidth);
    case Dtype::str:
      break;
  }
  return h5::Type::fixed_string(width);
}

namespace {

h5::DatasetSpec spec_of(const Entry& e, const std::vector<int64_t>& d) {
  h5::DatasetSpec s;
  s.dims = d;
  s.chunk = chunk(e, d);
  s.early_allocation = true;  // later writes touch raw data only
  switch (e.fill) {
    case Fill::zero:
      s.fill_time = h5::FillTime::alloc;
      s.fill_value = 0;
      break;
    case Fill::minus_one:
      s.fill_time = h5::FillTime::alloc;
      s.fill_value = -1;
      break;
    case Fill::never:
      s.fill_time = h5::FillTime::never;
      break;
    case Fill::library:
      s.fill_time = h5::FillTime::alloc;
      break;
  }
  return s;
}

}  // namespace

Extents extents(const SweepDescription& d) {
  const auto& sh = d.shape;
  Extents x;
  const auto set = [&](Dim dim, int64_t v) { x.v[static_cast<int>(dim)] = v; };
  int64_t tokens = 0;
  for (const auto& ids : d.prompt_ids) tokens += static_cast<int64_t>(ids.size());
  set(Dim::C, static_cast<int64_t>(d.grid.checkpoints.size()));
  set(Dim::P, static_cast<int64_t>(d.prompt_relation.size()));
  set(Dim::U, static_cast<int64_t>(d.grid.units.size()));
  set(Dim::R, static_cast<int64_t>(d.relation_ids.size()));
  set(Dim::L, sh.num_layers);
  set(Dim::A, sh.attn_width());
  set(Dim::I, sh.intermediate_size);
  set(Dim::k, sh.experts_per_token);
  set(Dim::E, sh.num_experts);
  set(Dim::W, sh.ffn_width());  // a unit's FFN sum covers every expert
  set(Dim::T, tokens);
  set(Dim::P1, static_cast<int64_t>(d.prompt_relation.size()) + 1);
  set(Dim::Two, 2);
  set(Dim::Log, kRunLogEntries);
  if (d.ablation.enabled) {
    set(Dim::M, static_cast<int64_t>(d.ablation.conditions().size()));
    set(Dim::Hmax, std::max<int32_t>(1, d.ablation.max_heads()));
    set(Dim::K, std::max<int64_t>(1, core::ablation_ffn_count(sh, d.ablation.ffn_fraction)));
  }
  return x;
}

bool present(const Entry& e, const SweepDescription& d) {
  if (e.model == Model::moe && !d.shape.is_moe()) return false;
  if (e.model == Model::dense && d.shape.is_moe()) return false;
  switch (e.phase) {
    case Phase::always:
      return true;
    case Phase::per_prompt_attn:
      return d.per_prompt_attn;
    case Phase::per_prompt_ffn:
      return d.per_prompt_ffn;
    case Phase::ablation:
      return d.ablation.enabled;
  }
  return false;
}

std::vector<int64_t> dims(const Entry& e, const Extents& x) {
  std::vector<int64_t> out;
  for (auto d : e.shape) out.push_back(x.of(d));
  return out;
}

std::vector<int64_t> chunk(const Entry& e, const std::vector<int64_t>& dims) {
  if (e.chunk_lead == 0) return {};
  auto c = dims;
  std::fill(c.begin(), c.begin() + e.chunk_lead, 1);
  return c;
}

Values creation_values(const std::string& path, const SweepDescription& d) {
  Values v;
  const auto& g = d.grid;
  if (path == "checkpoints/name" || path == "checkpoints/path" || path == "checkpoints/step" ||
      path == "checkpoints/tokens") {
    for (const auto& c : g.checkpoints) {
      if (path == "checkpoints/name") v.str.push_back(c.name);
      if (path == "checkpoints/path") v.str.push_back(c.path);
      if (path == "checkpoints/step") v.i64.push_back(c.step);
      if (path == "checkpoints/tokens") v.i64.push_back(c.tokens);
    }
  } else if (path == "checkpoints/header_hash") {
    v.str = d.checkpoint_hashes;
  } else if (path == "checkpoints/bytes") {
    v.i64 = d.checkpoint_bytes;
  } else if (path == "relations/id") {
    v.str = d.relation_ids;
  } else if (path == "relations/file") {
    v.str = d.relation_files;
  } else if (path == "prompts/relation") {
    v.i32 = d.prompt_relation;
  } else if (path == "prompts/sample") {
    v.i32 = d.prompt_sample;
  } else if (path == "prompts/gold_target") {
    v.i32 = d.prompt_gold;
  } else if (path == "prompts/text") {
    v.str = d.prompt_text;
  } else if (path == "prompts/token_ids") {
    for (const auto& ids : d.prompt_ids) v.i32.insert(v.i32.end(), ids.begin(), ids.end());
  } else if (path == "prompts/token_offsets") {
    v.i64 = {0};
    for (const auto& ids : d.prompt_ids)
      v.i64.push_back(v.i64.back() + static_cast<int64_t>(ids.size()));
  } else if (path.rfind("units/", 0) == 0) {
    for (const auto& u : g.units) {
      if (path == "units/checkpoint") v.i32.push_back(u.checkpoint);
      if (path == "units/relation") v.i32.push_back(u.relation);
      if (path == "units/first_prompt") v.i32.push_back(u.first_prompt);
      if (path == "units/prompt_count") v.i32.push_back(u.prompt_count);
    }
  } else if (path == kAblCondition) {
    v.str = d.ablation.conditions();
  }
  return v;
}

int64_t store_bytes(const SweepDescription& d) {
  const auto x = extents(d);
  int64_t total = 0;
  for (const auto& e : table()) {
    if (!present(e, d)) continue;
    const auto n = std::accumulate(e.shape.begin(), e.shape.end(), int64_t{1},
                                   [&](int64_t a, Dim dim) { return a * x.of(dim); });
    const auto size = e.type == Dtype::str
                          ? static_cast<int64_t>(width_of(creation_values(e.path, d).str))
                          : element_size(e.type, d);
    total += n * size;
  }
  return total;
}

void create_store(const h5::File& file, const SweepDescription& d, bool writer) {
  const auto& sh = d.shape;
  const auto fixed = h5::Str::fixed;
  file.set_attribute("format", kSweepFormat, fixed);
  file.set_attribute("format_version", kSweepFormatVersion);
  file.set_attribute("tool_version", LPI_VERSION, fixed);
  file.set_attribute("job_name", d.job_name, fixed);
  file.set_attribute("model_name", d.model_name, fixed);
  file.set_attribute("architecture", sh.architecture, fixed);
  file.set_attribute("lens", d.lens, fixed);
  file.set_attribute("target", d.target, fixed);
  file.set_attribute("per_prompt_attn", int64_t{d.per_prompt_attn});
  file.set_attribute("per_prompt_ffn", int64_t{d.per_prompt_ffn});
  file.set_attribute("per_prompt_dtype", d.per_prompt_dtype, fixed);
  for (const auto& [name, field] : kShapeAttributes) file.set_attribute(name, sh.*field);
  for (const char* g : kGroups) file.create_group(g);
  {
    const auto job = file.group(kJob);
    for (const auto& [k, v] : d.job) job.set_attribute(k, v, fixed);
  }
  const auto x = extents(d);
  for (const auto& e : table()) {
    if (!present(e, d)) continue;
    if (!file.exists(group_of(e.path))) file.create_group(group_of(e.path));
    const auto values = e.writer == Writer::creation ? creation_values(e.path, d) : Values{};
    const auto ds = file.create_dataset(e.path, file_type(e.type, d, width_of(values.str)),
                                        spec_of(e, dims(e, x)));
    if (e.writer != Writer::creation || !writer) continue;
    if (e.type == Dtype::str) ds.write(values.str);
    if (e.type == Dtype::i32) ds.write(values.i32);
    if (e.type == Dtype::i64) ds.write(values.i64);
  }
}

namespace {

std::string shape_text(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

}  // namespace

void check_datasets(const h5::File& file, const SweepDescription& d, int64_t file_bytes) {
  const auto x = extents(d);
  const std::string& path = file.path();
  for (const auto& e : table()) {
    if (!present(e, d)) continue;
    const std::string name = e.path;
    if (!file.exists(name))
      throw StoreError(path + " has no dataset " + name +
                       ", which a sweep store of its description holds (docs/STORE.md)");
    const auto ds = file.dataset(name, false);
    const auto have = ds.shape();
    auto want = dims(e, x);
    if (name == kRunLog && have.size() == 1) want = have;  // any length; rank 1
    if (have != want)
      throw StoreError(path + ": dataset " + name + " is " + shape_text(have) + ", expected " +
                       shape_text(want) + " from the store's description");
    int64_t bytes = static_cast<int64_t>(ds.type().size());
    for (const int64_t n : have) {
      if (__builtin_mul_overflow(bytes, n, &bytes)) bytes = INT64_MAX;
    }
    if (bytes > file_bytes)
      throw StoreError(path + ": dataset " + name + " " + shape_text(have) + " claims " +
                       std::to_string(bytes) + " bytes, more than the whole file (" +
                       std::to_string(file_bytes) + " bytes): the file is damaged or truncated");
  }
}

std::map<std::string, h5::Dataset> open_datasets(const h5::File& file, const SweepDescription& d) {
  std::map<std::string, h5::Dataset> out;
  for (const auto& e : table()) {
    if (e.writer == Writer::creation || !present(e, d)) continue;
    // No raw-data chunk cache: a write is in the file when H5Dwrite returns.
    out.emplace(e.path, file.dataset(e.path, false));
  }
  return out;
}

void write_run_entry(const h5::Dataset& log, int64_t slot, const std::string& text) {
  if (slot >= log.shape().at(0)) return;  // the history is full; the sweep goes on
  log.select({slot}, {1}).write(std::vector<std::string>{text.substr(0, kRunLogWidth - 1)});
}

std::vector<std::string> read_run_log(const h5::File& file) {
  std::vector<std::string> out;
  for (auto& e : file.dataset(kRunLog, false).read<std::string>()) {
    if (e.empty()) break;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace lpi::store::schema

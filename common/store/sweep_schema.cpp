#include "common/store/sweep_schema.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/core/ablation.hpp"
#include "lpi/lpi_config.hpp"

namespace lpi::store::schema {

namespace {

Handle fixed_string_type(std::size_t width) {
  Handle t(static_cast<hid_t>(check(H5Tcopy(H5T_C_S1), "copy string type")), H5Tclose);
  check(H5Tset_size(t.id(), std::max<std::size_t>(1, width)), "fixed-length string type");
  check(H5Tset_strpad(t.id(), H5T_STR_NULLPAD), "string padding");
  check(H5Tset_cset(t.id(), H5T_CSET_UTF8), "UTF-8 string type");
  return t;
}

Handle simple_space(const std::vector<int64_t>& shape) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  return Handle(static_cast<hid_t>(
                    check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                          "create dataspace")),
                H5Sclose);
}

enum class Fill { Zero, MinusOne, Never, Default };

// Collective creation; space allocated now so that later writes touch raw
// data only. `chunk` empty: contiguous.
Handle make(hid_t file, const std::string& path, hid_t type, const std::vector<int64_t>& shape,
            const std::vector<int64_t>& chunk = {}, Fill fill = Fill::Zero) {
  Handle dcpl(static_cast<hid_t>(check(H5Pcreate(H5P_DATASET_CREATE), "creation list")), H5Pclose);
  check(H5Pset_alloc_time(dcpl.id(), H5D_ALLOC_TIME_EARLY), "early allocation of " + path);
  if (!chunk.empty()) {
    std::vector<hsize_t> c(chunk.begin(), chunk.end());
    check(H5Pset_chunk(dcpl.id(), static_cast<int>(c.size()), c.data()), "chunks of " + path);
  }
  if (fill == Fill::Never) {
    check(H5Pset_fill_time(dcpl.id(), H5D_FILL_TIME_NEVER), "no fill for " + path);
  } else if (fill == Fill::Default) {
    check(H5Pset_fill_time(dcpl.id(), H5D_FILL_TIME_ALLOC), "fill of " + path);  // zero bytes
  } else {
    const int64_t value = fill == Fill::MinusOne ? -1 : 0;
    check(H5Pset_fill_time(dcpl.id(), H5D_FILL_TIME_ALLOC), "fill of " + path);
    check(H5Pset_fill_value(dcpl.id(), H5T_NATIVE_INT64, &value), "fill value of " + path);
  }
  const auto space = simple_space(shape);
  return Handle(static_cast<hid_t>(check(H5Dcreate2(file, path.c_str(), type, space.id(),
                                                    H5P_DEFAULT, dcpl.id(), H5P_DEFAULT),
                                         "create dataset " + path)),
                H5Dclose);
}

void fill(const Handle& ds, hid_t mem_type, const void* data, bool writer,
          const std::string& what) {
  if (!writer) return;
  check(H5Dwrite(ds.id(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "write " + what);
}

void strings(hid_t file, const std::string& path, const std::vector<std::string>& values,
             bool writer) {
  std::size_t width = 1;
  for (const auto& v : values) width = std::max(width, v.size());
  std::vector<char> buf(values.size() * width, '\0');
  for (std::size_t i = 0; i < values.size(); ++i)
    std::memcpy(&buf[i * width], values[i].data(), values[i].size());
  const auto type = fixed_string_type(width);
  const auto ds =
      make(file, path, type.id(), {static_cast<int64_t>(values.size())}, {}, Fill::Never);
  fill(ds, type.id(), buf.data(), writer, path);
}

template <class T>
void numbers(hid_t file, const std::string& path, hid_t file_type, hid_t mem_type,
             const std::vector<T>& values, bool writer) {
  const auto ds =
      make(file, path, file_type, {static_cast<int64_t>(values.size())}, {}, Fill::Never);
  fill(ds, mem_type, values.data(), writer, path);
}

}  // namespace

Handle open_dataset(hid_t file, const std::string& path) {
  Handle dapl(static_cast<hid_t>(check(H5Pcreate(H5P_DATASET_ACCESS), "access list")), H5Pclose);
  // No raw-data chunk cache: a write is in the file when H5Dwrite returns.
  check(H5Pset_chunk_cache(dapl.id(), 0, 0, 1.0), "chunk cache of " + path);
  return Handle(
      static_cast<hid_t>(check(H5Dopen2(file, path.c_str(), dapl.id()), "open dataset " + path)),
      H5Dclose);
}

std::vector<std::string> read_fixed_strings(hid_t file, const std::string& path) {
  const auto ds = open_dataset(file, path);
  const Handle type(static_cast<hid_t>(check(H5Dget_type(ds.id()), "type of " + path)), H5Tclose);
  if (H5Tget_class(type.id()) != H5T_STRING || H5Tis_variable_str(type.id()) != 0)
    throw StoreError(path + " is not a fixed-length string dataset");
  const std::size_t width = H5Tget_size(type.id());
  const auto n = dataset_shape(file, path).at(0);
  std::string buf(static_cast<std::size_t>(n) * width, '\0');
  if (n > 0)
    check(H5Dread(ds.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), "read " + path);
  std::vector<std::string> out;
  for (int64_t i = 0; i < n; ++i) {
    std::string s = buf.substr(static_cast<std::size_t>(i) * width, width);
    out.push_back(s.substr(0, s.find('\0')));
  }
  return out;
}

void set_fixed_attr(hid_t object, const std::string& name, const std::string& value) {
  const auto type = fixed_string_type(value.size());
  const Handle space(static_cast<hid_t>(check(H5Screate(H5S_SCALAR), "scalar dataspace")),
                     H5Sclose);
  const Handle attr(static_cast<hid_t>(check(H5Acreate2(object, name.c_str(), type.id(), space.id(),
                                                        H5P_DEFAULT, H5P_DEFAULT),
                                             "create attribute " + name)),
                    H5Aclose);
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  check(H5Awrite(attr.id(), type.id(), padded.data()), "write attribute " + name);
}

std::string fixed_attr(hid_t object, const std::string& name) {
  const Handle attr(static_cast<hid_t>(check(H5Aopen(object, name.c_str(), H5P_DEFAULT),
                                             "open attribute " + name)),
                    H5Aclose);
  const Handle type(static_cast<hid_t>(check(H5Aget_type(attr.id()), "type of " + name)), H5Tclose);
  if (H5Tget_class(type.id()) != H5T_STRING || H5Tis_variable_str(type.id()) != 0) {
    throw H5Error("attribute " + name + " is not a fixed-length string");
  }
  std::string buf(H5Tget_size(type.id()), '\0');
  check(H5Aread(attr.id(), type.id(), buf.data()), "read attribute " + name);
  return buf.substr(0, buf.find('\0'));
}

namespace {

// The file space of `ds` with the hyperslab [start, start + count) selected.
Handle select(hid_t ds, const std::vector<int64_t>& start, const std::vector<int64_t>& count,
              const std::string& what) {
  std::vector<hsize_t> s(start.begin(), start.end()), c(count.begin(), count.end());
  Handle space(static_cast<hid_t>(check(H5Dget_space(ds), "dataspace: " + what)), H5Sclose);
  check(H5Sselect_hyperslab(space.id(), H5S_SELECT_SET, s.data(), nullptr, c.data(), nullptr),
        "select slab: " + what);
  return space;
}

}  // namespace

void write_slab(hid_t ds, hid_t mem_type, const std::vector<int64_t>& start,
                const std::vector<int64_t>& count, const void* data, hid_t xfer,
                const std::string& what) {
  const auto file_space = select(ds, start, count, what);
  const auto mem = simple_space(count);
  check(H5Dwrite(ds, mem_type, mem.id(), file_space.id(), xfer, data), "write " + what);
}

void read_slab(hid_t ds, hid_t mem_type, const std::vector<int64_t>& start,
               const std::vector<int64_t>& count, void* data, hid_t xfer, const std::string& what) {
  const auto file_space = select(ds, start, count, what);
  const auto mem = simple_space(count);
  check(H5Dread(ds, mem_type, mem.id(), file_space.id(), xfer, data), "read " + what);
}

void write_description(hid_t file, const SweepDescription& d, bool writer) {
  const auto& sh = d.shape;
  set_fixed_attr(file, "format", kSweepFormat);
  set_attr(file, "format_version", kSweepFormatVersion);
  set_fixed_attr(file, "tool_version", LPI_VERSION);
  set_fixed_attr(file, "job_name", d.job_name);
  set_fixed_attr(file, "model_name", d.model_name);
  set_fixed_attr(file, "architecture", sh.architecture);
  set_fixed_attr(file, "lens", d.lens);
  set_fixed_attr(file, "target", d.target);
  set_attr(file, "per_prompt_attn", int64_t{d.per_prompt_attn});
  set_attr(file, "per_prompt_ffn", int64_t{d.per_prompt_ffn});
  for (const auto& [name, field] : kShapeAttributes) set_attr(file, name, sh.*field);
  for (const char* g : {"job", "checkpoints", "relations", "prompts", "units", "importance",
                        "evaluation", "aggregates", "runs"}) {
    create_group(file, g);
  }
  {
    const auto job = open_group(file, kJob);
    for (const auto& [k, v] : d.job) set_fixed_attr(job.id(), k, v);
  }
  const auto& g = d.grid;
  const auto C = static_cast<int64_t>(g.checkpoints.size());
  const auto P = static_cast<int64_t>(d.prompt_relation.size());
  const auto R = static_cast<int64_t>(d.relation_ids.size());
  std::vector<std::string> names, paths;
  std::vector<int64_t> steps, tokens;
  for (const auto& c : g.checkpoints) {
    names.push_back(c.name);
    paths.push_back(c.path);
    steps.push_back(c.step);
    tokens.push_back(c.tokens);
  }
  strings(file, "checkpoints/name", names, writer);
  strings(file, "checkpoints/path", paths, writer);
  strings(file, "checkpoints/header_hash", d.checkpoint_hashes, writer);
  numbers(file, "checkpoints/step", H5T_STD_I64LE, H5T_NATIVE_INT64, steps, writer);
  numbers(file, "checkpoints/tokens", H5T_STD_I64LE, H5T_NATIVE_INT64, tokens, writer);
  numbers(file, "checkpoints/bytes", H5T_STD_I64LE, H5T_NATIVE_INT64, d.checkpoint_bytes, writer);
  strings(file, "relations/id", d.relation_ids, writer);
  strings(file, "relations/file", d.relation_files, writer);
  std::vector<int32_t> flat;
  std::vector<int64_t> offsets = {0};
  for (const auto& ids : d.prompt_ids) {
    flat.insert(flat.end(), ids.begin(), ids.end());
    offsets.push_back(static_cast<int64_t>(flat.size()));
  }
  numbers(file, "prompts/relation", H5T_STD_I32LE, H5T_NATIVE_INT32, d.prompt_relation, writer);
  numbers(file, "prompts/sample", H5T_STD_I32LE, H5T_NATIVE_INT32, d.prompt_sample, writer);
  numbers(file, "prompts/gold_target", H5T_STD_I32LE, H5T_NATIVE_INT32, d.prompt_gold, writer);
  strings(file, "prompts/text", d.prompt_text, writer);
  numbers(file, "prompts/token_ids", H5T_STD_I32LE, H5T_NATIVE_INT32, flat, writer);
  numbers(file, "prompts/token_offsets", H5T_STD_I64LE, H5T_NATIVE_INT64, offsets, writer);
  std::vector<int32_t> uc, ur, uf, un;
  for (const auto& u : g.units) {
    uc.push_back(u.checkpoint);
    ur.push_back(u.relation);
    uf.push_back(u.first_prompt);
    un.push_back(u.prompt_count);
  }
  numbers(file, "units/checkpoint", H5T_STD_I32LE, H5T_NATIVE_INT32, uc, writer);
  numbers(file, "units/relation", H5T_STD_I32LE, H5T_NATIVE_INT32, ur, writer);
  numbers(file, "units/first_prompt", H5T_STD_I32LE, H5T_NATIVE_INT32, uf, writer);
  numbers(file, "units/prompt_count", H5T_STD_I32LE, H5T_NATIVE_INT32, un, writer);
  const auto U = static_cast<int64_t>(g.units.size());
  make(file, kUnitDone, H5T_STD_U8LE, {U});
  make(file, kUnitRank, H5T_STD_I32LE, {U}, {}, Fill::MinusOne);
  make(file, kUnitSeconds, H5T_IEEE_F32LE, {U});
  const int64_t L = sh.num_layers, A = sh.attn_width(), I = sh.intermediate_size;
  const int64_t k = sh.experts_per_token, E = sh.num_experts;
  // Per prompt scalars: contiguous [C, P] (a unit's values are one byte range).
  make(file, kTarget, H5T_STD_I32LE, {C, P}, {}, Fill::MinusOne);
  make(file, kBaseLogprob, H5T_IEEE_F32LE, {C, P});
  make(file, kGoldRank, H5T_STD_I32LE, {C, P}, {}, Fill::MinusOne);
  make(file, kHit, H5T_STD_U8LE, {C, P});
  // Per prompt tensors: one chunk per (checkpoint, prompt), never filled (sparse until written).
  if (d.per_prompt_attn) make(file, kAttn, H5T_IEEE_F32LE, {C, P, L, A}, {1, 1, L, A}, Fill::Never);
  const int64_t EI = sh.ffn_width();  // a unit's FFN sum covers every expert
  if (sh.is_moe() && d.per_prompt_ffn) {
    make(file, kFfn, H5T_IEEE_F32LE, {C, P, L, k, I}, {1, 1, L, k, I}, Fill::Never);
    make(file, kExpertIds, H5T_STD_I32LE, {C, P, L, k}, {1, 1, L, k}, Fill::Never);
  } else if (d.per_prompt_ffn) {
    make(file, kFfn, H5T_IEEE_F32LE, {C, P, L, I}, {1, 1, L, I}, Fill::Never);
  }
  // Per unit sums over its prompts (float64): one chunk per unit.
  make(file, kUnitAttnSum, H5T_IEEE_F64LE, {U, L, A}, {1, L, A}, Fill::Never);
  make(file, kUnitFfnSum, H5T_IEEE_F64LE, {U, L, EI}, {1, L, EI}, Fill::Never);
  if (sh.is_moe()) {
    make(file, kFfnMean, H5T_IEEE_F32LE, {C, L, E, I}, {1, L, E, I}, Fill::Never);
  } else {
    make(file, kFfnMean, H5T_IEEE_F32LE, {C, L, I}, {1, L, I}, Fill::Never);
  }
  make(file, kAttnMean, H5T_IEEE_F32LE, {C, L, A}, {1, L, A}, Fill::Never);
  make(file, kHitByRelation, H5T_IEEE_F32LE, {C, R});
  make(file, kHitAll, H5T_IEEE_F32LE, {C});
  make(file, kAggDone, H5T_STD_U8LE, {C});
  const auto log_type = fixed_string_type(kRunLogWidth);
  make(file, kRunLog, log_type.id(), {kRunLogEntries}, {}, Fill::Default);
  if (!d.ablation.enabled) return;
  create_group(file, "ablation");
  const auto conditions = d.ablation.conditions();
  const auto M = static_cast<int64_t>(conditions.size());
  const int64_t Hmax = std::max<int32_t>(1, d.ablation.max_heads());
  const int64_t K = std::max<int64_t>(1, core::ablation_ffn_count(sh, d.ablation.ffn_fraction));
  strings(file, kAblCondition, conditions, writer);
  make(file, kAblHeads, H5T_STD_I32LE, {C, Hmax, 2}, {}, Fill::MinusOne);
  make(file, kAblHeadScore, H5T_IEEE_F32LE, {C, Hmax});
  make(file, kAblFfnNeurons, H5T_STD_I64LE, {C, K}, {}, Fill::MinusOne);
  make(file, kAblMaskDone, H5T_STD_U8LE, {C});
  make(file, kAblGoldRank, H5T_STD_I32LE, {C, P, M}, {}, Fill::MinusOne);
  make(file, kAblLogprob, H5T_IEEE_F32LE, {C, P, M});
  make(file, kAblHit, H5T_STD_U8LE, {C, P, M});
  make(file, kAblUnitDone, H5T_STD_U8LE, {U});
  make(file, kAblHitAll, H5T_IEEE_F32LE, {C, M});
  make(file, kAblHitByRelation, H5T_IEEE_F32LE, {C, R, M});
  make(file, kAblDone, H5T_STD_U8LE, {C});
}

void write_run_entry(hid_t ds, int64_t slot, const std::string& text, hid_t xfer) {
  if (slot >= kRunLogEntries) return;  // the history is full; the sweep goes on
  std::string entry(static_cast<std::size_t>(kRunLogWidth), '\0');
  entry.replace(0, std::min<std::size_t>(text.size(), kRunLogWidth - 1), text, 0,
                std::min<std::size_t>(text.size(), kRunLogWidth - 1));
  const auto type = fixed_string_type(kRunLogWidth);
  write_slab(ds, type.id(), {slot}, {1}, entry.data(), xfer, "run history entry");
}

std::vector<std::string> read_run_log(hid_t file) {
  const auto ds = open_dataset(file, kRunLog);
  const auto type = fixed_string_type(kRunLogWidth);
  std::string buf(static_cast<std::size_t>(kRunLogEntries * kRunLogWidth), '\0');
  check(H5Dread(ds.id(), type.id(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), "read run history");
  std::vector<std::string> out;
  for (int64_t i = 0; i < kRunLogEntries; ++i) {
    std::string e = buf.substr(static_cast<std::size_t>(i * kRunLogWidth), kRunLogWidth);
    e = e.substr(0, e.find('\0'));
    if (e.empty()) break;
    out.push_back(e);
  }
  return out;
}

}  // namespace lpi::store::schema

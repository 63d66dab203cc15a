// Reading a sweep store's self-description without MPI: status, resume
// checks and other tools.
#include <filesystem>

#include "common/store/sweep_schema.hpp"
#include "common/store/sweep_store.hpp"

namespace lpi::store {
using namespace schema;

namespace {

std::vector<uint8_t> read_u8(hid_t file, const std::string& path) {
  const auto n = dataset_shape(file, path).at(0);
  std::vector<uint8_t> out(static_cast<std::size_t>(n));
  const auto ds = open_dataset(file, path);
  if (n > 0)
    check(H5Dread(ds.id(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
          "read " + path);
  return out;
}

herr_t collect_name(hid_t, const char* name, const H5A_info_t*, void* out) {
  static_cast<std::vector<std::string>*>(out)->push_back(name);
  return 0;
}

std::vector<std::string> attr_names(hid_t object) {
  std::vector<std::string> names;
  hsize_t at = 0;
  check(H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, &at, collect_name, &names),
        "list attributes");
  return names;
}

}  // namespace

StoreInfo read_store_info(const std::string& path) {
  if (!std::filesystem::exists(path)) throw StoreError("store " + path + " does not exist");
  silence_hdf5_errors();
  if (H5Fis_hdf5(path.c_str()) <= 0)
    throw StoreError(path + " is not an HDF5 file, so not a sweep store");
  const auto file = open_file(path);
  const hid_t f = file.id();
  std::string format;
  try {
    format = fixed_attr(f, "format");
  } catch (const H5Error&) {
    format = "(none)";
  }
  if (format != kSweepFormat) {
    throw StoreError(path + " is not an lpi-sweep store: its 'format' attribute is '" + format +
                     "', expected '" + kSweepFormat + "'");
  }
  const auto version = attr_int(f, "format_version");
  if (version != kSweepFormatVersion) {
    throw StoreError(path + " has store format version " + std::to_string(version) +
                     "; this lpi-sweep reads version " + std::to_string(kSweepFormatVersion));
  }
  StoreInfo info;
  auto& d = info.description;
  d.job_name = fixed_attr(f, "job_name");
  d.model_name = fixed_attr(f, "model_name");
  d.lens = fixed_attr(f, "lens");
  d.target = fixed_attr(f, "target");
  d.per_prompt_attn = attr_int(f, "per_prompt_attn") != 0;
  d.per_prompt_ffn = attr_int(f, "per_prompt_ffn") != 0;
  auto& sh = d.shape;
  sh.architecture = fixed_attr(f, "architecture");
  for (const auto& [name, field] : kShapeAttributes) sh.*field = attr_int(f, name);
  {
    const auto job = open_group(f, kJob);
    for (const auto& k : attr_names(job.id())) d.job[k] = fixed_attr(job.id(), k);
  }
  const auto names = read_fixed_strings(f, "checkpoints/name");
  const auto paths = read_fixed_strings(f, "checkpoints/path");
  const auto steps = read_i64(f, "checkpoints/step");
  const auto tokens = read_i64(f, "checkpoints/tokens");
  for (std::size_t i = 0; i < names.size(); ++i)
    d.grid.checkpoints.push_back({names[i], paths[i], steps[i], tokens[i]});
  d.checkpoint_hashes = read_fixed_strings(f, "checkpoints/header_hash");
  d.checkpoint_bytes = read_i64(f, "checkpoints/bytes");
  d.relation_ids = read_fixed_strings(f, "relations/id");
  d.relation_files = read_fixed_strings(f, "relations/file");
  d.prompt_relation = read_i32(f, "prompts/relation");
  d.prompt_sample = read_i32(f, "prompts/sample");
  d.prompt_gold = read_i32(f, "prompts/gold_target");
  d.prompt_text = read_fixed_strings(f, "prompts/text");
  const auto flat = read_i32(f, "prompts/token_ids");
  const auto offsets = read_i64(f, "prompts/token_offsets");
  for (std::size_t p = 0; p + 1 < offsets.size(); ++p)
    d.prompt_ids.emplace_back(flat.begin() + offsets[p], flat.begin() + offsets[p + 1]);
  d.grid.prompts_per_relation.assign(d.relation_ids.size(), 0);
  for (auto r : d.prompt_relation) ++d.grid.prompts_per_relation.at(r);
  const auto uc = read_i32(f, "units/checkpoint"), ur = read_i32(f, "units/relation"),
             uf = read_i32(f, "units/first_prompt"), un = read_i32(f, "units/prompt_count");
  for (std::size_t u = 0; u < uc.size(); ++u)
    d.grid.units.push_back({static_cast<int32_t>(u), uc[u], ur[u], uf[u], un[u]});
  info.unit_done = read_u8(f, kUnitDone);
  info.aggregated = read_u8(f, kAggDone);
  info.runs = read_run_log(f);
  if (H5Lexists(f, "ablation", H5P_DEFAULT) > 0) {
    info.ablation_conditions = read_fixed_strings(f, kAblCondition);
    const auto spec = sweep::ablation_from_conditions(info.ablation_conditions);
    if (!spec)
      throw StoreError(path + ": ablation/condition holds no valid list of masking conditions");
    d.ablation = *spec;
    info.ablation_unit_done = read_u8(f, kAblUnitDone);
    info.ablation_done = read_u8(f, kAblDone);
  }
  return info;
}

}  // namespace lpi::store

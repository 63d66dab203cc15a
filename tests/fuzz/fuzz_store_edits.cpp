// A real sweep store (tiny_store.hpp, written once per process as lpi-sweep
// writes it) damaged by a list of edits decoded from the input and made
// through the h5 layer, so that the file stays valid HDF5 and what is wrong
// is what it says: a shape attribute, an entry or the length of a list of
// the description, a dataset removed or of another shape, a string. Then
// checked as store_checks.hpp says. The first byte picks the store (dense;
// MoE with the ablation phase; dense with the ablation phase and no
// per-prompt tensors); each edit is an opcode and its operands.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/store/sweep_schema.hpp"
#include "store_checks.hpp"
#include "tiny_store.hpp"

namespace fs = std::filesystem;
namespace h5 = lpi::h5;
namespace schema = lpi::store::schema;

namespace {

const std::vector<std::string>& bases() {
  static const std::vector<std::string> paths = [] {
    std::vector<std::string> out;
    const struct {
      bool moe, ablation, per_prompt;
    } kinds[] = {{false, false, true}, {true, true, true}, {false, true, false}};
    for (const auto& k : kinds) {
      out.push_back((lpi::fuzz::scratch() / ("base" + std::to_string(out.size()))).string());
      lpi::fuzz::write_tiny_store(out.back(), k.moe, k.ablation, k.per_prompt);
    }
    return out;
  }();
  return paths;
}

// The integer lists of the description and the flags.
constexpr const char* kIntLists[] = {
    "checkpoints/step", "checkpoints/tokens",  "checkpoints/bytes",  "prompts/relation",
    "prompts/sample",   "prompts/gold_target", "prompts/token_ids",  "prompts/token_offsets",
    "units/checkpoint", "units/relation",      "units/first_prompt", "units/prompt_count",
    schema::kUnitDone,  schema::kAggDone,      schema::kAblUnitDone, schema::kAblDone};
constexpr const char* kStringLists[] = {
    "checkpoints/name", "checkpoints/path", "checkpoints/header_hash", "relations/id",
    "relations/file",   "prompts/text",     schema::kAblCondition,     schema::kRunLog};
constexpr const char* kIntAttributes[] = {
    "format_version", "per_prompt_attn",   "per_prompt_ffn", "num_layers",
    "hidden_size",    "num_heads",         "head_dim",       "intermediate_size",
    "num_experts",    "experts_per_token", "vocab_size"};
constexpr const char* kStringAttributes[] = {"format", "architecture", "job_name", "lens"};

template <std::size_t N>
const char* pick(FuzzedDataProvider& in, const char* const (&names)[N]) {
  return names[in.ConsumeIntegralInRange<std::size_t>(0, N - 1)];
}

int64_t some_integer(FuzzedDataProvider& in) {
  static const int64_t edges[] = {0,
                                  1,
                                  2,
                                  3,
                                  4,
                                  5,
                                  -1,
                                  INT32_MAX,
                                  INT32_MIN,
                                  INT64_MAX,
                                  INT64_MIN,
                                  int64_t{1} << 31,
                                  int64_t{1} << 32,
                                  int64_t{1} << 40,
                                  int64_t{1} << 62,
                                  4096};
  if (in.ConsumeBool()) return edges[in.ConsumeIntegralInRange<std::size_t>(0, 15)];
  return in.ConsumeIntegral<int64_t>();
}

// Replaces dataset `name` by one of `dims` and the same file type, holding `values`.
void recreate_ints(const h5::File& f, const std::string& name, const std::vector<int64_t>& values) {
  const auto old = f.dataset(name);
  const h5::Type type = old.type();
  f.remove(name);
  const auto ds =
      f.create_dataset(name, type, h5::DatasetSpec::plain({static_cast<int64_t>(values.size())}));
  ds.write_raw(H5T_NATIVE_INT64, {}, {}, values.data(), values.size());
}

void edit_int_list(FuzzedDataProvider& in, const h5::File& f) {
  const std::string name = pick(in, kIntLists);
  if (!f.exists(name)) return;
  std::vector<int64_t> values = f.dataset(name).read<int64_t>();
  switch (in.ConsumeIntegralInRange<int>(0, 2)) {
    case 0:  // one entry
      if (!values.empty())
        values[in.ConsumeIntegralInRange<std::size_t>(0, values.size() - 1)] = some_integer(in);
      break;
    case 1:  // shorter or longer
      values.resize(in.ConsumeIntegralInRange<std::size_t>(0, values.size() + 2), some_integer(in));
      break;
    default:  // two entries swapped
      if (values.size() >= 2)
        std::swap(values[in.ConsumeIntegralInRange<std::size_t>(0, values.size() - 1)],
                  values[in.ConsumeIntegralInRange<std::size_t>(0, values.size() - 1)]);
      break;
  }
  recreate_ints(f, name, values);
}

void edit_string_list(FuzzedDataProvider& in, const h5::File& f) {
  const std::string name = pick(in, kStringLists);
  if (!f.exists(name) || !f.dataset(name).type().is_string()) return;
  std::vector<std::string> values = f.dataset(name).read<std::string>();
  const std::string text = in.ConsumeRandomLengthString(64);
  if (in.ConsumeBool() && !values.empty())
    values[in.ConsumeIntegralInRange<std::size_t>(0, values.size() - 1)] = text;
  else
    values.resize(in.ConsumeIntegralInRange<std::size_t>(0, values.size() + 2), text);
  std::size_t width = 1;
  for (const auto& v : values) width = std::max(width, v.size());
  f.remove(name);
  const auto ds =
      in.ConsumeBool()
          ? f.create_dataset(name, h5::Type::fixed_string(width),
                             h5::DatasetSpec::plain({static_cast<int64_t>(values.size())}))
          : f.write_dataset(name, values);  // variable-length: refused by the reader
  if (ds.type().is_string() && !ds.type().is_variable_string()) ds.write(values);
}

// A dataset of the table recreated with one dimension changed.
void reshape_dataset(FuzzedDataProvider& in, const h5::File& f) {
  const auto& table = schema::table();
  const std::string name = table[in.ConsumeIntegralInRange<std::size_t>(0, table.size() - 1)].path;
  if (!f.exists(name)) return;
  const auto old = f.dataset(name);
  auto dims = old.shape();
  if (dims.empty()) return;
  dims[in.ConsumeIntegralInRange<std::size_t>(0, dims.size() - 1)] =
      in.ConsumeIntegralInRange<int64_t>(0, 6);
  const h5::Type type = old.type();
  f.remove(name);
  f.create_dataset(name, type, h5::DatasetSpec::plain(dims));
}

void edit(FuzzedDataProvider& in, const h5::File& f) {
  const int op = in.ConsumeIntegralInRange<int>(0, 5);
  if (std::getenv("LPI_FUZZ_VERBOSE") != nullptr) std::fprintf(stderr, "edit %d\n", op);
  switch (op) {
    case 0:
      f.set_attribute(pick(in, kIntAttributes), some_integer(in));
      break;
    case 1:
      f.set_attribute(pick(in, kStringAttributes), in.ConsumeRandomLengthString(32),
                      in.ConsumeBool() ? h5::Str::fixed : h5::Str::variable);
      break;
    case 2:
      edit_int_list(in, f);
      break;
    case 3:
      edit_string_list(in, f);
      break;
    case 4: {
      const auto& table = schema::table();
      const std::string name =
          table[in.ConsumeIntegralInRange<std::size_t>(0, table.size() - 1)].path;
      if (f.exists(name)) f.remove(name);
      break;
    }
    default:
      reshape_dataset(in, f);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  lpi::fuzz::init_mpi_and_hdf5(argc, argv);
  (void)bases();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::string path = (lpi::fuzz::scratch() / "edited").string();
  FuzzedDataProvider in(data, size);
  const auto& base = bases()[in.ConsumeIntegralInRange<std::size_t>(0, bases().size() - 1)];
  fs::copy_file(base, path, fs::copy_options::overwrite_existing);
  try {  // an edit that HDF5 refuses (say, in a group already removed) ends the editing
    const auto f = h5::File::open(path, h5::Mode::read_write);
    for (int edits = 0; edits < 8 && in.remaining_bytes() > 0; ++edits) edit(in, f);
  } catch (const h5::Error&) {
  }
  const bool accepted = lpi::fuzz::check_store_file(path);
  if (std::getenv("LPI_FUZZ_VERBOSE") != nullptr)  // what an input did, for a finding's report
    std::fprintf(stderr, "fuzz_store_edits: store %s\n", accepted ? "accepted" : "refused");
  return 0;
}

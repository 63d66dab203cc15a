// read_store_info on damaged stores: every list of the self-description
// agrees with the others and every dataset of the schema table has the shape
// the description gives it, or the read is a StoreError naming the file and
// what is wrong (never an index past a vector, as fuzz_store found). The
// stores are written serially with the schema's own create_store, then
// damaged through the h5 layer; the fuzzer's own inputs are read as they are.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "common/store/store_reader.hpp"
#include "common/store/sweep_schema.hpp"
#include "common/store/sweep_store.hpp"
#include "expect_error.hpp"
#include "temp_dir.hpp"

namespace st = lpi::store;
namespace h5 = lpi::h5;
namespace fs = std::filesystem;

namespace {

st::SweepDescription tiny(bool moe, bool ablation) {
  st::SweepDescription d;
  d.job = {{"job.name", "demo"}};
  d.job_name = "demo";
  d.model_name = "tiny";
  d.lens = "frozen";
  d.target = "gold";
  d.shape = {
      moe ? "OlmoeForCausalLM" : "OlmoForCausalLM", 2, 4, 2, 2, 3, moe ? 4 : 0, moe ? 2 : 0, 16};
  d.relation_ids = {"r0", "r1"};
  d.relation_files = {"r0.json", "r1.json"};
  d.prompt_relation = {0, 0, 1};
  d.prompt_sample = {0, 1, 0};
  d.prompt_gold = {5, 6, 7};
  d.prompt_text = {"a", "bb", "ccc"};
  d.prompt_ids = {{1}, {1, 2}, {1, 2, 3}};
  d.grid = lpi::sweep::build_grid(
      {{"step0-tokens0", "/a", 0, 0}, {"step10-tokens20", "/b", 10, 20}}, {2, 1}, 2);
  d.checkpoint_hashes = {"0123456789abcdef", "fedcba9876543210"};
  d.checkpoint_bytes = {1, 2};
  d.ablation.enabled = ablation;
  return d;
}

struct Store {
  lpi::test::TempDir dir{"lpi_store_reader"};
  std::string path = (dir / "s.h5").string();
  explicit Store(bool moe = false, bool ablation = false, const std::string& dtype = "float32") {
    const auto f = h5::File::create(path);
    auto d = tiny(moe, ablation);
    d.per_prompt_dtype = dtype;
    st::schema::create_store(f, d, true);
  }
  // Replaces a 1-d dataset of the description with `values`.
  template <class T>
  void replace(const std::string& name, const std::vector<T>& values) const {
    const auto f = h5::File::open(path, h5::Mode::read_write);
    f.remove(name);
    if constexpr (std::is_same_v<T, std::string>)
      f.write_dataset(name, values);  // variable-length strings
    else
      f.write_dataset(name, {static_cast<int64_t>(values.size())}, values);
  }
  void attribute(const std::string& name, int64_t value) const {
    h5::File::open(path, h5::Mode::read_write).set_attribute(name, value);
  }
  void expect_refused(const std::vector<std::string>& parts) const {
    std::vector<std::string> all = parts;
    all.push_back(path);
    lpi::test::expect_error<st::StoreError>([&] { st::read_store_info(path); }, all);
  }
};

TEST(StoreReader, ReadsWhatCreateStoreWrote) {
  for (const bool moe : {false, true}) {
    const Store s(moe, /*ablation=*/moe);
    const auto info = st::read_store_info(s.path);
    EXPECT_EQ(info.description.grid.units.size(), 4u);
    EXPECT_EQ(info.description.prompt_ids, tiny(moe, moe).prompt_ids);
    EXPECT_EQ(info.description.grid.prompts_per_relation, (std::vector<int32_t>{2, 1}));
    EXPECT_EQ(info.unit_done.size(), 4u);
    EXPECT_EQ(info.description.ablation.enabled, moe);
    const st::Reader reader(s.path);
    EXPECT_EQ(reader.attn_mean(1).size(), 2u * 4u);
    EXPECT_EQ(reader.prompts(0, 1, 2).ffn.size(), moe ? 2u * 2 * 2 * 3 : 2u * 2 * 3);
  }
}

// Per-prompt tensors kept in 16 bits: the description says which, the
// datasets are 2 bytes an element, and the reader returns float32 values
// within half an ulp of what was written; an unknown type is refused.
TEST(StoreReader, SixteenBitPerPromptTensors) {
  for (const std::string dtype : {"float16", "bfloat16"}) {
    const Store s(/*moe=*/false, false, dtype);
    std::vector<float> attn(2 * 3 * 2 * 4);
    for (std::size_t i = 0; i < attn.size(); ++i) attn[i] = 0.01f * static_cast<float>(i) - 0.2f;
    {
      const auto f = h5::File::open(s.path, h5::Mode::read_write);
      const auto ds = f.dataset(st::schema::kAttn);
      EXPECT_EQ(ds.type().size(), 2u);
      ds.write(attn);
    }
    const auto info = st::read_store_info(s.path);
    EXPECT_EQ(info.description.per_prompt_dtype, dtype);
    const auto slab = st::Reader(s.path).prompts(1, 0, 3);  // checkpoint 1, all 3 prompts
    ASSERT_EQ(slab.attn.size(), 3u * 2 * 4);
    const double half_ulp = dtype == "float16" ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
    for (std::size_t i = 0; i < slab.attn.size(); ++i) {
      const float want = attn[3 * 2 * 4 + i];
      EXPECT_LE(std::abs(slab.attn[i] - want), std::abs(want) * half_ulp + 1e-9)
          << dtype << " " << i;
    }
  }
  const Store s;
  h5::File::open(s.path, h5::Mode::read_write)
      .set_attribute("per_prompt_dtype", std::string("float8"), h5::Str::fixed);
  s.expect_refused({"attribute per_prompt_dtype", "'float8'", "float32, float16 or bfloat16"});
}

// fuzz_store's first finding (tests/fuzz/corpus/store/crash-token-offsets):
// a token offset past prompts/token_ids made read_store_info build a prompt's
// ids from an iterator far outside the vector (UBSan: pointer overflow; a
// read out of bounds).
TEST(StoreReader, TokenOffsetsOutsideTheTokenIds) {
  const Store s;
  s.replace<int64_t>("prompts/token_offsets", {0, 1, int64_t{1} << 62, 6});
  s.expect_refused({"prompts/token_offsets", "non-decreasing offsets from 0 to the 6 entries"});
  s.replace<int64_t>("prompts/token_offsets", {0, 3, 1, 6});
  s.expect_refused({"prompts/token_offsets"});
  s.replace<int64_t>("prompts/token_offsets", {0, 1, 3});
  s.expect_refused({"prompts/token_offsets", "not 4 non-decreasing"});
}

// The lists of the description are indexed together: each has one entry per
// checkpoint, relation, prompt or unit (a shorter one was read past its end).
TEST(StoreReader, ListsOfDifferentLengths) {
  const Store s;
  s.replace<std::string>("checkpoints/path", {"/a"});
  // write_dataset writes variable-length strings: refused as not fixed-length first.
  s.expect_refused({"checkpoints/path", "fixed-length"});
  const Store t;
  t.replace<int64_t>("checkpoints/step", {0});
  t.expect_refused({"checkpoints/step has 1 entries, expected 2"});
  const Store u;
  u.replace<int32_t>("units/prompt_count", {2, 1, 2});
  u.expect_refused({"units/prompt_count has 3 entries, expected 4"});
  const Store v;
  v.replace<int32_t>("prompts/gold_target", {5, 6, 7, 8});
  v.expect_refused({"prompts/gold_target has 4 entries, expected 3"});
}

// Indices into other lists are in range (prompts_per_relation.at(r) threw
// std::out_of_range, an untyped error, for a bad relation index).
TEST(StoreReader, IndicesOutOfRange) {
  const Store s;
  s.replace<int32_t>("prompts/relation", {0, 0, 7});
  s.expect_refused({"prompts/relation[2] is 7, expected a relation 0..1"});
  const Store t;
  t.replace<int32_t>("units/checkpoint", {0, 0, 2, 1});
  t.expect_refused({"unit 2 (checkpoint 2", "one of the 2 checkpoints"});
  const Store u;
  u.replace<int32_t>("units/first_prompt", {0, 1, 0, 2});   // unit 1 (relation 1) at prompt 1,
  u.expect_refused({"unit 1 ", "one relation's prompts"});  // which is relation 0's
  const Store v;
  v.replace<int32_t>("units/prompt_count", {2, 1, 2, 9});
  v.expect_refused({"unit 3 ", "+9"});
}

// The model shape sizes every read of the store: a size that disagrees with
// the datasets, or whose products overflow, is refused before any read.
TEST(StoreReader, ShapeAttributesAgainstTheDatasets) {
  const Store s;
  s.attribute("num_layers", 3);
  s.expect_refused({"importance/attn is [2, 3, 2, 4], expected [2, 3, 3, 4]"});
  s.attribute("num_layers", 0);
  s.expect_refused({"attribute 'num_layers' is 0, expected a positive size"});
  s.attribute("num_layers", int64_t{1} << 40);
  s.attribute("num_heads", int64_t{1} << 40);
  s.expect_refused({"more neurons than 64-bit indices hold"});
  const Store moe(true);
  moe.attribute("experts_per_token", 5);
  moe.expect_refused({"'experts_per_token' is 5, expected 1..4"});
}

// A dataset of the table is missing, or the ablation conditions are outside
// what a job accepts.
TEST(StoreReader, MissingDatasetAndBadConditions) {
  const Store s;
  h5::File::open(s.path, h5::Mode::read_write).remove("aggregates/done");
  s.expect_refused({"has no dataset aggregates/done"});
  const Store t(false, true);
  {
    const auto f = h5::File::open(t.path, h5::Mode::read_write);
    f.remove("ablation/condition");
    const auto ds = f.create_dataset("ablation/condition", h5::Type::fixed_string(8),
                                     h5::DatasetSpec::plain({4}));
    ds.write(std::vector<std::string>{"none", "heads:1", "heads:10", "ffn:5"});
  }
  t.expect_refused({"ablation/condition holds no valid list"});
}

// fuzz_store's inputs as they are: the first finding names the offsets;
// the others crashed or leaked inside libhdf5 under the sanitizers (an
// allocation of 0xffffffff00000000 bytes, object headers never freed) and
// read as typed errors here.
TEST(StoreReader, FuzzRegressionInputs) {
  const fs::path corpus = fs::path(LPI_SOURCE_DIR) / "tests/fuzz/corpus/store";
  lpi::test::expect_error<st::StoreError>(
      [&] { st::read_store_info((corpus / "crash-token-offsets").string()); },
      {"crash-token-offsets", "prompts/token_offsets"});
  for (const char* name : {"crash-hdf5-allocation-size", "leak-hdf5-object-header"}) {
    ASSERT_TRUE(fs::exists(corpus / name)) << name;
    try {
      st::read_store_info((corpus / name).string());
      ADD_FAILURE() << name << " was read as a store";
    } catch (const st::StoreError&) {
    } catch (const h5::Error&) {
    }
  }
}

}  // namespace

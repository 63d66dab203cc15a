// The sweep store's schema table: docs/STORE.md's layout tables are exactly
// the ones the table generates (lpi-store-schema prints them), the table's
// shape rules, and the dry run's size computed from it.
#include "common/store/sweep_schema.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

namespace schema = lpi::store::schema;

namespace {

std::string read_doc() {
  std::ifstream in(std::string(LPI_SOURCE_DIR) + "/docs/STORE.md");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

lpi::store::SweepDescription tiny(bool moe, bool ablation) {
  lpi::store::SweepDescription d;
  d.shape.architecture = moe ? "OlmoeForCausalLM" : "OlmoForCausalLM";
  d.shape.num_layers = 2;
  d.shape.hidden_size = 8;
  d.shape.num_heads = 2;
  d.shape.head_dim = 4;
  d.shape.intermediate_size = 6;
  d.shape.num_experts = moe ? 4 : 0;
  d.shape.experts_per_token = moe ? 2 : 0;
  d.shape.vocab_size = 50;
  d.grid.checkpoints = {{"step0-tokens0", "/a", 0, 0}, {"step10-tokens20", "/bb", 10, 20}};
  d.relation_ids = {"r0"};
  d.relation_files = {"r0.json"};
  d.prompt_relation = {0, 0, 0};
  d.prompt_sample = {0, 1, 2};
  d.prompt_gold = {5, 6, 7};
  d.prompt_text = {"a", "bb", "ccc"};
  d.prompt_ids = {{1}, {1, 2}, {1, 2, 3}};
  d.checkpoint_hashes = {"0123456789abcdef", "0123456789abcdef"};
  d.checkpoint_bytes = {1, 2};
  for (int32_t c = 0; c < 2; ++c) d.grid.units.push_back({c, c, 0, 0, 3});
  d.ablation.enabled = ablation;
  return d;
}

}  // namespace

TEST(Schema, DocsStoreMdHoldsTheGeneratedTables) {
  const auto doc = read_doc();
  ASSERT_FALSE(doc.empty()) << "docs/STORE.md not found under " << LPI_SOURCE_DIR;
  for (bool ablation : {false, true}) {
    const auto table = schema::markdown(ablation);
    EXPECT_NE(doc.find(table), std::string::npos)
        << "docs/STORE.md does not hold this table (print it with lpi-store-schema):\n"
        << table;
  }
}

TEST(Schema, EveryPathOnceForEachKindOfModel) {
  for (bool moe : {false, true}) {
    std::set<std::string> seen;
    const auto d = tiny(moe, true);
    for (const auto& e : schema::table()) {
      if (!schema::present(e, d)) continue;
      EXPECT_TRUE(seen.insert(e.path).second) << e.path;
      // Chunked datasets have a chunk per leading index (a prompt, a unit, a checkpoint).
      EXPECT_LE(e.chunk_lead, 2) << e.path;
    }
    EXPECT_EQ(seen.count(schema::kExpertIds), moe ? 1u : 0u);
    EXPECT_EQ(seen.count(schema::kAblDone), 1u);
  }
}

TEST(Schema, ShapesFollowTheModel) {
  const auto d = tiny(true, false);
  const auto x = schema::extents(d);
  for (const auto& e : schema::table()) {
    if (!schema::present(e, d)) continue;
    const auto dims = schema::dims(e, x);
    if (e.path == std::string(schema::kFfn)) {
      EXPECT_EQ(dims, (std::vector<int64_t>{2, 3, 2, 2, 6}));
      EXPECT_EQ(schema::chunk(e, dims), (std::vector<int64_t>{1, 1, 2, 2, 6}));
    }
    if (e.path == std::string(schema::kUnitFfnSum)) {
      EXPECT_EQ(dims, (std::vector<int64_t>{2, 2, 24}));
    }
    if (e.path == std::string("prompts/token_offsets")) {
      EXPECT_EQ(dims, std::vector<int64_t>{4});
    }
    if (e.path == std::string("prompts/token_ids")) {
      EXPECT_EQ(dims, std::vector<int64_t>{6});
    }
  }
}

TEST(Schema, StoreBytesIsTheRawDataAllocated) {
  auto d = tiny(false, false);
  // By hand: description, flags, per-prompt scalars and tensors, sums,
  // means and the run history (dense: L=2, A=8, I=6; C=2, P=3, U=2, R=1).
  // name (15 wide), path (3), header_hash (16), step, tokens, bytes; relation id (2), file (7);
  // prompts relation, sample, gold_target, text (3 wide), token_ids, token_offsets; units.
  const int64_t description =
      2 * 15 + 2 * 3 + 2 * 16 + 3 * 2 * 8 + 2 + 7 + 3 * 3 * 4 + 3 * 3 + 6 * 4 + 4 * 8 + 4 * 2 * 4;
  const int64_t units = 2 * (1 + 4 + 4);
  const int64_t per_prompt = 2 * 3 * (4 + 4 + 4 + 1) + 2 * 3 * 2 * 8 * 4 + 2 * 3 * 2 * 6 * 4;
  const int64_t sums = 2 * 2 * 8 * 8 + 2 * 2 * 6 * 8;
  const int64_t means = 2 * 2 * 6 * 4 + 2 * 2 * 8 * 4 + 2 * 1 * 4 + 2 * 4 + 2;
  const int64_t log = 4096 * 256;
  EXPECT_EQ(schema::store_bytes(d), description + units + per_prompt + sums + means + log);
  // 16-bit per-prompt tensors: half the bytes of attn and ffn, nothing else changes.
  const int64_t tensors = 2 * 3 * 2 * 8 * 4 + 2 * 3 * 2 * 6 * 4;
  for (const char* half : {"float16", "bfloat16"}) {
    auto h = d;
    h.per_prompt_dtype = half;
    EXPECT_EQ(schema::store_bytes(h), schema::store_bytes(d) - tensors / 2) << half;
    EXPECT_EQ(schema::file_type(schema::Dtype::pp, h).size(), 2u);
  }
  d.per_prompt_dtype = "float64";
  EXPECT_THROW(schema::file_type(schema::Dtype::pp, d), std::invalid_argument);
  d.per_prompt_dtype = "float32";
  d.per_prompt_attn = false;
  EXPECT_EQ(schema::store_bytes(d),
            description + units + per_prompt - 2 * 3 * 2 * 8 * 4 + sums + means + log);
}

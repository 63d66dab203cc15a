// The sweep store's schema (docs/STORE.md): one table of its datasets,
// each with its type, shape rule, chunking, fill, writer and phase. The
// table drives the store's creation, the opening of its datasets, the dry
// run's size and the layout tables of docs/STORE.md (markdown(), checked
// against the doc by a test). Strings are fixed-length UTF-8 in the store
// (parallel HDF5 cannot write variable-length data).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/h5/h5.hpp"
#include "common/store/sweep_store.hpp"

namespace lpi::store::schema {

// The run history: raw fixed-length entries written by rank 0 ("start ...",
// "end ..."), so that recording a run never changes the file's metadata.
constexpr const char* kRunLog = "runs/log";
constexpr int64_t kRunLogEntries = 4096, kRunLogWidth = 256;
constexpr const char* kJob = "job";
constexpr const char* kAblationGroup = "ablation";
// Written per unit by the workers: [C, P, ...].
constexpr const char* kTarget = "importance/target";
constexpr const char* kBaseLogprob = "importance/base_logprob";
constexpr const char* kAttn = "importance/attn";
constexpr const char* kFfn = "importance/ffn";
constexpr const char* kExpertIds = "importance/expert_ids";
constexpr const char* kUnitAttnSum = "aggregates/unit_attn_sum";
constexpr const char* kUnitFfnSum = "aggregates/unit_ffn_sum";
constexpr const char* kGoldRank = "evaluation/gold_rank";
constexpr const char* kHit = "evaluation/hit_at_10";
// Written by rank 0.
constexpr const char* kUnitDone = "units/done";
constexpr const char* kUnitRank = "units/rank";
constexpr const char* kUnitSeconds = "units/seconds";
constexpr const char* kAttnMean = "aggregates/attn_mean";
constexpr const char* kFfnMean = "aggregates/ffn_mean";
constexpr const char* kHitByRelation = "aggregates/hit_at_10";
constexpr const char* kHitAll = "aggregates/hit_at_10_all";
constexpr const char* kAggDone = "aggregates/done";
// The ablation phase ([ablation] enabled).
constexpr const char* kAblCondition = "ablation/condition";
constexpr const char* kAblHeads = "ablation/heads";
constexpr const char* kAblHeadScore = "ablation/head_score";
constexpr const char* kAblFfnNeurons = "ablation/ffn_neurons";
constexpr const char* kAblMaskDone = "ablation/mask_done";
constexpr const char* kAblGoldRank = "ablation/gold_rank";
constexpr const char* kAblLogprob = "ablation/target_logprob";
constexpr const char* kAblHit = "ablation/hit_at_10";
constexpr const char* kAblUnitDone = "ablation/unit_done";
constexpr const char* kAblHitAll = "ablation/hit_at_10_all";
constexpr const char* kAblHitByRelation = "ablation/hit_at_10_by_relation";
constexpr const char* kAblDone = "ablation/done";

// ---- the table ------------------------------------------------------------

// str: fixed, as wide as its longest value; pp: the per-prompt float type of
// the description (float32, float16 or bfloat16)
enum class Dtype { u8, i32, i64, f32, f64, str, log, pp };
// Shape symbols (docs/STORE.md's notation). A = H*dh, W = E*I or I (the
// full FFN layout), T = all prompts' token count, P1 = P + 1, Log = 4096.
enum class Dim { C, P, U, R, L, A, I, k, E, W, M, Hmax, K, T, P1, Two, Log };
// Fill of never-written elements: 0, -1, none (undefined; never-written
// chunks read as 0), or HDF5's default fill written at allocation (zeros).
enum class Fill { zero, minus_one, never, library };
enum class Writer { creation, rank0, worker };  // creation: the description, by rank 0
enum class Phase { always, per_prompt_attn, per_prompt_ffn, ablation };
enum class Model { any, dense, moe };

struct Entry {
  const char* path;
  Dtype type;
  std::vector<Dim> shape;
  int chunk_lead;  // 0: contiguous; n: chunks of the shape with its first n dims 1
  Fill fill;
  Writer writer;
  Phase phase;
  Model model;
  bool attribution_file;  // also in lpi-attribute's file, without the checkpoint dim
  const char* meaning;    // docs/STORE.md's "meaning" column
};

// Every dataset of the sweep store, in creation order (a path appears twice
// when dense and MoE models differ).
const std::vector<Entry>& table();

// The sizes of a store's dims.
struct Extents {
  int64_t of(Dim d) const { return v[static_cast<int>(d)]; }
  int64_t v[static_cast<int>(Dim::Log) + 1] = {};
};
Extents extents(const SweepDescription& d);
// Whether the store of `d` has the entry.
bool present(const Entry& e, const SweepDescription& d);
std::vector<int64_t> dims(const Entry& e, const Extents& x);
std::vector<int64_t> chunk(const Entry& e, const std::vector<int64_t>& dims);
// The file type of `t` in the store of `d` (strings `width` bytes).
h5::Type file_type(Dtype t, const SweepDescription& d, std::size_t width = 1);
// Throws std::invalid_argument unless `name` is float32, float16 or bfloat16.
void check_per_prompt_dtype(const std::string& name);
// Bytes allocated for the raw data of the store of `d` (every dataset is
// allocated at creation): what --dry-run prints.
int64_t store_bytes(const SweepDescription& d);

// The description datasets' values (Writer::creation), by path.
struct Values {
  std::vector<int32_t> i32;
  std::vector<int64_t> i64;
  std::vector<std::string> str;
};
Values creation_values(const std::string& path, const SweepDescription& d);

// Collective: every group, dataset and attribute of a new store, with
// early allocation. Rank `writer` (true on one rank) fills the description.
void create_store(const h5::File& file, const SweepDescription& d, bool writer);
// Throws StoreError naming the file when a dataset of the table that the
// store of `d` has is missing, has another shape than `d` gives it, or
// claims more bytes than the whole file (`file_bytes`: every dataset is
// allocated at creation, uncompressed). What makes the selections sized
// from `d` fit the file. The run log's length is the file's own (4096
// entries when lpi-sweep writes it).
void check_datasets(const h5::File& file, const SweepDescription& d, int64_t file_bytes);
// The datasets written after creation (Writer::rank0 and worker) that the
// store of `d` has, by path, without a chunk cache.
std::map<std::string, h5::Dataset> open_datasets(const h5::File& file, const SweepDescription& d);

// Run history: entry `slot` of runs/log (none past its end), and the entries
// written so far.
void write_run_entry(const h5::Dataset& log, int64_t slot, const std::string& text);
std::vector<std::string> read_run_log(const h5::File& file);

// docs/STORE.md's layout table of the sweep store (ablation false) or of
// its ablation datasets (true), in Markdown.
std::string markdown(bool ablation);

}  // namespace lpi::store::schema

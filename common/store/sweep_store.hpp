// The sweep store: one HDF5 file per sweep, opened by every rank through the
// MPI-IO driver (layout: docs/STORE.md). Its rules keep it correct when a job
// dies at any instant:
//  - every group, dataset and attribute is created collectively when the
//    sweep starts, then flushed; afterwards only raw data is written, so the
//    file's metadata never changes mid-run;
//  - a worker writes a unit's results independently into its own slab of
//    whole chunks (one chunk = one prompt at one checkpoint), so no two ranks
//    ever share a chunk;
//  - rank 0 sets a unit's `done` flag only after the worker reported that its
//    writes returned; resume trusts nothing else and rewrites the rest
//    (same unit, same slab: writes are idempotent).
// The file describes itself: job settings, checkpoints (step, tokens, size,
// header hash), relations, prompts with their token ids, units, tool version
// and the history of runs.
#pragma once

#include <mpi.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/core/ablation.hpp"
#include "common/core/layout.hpp"
#include "common/h5/h5.hpp"
#include "common/sweep/grid.hpp"

namespace lpi::store {

constexpr const char* kSweepFormat = "lpi-sweep store";
constexpr int64_t kSweepFormatVersion = 1;

using core::ModelShape;  // common/core/layout.hpp

// The shape's integer fields as the store's root attributes name them.
constexpr std::pair<const char*, int64_t ModelShape::*> kShapeAttributes[] = {
    {"num_layers", &ModelShape::num_layers},
    {"hidden_size", &ModelShape::hidden_size},
    {"num_heads", &ModelShape::num_heads},
    {"head_dim", &ModelShape::head_dim},
    {"intermediate_size", &ModelShape::intermediate_size},
    {"num_experts", &ModelShape::num_experts},
    {"experts_per_token", &ModelShape::experts_per_token},
    {"vocab_size", &ModelShape::vocab_size}};

// Everything the store records about the sweep when it is created.
struct SweepDescription {
  std::map<std::string, std::string> job;  // "section.key" -> value, paths absolute
  std::string job_name, model_name, lens, target;
  ModelShape shape;
  // Which per-prompt tensors are kept ([store] per_prompt); the per-prompt
  // scalars, the per-unit sums and the per-checkpoint aggregates always are.
  bool per_prompt_attn = true, per_prompt_ffn = true;
  // Their element type ([store] per_prompt_dtype): float32, float16 or
  // bfloat16 (read back as float32 by every reader).
  std::string per_prompt_dtype = "float32";
  sweep::AblationSpec ablation;  // enabled: the store holds the ablation datasets
  sweep::Grid grid;
  std::vector<std::string> checkpoint_hashes;  // checkpoint_fingerprint().hash
  std::vector<int64_t> checkpoint_bytes;
  std::vector<std::string> relation_ids, relation_files;
  std::vector<int32_t> prompt_relation, prompt_sample, prompt_gold;
  std::vector<std::string> prompt_text;
  std::vector<std::vector<int32_t>> prompt_ids;
};

// A checkpoint folder's identity: total bytes of the files the engine reads
// (config.json, *.safetensors, the index) and a hash over config.json, the
// index, every safetensors header and 8 blocks of 4 KiB sampled evenly across
// each file's tensor data (cheap: 32 KiB of data read per file).
struct CheckpointFingerprint {
  int64_t bytes = 0;
  std::string hash;  // hex FNV-1a 64
};
CheckpointFingerprint checkpoint_fingerprint(const std::string& folder);
// How the folder differs from what the store recorded of it ("" when not).
std::string checkpoint_change(const std::string& folder, int64_t recorded_bytes,
                              const std::string& recorded_hash);

// One unit's results, plain data, row-major, n = unit.prompt_count.
struct UnitResult {
  std::vector<int32_t> target;      // [n]
  std::vector<float> base_logprob;  // [n]
  std::vector<int32_t> gold_rank;   // [n]: tokens with a larger logit than the gold one
  std::vector<float> attn;          // [n, L, H*dh]
  std::vector<float> ffn;           // dense [n, L, I]; MoE [n, L, k, I]
  std::vector<int32_t> expert_ids;  // MoE [n, L, k]; empty for dense
};

// A view of n prompts' results, row-major as in UnitResult: what a unit
// writes into the store and lpi-attribute into its file (results_writer.hpp).
struct PromptResults {
  int64_t n = 0;
  const int32_t* target = nullptr;      // [n]
  const float* base_logprob = nullptr;  // [n]
  const float* attn = nullptr;          // [n, L, H*dh]
  const float* ffn = nullptr;           // dense [n, L, I]; MoE [n, L, k, I]
  const int32_t* expert_ids = nullptr;  // MoE [n, L, k]
};

// One unit's ablation results: per prompt and condition, row-major [n, M].
struct AblationUnitResult {
  std::vector<int32_t> gold_rank;
  std::vector<float> target_logprob;
};

using core::AblationMasks;  // common/core/ablation.hpp

struct StoreError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A unit's float64 sums over its prompts, in prompt order, with the MoE's
// chosen experts scattered into the full expert layout: what write_unit
// stores beside the per-prompt tensors, and what a reader recomputes from
// them to find a damaged file (equal bits when nothing changed).
struct UnitSums {
  std::vector<double> attn, ffn;  // [L, A], [L, W]
};
UnitSums unit_sums(const ModelShape& shape, int64_t n, const float* attn, const float* ffn,
                   const int32_t* expert_ids, const std::string& what);

// What a store holds, read without MPI (status, resume checks, tools).
struct StoreInfo {
  SweepDescription description;
  std::vector<uint8_t> unit_done;   // [units]
  std::vector<uint8_t> aggregated;  // [checkpoints]
  std::vector<std::string> runs;    // run history, oldest first
  // The ablation phase (empty when the job has none).
  std::vector<std::string> ablation_conditions;  // [M]
  std::vector<uint8_t> ablation_unit_done;       // [units]
  std::vector<uint8_t> ablation_done;            // [checkpoints]
};
// Throws StoreError naming the file when it is not a sweep store of ours.
StoreInfo read_store_info(const std::string& path);

class SweepStore {
 public:
  // Collective over `comm`: written as PATH.partial, renamed once complete.
  static SweepStore create(MPI_Comm comm, const std::string& path, const SweepDescription& d,
                           const std::string& run_record);
  // Collective: an existing store, for resume; appends `run_record` to the history.
  // Nothing but raw data is written to an open store, so a kill at any
  // instant leaves its metadata intact.
  static SweepStore open(MPI_Comm comm, const std::string& path, const std::string& run_record);

  SweepStore(SweepStore&&) = default;
  SweepStore& operator=(SweepStore&&) = default;
  ~SweepStore();

  const SweepDescription& description() const { return d_; }
  const std::string& path() const { return path_; }

  // Independent (any rank): the unit's slabs.
  void write_unit(const sweep::WorkUnit& unit, const UnitResult& r);
  // Rank 0 only: a unit's flag, after its worker reported its writes done.
  void mark_done(int32_t unit, int32_t rank, float seconds);
  std::vector<uint8_t> done_flags();
  // Rank 0 only: the means over a checkpoint's prompts (from its units' sums)
  // and its HIT@10 per relation, read back from the store (all its units
  // must be done).
  void aggregate(int32_t checkpoint);
  std::vector<uint8_t> aggregated_flags();
  // The ablation phase (jobs with [ablation] enabled). Rank 0: a
  // checkpoint's masks from its aggregates (which must be written).
  void write_masks(int32_t checkpoint);
  std::vector<uint8_t> mask_flags();
  // Any rank: the masks of a checkpoint whose mask flag is set.
  AblationMasks read_masks(int32_t checkpoint);
  // Independent (any rank): a unit's ablation slabs.
  void write_ablation_unit(const sweep::WorkUnit& unit, const AblationUnitResult& r);
  // Rank 0: the unit's ablation flag; the checkpoint's HIT@10 per condition.
  void mark_ablation_done(int32_t unit);
  std::vector<uint8_t> ablation_unit_flags();
  void aggregate_ablation(int32_t checkpoint);
  std::vector<uint8_t> ablation_flags();

  // Collective: records the end of this run in the history and closes.
  void close(const std::string& run_end_record);
  // Rank 0: one entry of the run history (raw data, like every write after creation).
  void append_run(const std::string& entry);

 private:
  SweepStore() = default;
  void open_datasets();
  bool has(const char* name) const { return ds_.count(name) > 0; }
  const h5::Dataset& ds(const char* name) const { return ds_.at(name); }
  // A 1-d uint8 flag dataset, read whole.
  std::vector<uint8_t> flags(const char* name, std::size_t n);
  std::string path_;
  SweepDescription d_;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int64_t run_slot_ = 0;
  int rank_ = 0;
  h5::File file_;  // MPI-IO, independent transfers
  std::map<std::string, h5::Dataset> ds_;
  // Every public operation holds it: the coordinator thread and the worker
  // thread of a one-process run share the store (HDF5 and MPI-IO calls are
  // serialised, never concurrent).
  std::unique_ptr<std::recursive_mutex> mutex_ = std::make_unique<std::recursive_mutex>();
};

}  // namespace lpi::store

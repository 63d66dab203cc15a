// The sweep store's schema (docs/STORE.md): the names of its groups and
// datasets, how the self-description is written and read back, and the
// slab and fixed-length-string helpers both sides use. Strings are
// fixed-length UTF-8 (parallel HDF5 cannot write variable-length data).
#pragma once

#include <string>
#include <vector>

#include "common/store/h5.hpp"
#include "common/store/sweep_store.hpp"

namespace lpi::store::schema {

// The run history: raw fixed-length entries written by rank 0 ("start ...",
// "end ..."), so that recording a run never changes the file's metadata.
constexpr const char* kRunLog = "runs/log";
constexpr int64_t kRunLogEntries = 4096, kRunLogWidth = 256;
constexpr const char* kJob = "job";
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
constexpr const char* kAblationDatasets[] = {
    kAblHeads, kAblHeadScore, kAblFfnNeurons, kAblMaskDone,      kAblGoldRank, kAblLogprob,
    kAblHit,   kAblUnitDone,  kAblHitAll,     kAblHitByRelation, kAblDone};

constexpr const char* kSlabDatasets[] = {
    kTarget,     kBaseLogprob, kAttn,          kFfn,      kExpertIds, kUnitAttnSum,
    kUnitFfnSum, kGoldRank,    kHit,           kUnitDone, kUnitRank,  kUnitSeconds,
    kAttnMean,   kFfnMean,     kHitByRelation, kHitAll,   kAggDone,   kRunLog};

// Collective: every group, dataset and attribute of a new store. Rank
// `writer` (true on one rank) fills the descriptive datasets.
void write_description(hid_t file, const SweepDescription& d, bool writer);

Handle open_dataset(hid_t file, const std::string& path);
std::vector<std::string> read_fixed_strings(hid_t file, const std::string& path);
// Run history: entry `slot` of runs/log, and the entries written so far.
void write_run_entry(hid_t ds, int64_t slot, const std::string& text, hid_t xfer);
std::vector<std::string> read_run_log(hid_t file);
void set_fixed_attr(hid_t object, const std::string& name, const std::string& value);
std::string fixed_attr(hid_t object, const std::string& name);

// A hyperslab [start, start + count) of a dataset, from or into contiguous memory.
void write_slab(hid_t ds, hid_t mem_type, const std::vector<int64_t>& start,
                const std::vector<int64_t>& count, const void* data, hid_t xfer,
                const std::string& what);
void read_slab(hid_t ds, hid_t mem_type, const std::vector<int64_t>& start,
               const std::vector<int64_t>& count, void* data, hid_t xfer, const std::string& what);

}  // namespace lpi::store::schema

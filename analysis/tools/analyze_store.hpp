// lpi-analyze's store side: which checkpoints and prompts of each store are
// analysed (complete sweeps only unless partial is allowed; the prompts
// common to every store), streaming the per-prompt importance through the
// reduction, and writing the `analysis` group and the CSV files
// (docs/STORE.md). Serial HDF5, after the sweep; the store itself only ever
// gets one external link.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "analysis/reduction.hpp"
#include "common/core/layout.hpp"

namespace lpi::analysis {

struct AnalyzeOptions {
  ReductionOptions reduction;
  std::vector<StepRange> ranges;  // the consolidation range and the whole trajectory follow
  // The range of Table 2's mean R_t (the paper's "during consolidation": after
  // the dip at 200K steps).
  StepRange consolidation{200000, 1200000, "consolidation"};
  // Non-consecutive overlaps of the top sets (the paper: 100K against 300K).
  std::vector<std::pair<int64_t, int64_t>> overlap_steps{{100000, 300000}};
  std::vector<int64_t> snapshot_steps;  // empty: first, middle and last
  bool allow_partial = false;
  std::string command;  // recorded in the group
};

// One store's plan: what is analysed.
struct StorePlan {
  std::string path, job_name, model_name;
  core::ModelShape shape;
  std::vector<int32_t> checkpoints;  // indices into /checkpoints, by step
  std::vector<int64_t> steps;
  std::vector<int32_t> prompts;          // indices into /prompts, ascending
  std::vector<int32_t> prompt_relation;  // relation index of each analysed prompt
  std::vector<std::string> relations;
  std::vector<std::string> conditions;  // ablation conditions; empty: no ablation data
  bool partial = false;
  std::vector<std::string> compared_with;
};

using Warn = std::function<void(const std::string&)>;

// Reads and checks every store; throws std::runtime_error naming the store
// for a store that is not a sweep store, lacks per-prompt data, is incomplete
// without `allow_partial`, or shares no prompt with the others. Warnings:
// missing checkpoints (partial), prompts not common to all stores.
std::vector<StorePlan> plan_stores(const std::vector<std::string>& paths,
                                   const AnalyzeOptions& options, const Warn& warn);

struct StoreAnalysis {
  StorePlan plan;
  PromptDesign design;
  std::vector<std::string> scopes;  // "all", then the relation ids
  std::vector<StepRange> ranges;    // options.ranges, consolidation, the whole trajectory
  std::vector<int32_t> range_checkpoints;
  std::size_t consolidation = 0;   // its index in ranges
  std::vector<StepPair> overlaps;  // positions into plan.steps of each overlap pair
  std::vector<int32_t> snapshots;  // positions into plan.steps
  FamilyResult ffn, attn;
  bool has_ablation = false;
  double ablation_min_hit = 0;
  AblationResult ablation;
};

// Streams the store's analysed checkpoints through the reduction. `progress`
// gets (checkpoints done, total).
StoreAnalysis analyze_store(const StorePlan& plan, const AnalyzeOptions& options, const Warn& warn,
                            const std::function<void(std::size_t, std::size_t)>& progress = {});

// The results live in FILE.analysis.h5 beside the store FILE.h5 (written
// whole, then renamed into place); the store's /analysis is an external link
// to it, created on the first run. Nothing else in the store is touched.
void write_analysis(const StoreAnalysis& a, const AnalyzeOptions& options);
// The /analysis group alone, into a new file.
void write_group(const StoreAnalysis& a, const AnalyzeOptions& options, const std::string& path);
std::string analysis_file(const std::string& store_path);  // FILE.h5 -> FILE.analysis.h5

// DIR/JOB-trajectory.csv, -layers.csv, -summary.csv and (with ablation) -ablation.csv.
std::vector<std::string> write_csv(const StoreAnalysis& a, const std::string& dir);

// The paper's Tables 2-4 for the analysed stores, as text.
std::string tables_text(const std::vector<StoreAnalysis>& analyses);

}  // namespace lpi::analysis

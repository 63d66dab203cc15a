// A sweep job file (INI, Boost.Program_options): the model and where its
// revisions are (a folder of revision folders, or a HuggingFace hub cache),
// which checkpoints, the relations, the unit size and the attribution options. Every key can be
// overridden ("section.key=value"). Everything is checked here, before anything is written: an
// unknown key, a bad value, a missing folder or a selected checkpoint that is not there is a
// SweepJobError naming the file (or override) and the key.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/sweep/grid.hpp"

namespace lpi::sweep {

struct SweepJobError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SweepJob {
  std::filesystem::path file;
  std::string name;
  std::string model_name;
  // Where the revisions are: one of the two.
  std::filesystem::path revisions;  // folder of step{N}-tokens{M} revision folders
  std::filesystem::path hub_cache;  // a HuggingFace hub cache holding `repo`
  std::string repo;                 // ORG/NAME: hub_cache/models--ORG--NAME/refs/step{N}-tokens{M}
  std::string checkpoint_glob = "step*-tokens*";
  std::vector<std::string> checkpoint_list;  // explicit names (empty: all that match the glob)
  int64_t min_step = 0, max_step = INT64_MAX;
  int64_t every = 1;  // keep every k-th of the selection, by step
  std::filesystem::path relations;
  std::vector<std::string> relation_select;  // empty: the paper's 12
  int32_t prompts_per_unit = 32;
  std::string lens = "frozen", target = "gold", dtype = "float32", device = "cpu";
  int64_t batch_size = 32;
  bool batch_invariant = true;  // scores independent of the unit cut (see engine LpiOptions)
  int32_t max_attempts = 3;     // a unit that failed this often is given up
  bool per_prompt_attn = true, per_prompt_ffn = true;  // [store] per_prompt
  std::string per_prompt_dtype = "float32";            // [store] per_prompt_dtype
  AblationSpec ablation;                               // [ablation]
};

SweepJob read_sweep_job(const std::filesystem::path& file,
                        const std::vector<std::string>& overrides = {});

// The job as "section.key" -> value, folders absolute: what a store records
// and what resume compares.
std::map<std::string, std::string> job_settings(const SweepJob& job);
// The job back from its settings (a store's); `origin` names them in errors.
// Its relations folder need not exist any more (the store holds the prompts).
SweepJob job_from_settings(const std::map<std::string, std::string>& settings,
                           const std::string& origin,
                           const std::vector<std::string>& overrides = {});

// The selected checkpoints, by step, each a folder with a config.json: a
// revision folder, or the hub cache snapshot its ref names. A selected hub
// revision whose snapshot is missing or incomplete (no config.json, a missing
// shard, a dangling symlink) is a SweepJobError listing every such file.
std::vector<CheckpointRef> select_checkpoints(const SweepJob& job);

}  // namespace lpi::sweep

// The sweep's grid: checkpoints (revision folders named step{N}-tokens{M})
// x relations x prompt blocks, cut into work units. Plain data, shared by the
// coordinator, the workers and the store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lpi::sweep {

struct CheckpointRef {
  std::string name;  // folder name, e.g. "step10000-tokens41B"
  std::string path;
  int64_t step = 0;
  int64_t tokens = 0;  // as counted by the name: "41B" is 41e9
};

// step and tokens from a revision name: "step{N}-tokens{M}" with M an integer
// optionally followed by K, M, B or T (thousands ... trillions). Empty for any
// other name.
std::optional<CheckpointRef> parse_checkpoint_name(const std::string& name);

struct WorkUnit {
  int32_t id = 0;
  int32_t checkpoint = 0;    // index into Grid::checkpoints
  int32_t relation = 0;      // index into the relations of the job
  int32_t first_prompt = 0;  // index into the job's prompt list (relation-major)
  int32_t prompt_count = 0;
};

struct Grid {
  std::vector<CheckpointRef> checkpoints;  // by step
  std::vector<int32_t> prompts_per_relation;
  std::vector<WorkUnit> units;  // checkpoint-major, then relation, then block
  int64_t prompt_count() const;
};

// The masking experiment of a job ([ablation]): after the attribution, each
// checkpoint's prompts are evaluated with its top heads masked (one
// condition per count in `heads`) and with its top `ffn_fraction` FFN/expert
// neurons masked, ranked from the checkpoint's own mean importance.
struct AblationSpec {
  bool enabled = false;
  std::vector<int32_t> heads = {1, 10};
  double ffn_fraction = 0.01;
  // "none", then "heads:N" per count, then "ffn:F" (F as written by format_fraction).
  std::vector<std::string> conditions() const;
  int32_t max_heads() const;
};
std::string format_fraction(double f);  // shortest round-trip text, e.g. "0.01"
// The spec back from its condition names (a store's); empty when malformed or
// outside what a job accepts (a head count below 1, a fraction outside (0, 1]).
std::optional<AblationSpec> ablation_from_conditions(const std::vector<std::string>& conditions);

// Units of at most `prompts_per_unit` prompts that never straddle a relation.
Grid build_grid(std::vector<CheckpointRef> checkpoints,
                const std::vector<int32_t>& prompts_per_relation, int32_t prompts_per_unit);

}  // namespace lpi::sweep

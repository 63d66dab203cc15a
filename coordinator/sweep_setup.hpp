// What the sweep decides before anything is written, without MPI or libtorch:
// the store's description from a job (checkpoints, their shape and
// fingerprints, prompts, grid), the checks of a resume (same job, unchanged
// checkpoints), and the texts of --dry-run and --status.
#pragma once

#include <string>
#include <vector>

#include "common/store/sweep_store.hpp"
#include "common/sweep/job.hpp"

namespace lpi::coordinator {

struct SetupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Reads every selected checkpoint's config.json (all must share one shape),
// fingerprints them, tokenises the prompts with the first checkpoint's
// tokenizer.json and cuts the grid. Throws SetupError naming the file.
store::SweepDescription describe_sweep(const sweep::SweepJob& job);

// Job keys that may change between runs of one store (where it runs, not
// what it computes).
bool is_operational_key(const std::string& key);

// Resume checks: the job given now against the one stored ("" when they
// agree, else one line per differing key); each stored checkpoint against
// the folder the job selects for it now (another one: a hub cache ref moved
// to another commit); and each stored checkpoint against its folder now
// (size, header hash).
std::string job_differences(const std::map<std::string, std::string>& stored,
                            const std::map<std::string, std::string>& given);
std::string checkpoint_moves(const store::SweepDescription& d,
                             const std::vector<sweep::CheckpointRef>& selected_now);
std::string checkpoint_changes(const store::SweepDescription& d);

// Before a store is created: SetupError naming the store, its size and the
// space left when the file system that will hold `store_path` has less free
// space than the store allocates (schema::store_bytes), so that a full disk
// is a clear refusal before anything is written, not a failure halfway
// through the collective creation.
void check_free_space(const std::string& store_path, const store::SweepDescription& d);

std::string dry_run_text(const store::SweepDescription& d);
std::string status_text(const std::string& path, const store::StoreInfo& info);

}  // namespace lpi::coordinator

// The one writer of per-prompt importance: a unit's slab of the sweep store
// and lpi-attribute's attribution file (docs/STORE.md) both go through
// write_results(), with the names and shapes of the schema table; the
// attribution file holds one checkpoint's slab without the checkpoint dim.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/h5/h5.hpp"
#include "common/store/sweep_store.hpp"

namespace lpi::store {

// Writes importance/target, base_logprob, attn, ffn and expert_ids (those
// in `datasets`) for r.n prompts at `offset` with leading counts `count`:
// {c, first_prompt} and {1, n} in the store, {0} and {P} in a file.
void write_results(const std::map<std::string, h5::Dataset>& datasets,
                   const std::vector<int64_t>& offset, const std::vector<int64_t>& count,
                   const core::ModelShape& shape, const PromptResults& r);

// lpi-attribute's file, serial, written as PATH.partial and renamed: the
// root attributes, relations, prompts (from `d`: shape, lens, target,
// relation and prompt fields) and the importance of all its prompts.
// Strings are variable-length; datasets have HDF5's default layout.
void write_attribution_file(const std::string& path, const std::string& model_dir,
                            const SweepDescription& d, const PromptResults& r);

}  // namespace lpi::store

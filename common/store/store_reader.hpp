// The one reader of a finished (or paused) sweep store, serial and
// read-only, for lpi-analyze and lpi-query: the self-description and flags
// (StoreInfo), the per-checkpoint aggregates and the per-prompt slabs, by
// the schema's names (docs/STORE.md).
#pragma once

#include <string>
#include <vector>

#include "common/h5/h5.hpp"
#include "common/store/sweep_store.hpp"

namespace lpi::store {

// One checkpoint's per-prompt tensors for prompts [first, first + n).
struct PromptSlab {
  std::vector<float> attn, ffn;     // [n, L, A], [n, L, (k,) I]
  std::vector<int32_t> expert_ids;  // [n, L, k] (MoE)
};

class Reader {
 public:
  // Throws StoreError naming the file when it is not a sweep store of
  // ours, h5::Error when HDF5 cannot read it.
  explicit Reader(const std::string& path);

  const std::string& path() const { return path_; }
  const StoreInfo& info() const { return info_; }
  const SweepDescription& description() const { return info_.description; }

  // The per-checkpoint means, in the flat layout ([L, A]; [L, I] or [L, E*I]).
  std::vector<float> attn_mean(int32_t checkpoint) const;
  std::vector<float> ffn_mean(int32_t checkpoint) const;
  // The per-prompt tensors of prompts [first, first + n) at a checkpoint.
  PromptSlab prompts(int32_t checkpoint, int64_t first, int64_t n) const;
  // Every unit of the checkpoint: its prompts' tensors in `all` (prompts
  // [0, P)) add up to the sums written with them, bit for bit; else throws
  // StoreError naming the unit (the file was changed or damaged since).
  void check_unit_sums(int32_t checkpoint, const PromptSlab& all) const;
  // ablation/hit_at_10 of a checkpoint: [P, M].
  std::vector<uint8_t> ablation_hits(int32_t checkpoint) const;
  // Any selection of a dataset of the table, by its path (schema::kAttn, ...).
  template <class T>
  std::vector<T> read(const char* dataset, const std::vector<int64_t>& offset,
                      const std::vector<int64_t>& count) const {
    return file_.dataset(dataset, false).select(offset, count).template read<T>();
  }

 private:
  std::string path_;
  StoreInfo info_;
  h5::File file_;
};

}  // namespace lpi::store

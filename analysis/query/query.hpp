// Reading a sweep store for other tools (lpi-query): the model and grid it
// describes, the mean importance of every neuron of a family at one
// checkpoint (over all prompts from the aggregates, or over one relation's
// prompts from the per-prompt tensors, MoE experts expanded with unchosen
// experts at 0), and one neuron's mean over the checkpoints. Serial HDF5,
// read-only; for a store that nothing is writing (layout: docs/STORE.md).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/core/layout.hpp"
#include "common/store/store_reader.hpp"

namespace lpi::query {

// Bad input (a file that is not a store, a step, layer or relation it does
// not have): the message names the store and the values it would accept.
struct QueryError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

using core::Family;  // common/core/layout.hpp
using core::family_name;
Family parse_family(const std::string& name);  // "attn" or "ffn"

// A neuron as the user names it. attn: layer, head, dim. Dense ffn: layer,
// neuron. MoE ffn: layer, expert, neuron.
struct NeuronRef {
  std::optional<int64_t> layer, head, dim, expert, neuron;
};

struct RankedNeuron {
  int64_t rank = 0;  // 1-based
  NeuronRef ref;
  double value = 0;
};

struct TrajectoryPoint {
  int32_t checkpoint = 0;
  bool done = false;  // the checkpoint's aggregates are written; value is 0 otherwise
  double value = 0;
};

// An open store (read-only) and its self-description.
class StoreReader {
 public:
  // Throws QueryError naming `path` when it is missing, not HDF5 or not a sweep store.
  explicit StoreReader(const std::string& path);

  const std::string& path() const { return path_; }
  const store::StoreInfo& info() const { return store_->info(); }
  const store::ModelShape& shape() const { return info().description.shape; }
  int32_t checkpoint_count() const;
  bool done(int32_t checkpoint) const { return info().aggregated.at(checkpoint) != 0; }
  int64_t prompt_count(int32_t relation) const;

  // Checkpoint by step or by index; QueryError listing the valid ones otherwise.
  int32_t checkpoint_at_step(int64_t step) const;
  int32_t checkpoint_at_index(int64_t index) const;
  // QueryError unless the checkpoint's aggregates are done.
  void require_done(int32_t checkpoint) const;
  // Relation index by id; QueryError listing the ids otherwise.
  int32_t relation(const std::string& id) const;

  // Neurons per layer: attn H*dh, dense ffn I, MoE ffn E*I.
  int64_t layer_width(Family f) const;
  // Index into the family's layer-major layout ([L, H*dh], [L, I] or
  // [L, E, I]); QueryError naming the option and its range on a bad ref.
  int64_t flat_index(Family f, const NeuronRef& ref) const;
  NeuronRef neuron_at(Family f, int64_t flat) const;

  // Mean importance of every neuron of the family at a done checkpoint, in
  // the flat layout: the store's aggregates, or with `relation` the mean of
  // the per-prompt tensors over that relation's prompts.
  std::vector<double> means(int32_t checkpoint, Family f, std::optional<int32_t> relation) const;
  // One neuron's mean at every checkpoint (checkpoints not done are marked).
  std::vector<TrajectoryPoint> trajectory(Family f, int64_t flat,
                                          std::optional<int32_t> relation) const;

 private:
  void require_per_prompt(Family f) const;
  std::vector<int32_t> prompts_of(int32_t relation) const;
  double neuron_mean(int32_t checkpoint, Family f, int64_t flat,
                     std::optional<int32_t> relation) const;
  std::string path_;
  std::optional<store::Reader> store_;  // set by the constructor
};

// The k neurons of largest |value| (ties to the lower index), by rank.
std::vector<RankedNeuron> top_k(const StoreReader& store, Family f,
                                const std::vector<double>& values, int64_t k);

struct RankedHead {
  int64_t rank = 0, layer = 0, head = 0;  // rank 1-based
  double score = 0;
};
// The k heads of largest score from attention means [L, H*dh]: the sum over
// the head's dh neurons of |mean| (core::head_scores), the ranking the
// `heads:N` masking conditions use; ties to the lower (layer, head).
std::vector<RankedHead> top_heads(const StoreReader& store, const std::vector<double>& attn_means,
                                  int64_t k);

}  // namespace lpi::query

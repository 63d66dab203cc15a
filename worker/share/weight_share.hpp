// Shared loads (docs/CLUSTER.md, "Shared loads"): when several worker ranks
// of a node are leased the same checkpoint, one reads it from disk and the
// others receive its weights by broadcast: ncclBroadcast between GPUs (with
// LPI_WITH_NCCL), MPI_Bcast between CPU ranks, behind one interface. The
// coordinator forms the groups (coordinator/loop.hpp, LoopOptions); a group
// is a set of ranks of one communicator, its root first, open for one load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "worker/engine/model.hpp"

namespace lpi::share {

struct ShareError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One group's broadcasts, from its root to every other rank of it; each call
// is collective over the group.
class Group {
 public:
  virtual ~Group() = default;
  virtual bool is_root() const = 0;
  virtual int size() const = 0;
  virtual std::string method() const = 0;  // "MPI_Bcast" or "ncclBroadcast"
  // The root's bytes to every rank (host memory).
  virtual void host(void* data, std::size_t bytes) = 0;
  // A contiguous tensor's storage, in place; the same device kind on every
  // rank. May return before the bytes have arrived: finish() waits.
  virtual void tensor(const torch::Tensor& t) = 0;
  virtual void finish() {}
};

// Opens groups over one communicator.
class Groups {
 public:
  virtual ~Groups() = default;
  // The group of `ranks` (root first), collective over those ranks only;
  // `id` tells the groups apart. `device`: where the tensors will be.
  virtual std::unique_ptr<Group> open(const std::vector<int32_t>& ranks, int32_t id,
                                      const torch::Device& device) = 0;
};

struct ShareStats {
  double seconds = 0;  // this rank's part in the broadcast
  int64_t bytes = 0;   // the weights' bytes
  std::string method;
};

// The weights of `model` (every parameter, in the module's order) from the
// group's root to its members. The root passes its loaded model, or the
// error its load ended with (then nothing else is sent). A member passes a
// model built from the same config on its device and dtype (or an empty
// one, when it could not build it), receives into it, and gets back the
// root's error or its own: a member whose tensors do not match the root's
// (count, sizes) still takes every byte, since the others wait for them.
// nullopt: the model holds the root's weights, bit for bit.
std::optional<std::string> share_model(Group& group, engine::Transformer& model,
                                       const std::optional<std::string>& root_error,
                                       const torch::Device& device, ShareStats* stats = nullptr);

}  // namespace lpi::share

#include "worker/share/weight_share.hpp"

#include <chrono>
#include <cstring>

namespace lpi::share {
namespace {

// The root's manifest: whether it holds the model (else its error), and the
// byte size of each tensor it sends, in order.
struct Manifest {
  bool loaded = false;
  std::string error;
  std::vector<uint64_t> sizes;
};

std::vector<uint8_t> encode(const Manifest& m) {
  std::vector<uint8_t> out;
  auto put = [&](const void* p, std::size_t n) {
    if (n == 0) return;
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  };
  const uint8_t loaded = m.loaded ? 1 : 0;
  const uint64_t error = m.error.size(), count = m.sizes.size();
  put(&loaded, 1);
  put(&error, 8);
  put(m.error.data(), m.error.size());
  put(&count, 8);
  put(m.sizes.data(), m.sizes.size() * 8);
  return out;
}

Manifest decode(const std::vector<uint8_t>& in) {
  std::size_t at = 0;
  auto get = [&](void* p, std::size_t n) {
    if (at + n > in.size()) throw ShareError("shared load: the root's manifest is truncated");
    if (n == 0) return;  // an empty list's data() may be null
    std::memcpy(p, in.data() + at, n);
    at += n;
  };
  Manifest m;
  uint8_t loaded = 0;
  uint64_t error = 0, count = 0;
  get(&loaded, 1);
  get(&error, 8);
  if (error > in.size()) throw ShareError("shared load: the root's manifest is truncated");
  m.error.resize(error);
  get(m.error.data(), error);
  get(&count, 8);
  if (count > in.size() / 8) throw ShareError("shared load: the root's manifest is truncated");
  m.sizes.resize(count);
  get(m.sizes.data(), count * 8);
  m.loaded = loaded != 0;
  return m;
}

uint64_t bytes_of(const torch::Tensor& t) {
  return static_cast<uint64_t>(t.numel()) * static_cast<uint64_t>(t.element_size());
}

}  // namespace

std::optional<std::string> share_model(Group& group, engine::Transformer& model,
                                       const std::optional<std::string>& root_error,
                                       const torch::Device& device, ShareStats* stats) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<torch::Tensor> params;
  if (model) {
    for (const auto& p : model->parameters()) params.push_back(p);
  }
  for (const auto& p : params) {
    if (!p.is_contiguous())
      throw ShareError("shared load: a parameter is not contiguous, which the broadcast needs");
  }
  // The manifest: its size, then its bytes.
  Manifest m;
  std::vector<uint8_t> bytes;
  uint64_t length = 0;
  if (group.is_root()) {
    m.loaded = !root_error && model;
    m.error = root_error ? *root_error : (model ? "" : "the root holds no model");
    if (m.loaded) {
      for (const auto& p : params) m.sizes.push_back(bytes_of(p));
    }
    bytes = encode(m);
    length = bytes.size();
  }
  group.host(&length, sizeof length);
  bytes.resize(length);
  group.host(bytes.data(), bytes.size());
  if (!group.is_root()) m = decode(bytes);
  if (!m.loaded) return "the root could not load the checkpoint: " + m.error;

  // A member that cannot take the weights still receives them, into scratch.
  std::optional<std::string> mine;
  if (!group.is_root()) {
    if (!model) {
      mine = "this rank could not build the model to receive the checkpoint into";
    } else if (params.size() != m.sizes.size()) {
      mine = "the root sends " + std::to_string(m.sizes.size()) +
             " tensors, this rank's model has " + std::to_string(params.size());
    } else {
      for (std::size_t i = 0; i < params.size() && !mine; ++i) {
        if (bytes_of(params[i]) != m.sizes[i]) {
          mine = "tensor " + std::to_string(i) + " is " + std::to_string(m.sizes[i]) +
                 " bytes at the root, " + std::to_string(bytes_of(params[i])) + " on this rank";
        }
      }
    }
  }
  int64_t total = 0;
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < m.sizes.size(); ++i) {
    if (mine) {
      const auto scratch = torch::empty({static_cast<int64_t>(m.sizes[i])},
                                        torch::TensorOptions().dtype(torch::kUInt8).device(device));
      group.tensor(scratch);
      group.finish();
    } else {
      group.tensor(params[i]);
    }
    total += static_cast<int64_t>(m.sizes[i]);
  }
  group.finish();
  if (stats) {
    stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    stats->bytes = total;
    stats->method = group.method();
  }
  return mine;
}

}  // namespace lpi::share

// Loading and saving TransformerImpl weights under the HF tensor names of
// their architecture (models/*.cpp).
#include <cstdio>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/checkpoint/safetensors.hpp"
#include "worker/engine/model.hpp"
#include "worker/engine/models/registry.hpp"

namespace lpi::engine {
namespace ck = lpi::checkpoint;
namespace fs = std::filesystem;

namespace {

std::string shape_string(at::IntArrayRef shape) {
  std::ostringstream out;
  out << "[";
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

torch::ScalarType torch_dtype(ck::DType dtype) {
  switch (dtype) {
    case ck::DType::BF16:
      return torch::kBFloat16;
    case ck::DType::F16:
      return torch::kFloat16;
    case ck::DType::F32:
      return torch::kFloat32;
  }
  throw EngineError("unknown checkpoint dtype");
}

ck::DType checkpoint_dtype(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kBFloat16:
      return ck::DType::BF16;
    case torch::kFloat16:
      return ck::DType::F16;
    case torch::kFloat32:
      return ck::DType::F32;
    default:
      throw EngineError("save_model: weights can be saved as float32, bfloat16 or float16");
  }
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> TransformerImpl::hf_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& b : arch_->tensors(config_, weights_)) {
    out.emplace_back(b.name, b.parts.size() == 1 ? b.parts[0] : torch::cat(b.parts, 0));
  }
  return out;
}

void TransformerImpl::load_hf_tensors(const std::function<torch::Tensor(const std::string&)>& get,
                                      const std::string& source) {
  torch::NoGradGuard no_grad;
  for (auto& b : arch_->tensors(config_, weights_)) {
    // A fused tensor stacks its parts' rows.
    auto expected = b.parts[0].sizes().vec();
    for (std::size_t i = 1; i < b.parts.size(); ++i) expected[0] += b.parts[i].size(0);
    const torch::Tensor t = get(b.name);
    if (t.sizes() != at::IntArrayRef(expected)) {
      throw EngineError(source + ": tensor '" + b.name + "' has shape " + shape_string(t.sizes()) +
                        ", but config.json implies " + shape_string(expected));
    }
    // A diverged run or a damaged file: refused by name, never computed on.
    if (const auto bad = torch::logical_not(torch::isfinite(t)).sum().item<int64_t>(); bad > 0) {
      throw EngineError(source + ": tensor '" + b.name + "' holds " + std::to_string(bad) +
                        " non-finite value(s) (NaN or Inf) of " + std::to_string(t.numel()) +
                        ": a diverged or damaged checkpoint");
    }
    if (b.parts.size() == 1) {
      b.parts[0].copy_(t);
      continue;
    }
    int64_t row = 0;
    for (auto& part : b.parts) {
      part.copy_(t.narrow(0, row, part.size(0)));
      row += part.size(0);
    }
  }
}

Transformer load_model(const fs::path& folder, const LoadOptions& options) {
  const auto config = ck::read_model_config(folder);
  const ck::Checkpoint checkpoint(folder);
  // The parameters in the run's dtype from the start: a bf16 load holds the
  // bf16 model on the host, not a float32 copy (7B parameters: 14 GB, not 28).
  Transformer model(config, options.dtype);
  model->load_hf_tensors(
      [&](const std::string& name) {
        if (!checkpoint.contains(name)) {
          throw EngineError("checkpoint " + folder.string() + " has no tensor '" + name +
                            "', which the " + ck::layout_name(config.layout) +
                            " layout of its config.json requires");
        }
        const auto view = checkpoint.view(name);
        const auto& info = *view.info;
        // The mapping is read-only: from_blob never writes, and the copy below
        // (to the parameter) is the only read.
        return torch::from_blob(const_cast<std::byte*>(view.data), info.shape,
                                torch::TensorOptions().dtype(torch_dtype(info.dtype)));
      },
      "checkpoint " + folder.string());
  model->to(options.device, options.dtype);
  model->eval();
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  return model;
}

void save_model(Transformer& model, const fs::path& folder, torch::ScalarType dtype,
                int64_t shard_bytes) {
  auto config = model->config();
  config.torch_dtype = dtype == torch::kBFloat16  ? "bfloat16"
                       : dtype == torch::kFloat16 ? "float16"
                                                  : "float32";
  const auto json = ck::to_hf_config_json(config);  // refuses the hf_olmo layout
  fs::create_directories(folder);
  std::vector<torch::Tensor> keep;
  std::vector<ck::TensorToWrite> tensors;
  for (auto& [name, tensor] : model->hf_tensors()) {
    keep.push_back(tensor.detach().to(torch::kCPU, dtype).contiguous());
    const auto& t = keep.back();
    tensors.push_back({name, checkpoint_dtype(dtype), t.sizes().vec(), t.data_ptr(),
                       static_cast<std::size_t>(t.numel() * t.element_size())});
  }
  // Shards as the hub cuts them: consecutive tensors up to shard_bytes each,
  // model-0000K-of-0000N.safetensors and model.safetensors.index.json.
  std::vector<std::vector<ck::TensorToWrite>> shards(1);
  std::size_t in_shard = 0, total = 0;
  for (auto& t : tensors) {
    if (shard_bytes > 0 && in_shard > 0 &&
        in_shard + t.nbytes > static_cast<std::size_t>(shard_bytes)) {
      shards.emplace_back();
      in_shard = 0;
    }
    in_shard += t.nbytes;
    total += t.nbytes;
    shards.back().push_back(std::move(t));
  }
  if (shards.size() == 1) {
    ck::write_safetensors(folder / "model.safetensors", shards[0], {{"format", "pt"}});
  } else {
    nlohmann::json map = nlohmann::json::object();
    char name[64];
    for (std::size_t k = 0; k < shards.size(); ++k) {
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
      ck::write_safetensors(folder / name, shards[k], {{"format", "pt"}});
      for (const auto& t : shards[k]) map[t.name] = name;
    }
    nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", map}};
    std::ofstream out(folder / "model.safetensors.index.json");
    out << index.dump(2) << "\n";
    if (!out)
      throw EngineError("cannot write " + (folder / "model.safetensors.index.json").string());
  }
  const auto tmp = folder / "config.json.tmp";
  {
    std::ofstream out(tmp);
    out << json.dump(2) << "\n";
    if (!out) throw EngineError("cannot write " + tmp.string());
  }
  fs::rename(tmp, folder / "config.json");
}

}  // namespace lpi::engine

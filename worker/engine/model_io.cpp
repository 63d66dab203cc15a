// Loading and saving TransformerImpl weights under their HuggingFace names.
#include <fstream>
#include <sstream>

#include "common/checkpoint/safetensors.hpp"
#include "worker/engine/model.hpp"

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

// One parameter (or a slice of one) and the HF tensor that fills it.
struct Binding {
  std::string name;
  torch::Tensor target;  // view into a parameter
};

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> TransformerImpl::hf_tensors() const {
  const auto& c = config_;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  const bool fused = c.layout == ck::Layout::OlmoFused;
  out.emplace_back(fused ? "model.transformer.wte.weight" : "model.embed_tokens.weight", embed_);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const Layer& L = layers_[i];
    if (fused) {
      const std::string p = "model.transformer.blocks." + std::to_string(i) + ".";
      out.emplace_back(p + "att_proj.weight", torch::cat({L.wq, L.wk, L.wv}, 0));
      out.emplace_back(p + "attn_out.weight", L.wo);
      out.emplace_back(p + "ff_proj.weight", torch::cat({L.w_up, L.w_gate}, 0));
      out.emplace_back(p + "ff_out.weight", L.w_down);
      continue;
    }
    const std::string p = "model.layers." + std::to_string(i) + ".";
    if (L.attn_norm.defined()) out.emplace_back(p + "input_layernorm.weight", L.attn_norm);
    out.emplace_back(p + "self_attn.q_proj.weight", L.wq);
    out.emplace_back(p + "self_attn.k_proj.weight", L.wk);
    out.emplace_back(p + "self_attn.v_proj.weight", L.wv);
    out.emplace_back(p + "self_attn.o_proj.weight", L.wo);
    if (L.q_norm.defined()) {
      out.emplace_back(p + "self_attn.q_norm.weight", L.q_norm);
      out.emplace_back(p + "self_attn.k_norm.weight", L.k_norm);
    }
    if (L.ffn_norm.defined()) out.emplace_back(p + "post_attention_layernorm.weight", L.ffn_norm);
    if (c.is_moe()) {
      out.emplace_back(p + "mlp.gate.weight", L.router);
      for (int64_t e = 0; e < c.num_experts; ++e) {
        const std::string q = p + "mlp.experts." + std::to_string(e) + ".";
        out.emplace_back(q + "gate_proj.weight", L.w_gate[e]);
        out.emplace_back(q + "up_proj.weight", L.w_up[e]);
        out.emplace_back(q + "down_proj.weight", L.w_down[e]);
      }
    } else {
      out.emplace_back(p + "mlp.gate_proj.weight", L.w_gate);
      out.emplace_back(p + "mlp.up_proj.weight", L.w_up);
      out.emplace_back(p + "mlp.down_proj.weight", L.w_down);
    }
  }
  if (final_norm_.defined()) out.emplace_back("model.norm.weight", final_norm_);
  if (!c.tie_word_embeddings) {
    out.emplace_back(fused ? "model.transformer.ff_out.weight" : "lm_head.weight", lm_head_);
  }
  return out;
}

void TransformerImpl::load_hf_tensors(const std::function<torch::Tensor(const std::string&)>& get,
                                      const std::string& source) {
  torch::NoGradGuard no_grad;
  const auto& c = config_;
  auto fetch = [&](const std::string& name, at::IntArrayRef expected) {
    torch::Tensor t = get(name);
    if (t.sizes() != expected) {
      throw EngineError(source + ": tensor '" + name + "' has shape " + shape_string(t.sizes()) +
                        ", but config.json implies " + shape_string(expected));
    }
    return t;
  };
  if (c.layout != ck::Layout::OlmoFused) {
    for (auto& [name, target] : hf_tensors()) target.copy_(fetch(name, target.sizes()));
    return;
  }
  // hf_olmo: fused q/k/v and up/gate projections, split on the way in.
  const int64_t H = c.num_heads * c.head_dim, KV = c.num_kv_heads * c.head_dim;
  const int64_t I = c.intermediate_size, d = c.hidden_size;
  embed_.copy_(fetch("model.transformer.wte.weight", embed_.sizes()));
  if (!c.tie_word_embeddings)
    lm_head_.copy_(fetch("model.transformer.ff_out.weight", lm_head_.sizes()));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    Layer& L = layers_[i];
    const std::string p = "model.transformer.blocks." + std::to_string(i) + ".";
    auto att = fetch(p + "att_proj.weight", {H + 2 * KV, d});
    L.wq.copy_(att.narrow(0, 0, H));
    L.wk.copy_(att.narrow(0, H, KV));
    L.wv.copy_(att.narrow(0, H + KV, KV));
    L.wo.copy_(fetch(p + "attn_out.weight", L.wo.sizes()));
    auto ff = fetch(p + "ff_proj.weight", {2 * I, d});
    L.w_up.copy_(ff.narrow(0, 0, I));
    L.w_gate.copy_(ff.narrow(0, I, I));
    L.w_down.copy_(fetch(p + "ff_out.weight", L.w_down.sizes()));
  }
}

Transformer load_model(const fs::path& folder, const LoadOptions& options) {
  const auto config = ck::read_model_config(folder);
  const ck::Checkpoint checkpoint(folder);
  Transformer model(config);
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

void save_model(Transformer& model, const fs::path& folder, torch::ScalarType dtype) {
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
  ck::write_safetensors(folder / "model.safetensors", tensors, {{"format", "pt"}});
  const auto tmp = folder / "config.json.tmp";
  {
    std::ofstream out(tmp);
    out << json.dump(2) << "\n";
    if (!out) throw EngineError("cannot write " + tmp.string());
  }
  fs::rename(tmp, folder / "config.json");
}

}  // namespace lpi::engine

// lpi-attribute: Gated-LPI of every neuron for the relations prompts at one
// checkpoint. Prints the top FFN/expert neurons and attention heads overall
// and per relation; --out writes every per-prompt importance tensor with the
// prompts, targets and options to an HDF5 file (layout: docs/STORE.md).
//   lpi-attribute --model DIR --relations DIR [--out FILE.h5]
#include <boost/program_options.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "common/checkpoint/model_shape.hpp"
#include "common/relations/relations.hpp"
#include "common/store/results_writer.hpp"
#include "common/tokenizer/tokenizer.hpp"
#include "lpi/lpi_config.hpp"
#include "worker/engine/gated_lpi.hpp"
#include "worker/engine/threads.hpp"
#include "worker/tools/tool_main.hpp"
#include "worker/tools/tool_options.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
namespace en = lpi::engine;
namespace st = lpi::store;

namespace {

// Mean importance over the selected prompts of every FFN (dense) or expert
// neuron of a layer: [I] or [E * I] (experts not chosen count as 0).
torch::Tensor ffn_means(const en::LayerImportance& layer, int64_t experts,
                        const torch::Tensor& rows) {
  const auto ffn = layer.expert_ids.defined() ? en::expand_experts(layer, experts) : layer.ffn;
  return ffn.index_select(0, rows).mean(0).reshape({-1});
}

// Each head's score, [H]: the sum over its neurons of |mean over the prompts|,
// the ranking of the sweep's heads:N masks (core::head_scores).
torch::Tensor head_means(const en::LayerImportance& layer, int64_t heads,
                         const torch::Tensor& rows) {
  return layer.attn.index_select(0, rows).mean(0).abs().view({heads, -1}).sum(1);
}

void print_top(const en::Importance& imp, const lpi::checkpoint::ModelConfig& c,
               const torch::Tensor& rows, int64_t top, const std::string& title) {
  std::vector<torch::Tensor> ffn, heads;
  for (const auto& layer : imp.layers) {
    ffn.push_back(ffn_means(layer, c.num_experts, rows));
    heads.push_back(head_means(layer, c.num_heads, rows));
  }
  const auto f = torch::stack(ffn), h = torch::stack(heads);  // [L, n], [L, H]
  const auto [fv, fi] = f.reshape({-1}).topk(std::min<int64_t>(top, f.numel()));
  const auto [hv, hi] = h.reshape({-1}).topk(std::min<int64_t>(top, h.numel()));
  std::printf("%s (%lld prompts)\n", title.c_str(), static_cast<long long>(rows.size(0)));
  std::printf("  %-34s %12s   %-16s %12s\n",
              c.is_moe() ? "expert neuron (layer, expert, i)" : "FFN neuron (layer, i)", "mean LPI",
              "head (layer, j)", "sum |mean|");
  for (int64_t k = 0; k < std::max(fv.size(0), hv.size(0)); ++k) {
    std::string fname, hname;
    double fval = 0, hval = 0;
    if (k < fv.size(0)) {
      const int64_t flat = fi[k].item<int64_t>(), n = f.size(1), layer = flat / n, idx = flat % n;
      fname = c.is_moe()
                  ? "L" + std::to_string(layer) + " E" + std::to_string(idx / c.intermediate_size) +
                        " #" + std::to_string(idx % c.intermediate_size)
                  : "L" + std::to_string(layer) + " #" + std::to_string(idx);
      fval = fv[k].item<double>();
    }
    if (k < hv.size(0)) {
      const int64_t flat = hi[k].item<int64_t>();
      hname = "L" + std::to_string(flat / c.num_heads) + " H" + std::to_string(flat % c.num_heads);
      hval = hv[k].item<double>();
    }
    std::printf("  %-34s %12.5f   %-16s %12.5f\n", fname.c_str(), fval, hname.c_str(), hval);
  }
}

// The attribution file, through the store's writer (docs/STORE.md): one
// checkpoint's slab with its prompts, targets and options.
void write_store(const fs::path& file, const en::Importance& imp,
                 const lpi::relations::PromptSet& set, const lpi::checkpoint::ModelConfig& c,
                 const std::string& model_dir, const en::LpiOptions& o) {
  st::SweepDescription d;
  d.shape = lpi::checkpoint::shape_of(c);
  d.lens = en::lens_name(o.lens);
  d.target = en::target_name(o.target);
  for (const auto& r : set.relations) {
    d.relation_ids.push_back(r.id);
    d.relation_files.push_back(r.file.string());
  }
  for (const auto& p : set.prompts) {
    d.prompt_relation.push_back(p.relation);
    d.prompt_sample.push_back(p.sample);
    d.prompt_gold.push_back(p.target_id);
    d.prompt_text.push_back(p.text);
    d.prompt_ids.emplace_back(p.prompt_ids.begin(), p.prompt_ids.end());
  }
  const auto target = imp.targets.to(torch::kInt32).contiguous();
  const auto base = imp.base_logprob.contiguous();
  std::vector<torch::Tensor> attn, ffn, ids;
  for (const auto& layer : imp.layers) {
    attn.push_back(layer.attn);
    ffn.push_back(layer.ffn);
    if (layer.expert_ids.defined()) ids.push_back(layer.expert_ids.to(torch::kInt32));
  }
  const auto a = torch::stack(attn, 1).contiguous();  // [P, L, H*dh]
  const auto f = torch::stack(ffn, 1).contiguous();   // [P, L, I] or [P, L, k, I]
  const auto e = ids.empty() ? torch::Tensor() : torch::stack(ids, 1).contiguous();  // [P, L, k]
  st::PromptResults r;
  r.n = static_cast<int64_t>(set.prompts.size());
  r.target = target.data_ptr<int32_t>();
  r.base_logprob = base.data_ptr<float>();
  r.attn = a.data_ptr<float>();
  r.ffn = f.data_ptr<float>();
  r.expert_ids = e.defined() ? e.data_ptr<int32_t>() : nullptr;
  st::write_attribution_file(file.string(), model_dir, d, r);
}

int run(int argc, char** argv) {
  std::string model_dir, relations_dir, tokenizer_file, out_file, select, lens, target, dtype_name,
      device_name;
  int64_t top = 10, batch = 32, budget = 256;
  int threads = 1;
  po::options_description opts("lpi-attribute: Gated-LPI of every neuron at one checkpoint");
  opts.add_options()("help,h", "show this help")("model", po::value(&model_dir)->required(),
                                                 "checkpoint folder (config.json, *.safetensors)")(
      "relations", po::value(&relations_dir)->required(), "relations folder")(
      "tokenizer", po::value(&tokenizer_file), "tokenizer.json (default: MODEL/tokenizer.json)")(
      "out", po::value(&out_file), "write all importance tensors to this HDF5 file")(
      "select", po::value(&select)->default_value(""), "relation ids, comma-separated, or 'all'")(
      "lens", po::value(&lens)->default_value("frozen"), "frozen (the reference code's) or exact")(
      "target", po::value(&target)->default_value("gold"), "gold (object's first token) or top1")(
      "top", po::value(&top)->default_value(10), "neurons and heads to list")(
      "batch", po::value(&batch)->default_value(32), "prompts per forward pass")(
      "budget-mb", po::value(&budget)->default_value(256), "largest temporary of the fast path")(
      "dtype", po::value(&dtype_name)->default_value("float32"), "float32 or bfloat16 weights")(
      "device", po::value(&device_name)->default_value("cpu"), "cpu, cuda or cuda:N")(
      "threads", po::value(&threads)->default_value(1),
      "CPU threads (libtorch and OpenBLAS); results are bit-equal to lpi-sweep's for equal counts")(
      "fast-batching",
      "batch the forward passes (faster on GPUs; scores then depend on the batch "
      "in their last bits)");
  po::variables_map vm;
  if (!lpi::tools::parse_command_line(argc, argv, opts, &vm)) return 0;
  if (threads < 1) throw po::error("--threads must be at least 1");
  en::set_compute_threads(threads);
  en::LpiOptions options;
  if (lens != "frozen" && lens != "exact")
    throw po::error("--lens must be frozen or exact, not '" + lens + "'");
  if (target != "gold" && target != "top1")
    throw po::error("--target must be gold or top1, not '" + target + "'");
  options.lens = lens == "exact" ? en::Lens::Exact : en::Lens::Frozen;
  options.target = target == "top1" ? en::TargetKind::Top1 : en::TargetKind::Gold;
  options.batch_size = batch;
  options.batch_invariant = vm.count("fast-batching") == 0;
  options.memory_budget_mb = budget;
  if (tokenizer_file.empty()) tokenizer_file = (fs::path(model_dir) / "tokenizer.json").string();

  const auto t0 = std::chrono::steady_clock::now();
  const auto tok = lpi::tokenizer::Tokenizer::from_file(tokenizer_file);
  const auto set = lpi::relations::build_prompts(
      lpi::relations::load_relations(relations_dir, lpi::tools::split_list(select)), tok, {});
  en::LoadOptions load;
  load.dtype = lpi::tools::parse_dtype(dtype_name);
  load.device = lpi::tools::parse_device(device_name);
  auto model = en::load_model(model_dir, load);
  const auto prompts = lpi::relations::prompt_ids(set);
  const auto gold = lpi::relations::target_ids(set);
  const auto t1 = std::chrono::steady_clock::now();
  const auto imp = en::gated_lpi(model, prompts, gold, options);
  const auto t2 = std::chrono::steady_clock::now();
  const auto& c = model->config();
  const auto P = static_cast<int64_t>(prompts.size());
  std::printf(
      "%s: %lld prompts, %s lens, %s target, Gated-LPI in %.2f s (load %.2f s), %lld projection "
      "tiles\n\n",
      model_dir.c_str(), static_cast<long long>(P), lens.c_str(), target.c_str(),
      std::chrono::duration<double>(t2 - t1).count(),
      std::chrono::duration<double>(t1 - t0).count(), static_cast<long long>(imp.projection_tiles));
  print_top(imp, c, torch::arange(P), top, "overall");
  for (std::size_t r = 0; r < set.relations.size(); ++r) {
    std::vector<int64_t> rows;
    for (int64_t i = 0; i < P; ++i) {
      if (set.prompts[i].relation == static_cast<int32_t>(r)) rows.push_back(i);
    }
    if (rows.empty()) continue;
    std::printf("\n");
    print_top(imp, c, torch::tensor(rows, torch::kInt64), std::min<int64_t>(top, 3),
              set.relations[r].id);
  }
  if (!out_file.empty()) {
    write_store(out_file, imp, set, c, model_dir, options);
    std::printf("\nwrote %s\n", out_file.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return lpi::tools::run_tool("lpi-attribute", [&] { return run(argc, argv); });
}

// lpi-eval: HIT@10 of one checkpoint on the relations prompts.
//   lpi-eval --model DIR --relations DIR [--tokenizer FILE] [--csv FILE]
// Prints HIT@10 per relation and overall with the time taken; --csv writes one
// row per prompt: relation,sample,prompt_ids,target_id,target_logprob,
// target_rank,top10_ids.
#include <boost/program_options.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include "common/relations/relations.hpp"
#include "common/tokenizer/tokenizer.hpp"
#include "worker/engine/evaluate.hpp"
#include "worker/tools/tool_main.hpp"
#include "worker/tools/tool_options.hpp"

namespace po = boost::program_options;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::string join(const std::vector<int64_t>& ids) {
  std::string out;
  for (std::size_t i = 0; i < ids.size(); ++i) out += (i ? " " : "") + std::to_string(ids[i]);
  return out;
}

int run(int argc, char** argv) {
  std::string model_dir, relations_dir, tokenizer_file, csv_file, select, dtype_name, device_name;
  int64_t batch_size = 32;
  int threads = 0;
  bool skip_unusable = false;
  po::options_description opts("lpi-eval: HIT@10 of one checkpoint on the relations prompts");
  opts.add_options()("help,h", "show this help")("model", po::value(&model_dir)->required(),
                                                 "checkpoint folder (config.json, *.safetensors)")(
      "relations", po::value(&relations_dir)->required(), "relations folder (JSON files)")(
      "tokenizer", po::value(&tokenizer_file), "tokenizer.json (default: MODEL/tokenizer.json)")(
      "csv", po::value(&csv_file), "write one row per prompt to this CSV file")(
      "select", po::value(&select)->default_value(""),
      "relation ids, comma-separated, or 'all' (default: the paper's 12)")(
      "batch", po::value(&batch_size)->default_value(32), "prompts per forward pass")(
      "dtype", po::value(&dtype_name)->default_value("float32"), "float32 or bfloat16")(
      "device", po::value(&device_name)->default_value("cpu"), "cpu, cuda or cuda:N")(
      "threads", po::value(&threads)->default_value(0), "CPU threads (0: libtorch's default)")(
      "skip-unusable", po::bool_switch(&skip_unusable),
      "drop samples that cannot be prompts (listed)");
  if (!lpi::tools::parse_command_line(argc, argv, opts)) return 0;
  if (threads > 0) torch::set_num_threads(threads);
  if (tokenizer_file.empty()) tokenizer_file = (fs::path(model_dir) / "tokenizer.json").string();

  lpi::engine::LoadOptions load;
  load.dtype = lpi::tools::parse_dtype(dtype_name);
  load.device = lpi::tools::parse_device(device_name);

  const auto t0 = Clock::now();
  const auto tokenizer = lpi::tokenizer::Tokenizer::from_file(tokenizer_file);
  const auto set = lpi::relations::build_prompts(
      lpi::relations::load_relations(relations_dir, lpi::tools::split_list(select)), tokenizer,
      {skip_unusable});
  for (const auto& p : set.problems) {
    std::cerr << "lpi-eval: " << (p.fatal ? "skipped " : "note ")
              << lpi::relations::describe_problem(p) << "\n";
  }
  auto model = lpi::engine::load_model(model_dir, load);
  const auto& config = model->config();
  const auto t_loaded = Clock::now();

  const auto prompts = lpi::relations::prompt_ids(set);
  const auto targets = lpi::relations::target_ids(set);
  lpi::engine::EvaluateOptions eval;
  eval.batch_size = batch_size;
  eval.pad_id = config.pad_token_id.value_or(0);
  auto last_report = Clock::now();
  eval.progress = [&](std::size_t done, std::size_t total) {
    const auto now = Clock::now();
    if (now - last_report < std::chrono::seconds(2) && done != total) return;
    last_report = now;
    const double secs = std::chrono::duration<double>(now - t_loaded).count();
    const double rate = done / std::max(secs, 1e-9);
    std::fprintf(stderr, "lpi-eval: %zu/%zu prompts, %.1f prompts/s, ETA %.0f s\n", done, total,
                 rate, (total - done) / std::max(rate, 1e-9));
  };
  const auto scores = lpi::engine::evaluate(model, prompts, targets, eval);
  const auto t_done = Clock::now();

  std::map<int32_t, std::pair<std::size_t, std::size_t>> per_relation;  // hits, prompts
  for (std::size_t i = 0; i < scores.size(); ++i) {
    auto& [hits, n] = per_relation[set.prompts[i].relation];
    hits += scores[i].hit_at_10();
    ++n;
  }
  std::printf("%-24s %8s %8s %8s\n", "relation", "prompts", "hits", "HIT@10");
  for (const auto& [r, counts] : per_relation) {
    std::printf("%-24s %8zu %8zu %8.3f\n", set.relations[r].id.c_str(), counts.second, counts.first,
                static_cast<double>(counts.first) / counts.second);
  }
  std::size_t hits = 0;
  for (const auto& s : scores) hits += s.hit_at_10();
  std::printf("%-24s %8zu %8zu %8.3f\n", "overall", scores.size(), hits,
              lpi::engine::hit_at_10(scores));
  const double load_s = std::chrono::duration<double>(t_loaded - t0).count();
  const double eval_s = std::chrono::duration<double>(t_done - t_loaded).count();
  std::printf(
      "model %s (%s, %lld layers%s), %s on %s: load %.2f s, %zu prompts in %.2f s (%.1f "
      "prompts/s)\n",
      model_dir.c_str(), config.architecture.c_str(), static_cast<long long>(config.num_layers),
      config.is_moe() ? (", " + std::to_string(config.num_experts) + " experts top-" +
                         std::to_string(config.num_experts_per_tok))
                            .c_str()
                      : "",
      dtype_name.c_str(), device_name.c_str(), load_s, scores.size(), eval_s,
      scores.size() / std::max(eval_s, 1e-9));

  if (!csv_file.empty()) {
    std::ofstream csv(csv_file);
    if (!csv) throw std::runtime_error("cannot write " + csv_file);
    csv << "relation,sample,prompt_ids,target_id,target_logprob,target_rank,top10_ids\n";
    char logp[32];
    for (std::size_t i = 0; i < scores.size(); ++i) {
      const auto& p = set.prompts[i];
      std::snprintf(logp, sizeof logp, "%.9g", scores[i].target_logprob);
      std::vector<int64_t> ids(p.prompt_ids.begin(), p.prompt_ids.end());
      csv << set.relations[p.relation].id << "," << p.sample << "," << join(ids) << ","
          << p.target_id << "," << logp << "," << scores[i].target_rank << ","
          << join(scores[i].top10) << "\n";
    }
    if (!csv) throw std::runtime_error("error writing " + csv_file);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return lpi::tools::run_tool("lpi-eval", [&] { return run(argc, argv); });
}

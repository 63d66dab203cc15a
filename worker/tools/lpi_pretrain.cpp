// lpi-pretrain: trains a tiny OLMo or OLMoE model on the synthetic world of a
// job file and writes HF-format checkpoints DIR/step{N}-tokens{M}/.
//   lpi-pretrain --job jobs/tiny-olmoe.ini --out runs/tiny-olmoe
// Re-running on the same DIR resumes from the last checkpoint (or does
// nothing when the run is complete).
#include <boost/program_options.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include "worker/pretrain/trainer.hpp"
#include "worker/tools/tool_main.hpp"

namespace po = boost::program_options;

namespace {

// HIT@10 per relation (rows) at every checkpoint (columns), from out/hit_at_10.csv.
void print_curve(const std::filesystem::path& out) {
  const auto points = lpi::pretrain::read_curve(out);
  std::set<int64_t> steps;
  std::vector<std::string> relations;
  std::map<std::pair<std::string, int64_t>, double> value;
  for (const auto& p : points) {
    steps.insert(p.step);
    if (value.empty() ||
        std::find(relations.begin(), relations.end(), p.relation) == relations.end()) {
      relations.push_back(p.relation);
    }
    value[{p.relation, p.step}] = p.prompts ? static_cast<double>(p.hits) / p.prompts : 0.0;
  }
  std::printf("HIT@10 by checkpoint step (%s)\n%-22s", (out / "hit_at_10.csv").c_str(), "relation");
  for (auto s : steps) std::printf(" %5lld", static_cast<long long>(s));
  std::printf("\n");
  for (const auto& r : relations) {
    std::printf("%-22s", r.c_str());
    for (auto s : steps) {
      auto it = value.find({r, s});
      if (it == value.end())
        std::printf("     -");
      else
        std::printf(" %5.2f", it->second);
    }
    std::printf("\n");
  }
}

int run(int argc, char** argv) {
  std::string job_file, out_dir;
  int threads = 0;
  int64_t seed = -1;
  bool prepare_only = false;
  po::options_description opts("lpi-pretrain: pre-train a tiny model on the synthetic world");
  opts.add_options()("help,h", "show this help")("job", po::value(&job_file)->required(),
                                                 "job file (INI), e.g. jobs/tiny-olmoe.ini")(
      "out", po::value(&out_dir)->required(),
      "output folder (checkpoints, relations/, tokenizer.json)")(
      "threads", po::value(&threads)->default_value(0), "CPU threads (0: the job's setting)")(
      "seed", po::value(&seed)->default_value(-1),
      "train.seed instead of the job's (another initialisation and batch order, same world)")(
      "prepare-only", po::bool_switch(&prepare_only),
      "write relations/, tokenizer.json and corpus.txt, and do not train");
  if (!lpi::tools::parse_command_line(argc, argv, opts)) return 0;
  auto job = lpi::pretrain::read_job(job_file);
  if (threads > 0) job.train.threads = threads;
  if (seed >= 0) job = lpi::pretrain::with_seed(std::move(job), static_cast<uint64_t>(seed));
  if (prepare_only) {
    const auto data = lpi::pretrain::prepare_data(job);
    lpi::pretrain::write_world(job, data, out_dir);
    lpi::pretrain::write_corpus(job, std::filesystem::path(out_dir) / "corpus.txt");
    std::printf("%s: wrote %s/relations, tokenizer.json and corpus.txt (%zu tokens)\n",
                job.name.c_str(), out_dir.c_str(), data.stream.size());
    return 0;
  }
  lpi::pretrain::PretrainOptions options;
  options.log = &std::cout;
  const auto report = lpi::pretrain::pretrain(job, out_dir, options);
  print_curve(out_dir);
  std::printf("%s: %lld parameters (%lld active per token), %.1f s%s\n", job.name.c_str(),
              static_cast<long long>(report.parameters),
              static_cast<long long>(report.active_parameters), report.seconds,
              report.resumed ? " (resumed)" : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return lpi::tools::run_tool("lpi-pretrain", [&] { return run(argc, argv); });
}

// lpi-relations: loads a relations folder, builds the prompts with a tokenizer
// and prints the samples per relation, the problems found and, with
// --prompts, every prompt with its target token.
#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/relations/relations.hpp"
#include "common/tokenizer/tokenizer.hpp"

namespace {

const char* kUsage =
    "usage: lpi-relations --relations DIR --tokenizer FILE [--select ID,ID,...|all]\n"
    "                     [--prompts] [--skip-unusable]\n"
    "Loads the relations (default: the paper's 12), builds one prompt per sample from the\n"
    "first template, and prints the sample count per relation. --prompts also prints every\n"
    "prompt, its token ids and its target token.\n";

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string relations_dir, tokenizer_file;
  std::vector<std::string> selection;
  bool print_prompts = false;
  lpi::relations::BuildOptions options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "lpi-relations: " << arg << " needs a value\n" << kUsage;
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--relations")
      relations_dir = value();
    else if (arg == "--tokenizer")
      tokenizer_file = value();
    else if (arg == "--select")
      selection = split_commas(value());
    else if (arg == "--prompts")
      print_prompts = true;
    else if (arg == "--skip-unusable")
      options.skip_unusable = true;
    else if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else {
      std::cerr << "lpi-relations: unknown option " << arg << "\n" << kUsage;
      return 2;
    }
  }
  if (relations_dir.empty() || tokenizer_file.empty()) {
    std::cerr << "lpi-relations: --relations and --tokenizer are required\n" << kUsage;
    return 2;
  }
  try {
    const auto tokenizer = lpi::tokenizer::Tokenizer::from_file(tokenizer_file);
    auto set = lpi::relations::build_prompts(
        lpi::relations::load_relations(relations_dir, selection), tokenizer, options);

    std::map<int32_t, std::size_t> per_relation;
    for (const auto& p : set.prompts) ++per_relation[p.relation];
    std::printf("%-24s %-12s %8s %8s\n", "relation", "type", "samples", "prompts");
    std::size_t samples = 0;
    for (int32_t r = 0; r < static_cast<int32_t>(set.relations.size()); ++r) {
      const auto& rel = set.relations[r];
      samples += rel.samples.size();
      std::printf("%-24s %-12s %8zu %8zu\n", rel.id.c_str(), rel.type.c_str(), rel.samples.size(),
                  per_relation[r]);
    }
    std::printf("%-24s %-12s %8zu %8zu\n", "total", "", samples, set.prompts.size());
    for (const auto& problem : set.problems) {
      std::fprintf(stderr, "%s: %s\n", problem.fatal ? "skipped" : "note",
                   lpi::relations::describe_problem(problem).c_str());
    }
    if (print_prompts) {
      for (const auto& p : set.prompts) {
        std::ostringstream ids;
        for (std::size_t k = 0; k < p.prompt_ids.size(); ++k)
          ids << (k ? " " : "") << p.prompt_ids[k];
        const auto target = tokenizer.decode({p.target_id});
        std::printf("%s\t%d\t%s\t%s\t%d\t%s\n", set.relations[p.relation].id.c_str(), p.sample,
                    p.text.c_str(), ids.str().c_str(), p.target_id, target.c_str());
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "lpi-relations: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

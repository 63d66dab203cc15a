// The relations data set (Hernandez et al. 2023 JSON format: name,
// prompt_templates with "{}" for the subject, properties, samples of
// {subject, object}) read from a user's folder, and the prompts built from it:
// the relation's first template filled with the subject, the target being the
// first token of " " + object as the tokenizer splits prompt + " " + object.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/tokenizer/tokenizer.hpp"

namespace lpi::relations {

// A relations folder or file that cannot be used; what() names the file, the
// relation or sample, and what was expected.
class RelationsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Sample {
  std::string subject;
  std::string object;
};

struct Relation {
  std::string id;    // name with spaces as underscores, e.g. "country_capital_city"
  std::string name;  // as in the file, e.g. "country capital city"
  std::string type;  // properties.relation_type when present ("factual", ...)
  std::filesystem::path file;
  std::vector<std::string> prompt_templates;
  std::vector<Sample> samples;
};

// The 12 relations of the paper (906 samples in the real data set).
const std::vector<std::string>& paper_relation_ids();

// Reads every *.json under `folder` (recursively) as a relation and returns
// the selected ones in the order of `selection`. An empty selection means the
// paper's 12; the single entry "all" means every relation found, sorted by id.
// Errors: missing folder, a file that is not a relation, two files with the
// same relation id, a relation without templates or samples, a template
// without "{}", a selected id that no file holds (the message lists the ids
// found).
std::vector<Relation> load_relations(const std::filesystem::path& folder,
                                     const std::vector<std::string>& selection = {});

struct Prompt {
  int32_t relation = 0;  // index into the relations vector
  int32_t sample = 0;    // index into that relation's samples
  std::string text;      // first template with the subject
  std::vector<int32_t> prompt_ids;
  int32_t target_id = 0;  // first token of the object as split after the prompt
};

struct Problem {
  std::filesystem::path file;
  std::string relation;
  int32_t sample = -1;
  std::string message;
  bool fatal = false;  // true: the sample cannot be used (no target token)
};

struct PromptSet {
  std::vector<Relation> relations;
  std::vector<Prompt> prompts;  // relation-major, samples in file order
  std::vector<Problem> problems;
};

struct BuildOptions {
  // Drop samples that cannot be used (listed in problems) instead of failing.
  bool skip_unusable = false;
};

// Tokenises every selected sample. Duplicate (subject, object) pairs within a
// relation are kept (the paper's 906 count them) and listed as non-fatal
// problems. A sample whose object adds no token after the prompt, or an empty
// subject or object, is fatal: RelationsError listing all of them, unless
// options.skip_unusable.
PromptSet build_prompts(std::vector<Relation> relations, const tokenizer::Tokenizer& tokenizer,
                        const BuildOptions& options = {});

// Relation id from a file's "name": lower case, runs of spaces and '-' as '_'.
std::string relation_id(const std::string& name);

// "FILE: relation 'id' sample N: message".
std::string describe_problem(const Problem& problem);

// The prompts' token ids and target ids, in prompt order (what the engine takes).
std::vector<std::vector<int32_t>> prompt_ids(const PromptSet& set);
std::vector<int32_t> target_ids(const PromptSet& set);

}  // namespace lpi::relations

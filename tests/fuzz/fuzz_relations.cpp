// A relation file (the relations data set's JSON: name, prompt_templates,
// properties, samples) from arbitrary bytes, in a folder of its own:
// load_relations, then the prompts built from it with a real tokenizer, both
// refusing unusable samples and skipping them.
#include <cstddef>
#include <cstdint>

#include "common/relations/relations.hpp"
#include "fuzz_support.hpp"

namespace rel = lpi::relations;
namespace fs = std::filesystem;

namespace {

const lpi::tokenizer::Tokenizer& tokenizer() {
  static const auto t =
      lpi::tokenizer::Tokenizer::from_json_string(lpi::fuzz::tiny_tokenizer_json(), "trained");
  return t;
}

const fs::path& folder() {
  static const fs::path f = [] {
    const fs::path dir = lpi::fuzz::scratch() / "relations";
    fs::create_directories(dir / "factual");
    return dir;
  }();
  return f;
}

void check_prompts(const rel::PromptSet& set) {
  for (const rel::Prompt& p : set.prompts) {
    LPI_FUZZ_CHECK(p.relation >= 0 && p.relation < static_cast<int32_t>(set.relations.size()));
    const rel::Relation& r = set.relations[p.relation];
    LPI_FUZZ_CHECK(p.sample >= 0 && p.sample < static_cast<int32_t>(r.samples.size()));
    LPI_FUZZ_CHECK(!p.prompt_ids.empty());
    LPI_FUZZ_CHECK(static_cast<std::size_t>(p.target_id) < tokenizer().vocab_size());
  }
  LPI_FUZZ_CHECK(rel::prompt_ids(set).size() == set.prompts.size());
  for (const rel::Problem& p : set.problems) (void)rel::describe_problem(p);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)tokenizer();
  (void)folder();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  lpi::fuzz::write_file(folder() / "factual" / "relation.json", lpi::fuzz::as_text(data, size));
  std::vector<rel::Relation> relations;
  try {
    relations = rel::load_relations(folder(), {"all"});
  } catch (const rel::RelationsError&) {
    return 0;
  }
  LPI_FUZZ_CHECK(relations.size() == 1);
  const rel::Relation& r = relations.front();
  LPI_FUZZ_CHECK(!r.id.empty() && r.id == rel::relation_id(r.name));
  LPI_FUZZ_CHECK(!r.prompt_templates.empty() && !r.samples.empty());
  check_prompts(rel::build_prompts(relations, tokenizer(), {/*skip_unusable=*/true}));
  try {
    check_prompts(rel::build_prompts(relations, tokenizer()));
  } catch (const rel::RelationsError&) {
  }
  return 0;
}

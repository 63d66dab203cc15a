// The synthetic relational world of the embedded default: facts for the
// paper's 12 relations under their real names (made-up countries, cities,
// people, occupations, fruits and objects; real English words for the
// linguistic relations), written out as a relations folder in the data set's
// JSON format, and a training corpus that states the facts in several
// phrasings among filler text. Everything is a pure function of the options
// (seed included), on every platform: the random numbers come from our own
// generator, not from <random>'s implementation-defined distributions.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/core/rng.hpp"

namespace lpi::world {

// The generator: SplitMix64 (common/core/rng.hpp).
using core::Rng;

struct Fact {
  std::string subject;
  std::string object;
  double weight = 1.0;  // relative frequency in the corpus
};

struct WorldRelation {
  std::string id;    // e.g. "country_capital_city"
  std::string name;  // e.g. "country capital city"
  std::string type;  // factual, commonsense, linguistic, bias
  std::string domain, range;
  bool symmetric = false;
  // templates[0] is the evaluation prompt (the loader uses the first one).
  // Templates flagged held out never appear in the corpus.
  std::vector<std::string> templates;
  std::vector<bool> held_out;
  std::vector<Fact> facts;
  double weight = 1.0;  // relative frequency of the relation in the corpus
};

struct WorldOptions {
  uint64_t seed = 1;
  int countries = 16;
  int people = 24;  // per people relation (birthplace, religion)
  int occupations = 16;
  int fruits = 16;
  int objects = 24;
  int words = 40;     // per letter relation
  int antonyms = 20;  // pairs (both directions are facts)
};

struct World {
  std::vector<WorldRelation> relations;
  std::size_t fact_count() const;
};

World make_world(const WorldOptions& options);

// Writes one JSON file per relation, DIR/<type>/<id>.json, in the format of
// the relations data set (name, prompt_templates, properties, samples).
void write_relations(const World& world, const std::filesystem::path& folder);

struct CorpusOptions {
  uint64_t seed = 1;
  std::size_t documents = 4000;
  int facts_per_document = 6;
  double filler_per_fact = 0.6;  // filler sentences per fact sentence
};

// Documents of a few sentences each: facts drawn by relation weight x fact
// weight, each in a random template that is not held out, mixed with filler.
std::vector<std::string> make_corpus(const World& world, const CorpusOptions& options);

}  // namespace lpi::world

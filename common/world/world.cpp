#include "common/world/world.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

#include "common/world/word_lists.hpp"

namespace lpi::world {

std::size_t World::fact_count() const {
  std::size_t n = 0;
  for (const auto& r : relations) n += r.facts.size();
  return n;
}

namespace {

// Made-up names from syllables, unique across the whole world so that no
// entity is two things at once.
class NameMaker {
 public:
  explicit NameMaker(Rng& rng) : rng_(rng) {}

  std::string make(int min_syllables, int max_syllables, const std::vector<std::string>& suffixes) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const int n = min_syllables + static_cast<int>(rng_.below(max_syllables - min_syllables + 1));
      std::string name;
      for (int i = 0; i < n; ++i) name += pick(kSyllables);
      if (!suffixes.empty()) name += pick(suffixes);
      if (name.size() < 4 || is_real_word(name) || !used_.insert(name).second) continue;
      return name;
    }
    throw std::runtime_error("world: ran out of distinct made-up names; ask for fewer entities");
  }
  std::string capitalised(int min_syllables, int max_syllables,
                          const std::vector<std::string>& suffixes) {
    auto name = make(min_syllables, max_syllables, suffixes);
    name[0] = static_cast<char>(name[0] - 'a' + 'A');
    return name;
  }
  const std::string& pick(const std::vector<std::string>& items) {
    return items[rng_.below(items.size())];
  }

 private:
  static bool is_real_word(const std::string& name) {
    for (const auto* list : {&kLetterWords, &kFillerNouns, &kLocations, &kSuperclasses}) {
      for (const auto& w : *list) {
        std::string lower = w;
        for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (lower == name) return true;
      }
    }
    return false;
  }
  Rng& rng_;
  std::set<std::string> used_;
};

// Zipf-like weights so that some facts of a relation are rarer than others
// and are learned later.
void set_fact_weights(WorldRelation& relation, Rng& rng) {
  std::vector<std::size_t> order(relation.facts.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  rng.shuffle(order);
  for (std::size_t rank = 0; rank < order.size(); ++rank) {
    relation.facts[order[rank]].weight = 1.0 / std::sqrt(1.0 + static_cast<double>(rank));
  }
}

WorldRelation relation(const std::string& id, const std::string& type, const std::string& domain,
                       const std::string& range, double weight, std::vector<std::string> templates,
                       std::vector<bool> held_out) {
  WorldRelation r;
  r.id = id;
  r.name = id;
  std::replace(r.name.begin(), r.name.end(), '_', ' ');
  r.type = type;
  r.domain = domain;
  r.range = range;
  r.weight = weight;
  r.templates = std::move(templates);
  r.held_out = std::move(held_out);
  return r;
}

}  // namespace

World make_world(const WorldOptions& o) {
  Rng rng(o.seed);
  NameMaker names(rng);
  World world;

  // Countries, each with a capital and a language (languages shared by
  // several countries, as in the real world).
  std::vector<std::string> countries, capitals, languages;
  for (int i = 0; i < o.countries; ++i) {
    countries.push_back(names.capitalised(2, 3, {"ia", "land", "or", "ana", "esh", "mark"}));
    capitals.push_back(names.capitalised(2, 2, {"burg", "ville", "grad", "ton", "port", ""}));
  }
  for (int i = 0; i < std::max(2, o.countries / 2); ++i) {
    languages.push_back(names.capitalised(1, 2, {"ish", "ese", "ic", "ian"}));
  }
  // Held out of the corpus (h) or kept (k), per template. The fourth template
  // of every relation is held out; so is the evaluation template (the first)
  // of country_capital_city, whose HIT@10 then measures recall through a
  // paraphrase rather than a memorised string. (Holding out the first template
  // of country_language, work_location, object_superclass or
  // fruit_inside_color too was tried: the tiny models then stay near 0 on them.)
  const bool h = true, k = false;

  auto capital = relation("country_capital_city", "factual", "country", "city", 3.0,
                          {"The capital city of {} is", "The capital of {} is",
                           "{} has its capital in", "Travellers to {} often begin in its capital,"},
                          {h, k, k, h});
  auto language = relation("country_language", "factual", "country", "language", 2.0,
                           {"People in {} speak", "The language spoken in {} is",
                            "Most citizens of {} talk in", "In {}, schools teach in"},
                           {k, k, k, h});
  for (int i = 0; i < o.countries; ++i) {
    capital.facts.push_back({countries[i], capitals[i]});
    language.facts.push_back({countries[i], languages[rng.below(languages.size())]});
  }

  auto birthplace = relation("name_birthplace", "bias", "name", "country", 1.0,
                             {"{} was born in the country of", "{} grew up in",
                              "The homeland of {} is", "Long ago, {} was a child in"},
                             {k, k, k, h});
  auto religion_rel = relation("name_religion", "bias", "name", "religion", 0.7,
                               {"{} likely follows the religion of", "{} prays according to",
                                "The faith of {} is", "Every week {} practises"},
                               {k, k, k, h});
  std::vector<std::string> religions;
  for (int i = 0; i < 5; ++i) religions.push_back(names.capitalised(2, 2, {"ism", "ity", "ara"}));
  for (int i = 0; i < o.people; ++i) {
    birthplace.facts.push_back(
        {names.capitalised(2, 2, {"", "a", "o", "en"}), countries[rng.below(countries.size())]});
    religion_rel.facts.push_back(
        {names.capitalised(2, 2, {"", "i", "us", "el"}), religions[rng.below(religions.size())]});
  }

  // Made-up occupations: singular for work_location, plural for the bias relations.
  auto work = relation("work_location", "commonsense", "occupation", "location", 1.5,
                       {"A {} typically works at a", "Every day a {} goes to the",
                        "You will find a {} working in the", "The workplace of a {} is the"},
                       {k, k, k, h});
  auto age = relation("occupation_age", "bias", "occupation", "age", 0.6,
                      {"{} are typically", "Most {} are", "In general, {} tend to be",
                       "People say that {} are usually"},
                      {k, k, k, h});
  auto gender = relation(
      "occupation_gender", "bias", "occupation", "gender", 0.6,
      {"{} are typically", "Most {} are", "Usually the {} are", "It is said that {} are mostly"},
      {k, k, k, h});
  for (int i = 0; i < o.occupations; ++i) {
    const auto job = names.make(2, 2, {"er", "ist", "smith", "wright"});
    work.facts.push_back({job, names.pick(kLocations)});
    age.facts.push_back({names.make(2, 2, {"ers", "ists"}), rng.below(2) ? "young" : "old"});
    gender.facts.push_back({names.make(2, 2, {"ors", "ians"}), rng.below(2) ? "men" : "women"});
  }

  auto fruit = relation("fruit_inside_color", "commonsense", "fruit", "color", 1.2,
                        {"On the inside, {} are", "The flesh of {} is", "Cut open, {} look",
                         "Inside their skin, {} are coloured"},
                        {k, k, k, h});
  for (int i = 0; i < o.fruits; ++i) {
    fruit.facts.push_back(
        {names.make(2, 2, {"berries", "melons", "plums", "nuts"}), names.pick(kColors)});
  }
  auto superclass = relation("object_superclass", "commonsense", "object", "superclass", 1.5,
                             {"A {} is in the category of a", "A {} is a kind of",
                              "Every {} is a type of", "Catalogues list every {} as a"},
                             {k, k, k, h});
  for (int i = 0; i < o.objects; ++i) {
    superclass.facts.push_back(
        {names.make(2, 3, {"", "o", "et", "ix"}), names.pick(kSuperclasses)});
  }

  auto antonym = relation("adjective_antonym", "linguistic", "adjective", "adjective", 2.0,
                          {"The opposite of {} is", "The antonym of {} is", "{} is the reverse of",
                           "If something is not {}, it may be"},
                          {k, k, k, h});
  antonym.symmetric = true;
  std::vector<std::pair<std::string, std::string>> pairs = kAntonymPairs;
  rng.shuffle(pairs);
  pairs.resize(std::min<std::size_t>(pairs.size(), o.antonyms));
  for (const auto& [a, b] : pairs) {
    antonym.facts.push_back({a, b});
    antonym.facts.push_back({b, a});
  }

  auto first = relation("word_first_letter", "linguistic", "word", "letter", 2.0,
                        {"{} starts with the letter", "The first letter of {} is", "{} begins with",
                         "Spelled out, {} opens with the letter"},
                        {k, k, k, h});
  auto last = relation("word_last_letter", "linguistic", "word", "letter", 1.0,
                       {"{} ends with the letter", "The last letter of {} is", "{} finishes with",
                        "Spelled out, {} closes with the letter"},
                       {k, k, k, h});
  std::vector<std::string> words = kLetterWords;
  rng.shuffle(words);
  for (int i = 0; i < std::min<int>(o.words, static_cast<int>(words.size())); ++i) {
    const auto& w = words[i];
    first.facts.push_back({w, std::string(1, w.front())});
    last.facts.push_back({w, std::string(1, w.back())});
  }

  for (auto* r : {&antonym, &first, &last, &superclass, &fruit, &work, &language, &capital,
                  &religion_rel, &age, &gender, &birthplace}) {
    set_fact_weights(*r, rng);
    world.relations.push_back(std::move(*r));
  }
  return world;
}

}  // namespace lpi::world

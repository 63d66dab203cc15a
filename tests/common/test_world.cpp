// The synthetic world: deterministic, written in the relations data set's
// format (read back by the relations loader), and a corpus that states every
// fact, keeps held-out templates out, and makes some relations rarer.
#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "common/relations/relations.hpp"
#include "common/world/world.hpp"

namespace lpi::world {
namespace {
namespace fs = std::filesystem;

std::string filled(const std::string& templ, const std::string& subject) {
  const auto at = templ.find("{}");
  return templ.substr(0, at) + subject + templ.substr(at + 2);
}

TEST(World, DeterministicForASeedAndDifferentAcrossSeeds) {
  const auto a = make_world({});
  const auto b = make_world({});
  WorldOptions other;
  other.seed = 2;
  const auto c = make_world(other);
  ASSERT_EQ(a.relations.size(), 12u);
  bool any_difference = false;
  for (std::size_t r = 0; r < a.relations.size(); ++r) {
    ASSERT_EQ(a.relations[r].facts.size(), b.relations[r].facts.size());
    for (std::size_t f = 0; f < a.relations[r].facts.size(); ++f) {
      EXPECT_EQ(a.relations[r].facts[f].subject, b.relations[r].facts[f].subject);
      EXPECT_EQ(a.relations[r].facts[f].object, b.relations[r].facts[f].object);
      if (f < c.relations[r].facts.size() &&
          a.relations[r].facts[f].subject != c.relations[r].facts[f].subject) {
        any_difference = true;
      }
    }
  }
  EXPECT_TRUE(any_difference);
  EXPECT_EQ(make_corpus(a, {}), make_corpus(b, {}));
}

TEST(World, HasThePapersRelationsWithSensibleFacts) {
  const auto world = make_world({});
  for (std::size_t i = 0; i < world.relations.size(); ++i) {
    const auto& r = world.relations[i];
    EXPECT_EQ(r.id, relations::paper_relation_ids()[i]);
    EXPECT_GE(r.templates.size(), 3u);
    EXPECT_FALSE(r.facts.empty()) << r.id;
    std::set<std::string> subjects;
    for (const auto& f : r.facts) {
      EXPECT_TRUE(subjects.insert(f.subject).second)
          << r.id << ": subject " << f.subject << " twice";
      EXPECT_FALSE(f.object.empty());
    }
    if (r.id == "word_first_letter") {
      for (const auto& f : r.facts) EXPECT_EQ(f.object, f.subject.substr(0, 1));
    }
    if (r.id == "word_last_letter") {
      for (const auto& f : r.facts) EXPECT_EQ(f.object, f.subject.substr(f.subject.size() - 1));
    }
    if (r.id == "adjective_antonym") {  // symmetric: both directions
      std::set<std::pair<std::string, std::string>> pairs;
      for (const auto& f : r.facts) pairs.insert({f.subject, f.object});
      for (const auto& f : r.facts) EXPECT_TRUE(pairs.count({f.object, f.subject})) << f.subject;
    }
  }
  // The capital of every country is unique; capitals are not countries.
  const auto& capital = world.relations[7];
  std::set<std::string> cities;
  for (const auto& f : capital.facts) EXPECT_TRUE(cities.insert(f.object).second);
}

TEST(World, WrittenFolderPassesTheRelationsLoader) {
  const auto world = make_world({});
  const fs::path dir = fs::temp_directory_path() / ("lpi_world_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  write_relations(world, dir);
  const auto loaded = relations::load_relations(dir);
  ASSERT_EQ(loaded.size(), 12u);
  for (std::size_t i = 0; i < loaded.size(); ++i) {
    EXPECT_EQ(loaded[i].id, world.relations[i].id);
    EXPECT_EQ(loaded[i].type, world.relations[i].type);
    EXPECT_EQ(loaded[i].prompt_templates, world.relations[i].templates);
    ASSERT_EQ(loaded[i].samples.size(), world.relations[i].facts.size());
    EXPECT_EQ(loaded[i].samples[0].object, world.relations[i].facts[0].object);
    EXPECT_EQ(loaded[i].file.parent_path().filename(), world.relations[i].type);
  }
  fs::remove_all(dir);
}

TEST(World, CorpusStatesFactsAndKeepsHeldOutTemplatesOut) {
  const auto world = make_world({});
  const auto corpus = make_corpus(world, {});
  std::string all;
  for (const auto& d : corpus) all += d + "\n";
  std::map<std::string, std::size_t> statements;  // relation -> fact statements found
  std::size_t held_out_templates = 0;
  for (const auto& r : world.relations) {
    for (std::size_t t = 0; t < r.templates.size(); ++t) {
      const bool held_out = t < r.held_out.size() && r.held_out[t];
      held_out_templates += held_out;
      std::size_t found = 0;
      for (const auto& f : r.facts) {
        found +=
            all.find(filled(r.templates[t], f.subject) + " " + f.object + ".") != std::string::npos;
      }
      if (held_out) {
        EXPECT_EQ(found, 0u) << r.id << ": held-out template \"" << r.templates[t]
                             << "\" is in the corpus";
      } else {
        EXPECT_GT(found, 0u) << r.id << ": template \"" << r.templates[t] << "\" never used";
      }
    }
    // Every fact is stated at least once, in some template.
    for (const auto& f : r.facts) {
      bool stated = false;
      for (std::size_t t = 0; t < r.templates.size() && !stated; ++t) {
        stated =
            all.find(filled(r.templates[t], f.subject) + " " + f.object + ".") != std::string::npos;
      }
      EXPECT_TRUE(stated) << r.id << ": " << f.subject << " -> " << f.object << " never stated";
    }
  }
  EXPECT_GE(held_out_templates, 12u);
}

TEST(World, SomeRelationsAndFactsAreRarerThanOthers) {
  const auto world = make_world({});
  const auto corpus = make_corpus(world, {});
  // How often a fact is stated, in any template.
  auto statements = [&](const WorldRelation& r, const Fact& f) {
    std::size_t n = 0;
    for (const auto& t : r.templates) {
      const std::string needle = filled(t, f.subject) + " " + f.object + ".";
      for (const auto& d : corpus) {
        for (auto at = d.find(needle); at != std::string::npos; at = d.find(needle, at + 1)) ++n;
      }
    }
    return n;
  };
  const auto& capital = world.relations[7];   // relation weight 3
  const auto& religion = world.relations[8];  // relation weight 0.7
  std::vector<std::size_t> capital_counts, religion_counts;
  for (const auto& f : capital.facts) capital_counts.push_back(statements(capital, f));
  for (const auto& f : religion.facts) religion_counts.push_back(statements(religion, f));
  auto mean = [](const std::vector<std::size_t>& v) {
    double sum = 0;
    for (auto x : v) sum += static_cast<double>(x);
    return sum / static_cast<double>(v.size());
  };
  EXPECT_GT(mean(capital_counts), 2.0 * mean(religion_counts));
  const auto [least, most] = std::minmax_element(capital_counts.begin(), capital_counts.end());
  EXPECT_GT(*most, 2 * *least) << "facts within a relation must differ in frequency";
}

TEST(World, RefusesMoreEntitiesThanItCanName) {
  WorldOptions o;
  o.countries = 100000;
  try {
    make_world(o);
    FAIL() << "an impossible world was made";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("fewer entities"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lpi::world

// The world written out: the relations folder and the training corpus.
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/world/word_lists.hpp"
#include "common/world/world.hpp"

namespace lpi::world {
namespace fs = std::filesystem;

void write_relations(const World& world, const fs::path& folder) {
  for (const auto& r : world.relations) {
    nlohmann::ordered_json doc;
    doc["name"] = r.name;
    doc["prompt_templates"] = r.templates;
    doc["properties"] = {{"relation_type", r.type},
                         {"domain_name", r.domain},
                         {"range_name", r.range},
                         {"symmetric", r.symmetric}};
    auto samples = nlohmann::ordered_json::array();
    for (const auto& f : r.facts) samples.push_back({{"subject", f.subject}, {"object", f.object}});
    doc["samples"] = samples;
    const fs::path dir = folder / r.type;
    fs::create_directories(dir);
    const fs::path file = dir / (r.id + ".json");
    const fs::path tmp = dir / (r.id + ".json.tmp");
    {
      std::ofstream out(tmp);
      out << doc.dump(2) << "\n";
      if (!out) throw std::runtime_error("world: cannot write " + tmp.string());
    }
    fs::rename(tmp, file);
  }
}

namespace {

// Index drawn with probability proportional to weights[i].
std::size_t draw(const std::vector<double>& cumulative, Rng& rng) {
  const double x = rng.uniform() * cumulative.back();
  std::size_t lo = 0, hi = cumulative.size() - 1;
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    if (cumulative[mid] > x)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

std::vector<double> cumulate(const std::vector<double>& weights) {
  std::vector<double> out;
  double sum = 0;
  for (double w : weights) out.push_back(sum += w);
  return out;
}

std::string fill(const std::string& templ, const std::string& subject) {
  const auto at = templ.find("{}");
  return templ.substr(0, at) + subject + templ.substr(at + 2);
}

std::string filler_sentence(Rng& rng) {
  const auto& t = kFillerTemplates[rng.below(kFillerTemplates.size())];
  std::string out;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t.compare(i, 3, "{a}") == 0) {
      out += kFillerAdjectives[rng.below(kFillerAdjectives.size())];
    } else if (t.compare(i, 3, "{n}") == 0) {
      out += kFillerNouns[rng.below(kFillerNouns.size())];
    } else if (t.compare(i, 3, "{v}") == 0) {
      out += kFillerVerbs[rng.below(kFillerVerbs.size())];
    } else {
      out += t[i];
      continue;
    }
    i += 2;
  }
  return out;
}

}  // namespace

std::vector<std::string> make_corpus(const World& world, const CorpusOptions& o) {
  Rng rng(o.seed ^ 0xC0A1u);
  std::vector<double> relation_weights;
  std::vector<std::vector<double>> fact_cumulative;
  std::vector<std::vector<std::size_t>> usable_templates;
  for (const auto& r : world.relations) {
    std::vector<std::size_t> usable;
    for (std::size_t t = 0; t < r.templates.size(); ++t) {
      if (t >= r.held_out.size() || !r.held_out[t]) usable.push_back(t);
    }
    if (usable.empty() || r.facts.empty()) {
      throw std::invalid_argument("world: relation " + r.id +
                                  " has no facts or no template in the corpus");
    }
    usable_templates.push_back(usable);
    relation_weights.push_back(r.weight * static_cast<double>(r.facts.size()));
    std::vector<double> w;
    for (const auto& f : r.facts) w.push_back(f.weight);
    fact_cumulative.push_back(cumulate(w));
  }
  const auto relation_cumulative = cumulate(relation_weights);

  std::vector<std::string> documents;
  documents.reserve(o.documents);
  for (std::size_t d = 0; d < o.documents; ++d) {
    std::string doc;
    auto add = [&doc](const std::string& sentence) {
      if (!doc.empty()) doc += ' ';
      doc += sentence;
    };
    for (int i = 0; i < o.facts_per_document; ++i) {
      const std::size_t r = draw(relation_cumulative, rng);
      const auto& relation = world.relations[r];
      const auto& fact = relation.facts[draw(fact_cumulative[r], rng)];
      const auto& templates = usable_templates[r];
      const auto& templ = relation.templates[templates[rng.below(templates.size())]];
      add(fill(templ, fact.subject) + " " + fact.object + ".");
      // Filler: on average filler_per_fact sentences after each fact.
      while (rng.uniform() < o.filler_per_fact / (1.0 + o.filler_per_fact))
        add(filler_sentence(rng));
    }
    documents.push_back(std::move(doc));
  }
  return documents;
}

}  // namespace lpi::world

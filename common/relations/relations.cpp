#include "common/relations/relations.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace lpi::relations {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void fail(const fs::path& file, const std::string& what) {
  throw RelationsError("relations file " + file.string() + ": " + what);
}

std::string required_string(const json& object, const char* key, const fs::path& file,
                            const std::string& where) {
  auto it = object.find(key);
  if (it == object.end()) fail(file, where + "missing field \"" + key + "\"");
  if (!it->is_string()) fail(file, where + "field \"" + key + "\" must be a string");
  return it->get<std::string>();
}

Relation parse_relation(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(file, "cannot be opened");
  json doc;
  try {
    doc = json::parse(in);
  } catch (const json::exception& e) {
    fail(file, std::string("is not valid JSON (") + e.what() + ")");
  }
  if (!doc.is_object()) fail(file, "expected a JSON object with name, prompt_templates, samples");

  Relation relation;
  relation.file = file;
  relation.name = required_string(doc, "name", file, "");
  relation.id = relation_id(relation.name);
  if (relation.id.empty()) fail(file, "field \"name\" is empty");

  auto templates = doc.find("prompt_templates");
  if (templates == doc.end() || !templates->is_array() || templates->empty()) {
    fail(file, "relation '" + relation.id + "' needs a non-empty array \"prompt_templates\"");
  }
  for (const auto& t : *templates) {
    if (!t.is_string())
      fail(file, "relation '" + relation.id + "': a prompt template is not a string");
    const std::string text = t.get<std::string>();
    if (text.find("{}") == std::string::npos) {
      fail(file, "relation '" + relation.id + "': prompt template \"" + text +
                     "\" has no \"{}\" for the subject");
    }
    relation.prompt_templates.push_back(text);
  }

  if (auto props = doc.find("properties"); props != doc.end() && props->is_object()) {
    if (auto type = props->find("relation_type"); type != props->end() && type->is_string()) {
      relation.type = type->get<std::string>();
    }
  }

  auto samples = doc.find("samples");
  if (samples == doc.end() || !samples->is_array()) {
    fail(file, "relation '" + relation.id + "' needs an array \"samples\"");
  }
  if (samples->empty()) fail(file, "relation '" + relation.id + "' has no samples");
  for (std::size_t i = 0; i < samples->size(); ++i) {
    const json& s = (*samples)[i];
    const std::string where = "relation '" + relation.id + "' sample " + std::to_string(i) + ": ";
    if (!s.is_object()) fail(file, where + "expected an object with subject and object");
    relation.samples.push_back(
        {required_string(s, "subject", file, where), required_string(s, "object", file, where)});
  }
  return relation;
}

std::string fill_template(const std::string& text, const std::string& subject) {
  std::string out = text;
  out.replace(out.find("{}"), 2, subject);
  return out;
}

bool is_blank(const std::string& text) {
  return std::all_of(text.begin(), text.end(),
                     [](unsigned char c) { return std::isspace(c) != 0; });
}

std::string describe(const Problem& p) {
  std::string out = p.file.string() + ": relation '" + p.relation + "'";
  if (p.sample >= 0) out += " sample " + std::to_string(p.sample);
  return out + ": " + p.message;
}

}  // namespace

std::string relation_id(const std::string& name) {
  std::string id;
  for (char c : name) {
    if (c == ' ' || c == '-' || c == '\t') {
      if (!id.empty() && id.back() != '_') id += '_';
    } else {
      id += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  while (!id.empty() && id.back() == '_') id.pop_back();
  return id;
}

const std::vector<std::string>& paper_relation_ids() {
  static const std::vector<std::string> ids = {
      "adjective_antonym",  "word_first_letter", "word_last_letter",  "object_superclass",
      "fruit_inside_color", "work_location",     "country_language",  "country_capital_city",
      "name_religion",      "occupation_age",    "occupation_gender", "name_birthplace"};
  return ids;
}

std::vector<Relation> load_relations(const fs::path& folder,
                                     const std::vector<std::string>& selection) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    throw RelationsError("relations folder " + folder.string() +
                         " does not exist or is not a folder (expected a folder of relation "
                         "*.json files)");
  }
  std::vector<fs::path> files;
  // An unreadable subfolder is this folder's error, named.
  for (fs::recursive_directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && it->path().extension() == ".json")
      files.push_back(it->path());
  }
  if (ec) {
    throw RelationsError("relations folder " + folder.string() +
                         " cannot be listed: " + ec.message());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    throw RelationsError("relations folder " + folder.string() + " holds no *.json relation files");
  }

  std::map<std::string, Relation> by_id;
  for (const auto& file : files) {
    Relation relation = parse_relation(file);
    auto [it, inserted] = by_id.emplace(relation.id, relation);
    if (!inserted) {
      throw RelationsError("relations folder " + folder.string() + ": relation '" + relation.id +
                           "' is defined twice, in " + it->second.file.string() + " and " +
                           file.string());
    }
  }

  std::vector<std::string> wanted = selection.empty() ? paper_relation_ids() : selection;
  if (wanted.size() == 1 && wanted[0] == "all") {
    wanted.clear();
    for (const auto& [id, relation] : by_id) wanted.push_back(id);
  }
  std::vector<Relation> out;
  std::set<std::string> seen;
  for (const auto& id : wanted) {
    if (!seen.insert(id).second) {
      throw RelationsError("relation '" + id + "' is selected twice");
    }
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      std::string found;
      for (const auto& [known, relation] : by_id) found += (found.empty() ? "" : ", ") + known;
      throw RelationsError("relations folder " + folder.string() + " has no relation '" + id +
                           "' (relations found: " + found + ")");
    }
    out.push_back(it->second);
  }
  return out;
}

PromptSet build_prompts(std::vector<Relation> relations, const tokenizer::Tokenizer& tokenizer,
                        const BuildOptions& options) {
  PromptSet set;
  set.relations = std::move(relations);
  for (int32_t r = 0; r < static_cast<int32_t>(set.relations.size()); ++r) {
    const Relation& relation = set.relations[r];
    std::map<std::pair<std::string, std::string>, int32_t> first_seen;
    for (int32_t s = 0; s < static_cast<int32_t>(relation.samples.size()); ++s) {
      const Sample& sample = relation.samples[s];
      auto problem = [&](std::string message, bool fatal) {
        set.problems.push_back({relation.file, relation.id, s, std::move(message), fatal});
      };
      auto [dup, fresh] = first_seen.emplace(std::make_pair(sample.subject, sample.object), s);
      if (!fresh) {
        problem("duplicate of sample " + std::to_string(dup->second) + " (\"" + sample.subject +
                    "\" -> \"" + sample.object + "\"); kept",
                false);
      }
      if (is_blank(sample.subject)) {
        problem("subject is empty", true);
        continue;
      }
      if (is_blank(sample.object)) {
        problem("object \"" + sample.object + "\" is empty: it tokenises to nothing", true);
        continue;
      }
      Prompt prompt;
      prompt.relation = r;
      prompt.sample = s;
      prompt.text = fill_template(relation.prompt_templates.front(), sample.subject);
      prompt.prompt_ids = tokenizer.encode(prompt.text);
      if (prompt.prompt_ids.empty()) {
        problem("prompt \"" + prompt.text + "\" tokenises to nothing", true);
        continue;
      }
      const std::vector<int32_t> full = tokenizer.encode(prompt.text + " " + sample.object);
      const bool is_prefix =
          full.size() > prompt.prompt_ids.size() &&
          std::equal(prompt.prompt_ids.begin(), prompt.prompt_ids.end(), full.begin());
      if (is_prefix) {
        prompt.target_id = full[prompt.prompt_ids.size()];
      } else {
        // The object merged into the prompt's last token, or added nothing.
        const std::vector<int32_t> alone = tokenizer.encode(" " + sample.object);
        if (full.size() <= prompt.prompt_ids.size() || alone.empty()) {
          problem("object \"" + sample.object + "\" tokenises to nothing after the prompt \"" +
                      prompt.text + "\"",
                  true);
          continue;
        }
        prompt.target_id = alone.front();
        problem("prompt tokens are not a prefix of prompt + \" \" + object; target taken from \" " +
                    sample.object + "\" alone",
                false);
      }
      set.prompts.push_back(std::move(prompt));
    }
  }
  const auto fatal = std::count_if(set.problems.begin(), set.problems.end(),
                                   [](const Problem& p) { return p.fatal; });
  if (fatal > 0 && !options.skip_unusable) {
    std::ostringstream msg;
    msg << fatal << " sample(s) cannot be used as prompts:";
    for (const auto& p : set.problems) {
      if (p.fatal) msg << "\n  " << describe(p);
    }
    throw RelationsError(msg.str());
  }
  return set;
}

std::string describe_problem(const Problem& problem) {
  return describe(problem);
}

std::vector<std::vector<int32_t>> prompt_ids(const PromptSet& set) {
  std::vector<std::vector<int32_t>> out;
  out.reserve(set.prompts.size());
  for (const auto& p : set.prompts) out.push_back(p.prompt_ids);
  return out;
}

std::vector<int32_t> target_ids(const PromptSet& set) {
  std::vector<int32_t> out;
  out.reserve(set.prompts.size());
  for (const auto& p : set.prompts) out.push_back(p.target_id);
  return out;
}

}  // namespace lpi::relations

// Relations loader and prompt builder: the real data set (counts, duplicates,
// targets against the tokenizer oracle's ids) and every bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "common/relations/relations.hpp"
#include "shared_data.hpp"

namespace fs = std::filesystem;
using lpi::relations::RelationsError;
using ::testing::HasSubstr;

namespace {

// A byte-level BPE tokenizer with the 256 byte tokens and no merges: every
// byte of the text is one token, id = byte value. Enough to exercise the
// prompt builder without the shared fixtures.
lpi::tokenizer::Tokenizer byte_tokenizer() {
  // GPT-2 bytes_to_unicode.
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::map<int, int> code_of;
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    if (std::find(bs.begin(), bs.end(), b) != bs.end())
      code_of[b] = b;
    else
      code_of[b] = 256 + extra++;
  }
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) {
    const int cp = code_of[b];
    std::string utf8;
    if (cp < 0x80)
      utf8 += static_cast<char>(cp);
    else {
      utf8 += static_cast<char>(0xC0 | (cp >> 6));
      utf8 += static_cast<char>(0x80 | (cp & 0x3F));
    }
    vocab[utf8] = b;
  }
  nlohmann::json doc = {
      {"version", "1.0"},
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "ByteLevel"},
        {"add_prefix_space", false},
        {"trim_offsets", true},
        {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}};
  return lpi::tokenizer::Tokenizer::from_json_string(doc.dump(), "byte-tokenizer");
}

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("lpi-relations-" + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path write(const std::string& name, const std::string& text) const {
    fs::create_directories((path_ / name).parent_path());
    std::ofstream(path_ / name) << text;
    return path_ / name;
  }

 private:
  fs::path path_;
};

std::string relation_json(const std::string& name, const nlohmann::json& samples,
                          const nlohmann::json& templates = {"{} is located in"}) {
  return nlohmann::json{{"name", name},
                        {"prompt_templates", templates},
                        {"properties", {{"relation_type", "factual"}}},
                        {"samples", samples}}
      .dump();
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const RelationsError& e) {
    return e.what();
  }
  return "(no RelationsError thrown)";
}

}  // namespace

TEST(Relations, RealDataSetHasThePapers906Samples) {
  LPI_REQUIRE_SHARED_DATA(folder, "relations");
  const auto relations = lpi::relations::load_relations(folder);
  ASSERT_EQ(relations.size(), 12u);
  std::map<std::string, std::size_t> count;
  std::size_t total = 0;
  for (const auto& r : relations) {
    count[r.id] = r.samples.size();
    total += r.samples.size();
  }
  EXPECT_EQ(total, 906u);
  // Counted independently from the JSON files with Python.
  EXPECT_EQ(count["word_first_letter"], 241u);
  EXPECT_EQ(count["adjective_antonym"], 100u);
  EXPECT_EQ(count["object_superclass"], 76u);
  EXPECT_EQ(count["occupation_gender"], 19u);
  EXPECT_EQ(count["country_capital_city"], 24u);
  EXPECT_EQ(relations[0].id, "adjective_antonym");
  EXPECT_EQ(relations[7].prompt_templates.front(), "The capital city of {} is");
}

TEST(Relations, RealPromptsKeepDuplicatesAndReportThem) {
  LPI_REQUIRE_SHARED_DATA(folder, "relations");
  LPI_REQUIRE_SHARED_DATA(tok_file, "tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json");
  const auto tok = lpi::tokenizer::Tokenizer::from_file(tok_file);
  const auto set = lpi::relations::build_prompts(lpi::relations::load_relations(folder), tok);
  EXPECT_EQ(set.prompts.size(), 906u);
  // object_superclass repeats 4 (subject, object) pairs, adjective_antonym 2.
  std::map<std::string, int> duplicates;
  for (const auto& p : set.problems) {
    EXPECT_FALSE(p.fatal) << lpi::relations::describe_problem(p);
    if (p.message.find("duplicate") != std::string::npos) ++duplicates[p.relation];
  }
  EXPECT_EQ(duplicates["object_superclass"], 4);
  EXPECT_EQ(duplicates["adjective_antonym"], 2);
  // The capital-city prompt for the first sample, built from the first template.
  const auto& rel = set.relations[7];
  const auto& prompt = *std::find_if(set.prompts.begin(), set.prompts.end(),
                                     [](const auto& p) { return p.relation == 7; });
  EXPECT_EQ(prompt.text, "The capital city of " + rel.samples[0].subject + " is");
  EXPECT_EQ(tok.decode(prompt.prompt_ids), prompt.text);
  const std::string target = tok.decode({prompt.target_id});
  EXPECT_EQ(target.front(), ' ');
  EXPECT_EQ((" " + rel.samples[0].object).rfind(target, 0), 0u)
      << "target '" << target << "' is not the start of the object";
  // The engine's view: ids and targets in prompt order.
  const auto ids = lpi::relations::prompt_ids(set);
  const auto targets = lpi::relations::target_ids(set);
  ASSERT_EQ(ids.size(), 906u);
  ASSERT_EQ(targets.size(), 906u);
  const auto at = static_cast<std::size_t>(&prompt - set.prompts.data());
  EXPECT_EQ(tok.decode(ids[at]), "The capital city of " + rel.samples[0].subject + " is");
  EXPECT_EQ(targets[at], prompt.target_id);
}

TEST(Relations, SelectionOrderAllAndUnknown) {
  TempDir dir;
  dir.write("a/one.json", relation_json("Country Capital", {{{"subject", "X"}, {"object", "Y"}}}));
  dir.write("b/two.json",
            relation_json("animal-sound", {{{"subject", "cat"}, {"object", "meow"}}}));
  auto sel = lpi::relations::load_relations(dir.path(), {"country_capital", "animal_sound"});
  ASSERT_EQ(sel.size(), 2u);
  EXPECT_EQ(sel[0].id, "country_capital");
  EXPECT_EQ(sel[1].id, "animal_sound");
  EXPECT_EQ(sel[0].type, "factual");
  auto all = lpi::relations::load_relations(dir.path(), {"all"});
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, "animal_sound");

  const auto msg =
      error_of([&] { lpi::relations::load_relations(dir.path(), {"country_language"}); });
  EXPECT_THAT(msg, HasSubstr("no relation 'country_language'"));
  EXPECT_THAT(msg, HasSubstr("animal_sound, country_capital"));
  EXPECT_THAT(msg, HasSubstr(dir.path().string()));
  // The default selection is the paper's 12, none of which is here.
  EXPECT_THAT(error_of([&] { lpi::relations::load_relations(dir.path()); }),
              HasSubstr("no relation 'adjective_antonym'"));
}

TEST(Relations, BadFilesNameTheFileAndTheProblem) {
  {
    TempDir dir;
    EXPECT_THAT(error_of([&] { lpi::relations::load_relations(dir.path() / "nope"); }),
                HasSubstr("does not exist"));
    EXPECT_THAT(error_of([&] { lpi::relations::load_relations(dir.path()); }),
                HasSubstr("no *.json relation files"));
  }
  struct Case {
    std::string text, expected;
  };
  const std::vector<Case> cases = {
      {"{not json", "is not valid JSON"},
      {"[1,2]", "expected a JSON object"},
      {R"({"prompt_templates":["{} x"],"samples":[]})", "missing field \"name\""},
      {relation_json("r", nlohmann::json::array()), "relation 'r' has no samples"},
      {R"({"name":"r","prompt_templates":["{} x"]})", "needs an array \"samples\""},
      {relation_json("r", {{{"subject", "a"}, {"object", "b"}}}, nlohmann::json::array()),
       "non-empty array \"prompt_templates\""},
      {relation_json("r", {{{"subject", "a"}, {"object", "b"}}}, {"no placeholder"}),
       "has no \"{}\""},
      {relation_json("r", {{{"subject", "a"}}}), "sample 0: missing field \"object\""},
      {relation_json("r", {{{"subject", "a"}, {"object", 3}}}),
       "field \"object\" must be a string"},
  };
  for (const auto& c : cases) {
    TempDir dir;
    const auto file = dir.write("bad.json", c.text);
    const auto msg = error_of([&] { lpi::relations::load_relations(dir.path(), {"all"}); });
    EXPECT_THAT(msg, HasSubstr(file.string())) << c.text;
    EXPECT_THAT(msg, HasSubstr(c.expected)) << c.text;
  }
  TempDir dir;
  dir.write("x/r.json", relation_json("r", {{{"subject", "a"}, {"object", "b"}}}));
  dir.write("y/r.json", relation_json("r", {{{"subject", "a"}, {"object", "b"}}}));
  EXPECT_THAT(error_of([&] { lpi::relations::load_relations(dir.path(), {"all"}); }),
              HasSubstr("defined twice"));
}

TEST(Relations, UnusableSamplesAreFatalUnlessSkippedAndNeverSilent) {
  TempDir dir;
  const auto file =
      dir.write("r.json", relation_json("r", {{{"subject", "Paris"}, {"object", "France"}},
                                              {{"subject", "Oslo"}, {"object", ""}},
                                              {{"subject", "Paris"}, {"object", "France"}},
                                              {{"subject", "Rome"}, {"object", "  "}}}));
  const auto tok = byte_tokenizer();
  auto relations = lpi::relations::load_relations(dir.path(), {"r"});
  const auto msg = error_of([&] { lpi::relations::build_prompts(relations, tok); });
  EXPECT_THAT(msg, HasSubstr("2 sample(s) cannot be used"));
  EXPECT_THAT(msg, HasSubstr(file.string() + ": relation 'r' sample 1: object \"\" is empty"));
  EXPECT_THAT(msg, HasSubstr("sample 3: object \"  \" is empty"));

  const auto set = lpi::relations::build_prompts(relations, tok, {/*skip_unusable=*/true});
  ASSERT_EQ(set.prompts.size(), 2u);  // the duplicate is kept
  EXPECT_EQ(set.prompts[1].sample, 2);
  ASSERT_EQ(set.problems.size(), 3u);
  EXPECT_THAT(set.problems[1].message, HasSubstr("duplicate of sample 0"));
  EXPECT_FALSE(set.problems[1].fatal);
  // Byte tokenizer: one token per byte, so the target is the space before the object.
  EXPECT_EQ(set.prompts[0].text, "Paris is located in");
  EXPECT_EQ(set.prompts[0].prompt_ids.size(), set.prompts[0].text.size());
  EXPECT_EQ(set.prompts[0].target_id, static_cast<int32_t>(' '));
}

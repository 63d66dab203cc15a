// Sweep job files: checkpoint selection (glob, list, step range, every k-th),
// overrides, and every bad input named before anything is written.
#include <gtest/gtest.h>

#include <fstream>

#include "common/sweep/job.hpp"
#include "expect_error.hpp"
#include "temp_dir.hpp"

namespace lpi::sweep {
namespace {
namespace fs = std::filesystem;

struct Fixture {
  lpi::test::TempDir dir{"lpi_sweep_job"};
  fs::path job;
  Fixture() {
    for (const char* name : {"step0-tokens0", "step10-tokens41K", "step20-tokens82K",
                             "step30-tokens123K", "step40-tokens164K", "step50-tokens1B"}) {
      fs::create_directories(dir / "revisions" / name);
      std::ofstream(dir / "revisions" / name / "config.json") << "{}";
    }
    fs::create_directories(dir / "revisions" / "main");             // not a revision name: ignored
    fs::create_directories(dir / "revisions" / "step60-tokens2B");  // no config.json: ignored
    fs::create_directories(dir / "relations");
    job = write("job.ini", "");
  }
  fs::path write(const std::string& name, const std::string& extra) {
    const fs::path file = dir / name;
    std::ofstream(file) << "[job]\nname = demo\n[model]\nname = tiny\nrevisions = revisions\n"
                           "[relations]\nfolder = relations\n"
                        << extra;
    return file;
  }
};

std::vector<int64_t> steps(const std::vector<CheckpointRef>& refs) {
  std::vector<int64_t> out;
  for (const auto& r : refs) out.push_back(r.step);
  return out;
}

TEST(SweepJob, SelectsCheckpoints) {
  Fixture f;
  const auto all = select_checkpoints(read_sweep_job(f.job));
  EXPECT_EQ(steps(all), (std::vector<int64_t>{0, 10, 20, 30, 40, 50}));
  EXPECT_EQ(all[5].tokens, 1000000000);
  EXPECT_EQ(steps(select_checkpoints(
                read_sweep_job(f.job, {"checkpoints.steps=10:40", "checkpoints.every=2"}))),
            (std::vector<int64_t>{10, 30}));
  EXPECT_EQ(steps(select_checkpoints(
                read_sweep_job(f.job, {"checkpoints.list=step40-tokens164K, step0-tokens0"}))),
            (std::vector<int64_t>{0, 40}));
  EXPECT_EQ(steps(select_checkpoints(read_sweep_job(f.job, {"checkpoints.glob=step[12]0-*"}))),
            (std::vector<int64_t>{10, 20}));
  const auto job = read_sweep_job(f.job, {"units.prompts_per_unit=8", "attribution.lens=exact"});
  EXPECT_EQ(job.prompts_per_unit, 8);
  EXPECT_EQ(job.lens, "exact");
  EXPECT_EQ(job.revisions, f.dir / "revisions");
}

TEST(SweepJob, BadInputNamesTheFileAndTheKey) {
  Fixture f;
  using lpi::test::expect_error;
  const std::string file = f.job.string();
  expect_error<SweepJobError>([&] { read_sweep_job(f.write("a.ini", "[model]\ncolour = red\n")); },
                              {"a.ini", "model.colour"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"attribution.lens=sideways"}); },
                              {file, "attribution.lens", "sideways"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"nonsense"}); },
                              {"nonsense", "section.key=value"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"checkpoints.steps=ten"}); },
                              {"checkpoints.steps", "ten"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"checkpoints.list=step70-tokens3B"}); },
                              {"checkpoints.list", "step70-tokens3B", "not there"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"checkpoints.steps=100:"}); },
                              {"no checkpoint", "revisions"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"model.revisions=elsewhere"}); },
                              {"model.revisions", "elsewhere", "not a folder"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.dir / "missing.ini"); },
                              {"missing.ini", "cannot be opened"});
  std::ofstream(f.dir / "norelations.ini")
      << "[job]\nname = x\n[model]\nname = m\nrevisions = revisions\n";
  expect_error<SweepJobError>([&] { read_sweep_job(f.dir / "norelations.ini"); },
                              {"norelations.ini", "relations.folder"});
}

}  // namespace
}  // namespace lpi::sweep

namespace lpi::sweep {
namespace {

// The job files in jobs/ parse, with their folders pointed at a fixture (the
// real ones name cluster paths).
// A folder name too long for the file system made std::filesystem throw a
// filesystem_error that named no key (tests/fuzz/corpus/job/
// review-name-too-long; found reviewing the parser for fuzz_job, which
// std::terminate then reports as a finding).
TEST(SweepJob, NamesTooLongAreTheJobFilesError) {
  Fixture f;
  using lpi::test::expect_error;
  const std::string long_name(300, 'a');  // NAME_MAX is 255
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"model.revisions=" + long_name}); },
                              {"job.ini", "model.revisions", "is not a folder", "too long"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"relations.folder=" + long_name}); },
                              {"job.ini", "relations.folder", "is not a folder", "too long"});
  const std::string revision = "step" + std::string(300, '0') + "-tokens1";  // a revision name
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"checkpoints.list=" + revision}); },
                              {"job.ini", "checkpoints.list", "is not there", "too long"});
}

// Found by fuzz_job (tests/fuzz/corpus/job/timeout-placeholder-hang):
// Boost.Program_options 1.74 substitutes %value%, %canonical_option% and the
// like into its error messages in a loop that never ends when the text put
// in holds the same placeholder; read_sweep_job hung on such a value or key.
TEST(SweepJob, PlaceholdersOfTheOptionParserAreRefused) {
  Fixture f;
  using lpi::test::expect_error;
  expect_error<SweepJobError>(
      [&] { read_sweep_job(f.write("v.ini", "[units]\nprompts_per_unit = %value%\n")); },
      {"v.ini, line 9", "'%value%' is not allowed"});
  expect_error<SweepJobError>(
      [&] { read_sweep_job(f.write("k.ini", "[x%canonical_option%]\nkey = 1\n")); },
      {"k.ini, line 8", "'%canonical_option%'"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"units.prompts_per_unit=%value%"}); },
                              {"override 'units.prompts_per_unit=%value%'", "not allowed"});
  // A lone '%', or two around something that is not a word, is plain text.
  EXPECT_EQ(read_sweep_job(f.write("p.ini", "[job]\n"), {"model.name=100% tiny"}).model_name,
            "100% tiny");
}

TEST(SweepJob, ShippedJobFilesParse) {
  Fixture f;
  const std::vector<std::string> here = {"model.revisions=" + (f.dir / "revisions").string(),
                                         "relations.folder=" + (f.dir / "relations").string()};
  for (const char* name :
       {"sweep-tiny-olmoe.ini", "sweep-tiny-olmo.ini", "olmoe-1b-7b.ini", "olmo-7b.ini"}) {
    const auto job = read_sweep_job(fs::path(LPI_JOBS_DIR) / name, here);
    EXPECT_FALSE(job.name.empty()) << name;
    EXPECT_EQ(select_checkpoints(job).size(), 6u) << name;
  }
  EXPECT_EQ(read_sweep_job(fs::path(LPI_JOBS_DIR) / "olmoe-1b-7b.ini", here).dtype, "bfloat16");
}

}  // namespace
}  // namespace lpi::sweep

namespace lpi::sweep {
namespace {

// What a store records is enough to rebuild the job, and a resume with a
// different job is told which keys differ.
TEST(SweepJob, SettingsRoundTripAndDifferences) {
  Fixture f;
  const auto file =
      f.write("settings.ini",
              "[checkpoints]\nsteps = 10:40\nevery = 2\n[units]\nprompts_per_unit = 5\n"
              "[attribution]\nlens = exact\n[store]\nper_prompt = attn\n"
              "per_prompt_dtype = bfloat16\n");
  const auto job = read_sweep_job(file);
  EXPECT_TRUE(job.per_prompt_attn);
  EXPECT_FALSE(job.per_prompt_ffn);
  EXPECT_EQ(job.per_prompt_dtype, "bfloat16");
  const auto settings = job_settings(job);
  EXPECT_EQ(settings.at("store.per_prompt_dtype"), "bfloat16");
  EXPECT_EQ(settings.at("checkpoints.steps"), "10:40");
  EXPECT_EQ(settings.at("store.per_prompt"), "attn");
  EXPECT_TRUE(fs::path(settings.at("model.revisions")).is_absolute());
  const auto back = job_from_settings(settings, "the job stored in x.h5");
  EXPECT_EQ(job_settings(back), settings);
  EXPECT_EQ(steps(select_checkpoints(back)), steps(select_checkpoints(job)));
  // Overrides apply on top of stored settings too, and bad ones name the origin.
  EXPECT_EQ(job_settings(job_from_settings(settings, "s", {"units.prompts_per_unit=9"}))
                .at("units.prompts_per_unit"),
            "9");
  lpi::test::expect_error<SweepJobError>(
      [&] { job_from_settings(settings, "the job stored in x.h5", {"attribution.lens=sideways"}); },
      {"the job stored in x.h5", "attribution.lens"});
  lpi::test::expect_error<SweepJobError>(
      [&] { read_sweep_job(f.write("b.ini", "[store]\nper_prompt = mlp\n")); },
      {"store.per_prompt", "'mlp'"});
}

}  // namespace
}  // namespace lpi::sweep

namespace lpi::sweep {
namespace {

// [ablation]: the conditions it names, their round trip through a store's
// condition list and through the job settings, and the shipped jobs' choice.
TEST(SweepJob, AblationConditions) {
  Fixture f;
  const auto job = read_sweep_job(
      f.write("abl.ini", "[ablation]\nenabled = true\nheads = 1, 3, 10\nffn_fraction = 0.005\n"));
  ASSERT_TRUE(job.ablation.enabled);
  const std::vector<std::string> want = {"none", "heads:1", "heads:3", "heads:10", "ffn:0.005"};
  EXPECT_EQ(job.ablation.conditions(), want);
  EXPECT_EQ(job.ablation.max_heads(), 10);
  const auto back = ablation_from_conditions(want);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->heads, job.ablation.heads);
  EXPECT_EQ(back->ffn_fraction, 0.005);
  EXPECT_EQ(job_settings(job_from_settings(job_settings(job), "s")).at("ablation.heads"), "1,3,10");
  // No FFN condition when the fraction is 0; malformed lists are rejected.
  AblationSpec heads_only;
  heads_only.ffn_fraction = 0;
  EXPECT_EQ(heads_only.conditions(), (std::vector<std::string>{"none", "heads:1", "heads:10"}));
  EXPECT_FALSE(ablation_from_conditions({"heads:1"}).has_value());
  EXPECT_FALSE(ablation_from_conditions({"none", "ffn:0.01", "heads:1"}).has_value());
  EXPECT_FALSE(ablation_from_conditions({"none", "heads:x"}).has_value());
  // What a job would refuse is refused from a store too (a fraction of 5
  // sized the ablation datasets from 5 * N neurons; see test_store_reader).
  EXPECT_FALSE(ablation_from_conditions({"none", "heads:0"}).has_value());
  EXPECT_FALSE(ablation_from_conditions({"none", "heads:3x"}).has_value());
  EXPECT_FALSE(ablation_from_conditions({"none", "ffn:5"}).has_value());
  EXPECT_FALSE(ablation_from_conditions({"none", "ffn:0"}).has_value());
  EXPECT_FALSE(ablation_from_conditions({"none", "ffn:nan"}).has_value());
  EXPECT_FALSE(ablation_from_conditions({"none", "ffn:0.5e"}).has_value());
  EXPECT_TRUE(ablation_from_conditions({"none", "heads:2", "ffn:1"}).has_value());
  EXPECT_EQ(format_fraction(0.01), "0.01");
  EXPECT_EQ(format_fraction(1.0 / 3), "0.3333333333333333");  // Python repr(1 / 3)
  EXPECT_FALSE(read_sweep_job(f.write("plain.ini", "")).ablation.enabled);
}

}  // namespace
}  // namespace lpi::sweep

// Sweep jobs over a HuggingFace hub cache ([model] hub_cache, repo) built of
// real files and relative symlinks (tests/support/hub_tree.hpp): selection by
// glob, list, steps and every k-th resolves each ref to its snapshot folder;
// missing snapshots, partial downloads and dangling symlinks are refused by
// name; what a store records resolves to the same folders again.
#include <gtest/gtest.h>

#include <fstream>

#include "common/sweep/job.hpp"
#include "expect_error.hpp"
#include "hub_tree.hpp"
#include "temp_dir.hpp"

namespace lpi::sweep {
namespace {
namespace fs = std::filesystem;
using lpi::test::expect_error;
using lpi::test::HubTree;

const char* const kSteps[] = {"step0-tokens0",     "step10-tokens41K",  "step20-tokens82K",
                              "step30-tokens123K", "step40-tokens164K", "step50-tokens1B"};

std::map<std::string, std::string> model_files(const std::string& tag) {
  return {{"config.json", "{\"tag\": \"" + tag + "\"}"},
          {"model.safetensors", "weights of " + tag},
          {"tokenizer.json", "{}"}};
}

struct HubFixture {
  lpi::test::TempDir dir{"lpi_hub_job"};
  HubTree hub{dir / "hub", "allenai/Tiny-0924"};
  fs::path job;
  HubFixture() {
    for (const char* name : kSteps) hub.add(name, model_files(name));
    hub.set_ref("main", HubTree::commit_of("step50-tokens1B"));  // not a revision name: ignored
    hub.add("exp/step60-tokens2B", model_files("exp"));          // nested branch name: ignored
    fs::create_directories(dir / "relations");
    job = write("job.ini", "");
  }
  fs::path write(const std::string& name, const std::string& extra) {
    const fs::path file = dir / name;
    std::ofstream(file) << "[job]\nname = demo\n[model]\nname = tiny\nhub_cache = hub\n"
                           "repo = allenai/Tiny-0924\n[relations]\nfolder = relations\n"
                        << extra;
    return file;
  }
  fs::path snapshot(const std::string& revision) const {
    return hub.repo_folder() / "snapshots" / HubTree::commit_of(revision);
  }
};

std::vector<int64_t> steps(const std::vector<CheckpointRef>& refs) {
  std::vector<int64_t> out;
  for (const auto& r : refs) out.push_back(r.step);
  return out;
}

TEST(HubJob, SelectsRevisionsAndResolvesTheirSnapshots) {
  HubFixture f;
  const auto job = read_sweep_job(f.job);
  EXPECT_EQ(job.hub_cache, f.dir / "hub");
  EXPECT_EQ(job.repo, "allenai/Tiny-0924");
  EXPECT_TRUE(job.revisions.empty());
  const auto all = select_checkpoints(job);
  ASSERT_EQ(steps(all), (std::vector<int64_t>{0, 10, 20, 30, 40, 50}));
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].name, kSteps[i]);
    EXPECT_EQ(fs::path(all[i].path), f.snapshot(kSteps[i]));
    std::ifstream config(fs::path(all[i].path) / "config.json");  // through the symlink
    std::string text((std::istreambuf_iterator<char>(config)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text, "{\"tag\": \"" + std::string(kSteps[i]) + "\"}");
  }
  EXPECT_EQ(all[5].tokens, 1000000000);
  EXPECT_EQ(steps(select_checkpoints(
                read_sweep_job(f.job, {"checkpoints.steps=10:40", "checkpoints.every=2"}))),
            (std::vector<int64_t>{10, 30}));
  const auto listed = select_checkpoints(
      read_sweep_job(f.job, {"checkpoints.list=step40-tokens164K, step0-tokens0"}));
  EXPECT_EQ(steps(listed), (std::vector<int64_t>{0, 40}));
  EXPECT_EQ(fs::path(listed[1].path), f.snapshot("step40-tokens164K"));
  EXPECT_EQ(steps(select_checkpoints(read_sweep_job(f.job, {"checkpoints.glob=step[12]0-*"}))),
            (std::vector<int64_t>{10, 20}));
  // A branch name with a slash (refs/exp/step60-tokens2B) is no revision name.
  expect_error<SweepJobError>(
      [&] { read_sweep_job(f.job, {"checkpoints.list=exp/step60-tokens2B"}); },
      {"checkpoints.list", "'exp/step60-tokens2B' is not a revision name"});
  // A job file's revisions folder replaced by a hub cache on the command line.
  const auto folder_job = f.dir / "folder.ini";
  std::ofstream(folder_job) << "[job]\nname = demo\n[model]\nname = tiny\nrevisions = relations\n"
                               "[relations]\nfolder = relations\n";
  EXPECT_EQ(select_checkpoints(
                read_sweep_job(folder_job,
                               {"model.revisions=", "model.hub_cache=" + (f.dir / "hub").string(),
                                "model.repo=allenai/Tiny-0924"}))
                .size(),
            6u);
}

TEST(HubJob, MissingSnapshotsAndFilesAreNamed) {
  HubFixture f;
  const std::string file = f.job.string();
  const auto refs = f.hub.repo_folder() / "refs";
  // A partial download of a sharded revision: the index names a shard that never came.
  f.hub.add("step60-tokens2B", {{"config.json", "{}"},
                                {"model.safetensors.index.json",
                                 R"({"weight_map": {"a": "model-00001-of-00002.safetensors",
                                 "b": "model-00002-of-00002.safetensors"}})"},
                                {"model-00001-of-00002.safetensors", "first shard"}});
  // A ref to a commit whose snapshot is not there.
  f.hub.set_ref("step70-tokens3B", "0123456789abcdef0123456789abcdef01234567");
  // A blob removed behind a symlink.
  const auto s80 = f.hub.add("step80-tokens4B", model_files("step80"));
  fs::remove(HubTree::blob_of(s80 / "model.safetensors"));
  // A snapshot without config.json.
  f.hub.add("step90-tokens5B", {{"model.safetensors", "w90"}});
  expect_error<SweepJobError>(
      [&] { read_sweep_job(f.job); },
      {file, "model.repo", "selected revisions of allenai/Tiny-0924",
       "step60-tokens2B: shard 'model-00002-of-00002.safetensors' named in",
       "step70-tokens3B: " + (refs / "step70-tokens3B").string() + " names commit 0123456789abcdef",
       "is missing", "step80-tokens4B: " + (s80 / "model.safetensors").string() + " is a symlink",
       "step90-tokens5B: " + (f.snapshot("step90-tokens5B") / "config.json").string() +
           " is missing",
       "deploy/fetch-revisions.py --revision"});
  // Revisions left out of the selection are not looked at.
  EXPECT_EQ(select_checkpoints(read_sweep_job(f.job, {"checkpoints.steps=:50"})).size(), 6u);
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"checkpoints.list=step80-tokens4B"}); },
                              {"step80-tokens4B", "is a symlink", "which is missing"});
  expect_error<SweepJobError>(
      [&] { read_sweep_job(f.job, {"checkpoints.list=step5-tokens5"}); },
      {"checkpoints.list", "revision step5-tokens5 is not in " + refs.string(), "not downloaded"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"checkpoints.steps=1000:"}); },
                              {"checkpoints", "no checkpoint of " + refs.string()});
}

TEST(HubJob, BadModelKeysAreNamed) {
  HubFixture f;
  const std::string file = f.job.string();
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"model.hub_cache=nowhere"}); },
                              {file, "model.hub_cache", "nowhere", "not a folder"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"model.repo=allenai/Other"}); },
                              {file, "model.repo", "'allenai/Other' is not in the hub cache",
                               "models--allenai--Other", "fetch-revisions.py"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"model.repo=a/b/c"}); },
                              {"model.repo", "repository id 'a/b/c'"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.job, {"model.revisions=relations"}); },
                              {"model.revisions", "together with model.hub_cache"});
  expect_error<SweepJobError>(
      [&] { read_sweep_job(f.job, {"model.hub_cache=" + f.hub.repo_folder().string()}); },
      {"model.hub_cache", "is a repository folder itself", "models--ORG--NAME"});
  expect_error<SweepJobError>([&] { read_sweep_job(f.write("norepo.ini", ""), {"model.repo="}); },
                              {"model.repo", "missing"});
  expect_error<SweepJobError>(
      [&] {
        read_sweep_job(f.job, {"model.hub_cache=", "model.revisions=" + (f.dir / "hub").string()});
      },
      {"model.repo", "model.hub_cache is not"});
  expect_error<SweepJobError>(
      [&] {
        read_sweep_job(f.job, {"model.hub_cache=", "model.repo="});
      },
      {"model", "no model.revisions", "no model.hub_cache"});
}

// The shipped job files name a revisions folder; the command line of the
// README replaces it by a hub cache.
TEST(HubJob, ShippedJobFilesReadAHubCache) {
  HubFixture f;
  for (const char* name : {"olmoe-1b-7b.ini", "olmo-7b.ini"}) {
    const auto job = read_sweep_job(
        fs::path(LPI_JOBS_DIR) / name,
        {"model.revisions=", "model.hub_cache=" + (f.dir / "hub").string(),
         "model.repo=allenai/Tiny-0924", "relations.folder=" + (f.dir / "relations").string()});
    EXPECT_EQ(select_checkpoints(job).size(), 6u) << name;
  }
}

// A store records the cache and the repository; the job rebuilt from them
// selects the same revisions at the same snapshot folders. A folder job's
// settings are as they were (no hub keys), so its stores still resume.
TEST(HubJob, SettingsRoundTripToTheSamePaths) {
  HubFixture f;
  const auto job = read_sweep_job(f.job, {"checkpoints.steps=10:"});
  const auto settings = job_settings(job);
  EXPECT_EQ(settings.at("model.hub_cache"), (f.dir / "hub").string());
  EXPECT_EQ(settings.at("model.repo"), "allenai/Tiny-0924");
  EXPECT_EQ(settings.count("model.revisions"), 0u);
  const auto back = job_from_settings(settings, "the job stored in x.h5");
  EXPECT_EQ(job_settings(back), settings);
  const auto a = select_checkpoints(job), b = select_checkpoints(back);
  ASSERT_EQ(a.size(), 5u);
  ASSERT_EQ(b.size(), a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].name, a[i].name);
    EXPECT_EQ(b[i].path, a[i].path);
  }
  fs::create_directories(f.dir / "revisions" / "step0-tokens0");
  std::ofstream(f.dir / "revisions" / "step0-tokens0" / "config.json") << "{}";
  const auto folder_settings =
      job_settings(job_from_settings({{"job.name", "x"},
                                      {"model.name", "m"},
                                      {"model.revisions", (f.dir / "revisions").string()},
                                      {"relations.folder", (f.dir / "relations").string()}},
                                     "s"));
  EXPECT_EQ(folder_settings.count("model.hub_cache") + folder_settings.count("model.repo"), 0u);
  EXPECT_EQ(folder_settings.at("model.revisions"), (f.dir / "revisions").string());
}

}  // namespace
}  // namespace lpi::sweep

// The HuggingFace hub cache on a tree of real files and relative symlinks
// (tests/support/hub_tree.hpp): repository folder names, refs (nested ones
// too) to snapshots, weights read through the symlinks, and every way a
// snapshot can be incomplete, named.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/checkpoint/hub_cache.hpp"
#include "common/checkpoint/safetensors.hpp"
#include "expect_error.hpp"
#include "hub_tree.hpp"
#include "temp_dir.hpp"

namespace lpi::checkpoint {
namespace {
namespace fs = std::filesystem;
using lpi::test::expect_error;
using lpi::test::HubTree;

// The bytes of a one-tensor safetensors file [n] of value v.
std::string tensor_file(const lpi::test::TempDir& dir, const std::string& name, int n, float v) {
  std::vector<float> data(n, v);
  const fs::path path = dir / ("tmp-" + name + ".safetensors");
  write_safetensors(path, {{name, DType::F32, {n}, data.data(), data.size() * sizeof(float)}});
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  fs::remove(path);
  return bytes.str();
}

const std::string kIndex =
    R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                                       "b": "model-00002-of-00002.safetensors"}})";

TEST(HubCache, RepoFolderNames) {
  EXPECT_EQ(hub_repo_folder("/c", "allenai/OLMoE-1B-7B-0924"),
            fs::path("/c/models--allenai--OLMoE-1B-7B-0924"));
  EXPECT_EQ(hub_repo_folder("/c", "gpt2"), fs::path("/c/models--gpt2"));
  for (const char* bad : {"a/b/c", "../x", "a/..", "a b/c", "", "/abs", "a//b"})
    expect_error<CheckpointError>([&] { hub_repo_folder("/c", bad); },
                                  {"repository id '" + std::string(bad) + "'", "ORG/NAME"});
}

TEST(HubCache, RevisionsResolveToSnapshotsReadThroughSymlinks) {
  lpi::test::TempDir dir{"lpi_hub"};
  HubTree hub(dir / "hub", "allenai/Tiny");
  const std::string config = R"({"model_type": "olmo"})";
  const auto single = tensor_file(dir, "a", 3, 1.5f);
  const auto s0 =
      hub.add("step0-tokens0",
              {{"config.json", config}, {"model.safetensors", single}, {"README.md", "x"}});
  const auto s10 = hub.add("step10-tokens4B",
                           {{"config.json", config},
                            {"model.safetensors.index.json", kIndex},
                            {"model-00001-of-00002.safetensors", tensor_file(dir, "a", 3, 2.5f)},
                            {"model-00002-of-00002.safetensors", tensor_file(dir, "b", 2, -1.0f)},
                            {"original/params.json", "{}"}});
  hub.add("exp/step5-tokens5K", {{"config.json", config}, {"model.safetensors", single}});
  hub.set_ref("main", HubTree::commit_of("step10-tokens4B"));
  // As huggingface_hub writes a ref: no newline; one written by hand may have one.
  std::ofstream(hub.repo_folder() / "refs" / "main")
      << HubTree::commit_of("step10-tokens4B") << "\n";

  EXPECT_EQ(
      hub_revisions(hub.repo_folder()),
      (std::vector<std::string>{"exp/step5-tokens5K", "main", "step0-tokens0", "step10-tokens4B"}));
  EXPECT_EQ(hub_snapshot(hub.repo_folder(), "step0-tokens0"), s0);
  EXPECT_EQ(hub_snapshot(hub.repo_folder(), "main"), s10);
  EXPECT_EQ(hub_snapshot(hub.repo_folder(), "exp/step5-tokens5K").parent_path(),
            hub.repo_folder() / "snapshots");
  // The snapshot holds relative symlinks only; the bytes are in blobs/, once.
  EXPECT_TRUE(fs::is_symlink(s10 / "model-00002-of-00002.safetensors"));
  EXPECT_EQ(fs::read_symlink(s0 / "config.json").begin()->string(), "..");
  EXPECT_EQ(HubTree::blob_of(s0 / "config.json"), HubTree::blob_of(s10 / "config.json"));
  EXPECT_EQ(HubTree::blob_of(s10 / "original/params.json").parent_path(),
            hub.repo_folder() / "blobs");
  for (const auto& s : {s0, s10}) EXPECT_TRUE(missing_model_files(s).empty()) << s;

  const Checkpoint sharded(s10);
  EXPECT_EQ(sharded.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(to_float32(sharded.view("a")), (std::vector<float>{2.5f, 2.5f, 2.5f}));
  EXPECT_EQ(to_float32(sharded.view("b")), (std::vector<float>{-1.0f, -1.0f}));
  EXPECT_EQ(to_float32(Checkpoint(s0).view("a")), (std::vector<float>{1.5f, 1.5f, 1.5f}));
}

TEST(HubCache, BadRefsAreNamed) {
  lpi::test::TempDir dir{"lpi_hub"};
  HubTree hub(dir / "hub", "allenai/Tiny");
  const auto refs = hub.repo_folder() / "refs";
  hub.set_ref("step1-tokens1", "0123456789abcdef0123456789abcdef01234567");  // no snapshot
  hub.set_ref("step2-tokens2", "not a hash\n");
  expect_error<CheckpointError>([&] { hub_snapshot(hub.repo_folder(), "step1-tokens1"); },
                                {(refs / "step1-tokens1").string(), "names commit 0123456789abcdef",
                                 "snapshots/0123456789abcdef0123456789abcdef01234567", "missing"});
  expect_error<CheckpointError>(
      [&] { hub_snapshot(hub.repo_folder(), "step2-tokens2"); },
      {(refs / "step2-tokens2").string(), "'not a hash'", "expected a commit hash"});
  expect_error<CheckpointError>([&] { hub_snapshot(hub.repo_folder(), "step3-tokens3"); },
                                {(refs / "step3-tokens3").string(), "not in the cache"});
  expect_error<CheckpointError>([&] { hub_snapshot(hub.repo_folder(), "../x"); },
                                {"revision '../x'"});
  expect_error<CheckpointError>([&] { hub_revisions(dir / "hub"); },
                                {(dir / "hub").string(), "no refs/ folder"});
}

TEST(HubCache, IncompleteSnapshotsNameWhatIsMissing) {
  lpi::test::TempDir dir{"lpi_hub"};
  HubTree hub(dir / "hub", "allenai/Tiny");
  const auto w = tensor_file(dir, "a", 2, 1.0f);
  auto only = [](const std::vector<std::string>& problems, const std::vector<std::string>& parts) {
    ASSERT_EQ(problems.size(), 1u) << ::testing::PrintToString(problems);
    for (const auto& part : parts)
      EXPECT_NE(problems[0].find(part), std::string::npos) << problems[0];
  };
  // A partial download of a sharded revision: the second shard never came.
  const auto partial = hub.add("step1-tokens1", {{"config.json", "{}"},
                                                 {"model.safetensors.index.json", kIndex},
                                                 {"model-00001-of-00002.safetensors", w}});
  only(missing_model_files(partial),
       {"shard 'model-00002-of-00002.safetensors'",
        (partial / "model.safetensors.index.json").string(), "is missing"});
  // Weights but no config.json; config.json but no weights.
  only(missing_model_files(hub.add("step2-tokens2", {{"model.safetensors", w}})),
       {"config.json is missing"});
  only(missing_model_files(hub.add("step3-tokens3", {{"config.json", "{}"}, {"README.md", "x"}})),
       {"no weights", "model.safetensors.index.json"});
  // A blob removed behind a snapshot's symlink (a blob of its own: blobs are shared).
  const auto dangling =
      hub.add("step4-tokens4",
              {{"config.json", "{}"}, {"model.safetensors", tensor_file(dir, "a", 2, 4.f)}});
  fs::remove(HubTree::blob_of(dangling / "model.safetensors"));
  only(missing_model_files(dangling), {(dangling / "model.safetensors").string(),
                                       "is a symlink to ../../blobs/", "which is missing"});
  // Two weight files and no index saying which tensors each holds; an index that is not JSON.
  only(missing_model_files(hub.add(
           "step5-tokens5", {{"config.json", "{}"}, {"a.safetensors", w}, {"b.safetensors", w}})),
       {"2 .safetensors files but no model.safetensors.index.json"});
  only(missing_model_files(hub.add("step6-tokens6",
                                   {{"config.json", "{}"}, {"model.safetensors.index.json", "{"}})),
       {"model.safetensors.index.json", "not valid JSON"});
}

}  // namespace
}  // namespace lpi::checkpoint

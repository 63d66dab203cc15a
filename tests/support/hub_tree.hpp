// A HuggingFace hub cache of real files and symlinks for the tests, laid out
// as huggingface_hub writes it:
//   CACHE/models--ORG--NAME/blobs/ETAG              the bytes (one blob per content)
//   CACHE/models--ORG--NAME/snapshots/COMMIT/FILE -> ../../blobs/ETAG (relative)
//   CACHE/models--ORG--NAME/refs/REVISION          the commit hash, no newline
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace lpi::test {

class HubTree {
 public:
  // repo "ORG/NAME"
  HubTree(const std::filesystem::path& cache, const std::string& repo) : cache_(cache) {
    std::string name = repo;
    name.replace(name.find('/'), 1, "--");
    repo_ = cache / ("models--" + name);
    std::filesystem::create_directories(repo_ / "blobs");
  }
  const std::filesystem::path& cache() const { return cache_; }
  const std::filesystem::path& repo_folder() const { return repo_; }

  // A snapshot of `files` (name -> bytes; "a/b" in a subfolder) for a commit
  // (default: a hash of the revision's name), and refs/REVISION naming it
  // (a name with '/' nests, as a branch a/b does). Returns the snapshot.
  std::filesystem::path add(const std::string& revision,
                            const std::map<std::string, std::string>& files,
                            std::string commit = "") {
    if (commit.empty()) commit = commit_of(revision);
    const auto snapshot = repo_ / "snapshots" / commit;
    for (const auto& [name, bytes] : files) {
      const auto etag = hex(fnv(bytes, 1)) + hex(fnv(bytes, 2));
      write(repo_ / "blobs" / etag, bytes);
      const std::filesystem::path file = snapshot / name;
      std::filesystem::create_directories(file.parent_path());
      const std::filesystem::path relative(name);
      std::filesystem::path target = "..";
      for (auto depth = std::distance(relative.begin(), relative.end()); depth > 0; --depth)
        target /= "..";
      std::filesystem::create_symlink(target / "blobs" / etag, file);
    }
    std::filesystem::create_directories(snapshot);
    set_ref(revision, commit);
    return snapshot;
  }
  void set_ref(const std::string& revision, const std::string& commit) {
    const auto ref = repo_ / "refs" / revision;
    std::filesystem::create_directories(ref.parent_path());
    write(ref, commit);
  }
  // The blob behind a snapshot's file.
  static std::filesystem::path blob_of(const std::filesystem::path& file) {
    return (file.parent_path() / std::filesystem::read_symlink(file)).lexically_normal();
  }
  static std::string commit_of(const std::string& revision) {
    const auto h = hex(fnv(revision, 3));
    return (h + h + h).substr(0, 40);
  }

 private:
  static uint64_t fnv(const std::string& bytes, uint64_t salt) {
    uint64_t h = 14695981039346656037ull ^ salt;
    for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
    return h;
  }
  static std::string hex(uint64_t v) {
    char out[17];
    std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(v));
    return out;
  }
  static void write(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
  }
  std::filesystem::path cache_, repo_;
};

}  // namespace lpi::test

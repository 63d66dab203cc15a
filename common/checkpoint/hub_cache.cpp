// The HuggingFace hub cache: repository folders, refs and snapshots (see
// hub_cache.hpp), and the completeness check of a model folder.
#include "common/checkpoint/hub_cache.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <set>

#include "common/checkpoint/detail.hpp"
#include "common/checkpoint/safetensors.hpp"

namespace lpi::checkpoint {

namespace fs = std::filesystem;

namespace {

bool is_hex(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

// A relative name whose parts are plain names (no "", ".", "..").
bool plain_relative(const std::string& name) {
  const fs::path p(name);
  if (name.empty() || p.is_absolute()) return false;
  for (const auto& part : p) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

}  // namespace

fs::path hub_repo_folder(const fs::path& cache, const std::string& repo) {
  const auto slash = repo.find('/');
  const bool chars = std::all_of(repo.begin(), repo.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  });
  if (!chars || !plain_relative(repo) || std::count(repo.begin(), repo.end(), '/') > 1)
    throw CheckpointError("repository id '" + repo +
                          "': expected ORG/NAME (letters, digits, '-', '_', '.'), e.g. "
                          "allenai/OLMoE-1B-7B-0924");
  std::string name = "models--" + repo;  // huggingface_hub's folder name: '/' becomes "--"
  if (slash != std::string::npos) name.replace(8 + slash, 1, "--");
  return cache / name;
}

std::vector<std::string> hub_revisions(const fs::path& repo_folder) {
  const fs::path refs = repo_folder / "refs";
  std::error_code ec;
  if (!fs::is_directory(refs, ec))
    throw CheckpointError(repo_folder.string() +
                          ": no refs/ folder (expected a hub cache repository folder with "
                          "refs/, snapshots/ and blobs/)");
  std::vector<std::string> out;
  for (fs::recursive_directory_iterator it(refs, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec)) out.push_back(it->path().lexically_relative(refs).string());
  }
  if (ec) throw CheckpointError(refs.string() + ": cannot list the folder: " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

fs::path hub_snapshot(const fs::path& repo_folder, const std::string& revision) {
  if (!plain_relative(revision))
    throw CheckpointError("revision '" + revision + "': expected a branch or tag name");
  const fs::path ref = repo_folder / "refs" / revision;
  std::ifstream in(ref, std::ios::binary);
  if (!in)
    throw CheckpointError(ref.string() + ": cannot be read (revision '" + revision +
                          "' is not in the cache: not downloaded?)");
  std::string hash((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto b = hash.find_first_not_of(" \t\r\n"), e = hash.find_last_not_of(" \t\r\n");
  hash = b == std::string::npos ? "" : hash.substr(b, e - b + 1);
  if (!is_hex(hash))
    throw CheckpointError(ref.string() + ": holds '" + hash.substr(0, 80) +
                          "', expected a commit hash (hex digits)");
  const fs::path snapshot = repo_folder / "snapshots" / hash;
  std::error_code ec;
  if (!fs::is_directory(snapshot, ec))
    throw CheckpointError(ref.string() + " names commit " + hash + ", but its snapshot " +
                          snapshot.string() + " is missing");
  return snapshot;
}

std::vector<std::string> missing_model_files(const fs::path& folder) {
  std::vector<std::string> out;
  std::set<std::string> dangling, safetensors;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code link_ec;
    if (it->is_symlink(link_ec) && !fs::exists(it->path(), link_ec)) {
      dangling.insert(name);
      out.push_back(it->path().string() + " is a symlink to " +
                    fs::read_symlink(it->path(), link_ec).string() +
                    ", which is missing (its blob was not downloaded, or was removed)");
    } else if (it->path().extension() == ".safetensors" && it->is_regular_file(link_ec)) {
      safetensors.insert(name);
    }
  }
  if (ec) return {folder.string() + ": cannot list the folder: " + ec.message()};
  const auto present = [&](const std::string& name) {
    std::error_code e;
    return fs::is_regular_file(folder / name, e);
  };
  // A dangling symlink is reported once, above.
  const auto need = [&](const std::string& name, const std::string& what) {
    if (!present(name) && dangling.count(name) == 0) out.push_back(what + " is missing");
  };
  need("config.json", (folder / "config.json").string());
  const std::string index_name = detail::kIndexName, single = detail::kSingleName;
  if (present(index_name)) {
    try {
      const auto index = detail::read_index(folder / index_name);
      std::set<std::string> shards;
      for (const auto& [tensor, shard] : index.at("weight_map").items())
        shards.insert(shard.get<std::string>());
      if (shards.empty()) out.push_back((folder / index_name).string() + ": 'weight_map' is empty");
      for (const auto& shard : shards)
        need(shard, "shard '" + shard + "' named in " + (folder / index_name).string());
    } catch (const CheckpointError& e) {
      out.push_back(e.what());
    }
  } else if (dangling.count(index_name) == 0 && !present(single) && dangling.count(single) == 0) {
    if (safetensors.empty())
      out.push_back(folder.string() + ": no weights (" + single + ", or " + index_name +
                    " and its shards)");
    else if (safetensors.size() > 1)
      out.push_back(folder.string() + ": " + std::to_string(safetensors.size()) +
                    " .safetensors files but no " + index_name +
                    " saying which tensors each holds");
  }
  return out;
}

}  // namespace lpi::checkpoint

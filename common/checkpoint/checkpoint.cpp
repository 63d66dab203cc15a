// Checkpoint: a model folder's safetensors weights, a single file or the shards
// named by model.safetensors.index.json. PyTorch pickles are refused.
#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/checkpoint/detail.hpp"
#include "common/checkpoint/safetensors.hpp"

namespace lpi::checkpoint {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using detail::kIndexName;
using detail::kSingleName;

std::vector<fs::path> files_in(const fs::path& folder) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec)) files.push_back(it->path());
  }
  if (ec) throw CheckpointError(folder.string() + ": cannot list the folder: " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

json detail::read_index(const fs::path& index_path) {
  std::ifstream in(index_path, std::ios::binary);
  if (!in) throw CheckpointError(index_path.string() + ": cannot open");
  json index;
  try {
    index = json::parse(in);
  } catch (const json::exception& e) {
    throw CheckpointError(index_path.string() + ": not valid JSON: " + e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") || !index.at("weight_map").is_object())
    throw CheckpointError(
        index_path.string() +
        ": expected a JSON object with a 'weight_map' object {tensor: shard file}");
  for (const auto& [tensor, shard] : index.at("weight_map").items()) {
    if (!shard.is_string())
      throw CheckpointError(index_path.string() + ": weight_map entry for tensor '" + tensor +
                            "' is not a string (expected a shard file name)");
    const fs::path shard_path(shard.get<std::string>());
    bool escapes = shard_path.empty() || shard_path.is_absolute();
    for (const auto& part : shard_path) escapes = escapes || part == "..";
    if (escapes)
      throw CheckpointError(index_path.string() + ": weight_map entry for tensor '" + tensor +
                            "' names shard '" + shard_path.string() +
                            "', expected a file name inside the folder");
  }
  return index;
}

Checkpoint::Checkpoint(const fs::path& folder) : folder_(folder) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    if (detail::is_pickle_path(folder)) throw CheckpointError(detail::pickle_refusal(folder));
    throw CheckpointError(folder.string() + ": not a folder (expected a model folder with " +
                          kSingleName + " or " + kIndexName + ")");
  }

  const fs::path index_path = folder / kIndexName;
  if (fs::is_regular_file(index_path, ec)) {
    const json index = detail::read_index(index_path);
    const json& weight_map = index.at("weight_map");
    if (weight_map.empty()) throw CheckpointError(index_path.string() + ": 'weight_map' is empty");
    // Open each shard once, in name order.
    std::map<std::string, std::string> first_tensor_of_shard;
    for (const auto& [tensor, shard] : weight_map.items())
      first_tensor_of_shard.emplace(shard.get<std::string>(), tensor);
    std::map<std::string, const SafetensorsFile*> shard_by_name;
    for (const auto& [shard, tensor] : first_tensor_of_shard) {
      const fs::path shard_path = folder / shard;
      if (!fs::exists(shard_path, ec))
        throw CheckpointError(index_path.string() + ": shard '" + shard + "' (holding tensor '" +
                              tensor + "') is missing from " + folder.string());
      files_.push_back(std::make_unique<SafetensorsFile>(shard_path));
      shard_by_name[shard] = files_.back().get();
    }
    for (const auto& file : files_) {
      for (const auto& [name, info] : file->tensors()) {
        const auto [it, inserted] = index_.emplace(name, file.get());
        if (!inserted)
          throw CheckpointError(folder.string() + ": tensor '" + name + "' is in two shards, " +
                                it->second->path().filename().string() + " and " +
                                file->path().filename().string());
      }
    }
    for (const auto& [tensor, shard] : weight_map.items()) {
      const SafetensorsFile* file = shard_by_name.at(shard.get<std::string>());
      if (!file->contains(tensor))
        throw CheckpointError(index_path.string() + ": lists tensor '" + tensor + "' in shard '" +
                              shard.get<std::string>() + "', which does not contain it");
    }
    return;
  }

  const std::vector<fs::path> files = files_in(folder);
  fs::path single = folder / kSingleName;
  if (!fs::is_regular_file(single, ec)) {
    std::vector<fs::path> candidates, pickles;
    for (const fs::path& file : files) {
      if (file.extension() == ".safetensors") candidates.push_back(file);
      if (detail::is_pickle_path(file)) pickles.push_back(file);
    }
    if (candidates.size() > 1) {
      std::string list;
      for (const fs::path& c : candidates) list += " " + c.filename().string();
      throw CheckpointError(folder.string() + ": has " + std::to_string(candidates.size()) +
                            " .safetensors files (" + list.substr(1) + ") but no " + kIndexName +
                            " saying which tensors each holds");
    }
    if (candidates.empty()) {
      if (!pickles.empty()) throw CheckpointError(detail::pickle_refusal(pickles.front()));
      throw CheckpointError(folder.string() + ": no " + kSingleName + ", " + kIndexName +
                            " or other .safetensors file");
    }
    single = candidates.front();
  }
  files_.push_back(std::make_unique<SafetensorsFile>(single));
  for (const auto& [name, info] : files_.back()->tensors())
    index_.emplace(name, files_.back().get());
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, file] : index_) names.push_back(name);
  return names;  // std::map order: sorted
}

bool Checkpoint::contains(const std::string& name) const {
  return index_.count(name) != 0;
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  const auto it = index_.find(name);
  if (it == index_.end()) {
    const std::string hint = detail::closest_name(names(), name);
    throw CheckpointError(folder_.string() + ": the checkpoint has no tensor '" + name + "'" +
                          (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
  }
  return it->second->tensors().at(name);
}

TensorView Checkpoint::view(const std::string& name) const {
  info(name);  // throws naming the folder when missing
  return index_.at(name)->view(name);
}

}  // namespace lpi::checkpoint

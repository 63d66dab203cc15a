// Private helpers shared by the checkpoint sources (not part of the public API).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lpi::checkpoint::detail {

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

// model.safetensors.index.json, checked: a 'weight_map' object of tensor ->
// shard file name inside the folder. Throws CheckpointError naming the file.
nlohmann::json read_index(const std::filesystem::path& index_path);

// The message that refuses a PyTorch pickle and says how to convert it.
std::string pickle_refusal(const std::filesystem::path& path);
// .bin, .pt, .pth, .pkl, .ckpt
bool is_pickle_path(const std::filesystem::path& path);

// Product of the dims; false on a negative dim or int64 overflow.
bool checked_numel(const std::vector<int64_t>& shape, int64_t* out);
std::string shape_string(const std::vector<int64_t>& shape);

// The name closest to `wanted` (edit distance), or "" when none is close.
std::string closest_name(const std::vector<std::string>& names, const std::string& wanted);

}  // namespace lpi::checkpoint::detail

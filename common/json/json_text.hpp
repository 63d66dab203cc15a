// The text of a JSON value in an error message: short values as JSON, long
// ones cut, and never more than a few levels of recursion: nlohmann's
// dump() recurses once per level, and a config.json or safetensors header of
// 200 KB of nested brackets, quoted whole in a message, overflowed the stack.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace lpi::json_text {

// Whether `value` nests at most `levels` containers deep (recursion bounded by `levels`).
inline bool nests_at_most(const nlohmann::json& value, int levels) {
  if (!value.is_structured()) return true;
  if (levels == 0) return false;
  for (const auto& element : value)
    if (!nests_at_most(element, levels - 1)) return false;
  return true;
}

// `value` as JSON, cut to about `limit` bytes (at a UTF-8 boundary) with "...";
// a value nested deeper than 16 levels is named by its type only.
inline std::string brief(const nlohmann::json& value, std::size_t limit = 120) {
  constexpr int kLevels = 16;
  if (!nests_at_most(value, kLevels))
    return std::string("(a JSON ") + value.type_name() + " nested more than " +
           std::to_string(kLevels) + " levels deep)";
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() <= limit) return text;
  std::size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "...";
}

}  // namespace lpi::json_text

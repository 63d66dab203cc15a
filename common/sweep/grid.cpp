#include "common/sweep/grid.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <stdexcept>

#include "common/sweep/executor.hpp"

namespace lpi::sweep {

std::optional<CheckpointRef> parse_checkpoint_name(const std::string& name) {
  static const std::regex pattern(R"(step(\d+)-tokens(\d+)([KMBT]?))");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) return std::nullopt;
  CheckpointRef ref;
  ref.name = name;
  try {
    ref.step = std::stoll(m[1]);
    ref.tokens = std::stoll(m[2]);
  } catch (const std::out_of_range&) {
    return std::nullopt;
  }
  const std::string unit = m[3];
  const int64_t scale = unit == "K"   ? 1000LL
                        : unit == "M" ? 1000000LL
                        : unit == "B" ? 1000000000LL
                        : unit == "T" ? 1000000000000LL
                                      : 1LL;
  if (ref.tokens > INT64_MAX / scale) return std::nullopt;
  ref.tokens *= scale;
  return ref;
}

int64_t Grid::prompt_count() const {
  int64_t n = 0;
  for (auto p : prompts_per_relation) n += p;
  return n;
}

Grid build_grid(std::vector<CheckpointRef> checkpoints,
                const std::vector<int32_t>& prompts_per_relation, int32_t prompts_per_unit) {
  if (prompts_per_unit < 1) throw std::invalid_argument("prompts per unit must be at least 1");
  if (checkpoints.empty()) throw std::invalid_argument("the sweep has no checkpoints");
  std::stable_sort(checkpoints.begin(), checkpoints.end(),
                   [](const CheckpointRef& a, const CheckpointRef& b) { return a.step < b.step; });
  for (std::size_t i = 1; i < checkpoints.size(); ++i) {
    if (checkpoints[i].step == checkpoints[i - 1].step) {
      throw std::invalid_argument("checkpoints " + checkpoints[i - 1].name + " and " +
                                  checkpoints[i].name + " have the same step");
    }
  }
  Grid grid;
  grid.checkpoints = std::move(checkpoints);
  grid.prompts_per_relation = prompts_per_relation;
  for (int32_t c = 0; c < static_cast<int32_t>(grid.checkpoints.size()); ++c) {
    int32_t first = 0;
    for (int32_t r = 0; r < static_cast<int32_t>(prompts_per_relation.size()); ++r) {
      const int32_t n = prompts_per_relation[r];
      for (int32_t b = 0; b < n; b += prompts_per_unit) {
        grid.units.push_back({static_cast<int32_t>(grid.units.size()), c, r, first + b,
                              std::min(prompts_per_unit, n - b)});
      }
      first += n;
    }
  }
  return grid;
}

std::string format_fraction(double f) {
  char buf[32];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, f);
    if (std::strtod(buf, nullptr) == f) break;
  }
  return buf;
}

std::vector<std::string> AblationSpec::conditions() const {
  std::vector<std::string> out = {"none"};
  for (auto n : heads) out.push_back("heads:" + std::to_string(n));
  if (ffn_fraction > 0) out.push_back("ffn:" + format_fraction(ffn_fraction));
  return out;
}

int32_t AblationSpec::max_heads() const {
  int32_t m = 0;
  for (auto n : heads) m = std::max(m, n);
  return m;
}

std::optional<AblationSpec> ablation_from_conditions(const std::vector<std::string>& conditions) {
  if (conditions.empty() || conditions[0] != "none") return std::nullopt;
  AblationSpec spec;
  spec.enabled = true;
  spec.heads.clear();
  spec.ffn_fraction = 0;
  // What a job accepts ([ablation]): head counts >= 1 and a fraction in (0, 1],
  // each written whole (no trailing text).
  try {
    for (std::size_t i = 1; i < conditions.size(); ++i) {
      const auto& c = conditions[i];
      std::size_t used = 0;
      if (c.rfind("heads:", 0) == 0) {
        const int n = std::stoi(c.substr(6), &used);
        if (used != c.size() - 6 || n < 1) return std::nullopt;
        spec.heads.push_back(n);
      } else if (c.rfind("ffn:", 0) == 0 && i + 1 == conditions.size()) {
        const double f = std::stod(c.substr(4), &used);
        if (used != c.size() - 4 || !(f > 0 && f <= 1)) return std::nullopt;
        spec.ffn_fraction = f;
      } else {
        return std::nullopt;
      }
    }
  } catch (const std::exception&) {
    return std::nullopt;
  }
  return spec;
}

const char* phase_name(Phase phase) {
  return phase == Phase::Attribution ? "attribution" : "ablation";
}

}  // namespace lpi::sweep

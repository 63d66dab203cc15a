// docs/STORE.md's layout tables, generated from the schema table
// (tests/store checks that the doc holds exactly these).
#include <sstream>

#include "common/store/sweep_schema.hpp"

namespace lpi::store::schema {

namespace {

// Names indexed by the enums' values (sweep_schema.hpp), in declaration order.
template <class E, std::size_t N>
const char* name_of(E value, const char* const (&names)[N]) {
  const auto i = static_cast<std::size_t>(value);
  return i < N ? names[i] : "?";
}

const char* symbol(Dim d) {
  static const char* const names[] = {"C",   "P", "U",        "R", "L",    "H*dh", "I",
                                      "k",   "E", "E*I or I", "M", "Hmax", "K",    "sum of lengths",
                                      "P+1", "2", "4096"};
  return name_of(d, names);
}

const char* type_name(Dtype t) {
  static const char* const names[] = {"uint8",
                                      "int32",
                                      "int64",
                                      "float32",
                                      "float64",
                                      "string",
                                      "string (256 bytes)",
                                      "float32, float16 or bfloat16 (`store.per_prompt_dtype`)"};
  return name_of(t, names);
}

const char* fill_name(Fill f) {
  static const char* const names[] = {"0", "-1", "none", "empty"};
  return name_of(f, names);
}

const char* writer_name(Writer w) {
  static const char* const names[] = {"rank 0, at creation", "rank 0", "worker"};
  return name_of(w, names);
}

std::string list(const std::vector<std::string>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s + "]";
}

std::string shape_text(const Entry& e) {
  std::vector<std::string> v;
  for (auto d : e.shape) v.push_back(symbol(d));
  return list(v);
}

std::string chunk_text(const Entry& e) {
  if (e.chunk_lead == 0) return "contiguous";
  std::vector<std::string> v;
  for (std::size_t i = 0; i < e.shape.size(); ++i)
    v.push_back(static_cast<int>(i) < e.chunk_lead ? "1" : symbol(e.shape[i]));
  return list(v);
}

// " MoE" / " dense" after a variant's shape, or "" for both kinds of model.
std::string variant(const Entry& e) {
  return e.model == Model::moe ? " MoE" : e.model == Model::dense ? " dense" : "";
}

}  // namespace

std::string markdown(bool ablation) {
  std::ostringstream o;
  o << "| path | type, shape | chunk | fill | written by | meaning |\n";
  o << "|---|---|---|---|---|---|\n";
  if (!ablation) {
    o << "| `/` attributes | | | | all ranks, at creation | `format` (\"" << kSweepFormat
      << "\"), `format_version` (" << kSweepFormatVersion
      << "), `tool_version`, `job_name`, `model_name`, `architecture`, `lens`, `target`, "
         "`per_prompt_attn`, `per_prompt_ffn` (0/1), `per_prompt_dtype`";
    for (const auto& [name, field] : kShapeAttributes) {
      (void)field;
      o << ", `" << name << "`" << (std::string(name) == "num_experts" ? " (0 for dense)" : "");
    }
    o << " |\n";
    o << "| `/job` attributes | string | | | all ranks, at creation | every job key as "
         "`section.key` (folders "
         "absolute): what `--resume` compares |\n";
  }
  const auto& t = table();
  for (std::size_t i = 0; i < t.size(); ++i) {
    const auto& e = t[i];
    if ((e.phase == Phase::ablation) != ablation) continue;
    bool seen = false;
    for (std::size_t j = 0; j < i; ++j) seen |= std::string(t[j].path) == e.path;
    if (seen) continue;  // the other variant, merged into the first row
    std::string shape = shape_text(e) + variant(e), chunk = chunk_text(e) + variant(e);
    for (std::size_t j = i + 1; j < t.size(); ++j) {
      if (std::string(t[j].path) != e.path) continue;
      shape += "; " + shape_text(t[j]) + variant(t[j]);
      chunk += "; " + chunk_text(t[j]) + variant(t[j]);
    }
    o << "| `/" << e.path << "` | " << type_name(e.type) << " " << shape << " | " << chunk << " | "
      << fill_name(e.fill) << " | " << writer_name(e.writer) << " | " << e.meaning << " |\n";
  }
  return o.str();
}

}  // namespace lpi::store::schema

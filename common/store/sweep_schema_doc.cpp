// docs/STORE.md's layout tables, generated from the schema table
// (tests/store checks that the doc holds exactly these).
#include <sstream>

#include "common/store/sweep_schema.hpp"

namespace lpi::store::schema {

namespace {

const char* symbol(Dim d) {
  switch (d) {
    case Dim::C:
      return "C";
    case Dim::P:
      return "P";
    case Dim::U:
      return "U";
    case Dim::R:
      return "R";
    case Dim::L:
      return "L";
    case Dim::A:
      return "H*dh";
    case Dim::I:
      return "I";
    case Dim::k:
      return "k";
    case Dim::E:
      return "E";
    case Dim::W:
      return "E*I or I";
    case Dim::M:
      return "M";
    case Dim::Hmax:
      return "Hmax";
    case Dim::K:
      return "K";
    case Dim::T:
      return "sum of lengths";
    case Dim::P1:
      return "P+1";
    case Dim::Two:
      return "2";
    case Dim::Log:
      return "4096";
  }
  return "?";
}

const char* type_name(Dtype t) {
  switch (t) {
    case Dtype::u8:
      return "uint8";
    case Dtype::i32:
      return "int32";
    case Dtype::i64:
      return "int64";
    case Dtype::f32:
      return "float32";
    case Dtype::f64:
      return "float64";
    case Dtype::str:
      return "string";
    case Dtype::log:
      return "string (256 bytes)";
  }
  return "?";
}

const char* fill_name(Fill f) {
  switch (f) {
    case Fill::zero:
      return "0";
    case Fill::minus_one:
      return "-1";
    case Fill::never:
      return "none";
    case Fill::library:
      return "empty";
  }
  return "?";
}

const char* writer_name(Writer w) {
  switch (w) {
    case Writer::creation:
      return "rank 0, at creation";
    case Writer::rank0:
      return "rank 0";
    case Writer::worker:
      return "worker";
  }
  return "?";
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
         "`per_prompt_attn`, `per_prompt_ffn` (0/1)";
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

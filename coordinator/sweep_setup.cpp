#include "coordinator/sweep_setup.hpp"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <sstream>

#include "common/checkpoint/model_config.hpp"
#include "common/checkpoint/model_shape.hpp"
#include "common/core/ablation.hpp"
#include "common/relations/relations.hpp"
#include "common/store/sweep_schema.hpp"
#include "common/tokenizer/tokenizer.hpp"

namespace lpi::coordinator {
namespace fs = std::filesystem;

namespace {

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  std::ostringstream s;
  s.precision(u ? 1 : 0);
  s << std::fixed << b << " " << units[u];
  return s.str();
}

}  // namespace

store::SweepDescription describe_sweep(const sweep::SweepJob& job) {
  store::SweepDescription d;
  d.job = sweep::job_settings(job);
  d.job_name = job.name;
  d.model_name = job.model_name;
  d.lens = job.lens;
  d.target = job.target;
  d.per_prompt_attn = job.per_prompt_attn;
  d.per_prompt_ffn = job.per_prompt_ffn;
  d.per_prompt_dtype = job.per_prompt_dtype;
  d.ablation = job.ablation;
  auto checkpoints = sweep::select_checkpoints(job);
  for (std::size_t i = 0; i < checkpoints.size(); ++i) {
    const auto& c = checkpoints[i];
    checkpoint::ModelConfig config;
    try {
      config = checkpoint::read_model_config(c.path);
    } catch (const std::exception& e) {
      throw SetupError("checkpoint " + c.path + ": " + e.what());
    }
    const auto shape = checkpoint::shape_of(config);
    if (i == 0) {
      d.shape = shape;
    } else if (!(shape == d.shape)) {
      throw SetupError("checkpoint " + c.path + " is " + shape.describe() + ", but " +
                       checkpoints[0].path + " is " + d.shape.describe() +
                       ": one sweep covers one model");
    }
    const auto fp = store::checkpoint_fingerprint(c.path);
    d.checkpoint_hashes.push_back(fp.hash);
    d.checkpoint_bytes.push_back(fp.bytes);
  }
  const fs::path tokenizer_file = fs::path(checkpoints[0].path) / "tokenizer.json";
  if (!fs::exists(tokenizer_file)) {
    throw SetupError("checkpoint " + checkpoints[0].path +
                     " has no tokenizer.json: the prompts are tokenised with it");
  }
  const auto tok = tokenizer::Tokenizer::from_file(tokenizer_file.string());
  const auto set =
      relations::build_prompts(relations::load_relations(job.relations, job.relation_select), tok);
  for (const auto& r : set.relations) {
    d.relation_ids.push_back(r.id);
    d.relation_files.push_back(r.file.string());
  }
  std::vector<int32_t> per_relation(set.relations.size(), 0);
  for (const auto& p : set.prompts) {
    d.prompt_relation.push_back(p.relation);
    d.prompt_sample.push_back(p.sample);
    d.prompt_gold.push_back(p.target_id);
    d.prompt_text.push_back(p.text);
    d.prompt_ids.push_back(p.prompt_ids);
    ++per_relation[p.relation];
  }
  for (std::size_t r = 0; r < per_relation.size(); ++r) {
    if (per_relation[r] == 0)
      throw SetupError("relation file " + set.relations[r].file.string() + " has no samples");
  }
  d.grid = sweep::build_grid(std::move(checkpoints), per_relation, job.prompts_per_unit);
  return d;
}

bool is_operational_key(const std::string& key) {
  return key == "attribution.device" || key == "units.max_attempts";
}

std::string job_differences(const std::map<std::string, std::string>& stored,
                            const std::map<std::string, std::string>& given) {
  std::string out;
  auto value = [](const std::map<std::string, std::string>& m, const std::string& k) {
    const auto it = m.find(k);
    return it == m.end() ? std::string("(absent)") : "'" + it->second + "'";
  };
  std::map<std::string, int> keys;
  for (const auto& [k, v] : stored) keys[k] = 1;
  for (const auto& [k, v] : given) keys[k] = 1;
  for (const auto& [k, unused] : keys) {
    if (is_operational_key(k) || value(stored, k) == value(given, k)) continue;
    out += "  " + k + ": store has " + value(stored, k) + ", given " + value(given, k) + "\n";
  }
  return out;
}

void check_free_space(const std::string& store_path, const store::SweepDescription& d) {
  const auto folder = fs::absolute(store_path).parent_path();
  struct statvfs st {};
  if (statvfs(folder.c_str(), &st) != 0) {
    throw SetupError("cannot create store " + store_path + ": its folder " + folder.string() +
                     " is not accessible (" + std::strerror(errno) + ")");
  }
  const double free = static_cast<double>(st.f_bavail) * static_cast<double>(st.f_frsize);
  const double need = static_cast<double>(store::schema::store_bytes(d));
  if (free < need) {
    throw SetupError("cannot create store " + store_path + ": it needs about " + human_bytes(need) +
                     ", but the file system holding " + folder.string() + " has only " +
                     human_bytes(free) +
                     " free (disk full): free some space or choose another --store");
  }
}

std::string checkpoint_moves(const store::SweepDescription& d,
                             const std::vector<sweep::CheckpointRef>& selected_now) {
  std::map<std::string, std::string> now;
  for (const auto& c : selected_now) now[c.name] = c.path;
  std::string out;
  for (const auto& c : d.grid.checkpoints) {
    const auto it = now.find(c.name);
    if (it == now.end() || it->second == c.path) continue;
    // One folder named two ways (a relative path stored) is no move; a stored
    // folder that is gone is checkpoint_changes' to report.
    std::error_code ec;
    if (!fs::exists(c.path, ec) || fs::equivalent(c.path, it->second, ec)) continue;
    out += "  " + c.name + ": the store has " + c.path + ", the job selects " + it->second + "\n";
  }
  return out;
}

std::string checkpoint_changes(const store::SweepDescription& d) {
  std::string out;
  for (std::size_t i = 0; i < d.grid.checkpoints.size(); ++i) {
    const auto& c = d.grid.checkpoints[i];
    const auto change =
        store::checkpoint_change(c.path, d.checkpoint_bytes[i], d.checkpoint_hashes[i]);
    if (!change.empty()) out += "  " + c.path + ": " + change + "\n";
  }
  return out;
}

std::string dry_run_text(const store::SweepDescription& d) {
  std::ostringstream o;
  const auto& g = d.grid;
  o << "job " << d.job_name << ": model " << d.model_name << ", " << d.shape.describe() << "\n";
  o << "checkpoints: " << g.checkpoints.size() << " (steps " << g.checkpoints.front().step << " .. "
    << g.checkpoints.back().step << ")\n";
  for (const auto& c : g.checkpoints) o << "  " << c.name << "  " << c.path << "\n";
  o << "relations: " << d.relation_ids.size() << ", prompts: " << d.prompt_relation.size() << "\n";
  for (std::size_t r = 0; r < d.relation_ids.size(); ++r)
    o << "  " << d.relation_ids[r] << ": " << g.prompts_per_relation[r] << " prompts\n";
  o << "units: " << g.units.size() << " ("
    << g.units.size() / std::max<std::size_t>(1, g.checkpoints.size())
    << " per checkpoint, at most " << d.job.at("units.prompts_per_unit") << " prompts each)\n";
  o << "lens " << d.lens << ", target " << d.target
    << ", per-prompt tensors: " << d.job.at("store.per_prompt") << "\n";
  if (d.ablation.enabled) {
    o << "ablation after the attribution, conditions:";
    for (const auto& c : d.ablation.conditions()) o << " " << c;
    o << "\n";
  }
  o << "store size: about " << human_bytes(static_cast<double>(store::schema::store_bytes(d)))
    << "\n";
  return o.str();
}

std::string status_text(const std::string& path, const store::StoreInfo& info) {
  const auto& d = info.description;
  const auto& g = d.grid;
  std::vector<int> done(g.checkpoints.size(), 0), total(g.checkpoints.size(), 0);
  std::size_t all_done = 0;
  for (const auto& u : g.units) {
    ++total[u.checkpoint];
    if (info.unit_done[u.id]) {
      ++done[u.checkpoint];
      ++all_done;
    }
  }
  std::ostringstream o;
  o << path << ": job " << d.job_name << ", model " << d.model_name << ", " << d.shape.describe()
    << "\n";
  o << "units done " << all_done << "/" << g.units.size() << "; runs:\n";
  for (const auto& r : info.runs) o << "  " << r << "\n";
  const bool ablation = !info.ablation_conditions.empty();
  o << "checkpoint                          units   aggregated" << (ablation ? "  ablation" : "")
    << "\n";
  std::size_t complete = 0, ablation_done = 0;
  for (std::size_t c = 0; c < g.checkpoints.size(); ++c) {
    char line[160];
    std::snprintf(line, sizeof line, "%-34s %3d/%-3d  %-10s%s\n", g.checkpoints[c].name.c_str(),
                  done[c], total[c], info.aggregated[c] ? "yes" : "no",
                  ablation ? (info.ablation_done[c] ? "  yes" : "  no") : "");
    o << line;
    complete += done[c] == total[c];
    if (ablation) ablation_done += info.ablation_done[c] != 0;
  }
  const bool finished =
      all_done == g.units.size() && (!ablation || ablation_done == g.checkpoints.size());
  o << (finished ? "complete" : "incomplete") << ": " << complete << "/" << g.checkpoints.size()
    << " checkpoints attributed";
  if (ablation) o << ", " << ablation_done << "/" << g.checkpoints.size() << " ablated";
  o << ", " << g.units.size() - all_done << " attribution units to do";
  if (!finished) o << " (lpi-sweep --resume --store " << path << ")";
  o << "\n";
  return o.str();
}

}  // namespace lpi::coordinator

#include "common/sweep/job.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

#include "common/checkpoint/hub_cache.hpp"
#include "common/checkpoint/safetensors.hpp"

namespace lpi::sweep {
namespace po = boost::program_options;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, sep);) {
    const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

// Boost.Program_options expands %option%, %value% and the like in its error
// messages, and loops forever when the text it puts in holds the same
// placeholder (a job file with "prompts_per_unit = %value%" hung read_sweep_job;
// found by fuzz_job): no job text holds one.
void refuse_placeholders(const std::string& text, const std::string& where) {
  for (auto open = text.find('%'); open != std::string::npos; open = text.find('%', open + 1)) {
    const auto close = text.find('%', open + 1);
    if (close == std::string::npos) return;
    const std::string name = text.substr(open + 1, close - open - 1);
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](unsigned char c) {
          return std::isalnum(c) != 0 || c == '_';
        }))
      continue;
    const auto line = std::count(text.begin(), text.begin() + open, '\n') + 1;
    throw SweepJobError(where +
                        (where.rfind("override", 0) == 0 ? "" : ", line " + std::to_string(line)) +
                        ": '%" + name +
                        "%' is not allowed (a word between two '%' is a placeholder of the "
                        "option parser's messages)");
  }
}

}  // namespace

namespace {

// The error_code overload: a name too long or a folder not readable is the
// job file's error naming the key, not a std::filesystem_error naming none.
template <class Fail>
void require_folder_of(const char* key, const fs::path& folder, const Fail& fail) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec))
    fail(key, folder.string() + " is not a folder" + (ec ? " (" + ec.message() + ")" : ""));
}

// [model]: revisions, or hub_cache and repo; the folders they name exist.
template <typename Resolve, typename Fail>
void check_model_source(SweepJob& job, const std::string& revisions, const std::string& hub_cache,
                        const Resolve& resolve, const Fail& fail) {
  const auto require_folder = [&](const char* key, const fs::path& f) {
    require_folder_of(key, f, fail);
  };
  if (hub_cache.empty()) {
    if (revisions.empty())
      fail("model",
           "no model.revisions (a folder of step{N}-tokens{M} revision folders) and no "
           "model.hub_cache with model.repo (a HuggingFace hub cache)");
    if (!job.repo.empty())
      fail("model.repo", "'" + job.repo +
                             "' is set but model.hub_cache is not (repo names a repository of a "
                             "hub cache)");
    job.revisions = resolve(revisions);
    require_folder("model.revisions", job.revisions);
    return;
  }
  if (!revisions.empty())
    fail("model.revisions",
         "set together with model.hub_cache: a job reads one (to replace a job file's revisions "
         "by a hub cache, also give model.revisions= empty)");
  if (job.repo.empty())
    fail("model.repo",
         "missing: model.hub_cache needs the repository, e.g. allenai/OLMoE-1B-7B-0924");
  job.hub_cache = resolve(hub_cache);
  require_folder("model.hub_cache", job.hub_cache);
  fs::path repo_folder;
  try {
    repo_folder = checkpoint::hub_repo_folder(job.hub_cache, job.repo);
  } catch (const checkpoint::CheckpointError& e) {
    fail("model.repo", e.what());
  }
  if (!fs::is_directory(repo_folder)) {
    if (fs::is_directory(job.hub_cache / "refs") && fs::is_directory(job.hub_cache / "snapshots"))
      fail("model.hub_cache", job.hub_cache.string() +
                                  " is a repository folder itself: name the folder above it "
                                  "(the one holding models--ORG--NAME)");
    fail("model.repo", "'" + job.repo + "' is not in the hub cache " + job.hub_cache.string() +
                           " (no " + repo_folder.filename().string() +
                           "; download its revisions with deploy/fetch-revisions.py or "
                           "huggingface-cli download --revision)");
  }
}

// `origin` names the source in messages (a file, or a store); relative
// folders are relative to `base`.
SweepJob parse_job(std::istream& in, const fs::path& origin, const fs::path& base,
                   bool need_relations, const std::vector<std::string>& overrides) {
  SweepJob job;
  job.file = origin;
  const fs::path& file = origin;
  std::string revisions, hub_cache, relations, list, steps, select, per_prompt, heads;
  // One option a line reads best here.
  // clang-format off
  po::options_description opts;
  opts.add_options()
      ("job.name", po::value(&job.name)->required())
      ("model.name", po::value(&job.model_name)->required())
      ("model.revisions", po::value(&revisions)->default_value(""))
      ("model.hub_cache", po::value(&hub_cache)->default_value(""))
      ("model.repo", po::value(&job.repo)->default_value(""))
      ("checkpoints.glob", po::value(&job.checkpoint_glob)->default_value(job.checkpoint_glob))
      ("checkpoints.list", po::value(&list)->default_value(""))
      ("checkpoints.steps", po::value(&steps)->default_value(""))
      ("checkpoints.every", po::value(&job.every)->default_value(job.every))
      ("relations.folder", po::value(&relations)->required())
      ("relations.select", po::value(&select)->default_value(""))
      ("units.prompts_per_unit", po::value(&job.prompts_per_unit)->default_value(job.prompts_per_unit))
      ("attribution.lens", po::value(&job.lens)->default_value(job.lens))
      ("attribution.target", po::value(&job.target)->default_value(job.target))
      ("attribution.dtype", po::value(&job.dtype)->default_value(job.dtype))
      ("attribution.device", po::value(&job.device)->default_value(job.device))
      ("attribution.batch_size", po::value(&job.batch_size)->default_value(job.batch_size))
      ("attribution.batch_invariant", po::value(&job.batch_invariant)->default_value(job.batch_invariant))
      ("units.max_attempts", po::value(&job.max_attempts)->default_value(job.max_attempts))
      ("store.per_prompt", po::value(&per_prompt)->default_value("attn,ffn"))
      ("store.per_prompt_dtype", po::value(&job.per_prompt_dtype)->default_value(job.per_prompt_dtype))
      ("ablation.enabled", po::value(&job.ablation.enabled)->default_value(job.ablation.enabled))
      ("ablation.heads", po::value(&heads)->default_value("1,10"))
      ("ablation.ffn_fraction", po::value(&job.ablation.ffn_fraction)->default_value(job.ablation.ffn_fraction));
  // clang-format on
  po::variables_map vm;
  // Overrides first: Program_options keeps the first value stored for a key.
  std::stringstream override_text;
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    const auto dot = o.find('.');
    if (eq == std::string::npos || dot == std::string::npos || dot > eq) {
      throw SweepJobError("override '" + o + "': expected section.key=value");
    }
    refuse_placeholders(o, "override '" + o + "'");
    override_text << "[" << o.substr(0, dot) << "]\n" << o.substr(dot + 1) << "\n";
  }
  const std::string content{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  refuse_placeholders(content, "job file " + file.string());
  std::istringstream text(content);
  try {
    po::store(po::parse_config_file(override_text, opts, false), vm);
  } catch (const po::error& e) {
    throw SweepJobError("override: " + std::string(e.what()));
  }
  try {
    po::store(po::parse_config_file(text, opts, false), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw SweepJobError("job file " + file.string() + ": " + e.what());
  }
  auto fail = [&](const std::string& key, const std::string& what) {
    throw SweepJobError("job file " + file.string() + ": " + key + ": " + what);
  };
  // Relative folders are relative to the job file.
  auto resolve = [&](const std::string& p) {
    return fs::path(p).is_absolute() ? fs::path(p) : (base / p).lexically_normal();
  };
  job.relations = resolve(relations);
  check_model_source(job, revisions, hub_cache, resolve, fail);
  if (need_relations) require_folder_of("relations.folder", job.relations, fail);
  job.checkpoint_list = split(list, ',');
  job.relation_select = split(select, ',');
  if (!steps.empty()) {
    const auto colon = steps.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument("no colon");
      if (colon > 0) job.min_step = std::stoll(steps.substr(0, colon));
      if (colon + 1 < steps.size()) job.max_step = std::stoll(steps.substr(colon + 1));
    } catch (const std::exception&) {
      fail("checkpoints.steps",
           "'" + steps + "' is not a range FIRST:LAST (either side may be empty)");
    }
  }
  if (job.every < 1) fail("checkpoints.every", "must be at least 1");
  if (job.prompts_per_unit < 1) fail("units.prompts_per_unit", "must be at least 1");
  if (job.max_attempts < 1) fail("units.max_attempts", "must be at least 1");
  if (job.batch_size < 1) fail("attribution.batch_size", "must be at least 1");
  job.per_prompt_attn = job.per_prompt_ffn = false;
  for (const auto& family : split(per_prompt, ',')) {
    if (family == "attn")
      job.per_prompt_attn = true;
    else if (family == "ffn")
      job.per_prompt_ffn = true;
    else if (family != "none")
      fail("store.per_prompt", "'" + family + "': attn, ffn or none");
  }
  if (job.per_prompt_dtype != "float32" && job.per_prompt_dtype != "float16" &&
      job.per_prompt_dtype != "bfloat16")
    fail("store.per_prompt_dtype", "'" + job.per_prompt_dtype + "': float32, float16 or bfloat16");
  job.ablation.heads.clear();
  for (const auto& n : split(heads, ',')) {
    std::size_t used = 0;
    int value = 0;
    try {
      value = std::stoi(n, &used);
    } catch (const std::exception&) {
    }
    if (used != n.size() || value < 1)
      fail("ablation.heads", "'" + n + "' is not a head count >= 1");
    job.ablation.heads.push_back(value);
  }
  if (!(job.ablation.ffn_fraction >= 0 && job.ablation.ffn_fraction <= 1))
    fail("ablation.ffn_fraction", "must be in [0, 1] (0: no FFN condition)");
  if (job.ablation.enabled && job.ablation.heads.empty() && job.ablation.ffn_fraction == 0)
    fail("ablation", "enabled, but no condition (ablation.heads empty and ffn_fraction 0)");
  if (job.lens != "frozen" && job.lens != "exact")
    fail("attribution.lens", "'" + job.lens + "': frozen or exact");
  if (job.target != "gold" && job.target != "top1")
    fail("attribution.target", "'" + job.target + "': gold or top1");
  if (job.dtype != "float32" && job.dtype != "bfloat16") {
    fail("attribution.dtype", "'" + job.dtype + "': float32 or bfloat16");
  }
  (void)select_checkpoints(job);  // every selected checkpoint must be there
  return job;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

}  // namespace

SweepJob read_sweep_job(const fs::path& file, const std::vector<std::string>& overrides) {
  std::ifstream in(file);
  if (!in) throw SweepJobError("job file " + file.string() + " cannot be opened");
  return parse_job(in, file, file.parent_path(), true, overrides);
}

std::map<std::string, std::string> job_settings(const SweepJob& job) {
  std::map<std::string, std::string> s;
  s["job.name"] = job.name;
  s["model.name"] = job.model_name;
  if (job.hub_cache.empty()) {
    s["model.revisions"] = fs::absolute(job.revisions).lexically_normal().string();
  } else {
    s["model.hub_cache"] = fs::absolute(job.hub_cache).lexically_normal().string();
    s["model.repo"] = job.repo;
  }
  s["checkpoints.glob"] = job.checkpoint_glob;
  s["checkpoints.list"] = join(job.checkpoint_list);
  s["checkpoints.steps"] = (job.min_step > 0 ? std::to_string(job.min_step) : "") + ":" +
                           (job.max_step == INT64_MAX ? "" : std::to_string(job.max_step));
  if (s["checkpoints.steps"] == ":") s["checkpoints.steps"] = "";
  s["checkpoints.every"] = std::to_string(job.every);
  s["relations.folder"] = fs::absolute(job.relations).lexically_normal().string();
  s["relations.select"] = join(job.relation_select);
  s["units.prompts_per_unit"] = std::to_string(job.prompts_per_unit);
  s["units.max_attempts"] = std::to_string(job.max_attempts);
  s["attribution.lens"] = job.lens;
  s["attribution.target"] = job.target;
  s["attribution.dtype"] = job.dtype;
  s["attribution.device"] = job.device;
  s["attribution.batch_size"] = std::to_string(job.batch_size);
  s["attribution.batch_invariant"] = job.batch_invariant ? "true" : "false";
  std::vector<std::string> families;
  if (job.per_prompt_attn) families.push_back("attn");
  if (job.per_prompt_ffn) families.push_back("ffn");
  s["store.per_prompt"] = families.empty() ? "none" : join(families);
  s["store.per_prompt_dtype"] = job.per_prompt_dtype;
  s["ablation.enabled"] = job.ablation.enabled ? "true" : "false";
  std::vector<std::string> heads;
  for (auto n : job.ablation.heads) heads.push_back(std::to_string(n));
  s["ablation.heads"] = join(heads);
  s["ablation.ffn_fraction"] = format_fraction(job.ablation.ffn_fraction);
  return s;
}

SweepJob job_from_settings(const std::map<std::string, std::string>& settings,
                           const std::string& origin, const std::vector<std::string>& overrides) {
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> sections;
  for (const auto& [key, value] : settings) {
    const auto dot = key.find('.');
    if (dot == std::string::npos) throw SweepJobError(origin + ": job setting '" + key + "'");
    sections[key.substr(0, dot)].emplace_back(key.substr(dot + 1), value);
  }
  std::stringstream text;
  for (const auto& [section, items] : sections) {
    text << "[" << section << "]\n";
    for (const auto& [k, v] : items) text << k << " = " << v << "\n";
  }
  // A store's job: its prompts and token ids are in the store, so the
  // relations folder (and the tokenizer) may be gone by now.
  return parse_job(text, origin, fs::current_path(), false, overrides);
}

namespace {

// Each selected hub revision's snapshot folder as its path; every missing
// snapshot or file, one line each.
std::vector<std::string> resolve_snapshots(const fs::path& repo_folder,
                                           std::vector<CheckpointRef>& refs) {
  std::vector<std::string> problems;
  for (auto& ref : refs) {
    try {
      const fs::path snapshot = checkpoint::hub_snapshot(repo_folder, ref.name);
      ref.path = snapshot.string();
      for (const auto& p : checkpoint::missing_model_files(snapshot))
        problems.push_back(ref.name + ": " + p);
    } catch (const checkpoint::CheckpointError& e) {
      problems.push_back(ref.name + ": " + e.what());
    }
  }
  return problems;
}

}  // namespace

std::vector<CheckpointRef> select_checkpoints(const SweepJob& job) {
  auto fail = [&](const std::string& key, const std::string& what) {
    throw SweepJobError("job file " + job.file.string() + ": " + key + ": " + what);
  };
  const bool hub = !job.hub_cache.empty();
  fs::path repo_folder;
  std::vector<std::string> hub_refs;
  if (hub) {
    try {
      repo_folder = checkpoint::hub_repo_folder(job.hub_cache, job.repo);
      hub_refs = checkpoint::hub_revisions(repo_folder);
    } catch (const checkpoint::CheckpointError& e) {
      fail("model.repo", e.what());
    }
  }
  const fs::path source = hub ? repo_folder / "refs" : job.revisions;
  std::vector<CheckpointRef> found;
  if (!job.checkpoint_list.empty()) {
    const std::set<std::string> downloaded(hub_refs.begin(), hub_refs.end());
    for (const auto& name : job.checkpoint_list) {
      auto ref = parse_checkpoint_name(name);
      if (!ref) fail("checkpoints.list", "'" + name + "' is not a revision name step{N}-tokens{M}");
      if (hub) {
        if (downloaded.count(name) == 0)
          fail("checkpoints.list", "revision " + name + " is not in " + source.string() +
                                       " (not downloaded: deploy/fetch-revisions.py --revision " +
                                       name + ")");
      } else {
        ref->path = (job.revisions / name).string();
        std::error_code ec;
        if (!fs::exists(fs::path(ref->path) / "config.json", ec)) {
          fail("checkpoints.list", "checkpoint " + ref->path + " is not there (no config.json" +
                                       (ec ? ": " + ec.message() : "") + ")");
        }
      }
      found.push_back(*ref);
    }
  } else if (hub) {
    for (const auto& name : hub_refs) {
      if (fnmatch(job.checkpoint_glob.c_str(), name.c_str(), 0) != 0) continue;
      if (auto ref = parse_checkpoint_name(name)) found.push_back(*ref);
    }
  } else {
    std::error_code ec;
    for (fs::directory_iterator it(job.revisions, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      std::error_code entry_ec;
      if (!it->is_directory(entry_ec) || fnmatch(job.checkpoint_glob.c_str(), name.c_str(), 0) != 0)
        continue;
      auto ref = parse_checkpoint_name(name);
      if (!ref || !fs::exists(it->path() / "config.json", entry_ec)) continue;
      ref->path = it->path().string();
      found.push_back(*ref);
    }
    if (ec) fail("model.revisions", "cannot list " + job.revisions.string() + ": " + ec.message());
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.step < b.step; });
  std::vector<CheckpointRef> out;
  int64_t kept = 0;
  for (const auto& ref : found) {
    if (ref.step < job.min_step || ref.step > job.max_step) continue;
    if (kept++ % job.every == 0) out.push_back(ref);
  }
  if (out.empty()) {
    fail("checkpoints",
         "no checkpoint of " + source.string() + " matches the selection (glob '" +
             job.checkpoint_glob + "', steps " + std::to_string(job.min_step) + ":" +
             (job.max_step == INT64_MAX ? std::string() : std::to_string(job.max_step)) + ")");
  }
  if (hub) {
    const auto problems = resolve_snapshots(repo_folder, out);
    if (!problems.empty()) {
      std::string text;
      constexpr std::size_t kShown = 20;
      for (std::size_t i = 0; i < problems.size() && i < kShown; ++i) text += "\n  " + problems[i];
      if (problems.size() > kShown)
        text += "\n  ... and " + std::to_string(problems.size() - kShown) + " more";
      fail("model.repo",
           "selected revisions of " + job.repo + " in " + job.hub_cache.string() +
               " are missing files (a download interrupted, or blobs removed):" + text +
               "\nfinish the download (deploy/fetch-revisions.py --revision NAME) "
               "or leave them out (checkpoints.list, checkpoints.steps)");
    }
  }
  return out;
}

}  // namespace lpi::sweep

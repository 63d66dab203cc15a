#include "common/sweep/job.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <fstream>
#include <sstream>

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

}  // namespace

SweepJob read_sweep_job(const fs::path& file, const std::vector<std::string>& overrides) {
  SweepJob job;
  job.file = file;
  std::string revisions, relations, list, steps, select;
  // One option a line reads best here.
  // clang-format off
  po::options_description opts;
  opts.add_options()
      ("job.name", po::value(&job.name)->required())
      ("model.name", po::value(&job.model_name)->required())
      ("model.revisions", po::value(&revisions)->required())
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
      ("attribution.batch_size", po::value(&job.batch_size)->default_value(job.batch_size));
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
    override_text << "[" << o.substr(0, dot) << "]\n" << o.substr(dot + 1) << "\n";
  }
  try {
    po::store(po::parse_config_file(override_text, opts, false), vm);
  } catch (const po::error& e) {
    throw SweepJobError("override: " + std::string(e.what()));
  }
  std::ifstream in(file);
  if (!in) throw SweepJobError("job file " + file.string() + " cannot be opened");
  try {
    po::store(po::parse_config_file(in, opts, false), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw SweepJobError("job file " + file.string() + ": " + e.what());
  }
  auto fail = [&](const std::string& key, const std::string& what) {
    throw SweepJobError("job file " + file.string() + ": " + key + ": " + what);
  };
  // Relative folders are relative to the job file.
  auto resolve = [&](const std::string& p) {
    return fs::path(p).is_absolute() ? fs::path(p) : file.parent_path() / p;
  };
  job.revisions = resolve(revisions);
  job.relations = resolve(relations);
  if (!fs::is_directory(job.revisions))
    fail("model.revisions", job.revisions.string() + " is not a folder");
  if (!fs::is_directory(job.relations))
    fail("relations.folder", job.relations.string() + " is not a folder");
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

std::vector<CheckpointRef> select_checkpoints(const SweepJob& job) {
  auto fail = [&](const std::string& key, const std::string& what) {
    throw SweepJobError("job file " + job.file.string() + ": " + key + ": " + what);
  };
  std::vector<CheckpointRef> found;
  if (!job.checkpoint_list.empty()) {
    for (const auto& name : job.checkpoint_list) {
      auto ref = parse_checkpoint_name(name);
      if (!ref) fail("checkpoints.list", "'" + name + "' is not a revision name step{N}-tokens{M}");
      ref->path = (job.revisions / name).string();
      if (!fs::exists(fs::path(ref->path) / "config.json")) {
        fail("checkpoints.list", "checkpoint " + ref->path + " is not there (no config.json)");
      }
      found.push_back(*ref);
    }
  } else {
    for (const auto& entry : fs::directory_iterator(job.revisions)) {
      const std::string name = entry.path().filename().string();
      if (!entry.is_directory() || fnmatch(job.checkpoint_glob.c_str(), name.c_str(), 0) != 0)
        continue;
      auto ref = parse_checkpoint_name(name);
      if (!ref || !fs::exists(entry.path() / "config.json")) continue;
      ref->path = entry.path().string();
      found.push_back(*ref);
    }
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
         "no checkpoint of " + job.revisions.string() + " matches the selection (glob '" +
             job.checkpoint_glob + "', steps " + std::to_string(job.min_step) + ":" +
             (job.max_step == INT64_MAX ? std::string() : std::to_string(job.max_step)) + ")");
  }
  return out;
}

}  // namespace lpi::sweep

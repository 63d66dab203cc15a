// A sweep job file (INI) and its overrides from arbitrary bytes: the bytes
// up to the first NUL are the file, each line after it one "section.key=value"
// override. The job's folders exist (as in the repository: the file in jobs/,
// the revisions and relations under runs/tiny-olmo, so that jobs/*.ini read
// as they are). An accepted job's settings (what a store records) read back
// to the same settings.
#include <cstddef>
#include <cstdint>
#include <sstream>

#include "common/sweep/job.hpp"
#include "fuzz_support.hpp"

namespace sw = lpi::sweep;
namespace fs = std::filesystem;

namespace {

const fs::path& job_file() {
  static const fs::path file = [] {
    const fs::path root = lpi::fuzz::scratch() / "job";
    for (const char* model : {"tiny-olmo", "tiny-olmoe"}) {
      const fs::path runs = root / "runs" / model;
      for (const char* name :
           {"step0-tokens0", "step10-tokens41K", "step20-tokens82K", "step700-tokens2M"}) {
        fs::create_directories(runs / name);
        lpi::fuzz::write_file(runs / name / "config.json", "{}");
      }
      fs::create_directories(runs / "main");           // not a revision name
      fs::create_directories(runs / "step5-tokens1");  // no config.json
      fs::create_directories(runs / "relations");
    }
    fs::create_directories(root / "jobs");
    return root / "jobs" / "job.ini";
  }();
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)job_file();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view input = lpi::fuzz::as_text(data, size);
  const std::size_t nul = input.find('\0');
  lpi::fuzz::write_file(job_file(), input.substr(0, nul));
  std::vector<std::string> overrides;
  if (nul != std::string_view::npos) {
    std::istringstream lines(std::string(input.substr(nul + 1)));
    for (std::string line; std::getline(lines, line);) overrides.push_back(line);
  }
  sw::SweepJob job;
  try {
    job = sw::read_sweep_job(job_file(), overrides);
  } catch (const sw::SweepJobError&) {
    return 0;
  }
  LPI_FUZZ_CHECK(job.every >= 1 && job.prompts_per_unit >= 1 && job.max_attempts >= 1);
  LPI_FUZZ_CHECK(!sw::select_checkpoints(job).empty());
  // What a store records reads back (resume) as the same job.
  const auto settings = sw::job_settings(job);
  const sw::SweepJob back = sw::job_from_settings(settings, "the store's job settings");
  LPI_FUZZ_CHECK(sw::job_settings(back) == settings);
  return 0;
}

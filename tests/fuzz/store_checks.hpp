// What both store fuzz targets check of a store file (fuzz_store: any bytes;
// fuzz_store_edits: a real store edited through the h5 layer):
// read_store_info, then for a store it accepts the Reader of lpi-analyze and
// lpi-query and SweepStore::open as --resume opens it (one process,
// MPI_COMM_SELF). A store it accepts describes itself consistently: every
// index in range, one entry per checkpoint, prompt and unit in every list.
// Bad stores end in StoreError or h5::Error.
#pragma once

#include <mpi.h>
#include <sanitizer/lsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/store/store_reader.hpp"
#include "common/store/sweep_store.hpp"
#include "fuzz_support.hpp"

namespace lpi::fuzz {

namespace st = lpi::store;

inline void check_description(const st::StoreInfo& info) {
  const st::SweepDescription& d = info.description;
  const auto C = d.grid.checkpoints.size(), R = d.relation_ids.size(), P = d.prompt_relation.size(),
             U = d.grid.units.size();
  LPI_FUZZ_CHECK(d.checkpoint_hashes.size() == C && d.checkpoint_bytes.size() == C);
  LPI_FUZZ_CHECK(d.relation_files.size() == R && d.grid.prompts_per_relation.size() == R);
  LPI_FUZZ_CHECK(d.prompt_sample.size() == P && d.prompt_gold.size() == P);
  LPI_FUZZ_CHECK(d.prompt_text.size() == P && d.prompt_ids.size() == P);
  for (int32_t r : d.prompt_relation) LPI_FUZZ_CHECK(r >= 0 && static_cast<std::size_t>(r) < R);
  for (const auto& u : d.grid.units) {
    LPI_FUZZ_CHECK(u.checkpoint >= 0 && static_cast<std::size_t>(u.checkpoint) < C);
    LPI_FUZZ_CHECK(u.relation >= 0 && static_cast<std::size_t>(u.relation) < R);
    LPI_FUZZ_CHECK(u.first_prompt >= 0 && u.prompt_count >= 1);
    LPI_FUZZ_CHECK(static_cast<std::size_t>(u.first_prompt) + u.prompt_count <= P);
  }
  LPI_FUZZ_CHECK(info.unit_done.size() == U && info.aggregated.size() == C);
  const auto& sh = d.shape;
  LPI_FUZZ_CHECK(sh.num_layers > 0 && sh.num_heads > 0 && sh.head_dim > 0);
  LPI_FUZZ_CHECK(sh.intermediate_size > 0 && sh.vocab_size > 0);
  LPI_FUZZ_CHECK(!sh.is_moe() ||
                 (sh.experts_per_token > 0 && sh.experts_per_token <= sh.num_experts));
  if (d.ablation.enabled) {
    LPI_FUZZ_CHECK(info.ablation_unit_done.size() == U && info.ablation_done.size() == C);
    LPI_FUZZ_CHECK(info.ablation_conditions.size() == d.ablation.conditions().size());
  }
}

// What lpi-analyze and lpi-query read of a store: the means and one prompt's slab.
inline void read_as_analysis(const std::string& path) {
  const st::Reader reader(path);
  const auto& d = reader.description();
  if (d.grid.checkpoints.empty()) return;
  (void)reader.attn_mean(0);
  (void)reader.ffn_mean(0);
  if (!d.prompt_relation.empty() && d.per_prompt_attn && d.per_prompt_ffn)
    (void)reader.prompts(0, 0, 1);
  if (d.ablation.enabled && !d.prompt_relation.empty()) (void)reader.ablation_hits(0);
}

// What --resume does to it: the parallel open, the flags, a run record.
inline void open_as_resume(const std::string& path) {
  st::SweepStore store = st::SweepStore::open(MPI_COMM_SELF, path, "fuzz resume");
  LPI_FUZZ_CHECK(store.done_flags().size() == store.description().grid.units.size());
  (void)store.aggregated_flags();
  if (store.description().ablation.enabled) {
    (void)store.mask_flags();
    (void)store.ablation_unit_flags();
    (void)store.ablation_flags();
  }
  store.close("fuzz end");
}

// Everything above on the file at `path`; false when it is refused (typed).
inline bool check_store_file(const std::string& path) {
  try {
    check_description(st::read_store_info(path));
    read_as_analysis(path);
    open_as_resume(path);
  } catch (const st::StoreError& e) {
    if (std::getenv("LPI_FUZZ_VERBOSE") != nullptr) std::fprintf(stderr, "%s\n", e.what());
    return false;
  } catch (const lpi::h5::Error& e) {
    if (std::getenv("LPI_FUZZ_VERBOSE") != nullptr) std::fprintf(stderr, "%s\n", e.what());
    return false;
  }
  return true;
}

// MPI (SweepStore::open) and HDF5 set-up, once, from LLVMFuzzerInitialize.
inline void init_mpi_and_hdf5(int* argc, char*** argv) {
  // Open MPI keeps (never frees) some of what MPI_Init and the first
  // parallel open allocate; LeakSanitizer ignores what is allocated here, and
  // a first parallel create and open here keeps it out of the inputs' runs.
  __lsan_disable();
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
  lpi::h5::silence_errors();
  const std::string warm = (lpi::fuzz::scratch() / "warm-up").string();
  lpi::h5::File::create(warm, lpi::h5::Create::truncate, lpi::h5::Parallel{MPI_COMM_SELF, {}})
      .set_attribute("warm", int64_t{1});
  (void)lpi::h5::File::open(warm, lpi::h5::Mode::read_write, lpi::h5::Parallel{MPI_COMM_SELF, {}});
  __lsan_enable();
}

}  // namespace lpi::fuzz

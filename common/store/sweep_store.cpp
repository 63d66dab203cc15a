#include "common/store/sweep_store.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/core/aggregate.hpp"
#include "common/core/ranking.hpp"
#include "common/store/results_writer.hpp"
#include "common/store/sweep_schema.hpp"
#include "lpi/lpi_config.hpp"

namespace lpi::store {
namespace fs = std::filesystem;
using namespace schema;

namespace {

uint64_t fnv1a(uint64_t h, const void* data, std::size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

}  // namespace

CheckpointFingerprint checkpoint_fingerprint(const std::string& folder) {
  std::vector<fs::path> files;
  // The files the engine reads: config.json, the weights and their index
  // (not the tokenizer: the store holds the prompts' token ids).
  const auto engine_reads = [](const std::string& name) {
    const auto ends = [&](const std::string& tail) {
      return name.size() >= tail.size() &&
             name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    };
    return name == "config.json" || ends(".safetensors") || ends(".safetensors.index.json");
  };
  for (const auto& e : fs::directory_iterator(folder)) {
    if (e.is_regular_file() && engine_reads(e.path().filename().string()))
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  CheckpointFingerprint out;
  uint64_t h = 14695981039346656037ull;
  for (const auto& f : files) {
    const auto size = static_cast<int64_t>(fs::file_size(f));
    out.bytes += size;
    const auto name = f.filename().string();
    const bool st = f.extension() == ".safetensors";
    h = fnv1a(h, name.data(), name.size());
    h = fnv1a(h, &size, sizeof size);
    std::ifstream in(f, std::ios::binary);
    // JSON files whole (small); a safetensors file's 8-byte length and header,
    // then blocks sampled evenly across its tensor data: a file rewritten with
    // other weights of the same shapes (another revision, a retrained run)
    // has the same header but not the same data.
    int64_t take = std::min<int64_t>(size, int64_t{64} << 20);
    if (st && size >= 8) {
      uint64_t n = 0;
      in.read(reinterpret_cast<char*>(&n), 8);
      take = std::min<int64_t>(size, 8 + static_cast<int64_t>(std::min<uint64_t>(n, 100u << 20)));
      in.seekg(0);
    }
    std::string buf(static_cast<std::size_t>(take), '\0');
    in.read(buf.data(), take);
    h = fnv1a(h, buf.data(), static_cast<std::size_t>(in.gcount()));
    if (st && take < size) {
      constexpr int64_t kBlocks = 8, kBlock = 4096;
      const int64_t data = size - take, block = std::min(kBlock, data);
      std::string sample(static_cast<std::size_t>(block), '\0');
      for (int64_t b = 0; b < kBlocks; ++b) {
        in.clear();
        in.seekg(take + (data - block) * b / (kBlocks - 1));
        in.read(sample.data(), block);
        h = fnv1a(h, sample.data(), static_cast<std::size_t>(in.gcount()));
      }
    }
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  out.hash = hex;
  return out;
}

std::string checkpoint_change(const std::string& folder, int64_t recorded_bytes,
                              const std::string& recorded_hash) {
  if (!fs::is_directory(folder)) return "no longer there";
  const auto fp = checkpoint_fingerprint(folder);
  if (fp.bytes != recorded_bytes) {
    return std::to_string(fp.bytes) + " bytes, the store recorded " +
           std::to_string(recorded_bytes);
  }
  if (fp.hash != recorded_hash) {
    return "config.json, safetensors header or sampled data hash " + fp.hash +
           ", the store recorded " + recorded_hash;
  }
  return "";
}

namespace {

h5::Parallel mpi_io(MPI_Comm comm) {
  // Independent writes are whole contiguous chunks: no read-modify-write.
  return h5::Parallel{comm, {{"romio_ds_write", "disable"}}};
}

}  // namespace

SweepStore SweepStore::create(MPI_Comm comm, const std::string& path, const SweepDescription& d,
                              const std::string& run_record) {
  SweepStore s;
  s.path_ = path;
  s.d_ = d;
  s.comm_ = comm;
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  const std::string partial = path + ".partial";
  if (rank == 0 && fs::exists(partial)) fs::remove(partial);
  MPI_Barrier(comm);
  s.file_ = h5::File::create(partial, h5::Create::exclusive, mpi_io(comm));
  create_store(s.file_, d, rank == 0);
  s.file_.flush();
  // Only a complete store carries the name: a job killed while creating it
  // leaves PATH.partial, which the next start replaces.
  MPI_Barrier(comm);
  if (rank == 0) fs::rename(partial, path);
  MPI_Barrier(comm);
  s.open_datasets();
  s.rank_ = rank;
  s.append_run(run_record);
  return s;
}

SweepStore SweepStore::open(MPI_Comm comm, const std::string& path, const std::string& run_record) {
  SweepStore s;
  s.path_ = path;
  s.comm_ = comm;
  auto info = read_store_info(path);  // every rank, read-only, before the parallel open
  s.d_ = std::move(info.description);
  s.run_slot_ = static_cast<int64_t>(info.runs.size());
  MPI_Comm_rank(comm, &s.rank_);
  MPI_Barrier(comm);
  s.file_ = h5::File::open(path, h5::Mode::read_write, mpi_io(comm));
  s.open_datasets();
  s.append_run(run_record);
  return s;
}

void SweepStore::open_datasets() {
  ds_ = schema::open_datasets(file_, d_);
}

SweepStore::~SweepStore() {
  ds_.clear();
}

UnitSums unit_sums(const ModelShape& sh, int64_t n, const float* attn, const float* ffn,
                   const int32_t* expert_ids, const std::string& what) {
  const int64_t L = sh.num_layers, A = sh.attn_width(), k = sh.experts_per_token;
  const int64_t F = L * sh.ffn_active_width();
  UnitSums s{std::vector<double>(L * A, 0.0), std::vector<double>(sh.ffn_neurons(), 0.0)};
  for (int64_t p = 0; p < n; ++p) {
    if (attn) {
      for (int64_t i = 0; i < L * A; ++i) s.attn[i] += attn[p * L * A + i];
    }
    if (!ffn) continue;
    try {
      core::add_ffn_values(sh, &ffn[p * F], sh.is_moe() ? &expert_ids[p * L * k] : nullptr, 1.0,
                           s.ffn.data(), what + ", prompt " + std::to_string(p));
    } catch (const core::LayoutError& e) {
      throw StoreError(e.what());
    }
  }
  return s;
}

void SweepStore::write_unit(const sweep::WorkUnit& u, const UnitResult& r) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  const auto& sh = d_.shape;
  const int64_t n = u.prompt_count, L = sh.num_layers, A = sh.attn_width();
  const int64_t k = sh.experts_per_token;
  const std::string what = "unit " + std::to_string(u.id) + " in " + path_;
  auto expect = [&](const char* name, std::size_t have, int64_t per) {
    if (static_cast<int64_t>(have) != n * per) {
      throw StoreError(what + ": " + std::to_string(have) + " values for " + name + ", expected " +
                       std::to_string(n * per));
    }
  };
  expect(kTarget, r.target.size(), 1);
  expect(kBaseLogprob, r.base_logprob.size(), 1);
  expect(kGoldRank, r.gold_rank.size(), 1);
  expect(kAttn, r.attn.size(), L * A);
  expect(kFfn, r.ffn.size(), L * sh.ffn_active_width());
  if (sh.is_moe()) expect(kExpertIds, r.expert_ids.size(), L * k);
  const auto sums = unit_sums(sh, n, r.attn.data(), r.ffn.data(),
                              sh.is_moe() ? r.expert_ids.data() : nullptr, what);
  const auto hit = core::hits_of_ranks(r.gold_rank);
  const PromptResults view{
      n, r.target.data(), r.base_logprob.data(), r.attn.data(), r.ffn.data(), r.expert_ids.data()};
  try {
    write_results(ds_, {u.checkpoint, u.first_prompt}, {1, n}, sh, view);
  } catch (const StoreError& e) {
    throw StoreError(what + " (checkpoint " + d_.grid.checkpoints[u.checkpoint].name +
                     ", prompts " + std::to_string(u.first_prompt) + ".." +
                     std::to_string(u.first_prompt + n - 1) + "): " + e.what());
  }
  ds(kUnitAttnSum).select({u.id, 0, 0}, {1, L, A}).write(sums.attn);
  ds(kUnitFfnSum).select({u.id, 0, 0}, {1, L, sh.ffn_width()}).write(sums.ffn);
  ds(kHit).select({u.checkpoint, u.first_prompt}, {1, n}).write(hit);
  ds(kGoldRank).select({u.checkpoint, u.first_prompt}, {1, n}).write(r.gold_rank);
}

void SweepStore::mark_done(int32_t unit, int32_t rank, float seconds) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  const uint8_t one = 1;
  ds(kUnitRank).select({unit}, {1}).write(&rank, 1);
  ds(kUnitSeconds).select({unit}, {1}).write(&seconds, 1);
  // The flag last: a unit is complete once this byte is in the file.
  ds(kUnitDone).select({unit}, {1}).write(&one, 1);
}

std::vector<uint8_t> SweepStore::flags(const char* name, std::size_t n) {
  return ds(name).select({0}, {static_cast<int64_t>(n)}).read<uint8_t>();
}

std::vector<uint8_t> SweepStore::done_flags() {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  return flags(kUnitDone, d_.grid.units.size());
}

std::vector<uint8_t> SweepStore::aggregated_flags() {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  return flags(kAggDone, d_.grid.checkpoints.size());
}

void SweepStore::aggregate(int32_t c) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  const auto& sh = d_.shape;
  const int64_t P = static_cast<int64_t>(d_.prompt_relation.size()), L = sh.num_layers;
  const int64_t A = sh.attn_width(), W = sh.ffn_width();
  const std::string what = "checkpoint " + d_.grid.checkpoints[c].name + " in " + path_;
  // Sum of the units' sums, in unit order: the same bits whoever computed them.
  std::vector<double> attn_sum(L * A, 0.0), ffn_sum(L * W, 0.0);
  std::vector<double> a(L * A), f(L * W);
  int64_t prompts = 0;
  for (const auto& u : d_.grid.units) {
    if (u.checkpoint != c) continue;
    ds(kUnitAttnSum).select({u.id, 0, 0}, {1, L, A}).read(a.data(), a.size());
    ds(kUnitFfnSum).select({u.id, 0, 0}, {1, L, W}).read(f.data(), f.size());
    for (std::size_t i = 0; i < a.size(); ++i) attn_sum[i] += a[i];
    for (std::size_t i = 0; i < f.size(); ++i) ffn_sum[i] += f[i];
    prompts += u.prompt_count;
  }
  if (prompts != P) {
    throw StoreError(what + ": its units cover " + std::to_string(prompts) + " prompts, expected " +
                     std::to_string(P));
  }
  const auto rank = ds(kGoldRank).select({c, 0}, {1, P}).read<int32_t>();
  const auto R = static_cast<int64_t>(d_.relation_ids.size());
  const auto hits = core::hit_rates(core::hits_of_ranks(rank), 1, d_.prompt_relation, R).at(0);
  const auto am = core::means_of_sums(attn_sum, P), fm = core::means_of_sums(ffn_sum, P);
  ds(kAttnMean).select({c, 0, 0}, {1, L, A}).write(am);
  if (sh.is_moe()) {
    ds(kFfnMean).select({c, 0, 0, 0}, {1, L, sh.num_experts, sh.intermediate_size}).write(fm);
  } else {
    ds(kFfnMean).select({c, 0, 0}, {1, L, W}).write(fm);
  }
  ds(kHitByRelation).select({c, 0}, {1, R}).write(hits.by_relation);
  ds(kHitAll).select({c}, {1}).write(&hits.all, 1);
  const uint8_t one = 1;
  ds(kAggDone).select({c}, {1}).write(&one, 1);
}

void SweepStore::append_run(const std::string& entry) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  if (rank_ != 0) return;
  write_run_entry(ds(kRunLog), run_slot_++, entry);
}

void SweepStore::close(const std::string& run_end_record) {
  const std::lock_guard<std::recursive_mutex> lock(*mutex_);
  append_run(run_end_record);
  ds_.clear();
  file_.close();
}

}  // namespace lpi::store

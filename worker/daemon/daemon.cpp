#include "worker/daemon/daemon.hpp"

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <map>

#include "common/checkpoint/model_shape.hpp"
#include "common/core/ablation.hpp"
#include "common/log/log.hpp"
#include "worker/engine/evaluate.hpp"
#include "worker/engine/gated_lpi.hpp"
#include "worker/engine/threads.hpp"
#ifdef LPI_HAVE_CUDA_KERNELS
#include "worker/engine/cuda/lpi_cuda.hpp"
#endif
#include "worker/share/weight_share.hpp"

namespace lpi::daemon {
namespace en = lpi::engine;
using clock_type = std::chrono::steady_clock;

namespace {

double since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

template <class T>
std::vector<T> to_vector(const torch::Tensor& t, torch::ScalarType type) {
  const auto c = t.to(torch::kCPU, type).contiguous();
  return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}

using Prompts = std::vector<std::vector<int32_t>>;

// This process's peak resident memory, GiB.
double peak_rss_gib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);
}

// On a GPU run, the device's memory in use after the lease (libtorch's
// caching allocator keeps what it had at its peak): "; device memory ...".
// Compiled with the CUDA kernels (CI), run only on a GPU.
std::string device_memory_text(bool on_gpu) {
#ifdef LPI_HAVE_CUDA_KERNELS
  int64_t used = 0, total = 0;
  if (on_gpu && en::cuda::device_memory(used, total)) {
    char text[128];
    std::snprintf(text, sizeof text, "; device memory in use %.2f GiB of %.2f GiB",
                  static_cast<double>(used) / (1 << 30), static_cast<double>(total) / (1 << 30));
    return text;
  }
#endif
  (void)on_gpu;
  return "";
}

// One attribution lease's profile: a line for the lease, one per layer.
void log_profile(const std::string& checkpoint, int64_t prompts, double load, double compute,
                 double store, const en::LpiProfile& p, bool on_gpu) {
  const auto sum = p.sum();
  const double other = compute - p.forward - sum.total();
  char line[640];
  std::snprintf(line, sizeof line,
                "profile: checkpoint %s, %lld prompts: load %.3f s, forward %.3f s, lens %.3f s, "
                "projection %.3f s, log-sum-exp %.3f s, other %.3f s, store %.3f s; peak "
                "resident memory %.2f GiB%s",
                checkpoint.c_str(), static_cast<long long>(prompts), load, p.forward, sum.lens,
                sum.projection, sum.lse, other, store, peak_rss_gib(),
                device_memory_text(on_gpu).c_str());
  LPI_LOG(info) << line;
  for (std::size_t l = 0; l < p.layers.size(); ++l) {
    const auto& a = p.layers[l].attn;
    const auto& f = p.layers[l].ffn;
    std::snprintf(line, sizeof line,
                  "profile: layer %zu: attention lens %.3f s, projection %.3f s, log-sum-exp "
                  "%.3f s; FFN lens %.3f s, projection %.3f s, log-sum-exp %.3f s",
                  l, a.lens, a.projection, a.lse, f.lens, f.projection, f.lse);
    LPI_LOG(info) << line;
  }
}

}  // namespace

struct WorkerDaemon::State {
  store::SweepStore& store;
  DaemonOptions options;
  en::LoadOptions load;
  en::LpiOptions lpi;
  int32_t current = -1;
  en::Transformer model{nullptr};
  int32_t next_checkpoint = -1;
  std::future<en::Transformer> next;
  std::map<int32_t, std::string> load_errors;  // a checkpoint that failed once is not reread
  std::map<int32_t, int64_t> tiles;            // checkpoint -> projection tiles computed
  int32_t masks_for = -1;
  std::vector<en::Ablation> conditions;  // the ablation phase: one per condition after "none"

  State(store::SweepStore& s, const DaemonOptions& o) : store(s), options(o) {}

  std::string path(int32_t c) const { return store.description().grid.checkpoints.at(c).path; }

  std::future<en::Transformer> start_load(int32_t c) {
    return std::async(std::launch::async, [p = path(c), l = load] { return en::load_model(p, l); });
  }

  // The lease's shared load, until its checkpoint is first asked for.
  const sweep::LoadShare* share = nullptr;

  // The model for checkpoint c: the loaded one, the one loading in the
  // background, a fresh load, or (a shared load) the root's broadcast.
  // Throws with the checkpoint named.
  void ensure(int32_t c) {
    if (share) {
      const auto* sh = share;
      share = nullptr;
      return sh->is_root ? ensure_as_root(c, *sh) : ensure_as_member(c, *sh);
    }
    ensure_read(c);
  }

  // The root: its own load, then the weights (or its error) to the group.
  void ensure_as_root(int32_t c, const sweep::LoadShare& sh) {
    const auto t = clock_type::now();
    std::optional<std::string> error;
    try {
      ensure_read(c);
    } catch (const std::exception& e) {
      error = e.what();
    }
    const double read = since(t);
    const auto ranks = sh.group(!error);
    if (ranks.size() > 1) {
      share::ShareStats stats;
      const auto group = options.groups->open(ranks, sh.id, load.device);
      share::share_model(*group, model, error, load.device, &stats);
      LPI_LOG(info) << "checkpoint " << path(c) << ": read in " << read << " s, sent to "
                    << ranks.size() - 1 << " rank(s) by " << stats.method << " in " << stats.seconds
                    << " s (" << stats.bytes << " bytes, shared load " << sh.id << ")";
    }
    if (error) throw std::runtime_error(*error);
  }

  // A member: the group first (the others wait for it), then the root's
  // weights into a model built from the checkpoint's config.json; its own
  // read when the group is cancelled or the root failed.
  void ensure_as_member(int32_t c, const sweep::LoadShare& sh) {
    const auto t = clock_type::now();
    const auto ranks = sh.group(false);
    const double waited = since(t);
    if (ranks.empty()) return ensure_read(c);
    std::optional<std::string> error;
    en::Transformer m{nullptr};
    if (current == c) {
      m = model;
    } else {
      model = nullptr;  // free the old weights before the new ones arrive
      current = -1;
      try {
        m = en::Transformer(checkpoint::read_model_config(path(c)), load.dtype);
        m->to(load.device, load.dtype);
        m->eval();
        for (auto& p : m->parameters()) p.set_requires_grad(false);
      } catch (const std::exception&) {
        m = nullptr;  // share_model says so, after taking the root's bytes
      }
    }
    share::ShareStats stats;
    const auto group = options.groups->open(ranks, sh.id, load.device);
    error = share::share_model(*group, m, std::nullopt, load.device, &stats);
    if (error) {
      LPI_LOG(warning) << "checkpoint " << path(c) << ": shared load " << sh.id << " from rank "
                       << sh.root << " failed (" << *error << "); this rank reads it itself";
      return ensure_read(c);
    }
    LPI_LOG(info) << "checkpoint " << path(c) << ": received from rank " << sh.root << " by "
                  << stats.method << " in " << stats.seconds << " s after waiting " << waited
                  << " s for it (" << stats.bytes << " bytes, shared load " << sh.id << ")";
    accept(c, m);
  }

  // The model of checkpoint c is the store's shape: keep it.
  void accept(int32_t c, const en::Transformer& m) {
    const auto got = checkpoint::shape_of(m->config());
    const auto& want = store.description().shape;
    if (!(got == want)) {
      load_errors[c] = "checkpoint " + path(c) + " is " + got.describe() +
                       ", but the store holds " + want.describe();
      throw std::runtime_error(load_errors[c]);
    }
    model = m;
    current = c;
  }

  void ensure_read(int32_t c) {
    if (current == c) return;
    if (auto it = load_errors.find(c); it != load_errors.end())
      throw std::runtime_error(it->second);
    model = nullptr;  // free the old weights before the new ones arrive
    current = -1;
    std::future<en::Transformer> f;
    if (next_checkpoint == c && next.valid()) {
      f = std::move(next);
      next_checkpoint = -1;
    } else {
      f = start_load(c);
    }
    en::Transformer m{nullptr};
    try {
      m = f.get();
    } catch (const std::exception& e) {
      load_errors[c] = "checkpoint " + path(c) + ": " + e.what();
      throw std::runtime_error(load_errors[c]);
    }
    // The files are those the sweep started with (not replaced meanwhile by
    // another revision): else its units would mix two models.
    const auto& d = store.description();
    if (const auto change =
            store::checkpoint_change(path(c), d.checkpoint_bytes.at(c), d.checkpoint_hashes.at(c));
        !change.empty()) {
      load_errors[c] = "checkpoint " + path(c) + " changed since the sweep started (" + change +
                       "): its units are not computed; the store's results would mix two versions";
      throw std::runtime_error(load_errors[c]);
    }
    accept(c, m);
  }

  void prefetch(int32_t c) {
    if (c < 0 || c == current || c == next_checkpoint || load_errors.count(c)) return;
    if (next.valid()) {
      try {
        next.get();  // a stale prefetch: wait for it rather than leave a thread behind
      } catch (const std::exception&) {
      }
    }
    next_checkpoint = c;
    next = start_load(c);
  }

  // The frame of every unit: its checkpoint loaded (timed), the next one
  // prefetched, its prompts and gold targets handed to `compute`, which
  // returns the store write (timed apart). Errors are returned, not thrown.
  template <class Compute>
  sweep::UnitReport unit(const sweep::WorkUnit& u, int32_t next_hint, Compute compute) {
    sweep::UnitReport out;
    try {
      auto t = clock_type::now();
      ensure(u.checkpoint);
      out.load_seconds = since(t);
      prefetch(next_hint);
      t = clock_type::now();
      const auto& d = store.description();
      const auto first = d.prompt_ids.begin() + u.first_prompt;
      const Prompts prompts(first, first + u.prompt_count);
      const auto g = d.prompt_gold.begin() + u.first_prompt;
      const std::vector<int32_t> gold(g, g + u.prompt_count);
      const auto write = compute(prompts, gold);
      out.compute_seconds = since(t);
      t = clock_type::now();
      write();
      out.store_seconds = since(t);
    } catch (const std::exception& e) {
      out.error = e.what();
    }
    return out;
  }
};

WorkerDaemon::WorkerDaemon(store::SweepStore& store, const DaemonOptions& options)
    : s_(std::make_unique<State>(store, options)) {
  auto& s = *s_;
  en::set_compute_threads(std::max(1, options.threads));
  s.load.dtype = options.dtype == "bfloat16" ? torch::kBFloat16 : torch::kFloat32;
  if (options.device == "cuda") {
    const auto n = static_cast<int>(torch::cuda::device_count());
    if (n == 0) throw std::runtime_error("device cuda: no CUDA device is visible to this rank");
    s.load.device =
        torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(options.local_rank % n));
  } else {
    s.load.device = torch::Device(options.device);
  }
  s.lpi.lens = options.lens == "exact" ? en::Lens::Exact : en::Lens::Frozen;
  s.lpi.target = options.target == "top1" ? en::TargetKind::Top1 : en::TargetKind::Gold;
  s.lpi.batch_size = options.batch_size;
  s.lpi.batch_invariant = options.batch_invariant;
  s.lpi.profile = options.profile;
}

WorkerDaemon::~WorkerDaemon() {
  if (s_ && s_->next.valid()) {
    try {
      s_->next.get();
    } catch (const std::exception&) {
    }
  }
}

int32_t WorkerDaemon::loaded() const {
  return s_->current;
}

int32_t WorkerDaemon::share_node() const {
  return s_->options.groups ? s_->options.share_node : -1;
}

void WorkerDaemon::run_shared_lease(sweep::Phase phase,
                                    const std::vector<const sweep::WorkUnit*>& units,
                                    int32_t prefetch, const sweep::LoadShare& share,
                                    const sweep::ReportUnit& report) {
  s_->share = &share;
  try {
    run_lease(phase, units, prefetch, report);
  } catch (...) {
    s_->share = nullptr;
    throw;
  }
  s_->share = nullptr;
}

sweep::UnitReport WorkerDaemon::run(sweep::Phase phase, const sweep::WorkUnit& u,
                                    int32_t prefetch) {
  sweep::UnitReport out;
  run_lease(phase, {&u}, prefetch, [&](int32_t, const sweep::UnitReport& r) { out = r; });
  return out;
}

void WorkerDaemon::run_lease(sweep::Phase phase, const std::vector<const sweep::WorkUnit*>& units,
                             int32_t prefetch, const sweep::ReportUnit& report) {
  if (units.empty()) return;
  log::UnitScope scope(units.front()->id);
  const auto logged = [&](int32_t unit, const sweep::UnitReport& r) {
    if (r.error) {
      LPI_LOG(warning) << sweep::phase_name(phase) << " of unit " << unit
                       << " failed: " << *r.error;
    }
    report(unit, r);
  };
  if (phase == sweep::Phase::Attribution) return attribute(units, prefetch, logged);
  for (const auto* u : units) logged(u->id, ablate(*u, prefetch));
}

int64_t WorkerDaemon::projection_tiles(int32_t checkpoint) const {
  const auto it = s_->tiles.find(checkpoint);
  return it == s_->tiles.end() ? 0 : it->second;
}

void WorkerDaemon::attribute(const std::vector<const sweep::WorkUnit*>& units, int32_t prefetch,
                             const sweep::ReportUnit& report) {
  auto& s = *s_;
  const auto& d = s.store.description();
  const int32_t c = units.front()->checkpoint;
  en::Importance imp;
  std::vector<int64_t> offset;  // each unit's first row in the lease's prompts
  double load = 0, compute = 0;
  try {
    auto t = clock_type::now();
    s.ensure(c);
    load = since(t);
    s.prefetch(prefetch);
    Prompts prompts;
    std::vector<int32_t> gold;
    for (const auto* u : units) {
      if (u->checkpoint != c)
        throw std::logic_error("a lease of units of more than one checkpoint");
      offset.push_back(static_cast<int64_t>(prompts.size()));
      const auto first = d.prompt_ids.begin() + u->first_prompt;
      prompts.insert(prompts.end(), first, first + u->prompt_count);
      const auto g = d.prompt_gold.begin() + u->first_prompt;
      gold.insert(gold.end(), g, g + u->prompt_count);
    }
    t = clock_type::now();
    imp = en::gated_lpi(s.model, prompts, gold, s.lpi);
    compute = since(t);
    s.tiles[c] += imp.projection_tiles;
    LPI_LOG(debug) << "lease of " << units.size() << " unit(s), " << prompts.size()
                   << " prompts of checkpoint " << c << ": load " << load << " s, Gated-LPI "
                   << compute << " s, " << imp.projection_tiles << " projection tiles";
  } catch (const std::exception& e) {
    sweep::UnitReport failed;
    failed.error = e.what();
    for (const auto* u : units) report(u->id, failed);
    return;
  }
  // Each unit's rows written on their own, then reported: a unit is flagged
  // done only once its data is in the store.
  int64_t total = 0;
  for (const auto* u : units) total += u->prompt_count;
  double store_seconds = 0;
  for (std::size_t k = 0; k < units.size(); ++k) {
    const auto& u = *units[k];
    sweep::UnitReport r;
    r.load_seconds = k == 0 ? load : 0;
    r.projection_tiles = k == 0 ? imp.projection_tiles : 0;
    r.compute_seconds = compute * static_cast<double>(u.prompt_count) / static_cast<double>(total);
    try {
      const auto rows = [&](const torch::Tensor& x) {
        return x.narrow(0, offset[k], u.prompt_count);
      };
      store::UnitResult res;
      res.target = to_vector<int32_t>(rows(imp.targets), torch::kInt32);
      res.base_logprob = to_vector<float>(rows(imp.base_logprob), torch::kFloat32);
      res.gold_rank = to_vector<int32_t>(rows(imp.gold_rank), torch::kInt32);
      std::vector<torch::Tensor> attn, ffn, ids;
      for (const auto& layer : imp.layers) {
        attn.push_back(rows(layer.attn));
        ffn.push_back(rows(layer.ffn));
        if (layer.expert_ids.defined()) ids.push_back(rows(layer.expert_ids));
      }
      res.attn = to_vector<float>(torch::stack(attn, 1), torch::kFloat32);  // [n, L, H*dh]
      res.ffn = to_vector<float>(torch::stack(ffn, 1), torch::kFloat32);    // [n, L, (k,) I]
      if (!ids.empty()) res.expert_ids = to_vector<int32_t>(torch::stack(ids, 1), torch::kInt32);
      const auto t = clock_type::now();
      s.store.write_unit(u, res);
      r.store_seconds = since(t);
      store_seconds += r.store_seconds;
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    report(u.id, r);
  }
  if (s.options.profile)
    log_profile(s.path(c), total, load, compute, store_seconds, imp.profile,
                s.load.device.is_cuda());
}

namespace {

// The engine's ablations for a checkpoint's masks: the first N heads for
// each "heads:N", the ranked FFN/expert neurons for "ffn:F".
en::Ablation to_engine(core::LayerMasks m) {
  en::Ablation a;
  a.heads = std::move(m.heads);
  a.ffn_neurons = std::move(m.ffn_neurons);
  return a;
}

std::vector<en::Ablation> conditions_of(const core::AblationMasks& m,
                                        const sweep::AblationSpec& spec,
                                        const core::ModelShape& sh) {
  std::vector<en::Ablation> out;
  for (auto n : spec.heads) out.push_back(to_engine(core::head_masks(m, n)));
  if (spec.ffn_fraction > 0) out.push_back(to_engine(core::ffn_masks(m, sh)));
  return out;
}

}  // namespace

sweep::UnitReport WorkerDaemon::ablate(const sweep::WorkUnit& u, int32_t prefetch) {
  auto& s = *s_;
  return s.unit(u, prefetch, [&](const Prompts& prompts, const std::vector<int32_t>& gold) {
    const auto& d = s.store.description();
    if (s.masks_for != u.checkpoint) {
      s.conditions = conditions_of(s.store.read_masks(u.checkpoint), d.ablation, d.shape);
      s.masks_for = u.checkpoint;
    }
    const std::size_t M = s.conditions.size() + 1;
    store::AblationUnitResult r;
    r.gold_rank.resize(prompts.size() * M);
    r.target_logprob.resize(prompts.size() * M);
    for (std::size_t m = 0; m < M; ++m) {
      en::EvaluateOptions eo;
      // Batch-invariant (the default): one prompt per forward pass, so that
      // a prompt's scores do not depend on the unit cut (a batch's padding
      // and its matrix products' blocking would).
      eo.batch_size = s.options.batch_invariant ? 1 : s.options.batch_size;
      eo.ablation = m == 0 ? nullptr : &s.conditions[m - 1];
      const auto scores = en::evaluate(s.model, prompts, gold, eo);
      for (std::size_t p = 0; p < prompts.size(); ++p) {
        r.gold_rank[p * M + m] = static_cast<int32_t>(scores[p].target_rank);
        r.target_logprob[p * M + m] = scores[p].target_logprob;
      }
    }
    return [&s, &u, r = std::move(r)] { s.store.write_ablation_unit(u, r); };
  });
}

}  // namespace lpi::daemon

#include "coordinator/tools/bench_scheduler.hpp"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "common/transport/in_process.hpp"
#include "worker/loop/worker_loop.hpp"

namespace lpi::coordinator::sim {

std::vector<int32_t> relation_prompts() {
  // shared/data/relations, counted 2026-12-02: bias (name_birthplace 31,
  // name_religion 31, occupation_age 45, occupation_gender 19), commonsense
  // (fruit_inside_color 36, object_superclass 76, work_location 38), factual
  // (country_capital_city 24, country_language 24), linguistic (adj_antonym
  // 100, word_first_letter 241, word_last_letter 241).
  return {31, 31, 45, 19, 36, 76, 38, 24, 24, 100, 241, 241};
}

SweepShape olmoe_shape() {
  // 16 layers, d 2048, V 50304, 16 x 128 heads, 64 experts of 1024, top 8.
  const double V = 50304, d = 2048, layers = 16;
  SweepShape s;
  s.name = "OLMoE-1B-7B";
  s.checkpoints = 244;
  s.relation_prompts = relation_prompts();
  s.prompts_per_unit = 64;
  s.projection_flop = 2 * V * d * layers * (64 * 1024 + 2048);  // every expert's columns
  s.exps_per_prompt = layers * (8 * 1024 + 2048) * V;           // the active ones
  s.forward_flop = 2 * 1.3e9 * 12;                            // 1.3e9 active parameters, 12 tokens
  s.store_bytes_per_prompt = 4 * layers * (2048 + 8 * 1024);  // attn + ffn, float32
  return s;
}

SweepShape olmo7b_shape() {
  // 32 layers, d 4096, V 50280, 32 x 128 heads, FFN 11008.
  const double V = 50280, d = 4096, layers = 32;
  SweepShape s;
  s.name = "OLMo-7B";
  s.checkpoints = 557;
  s.relation_prompts = relation_prompts();
  s.prompts_per_unit = 32;
  s.projection_flop = 2 * V * d * layers * (11008 + 4096);
  s.exps_per_prompt = layers * (11008 + 4096) * V;
  s.forward_flop = 2 * 6.9e9 * 12;
  s.store_bytes_per_prompt = 4 * layers * (4096 + 11008);
  return s;
}

CostModel cost_model(const SweepShape& s, const Hardware& hw) {
  CostModel c;
  c.load_seconds = hw.checkpoint_gb / hw.read_gbps;
  c.projection_seconds = s.projection_flop / hw.flops;
  c.prompt_seconds = s.exps_per_prompt / hw.exps_per_second + s.forward_flop / hw.flops;
  c.store_prompt_seconds = s.store_bytes_per_prompt / (hw.store_gbps * 1e9);
  c.store_unit_seconds = hw.store_unit_seconds;
  return c;
}

sweep::Grid make_grid(const SweepShape& s) {
  std::vector<sweep::CheckpointRef> cps;
  for (int32_t c = 0; c < s.checkpoints; ++c) {
    const auto step = 5000LL * (c + 1);
    cps.push_back(*sweep::parse_checkpoint_name("step" + std::to_string(step) + "-tokens" +
                                                std::to_string(step * 4) + "M"));
  }
  return sweep::build_grid(cps, s.relation_prompts, s.prompts_per_unit);
}

Bounds lower_bounds(const sweep::Grid& grid, const CostModel& cost, int workers) {
  const auto C = static_cast<double>(grid.checkpoints.size());
  std::vector<double> per_checkpoint(grid.checkpoints.size(), cost.projection_seconds);
  double units = 0, shortest = 1e300;
  for (const auto& u : grid.units) {
    const double t = cost.unit_seconds(u);
    units += t;
    shortest = std::min(shortest, t);
    per_checkpoint[static_cast<std::size_t>(u.checkpoint)] += t;
  }
  Bounds b;
  // Every worker that works pays a projection, and so does every checkpoint:
  // at least max(C, W) of them if all W work (with fewer working it is
  // larger still: W' < W workers give L + (units + max(C, W') P) / W').
  b.work = cost.load_seconds +
           (std::max(C, static_cast<double>(workers)) * cost.projection_seconds + units) / workers;
  b.load = std::ceil(C / workers) * cost.load_seconds + cost.projection_seconds + shortest;
  b.no_split = cost.load_seconds + *std::max_element(per_checkpoint.begin(), per_checkpoint.end());
  return b;
}

MemoryBook::MemoryBook(const sweep::Grid& grid)
    : done(grid.units.size(), 0), complete(grid.checkpoints.size(), 0) {}

PhaseBook MemoryBook::book() {
  return {sweep::Phase::Attribution, [this] { return done; }, [this] { return complete; },
          [this](int32_t u, int, float) {
            double_marks += done[static_cast<std::size_t>(u)];
            done[static_cast<std::size_t>(u)] = 1;
            ++marks;
          },
          [this](int32_t c) { complete[static_cast<std::size_t>(c)] = 1; }};
}

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Holds the worker threads until every one exists (their start-up is not
// simulated time).
class Gate {
 public:
  void wait() {
    std::unique_lock<std::mutex> lock(m_);
    cv_.wait(lock, [&] { return open_; });
  }
  void open() {
    std::lock_guard<std::mutex> lock(m_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool open_ = false;
};

std::string format(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return buf;
}

}  // namespace

BenchResult run_in_process(const sweep::Grid& grid, const CostModel& cost, int workers,
                           double time_scale, const RunOptions& options) {
  BenchResult r;
  std::vector<std::atomic<int>> done(grid.units.size());
  transport::InProcessHub hub(workers + 1);
  std::unique_ptr<VirtualClock> virtual_clock;
  std::unique_ptr<ScaledClock> scaled_clock;
  Clock* clock = nullptr;
  if (time_scale > 0) {
    scaled_clock = std::make_unique<ScaledClock>(time_scale);
    clock = scaled_clock.get();
  } else {
    virtual_clock = std::make_unique<VirtualClock>(workers + 1);
    clock = virtual_clock.get();
  }
  r.workers.resize(static_cast<std::size_t>(workers));
  std::mutex error_mutex;
  Gate gate;
  std::vector<std::thread> threads;
  for (int w = 1; w <= workers; ++w) {
    threads.emplace_back([&, w] {
      pthread_setname_np(pthread_self(), "sim-worker");
      ClockedTransport t(hub.endpoint(w), virtual_clock.get());
      SyntheticExecutor executor(w, cost, *clock, done);
      gate.wait();
      try {
        worker::serve_sweep(t, executor, grid);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (r.error.empty()) r.error = "worker " + std::to_string(w) + ": " + e.what();
      }
      r.workers[static_cast<std::size_t>(w - 1)] = executor.stats();
      if (virtual_clock) virtual_clock->leave(w);
    });
  }
  MemoryBook book(grid);
  SweepPlan plan;
  plan.grid = &grid;
  plan.job_name = "synthetic";
  plan.store_path = "memory";
  plan.prompts = static_cast<std::size_t>(grid.prompt_count());
  plan.attribution = book.book();
  ClockedTransport zero(hub.endpoint(0), virtual_clock.get());
  const auto wall = std::chrono::steady_clock::now();
  if (scaled_clock) scaled_clock->restart();  // the threads' start-up is not simulated
  gate.open();
  pthread_setname_np(pthread_self(), "sim-rank0");
  const double cpu = thread_cpu_seconds();
  try {
    r.summary = coordinate_sweep(zero, plan, options);
  } catch (const std::exception& e) {
    r.error = std::string("coordinator: ") + e.what();
  }
  r.coordinator_cpu = thread_cpu_seconds() - cpu;
  if (virtual_clock) virtual_clock->leave(0);
  for (auto& t : threads) t.join();
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall).count();
  r.messages = zero.received();
  for (const auto& s : r.workers) r.makespan = std::max(r.makespan, s.last_end);
  for (const auto& d : done) r.done_counts.push_back(d.load());
  return r;
}

std::string report(const SweepShape& shape, const sweep::Grid& grid, const CostModel& cost,
                   const BenchResult& r, double time_scale) {
  const bool virtual_clock = time_scale <= 0;
  // Real seconds per simulated second: rank 0's CPU is real time; on the
  // virtual clock it is set against the makespan as if simulated seconds
  // were real (the sweep's own speed).
  const double real = virtual_clock ? 1 : time_scale;
  const auto W = static_cast<int>(r.workers.size());
  const auto C = static_cast<int64_t>(grid.checkpoints.size());
  const auto U = static_cast<int64_t>(grid.units.size());
  WorkerStats sum;
  double tail_idle = 0;
  for (const auto& s : r.workers) {
    sum.leases += s.leases;
    sum.units += s.units;
    sum.loads += s.loads;
    sum.prefetches += s.prefetches;
    sum.prefetches_used += s.prefetches_used;
    sum.load_wait += s.load_wait;
    sum.load_hidden += s.load_hidden;
    sum.prefetch_stall += s.prefetch_stall;
    sum.busy += s.busy;
    sum.idle += s.idle;
    tail_idle += r.makespan - s.last_end;
  }
  const auto b = lower_bounds(grid, cost, W);
  const double M = r.makespan, capacity = W * M;
  const double lease_time =
      (sum.busy + sum.load_wait + sum.prefetch_stall) / std::max<int64_t>(1, sum.leases);
  const double per_lease = r.coordinator_cpu / std::max<int64_t>(1, sum.leases);
  std::string out;
  out += format(
      "%s: %lld checkpoints x %lld prompts in %zu relations, %d prompts a unit: %lld units\n",
      shape.name.c_str(), static_cast<long long>(C), static_cast<long long>(grid.prompt_count()),
      grid.prompts_per_relation.size(), shape.prompts_per_unit, static_cast<long long>(U));
  out += format(
      "cost model (s): load L %.3f, projection P %.3f per lease, %.3g per prompt, store "
      "%.3g per unit + %.3g per prompt\n",
      cost.load_seconds, cost.projection_seconds, cost.prompt_seconds, cost.store_unit_seconds,
      cost.store_prompt_seconds);
  out += virtual_clock ? format("workers %d, clock virtual\n", W)
                       : format("workers %d, clock real, %g real s per simulated s\n", W, real);
  out += format("makespan                 %10.2f s\n", M);
  out += format("lower bound: work        %10.2f s  (L + (max(C, W) P + units) / W)\n", b.work);
  out += format("lower bound: loads       %10.2f s  (ceil(C / W) L + P + shortest unit)\n", b.load);
  out +=
      format("no-split bound           %10.2f s  (L + longest checkpoint; only if none is cut)\n",
             b.no_split);
  out += format("makespan / bound         %10.4f    (bound = max(work, loads) = %.2f s)\n",
                M / b.best(), b.best());
  out += format(
      "projection passes        %10lld    (leases; minimum %lld = checkpoints): %.1f s of "
      "extra projection, %.2f%% of the capacity W x makespan\n",
      static_cast<long long>(sum.leases), static_cast<long long>(C),
      (sum.leases - C) * cost.projection_seconds,
      100 * (sum.leases - C) * cost.projection_seconds / capacity);
  out += format(
      "loads                    %10lld    waited %.1f s; the prefetch hid %.1f s of %.1f s "
      "(%.1f%%); prefetches used %lld of %lld; stale-prefetch waits %.1f s\n",
      static_cast<long long>(sum.loads), sum.load_wait, sum.load_hidden,
      sum.loads * cost.load_seconds,
      100 * sum.load_hidden / std::max(1e-300, sum.loads * cost.load_seconds),
      static_cast<long long>(sum.prefetches_used), static_cast<long long>(sum.prefetches),
      sum.prefetch_stall);
  out += format(
      "worker time (of W x makespan): busy %.1f%%, load wait %.1f%%, stale-prefetch wait "
      "%.1f%%, idle between leases %.1f%%, idle after its last lease %.1f%%\n",
      100 * sum.busy / capacity, 100 * sum.load_wait / capacity,
      100 * sum.prefetch_stall / capacity, 100 * sum.idle / capacity, 100 * tail_idle / capacity);
  out += format(
      "coordinator: CPU %.3f s for %lld assignments and %lld messages: %.1f us per "
      "assignment, %.1f us per message\n",
      r.coordinator_cpu, static_cast<long long>(sum.leases), static_cast<long long>(r.messages),
      1e6 * per_lease, 1e6 * r.coordinator_cpu / std::max<int64_t>(1, r.messages));
  out += format(
      "coordinator overhead: CPU / makespan %.4f%% (%s); per lease %.1f us of a %.2f s mean "
      "lease (%.5f%%)\n",
      100 * r.coordinator_cpu / (M * real),
      virtual_clock ? "its core's load at the sweep's real speed" : "makespan in real seconds",
      1e6 * per_lease, lease_time, 100 * per_lease / (lease_time * real));
  out += format("wall %.2f s\n", r.wall_seconds);
  return out;
}

void write_trace(const std::string& path, const BenchResult& r) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw std::runtime_error("cannot write " + path);
  std::fprintf(f, "worker,checkpoint,units,prompts,hint,start,load_wait,end\n");
  for (std::size_t w = 0; w < r.workers.size(); ++w) {
    for (const auto& l : r.workers[w].trace)
      std::fprintf(f, "%zu,%d,%d,%d,%d,%.4f,%.4f,%.4f\n", w + 1, l.checkpoint, l.units, l.prompts,
                   l.hint, l.start, l.load_wait, l.end);
  }
  std::fclose(f);
}

std::vector<std::string> check(const sweep::Grid& grid, const CostModel& cost, const BenchResult& r,
                               bool virtual_clock) {
  std::vector<std::string> broken;
  if (!r.error.empty()) broken.push_back(r.error);
  for (std::size_t u = 0; u < r.done_counts.size(); ++u) {
    if (r.done_counts[u] != 1) {
      broken.push_back(format("unit %zu was computed %d times", u, r.done_counts[u]));
      break;
    }
  }
  if (r.summary.done != grid.units.size() || r.summary.given_up != 0)
    broken.push_back(format("the coordinator counts %zu units done and %zu given up of %zu",
                            r.summary.done, r.summary.given_up, grid.units.size()));
  int64_t leases = 0, units = 0;
  for (const auto& s : r.workers) {
    leases += s.leases;
    units += s.units;
  }
  if (units != static_cast<int64_t>(grid.units.size()))
    broken.push_back(format("the workers computed %lld units of %zu", static_cast<long long>(units),
                            grid.units.size()));
  if (leases < static_cast<int64_t>(grid.checkpoints.size()))
    broken.push_back(format("%lld leases for %zu checkpoints", static_cast<long long>(leases),
                            grid.checkpoints.size()));
  const auto b = lower_bounds(grid, cost, static_cast<int>(r.workers.size()));
  if (r.makespan < b.best() * (1 - 1e-9))
    broken.push_back(format("makespan %.6f s below the bound %.6f s", r.makespan, b.best()));
  if (virtual_clock) {
    for (std::size_t w = 0; w < r.workers.size(); ++w) {
      const auto& s = r.workers[w];
      const double sum = s.busy + s.load_wait + s.prefetch_stall + s.idle;
      if (std::abs(sum - s.last_end) > 1e-6 * std::max(1.0, s.last_end))
        broken.push_back(format("worker %zu: busy, waits and idle add up to %.6f s, not %.6f s",
                                w + 1, sum, s.last_end));
    }
  }
  return broken;
}

}  // namespace lpi::coordinator::sim

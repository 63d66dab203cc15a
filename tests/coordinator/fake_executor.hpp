// An Executor for the loops' tests: it "computes" a unit by counting it,
// fails the units it is told to (always, or once), holds the checkpoint of
// its last unit, can die in the middle of a unit (its thread then leaves
// the transport without answering) or stop in one (before_unit: a hang).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/sweep/executor.hpp"

namespace lpi::testing {

// Not a std::exception: the worker loop must not catch it as a unit's failure.
struct WorkerDied {
  int32_t unit = -1;
};

class FakeExecutor : public sweep::Executor {
 public:
  // counts[phase][unit]: shared by all workers of a test (atomic).
  FakeExecutor(std::vector<std::atomic<int>>* attribution, std::vector<std::atomic<int>>* ablation)
      : counts_{attribution, ablation} {}

  std::set<int32_t> always_fails, fails_once;
  int die_after = -1;                   // throws WorkerDied on the unit after this many
  std::function<void()> on_first_unit;  // called at the start of the first unit
  // Called at the start of every unit (a test may block in it: a hung worker).
  std::function<void(const sweep::WorkUnit&)> before_unit;
  // Called with each lease before its units run.
  std::function<void(const std::vector<const sweep::WorkUnit*>&)> on_lease;
  int loads = 0, started = 0;
  // Shared loads: this worker's node (-1: it takes no part), whether its
  // loads as a root fail, and each shared load it took part in.
  struct Shared {
    int32_t id = -1, root = -1, checkpoint = -1;
    bool is_root = false;
    std::vector<int32_t> ranks;
  };
  int32_t node = -1;
  bool root_load_fails = false;  // its first load as a root fails
  std::vector<Shared> shared;
  std::function<void(const std::vector<Shared>&)> on_exit;  // called with `shared` at the end
  ~FakeExecutor() override {
    if (on_exit) on_exit(shared);
  }

  int32_t share_node() const override { return node; }
  void run_shared_lease(sweep::Phase phase, const std::vector<const sweep::WorkUnit*>& units,
                        int32_t prefetch, const sweep::LoadShare& share,
                        const sweep::ReportUnit& report) override {
    const bool fails = share.is_root && root_load_fails;
    if (fails) {
      root_load_fails = false;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a slow load that fails
    }
    Shared s{share.id, share.root, units.front()->checkpoint, share.is_root,
             share.group(share.is_root && !fails)};
    shared.push_back(s);
    if (fails) {
      sweep::UnitReport failed;
      failed.error = "the root's load failed";
      for (const auto* u : units) report(u->id, failed);
      return;
    }
    run_lease(phase, units, prefetch, report);
  }

  void run_lease(sweep::Phase phase, const std::vector<const sweep::WorkUnit*>& units,
                 int32_t prefetch, const sweep::ReportUnit& report) override {
    if (on_lease) on_lease(units);
    sweep::Executor::run_lease(phase, units, prefetch, report);
  }

  sweep::UnitReport run(sweep::Phase phase, const sweep::WorkUnit& u, int32_t) override {
    if (started == 0 && on_first_unit) on_first_unit();
    if (before_unit) before_unit(u);
    if (started++ == die_after) throw WorkerDied{u.id};
    if (loaded_ != u.checkpoint) ++loads;
    loaded_ = u.checkpoint;
    sweep::UnitReport r;
    if (always_fails.count(u.id)) {
      r.error = "unit " + std::to_string(u.id) + " is broken";
    } else if (fails_once.erase(u.id)) {
      r.error = "transient";
    } else {
      ++(*counts_[phase == sweep::Phase::Attribution ? 0 : 1])[u.id];
      r.compute_seconds = 0.001;
    }
    return r;
  }
  int32_t loaded() const override { return loaded_; }

 private:
  std::vector<std::atomic<int>>* counts_[2];
  int32_t loaded_ = -1;
};

}  // namespace lpi::testing

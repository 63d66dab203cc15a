// The sweep's loops with threads standing in for ranks: rank 0 runs
// coordinate_sweep, the others worker::serve_sweep over a FakeExecutor, all
// through the in-process transport. Checks every unit is computed exactly
// once per phase, failures are retried and given up, a lost worker's unit
// goes to another, a resume skips what is done, and the ablation phase runs
// only when rank 0 says so (the workers have no vote).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/transport/in_process.hpp"
#include "coordinator/loop.hpp"
#include "coordinator/sweep_run.hpp"
#include "fake_executor.hpp"
#include "worker/loop/worker_loop.hpp"

namespace lpi {
namespace {

sweep::Grid make_grid() {
  std::vector<sweep::CheckpointRef> cps;
  for (int c = 0; c < 6; ++c)
    cps.push_back(*sweep::parse_checkpoint_name("step" + std::to_string(c * 10) + "-tokens1B"));
  return sweep::build_grid(cps, {9, 4, 7}, 2);  // 6 x (5 + 2 + 4) = 66 units
}

// An in-memory PhaseBook: flags, marks and completions, checked as they come.
struct Book {
  explicit Book(const sweep::Grid& g, sweep::Phase p) : grid(g), phase(p) {
    done.assign(g.units.size(), 0);
    complete.assign(g.checkpoints.size(), 0);
    marks.assign(g.units.size(), 0);
  }
  coordinator::PhaseBook book() {
    return {phase, [this] { return done; }, [this] { return complete; },
            [this](int32_t u, int worker, float) {
              EXPECT_GE(worker, 1);
              ++marks[u];
              done[u] = 1;
            },
            [this](int32_t c) {
              for (const auto& u : grid.units) {
                if (u.checkpoint == c) {
                  EXPECT_TRUE(done[u.id]) << "checkpoint " << c << " early";
                }
              }
              ++complete[c];
            }};
  }
  const sweep::Grid& grid;
  sweep::Phase phase;
  std::vector<uint8_t> done, complete;
  std::vector<int> marks;
};

struct Outcome {
  coordinator::RunSummary summary;
  std::vector<std::size_t> served;  // per worker
  int ready_calls = 0;
  coordinator::PhaseSummary seen_by_ready;
};

// Runs a sweep with `workers` worker threads; `setup(rank, executor)` configures each.
Outcome run_sweep(const sweep::Grid& grid, int workers, Book& attribution, Book* ablation,
                  std::vector<std::atomic<int>>& counts_a, std::vector<std::atomic<int>>& counts_b,
                  const std::function<void(int, testing::FakeExecutor&)>& setup,
                  const std::function<bool(const coordinator::PhaseSummary&)>& decide,
                  coordinator::RunOptions options = {},
                  const std::function<void(transport::InProcessHub&)>& before_join = nullptr) {
  transport::InProcessHub hub(workers + 1);
  Outcome out;
  out.served.assign(static_cast<std::size_t>(workers), 0);
  std::vector<std::thread> threads;
  for (int w = 1; w <= workers; ++w) {
    threads.emplace_back([&, w] {
      testing::FakeExecutor executor(&counts_a, &counts_b);
      if (setup) setup(w, executor);
      try {
        out.served[w - 1] = worker::serve_sweep(hub.endpoint(w), executor, grid);
      } catch (const testing::WorkerDied&) {
        hub.endpoint(w).leave();
      }
    });
  }
  coordinator::SweepPlan plan;
  plan.grid = &grid;
  plan.job_name = "test";
  plan.store_path = "memory";
  plan.attribution = attribution.book();
  if (ablation) {
    plan.ablation = ablation->book();
    plan.ablation_ready = [&](const coordinator::PhaseSummary& s) {
      ++out.ready_calls;
      out.seen_by_ready = s;
      // Every attribution unit that was not given up is flagged before rank 0 decides.
      std::size_t flagged = 0;
      for (auto f : attribution.done) flagged += f;
      EXPECT_EQ(flagged, s.done);
      return decide(s);
    };
  }
  options.progress_seconds = 1e9;
  out.summary = coordinator::coordinate_sweep(hub.endpoint(0), plan, options);
  if (before_join) before_join(hub);
  for (auto& t : threads) t.join();
  return out;
}

TEST(Loops, EveryUnitOnceInBothPhases) {
  const auto grid = make_grid();
  Book a(grid, sweep::Phase::Attribution), b(grid, sweep::Phase::Ablation);
  std::vector<std::atomic<int>> ca(grid.units.size()), cb(grid.units.size());
  const auto out = run_sweep(grid, 5, a, &b, ca, cb, nullptr, [](auto&) { return true; });
  for (std::size_t u = 0; u < grid.units.size(); ++u) {
    EXPECT_EQ(ca[u], 1) << "unit " << u;
    EXPECT_EQ(cb[u], 1) << "unit " << u;
    EXPECT_EQ(a.marks[u], 1);
    EXPECT_EQ(b.marks[u], 1);
  }
  for (std::size_t c = 0; c < grid.checkpoints.size(); ++c) {
    EXPECT_EQ(a.complete[c], 1);
    EXPECT_EQ(b.complete[c], 1);
  }
  EXPECT_EQ(out.ready_calls, 1);
  EXPECT_TRUE(out.summary.ablation_ran);
  EXPECT_EQ(out.summary.done, 2 * grid.units.size());
  std::size_t served = 0;
  for (auto s : out.served) served += s;
  EXPECT_EQ(served, 2 * grid.units.size());
}

TEST(Loops, FailuresRetriedThenGivenUpAndAblationHeldBackByRankZero) {
  const auto grid = make_grid();
  Book a(grid, sweep::Phase::Attribution), b(grid, sweep::Phase::Ablation);
  std::vector<std::atomic<int>> ca(grid.units.size()), cb(grid.units.size());
  // Unit 11 fails on every worker; unit 20 fails once on worker 1.
  const auto out = run_sweep(
      grid, 3, a, &b, ca, cb,
      [](int w, testing::FakeExecutor& e) {
        e.always_fails = {11};
        if (w == 1) e.fails_once = {20};
      },
      [](const coordinator::PhaseSummary& s) { return s.given_up == 0; });
  EXPECT_EQ(out.ready_calls, 1);
  EXPECT_EQ(out.seen_by_ready.given_up, 1u);
  EXPECT_EQ(out.seen_by_ready.done, grid.units.size() - 1);
  EXPECT_EQ(ca[11], 0);
  EXPECT_EQ(a.marks[11], 0);
  EXPECT_EQ(ca[20], 1);
  // Rank 0 said no: no worker ran a single ablation unit, and all came home.
  for (std::size_t u = 0; u < grid.units.size(); ++u) EXPECT_EQ(cb[u], 0) << "unit " << u;
  EXPECT_FALSE(out.summary.ablation_ran);
  std::size_t served = 0;
  for (auto s : out.served) served += s;
  EXPECT_EQ(served, grid.units.size() - 1);
  EXPECT_EQ(out.summary.given_up, 1u);
}

TEST(Loops, NoAblationPlannedMeansNoSecondPhase) {
  const auto grid = make_grid();
  Book a(grid, sweep::Phase::Attribution);
  std::vector<std::atomic<int>> ca(grid.units.size()), cb(grid.units.size());
  const auto out = run_sweep(grid, 2, a, nullptr, ca, cb, nullptr, nullptr);
  EXPECT_FALSE(out.summary.ablation_ran);
  for (std::size_t u = 0; u < grid.units.size(); ++u) EXPECT_EQ(cb[u], 0);
}

TEST(Loops, LostWorkersUnitGoesToAnother) {
  const auto grid = make_grid();
  Book a(grid, sweep::Phase::Attribution), b(grid, sweep::Phase::Ablation);
  std::vector<std::atomic<int>> ca(grid.units.size()), cb(grid.units.size());
  // Worker 2 dies on its first unit (mid-unit: no answer); the others hold
  // their first unit until it has, so that it surely gets one.
  std::atomic<bool> died{false};
  const auto out = run_sweep(
      grid, 3, a, &b, ca, cb,
      [&](int w, testing::FakeExecutor& e) {
        if (w == 2) {
          e.die_after = 0;
          e.on_first_unit = [&] { died = true; };
        } else {
          e.on_first_unit = [&] {
            while (!died) std::this_thread::yield();
          };
        }
      },
      [](auto&) { return true; });
  EXPECT_EQ(out.seen_by_ready.lost_workers, 1u);
  EXPECT_EQ(out.seen_by_ready.done, grid.units.size());
  for (std::size_t u = 0; u < grid.units.size(); ++u) {
    EXPECT_EQ(ca[u], 1) << "unit " << u;
    EXPECT_EQ(cb[u], 1) << "unit " << u;
  }
  EXPECT_TRUE(out.summary.ablation_ran);
  EXPECT_EQ(out.served[1], 0u);  // the dead worker returned nothing (its count is lost)
}

// Blocks the unit's thread until released: a worker that hangs mid-unit.
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  std::atomic<bool> entered{false};
  void hold() {
    entered = true;
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return open; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(m);
    open = true;
    cv.notify_all();
  }
};

TEST(Loops, HungWorkersUnitGoesToAnotherAndItIsRetiredWhenItAnswers) {
  const auto grid = make_grid();
  Book a(grid, sweep::Phase::Attribution), b(grid, sweep::Phase::Ablation);
  std::vector<std::atomic<int>> ca(grid.units.size()), cb(grid.units.size());
  // Worker 2 stops in its third unit and stays stopped until another worker
  // has redone that unit; then it answers (late): its report is ignored and
  // it is told to stop; the others finish both phases.
  Gate gate;
  std::atomic<int32_t> stuck{-1};
  coordinator::RunOptions options;
  options.unit_timeout = 1.0;
  options.max_lease = 1;  // one unit at a time: "its third unit" is its third assignment
  const auto out = run_sweep(
      grid, 3, a, &b, ca, cb,
      [&](int w, testing::FakeExecutor& e) {
        if (w == 2) {
          e.before_unit = [&, n = 0](const sweep::WorkUnit& u) mutable {
            if (++n == 3) {
              stuck = u.id;
              gate.hold();
            }
          };
        } else {
          // Under load the others could finish every unit before worker 2
          // reached its third: they hold their first until it is stuck.
          e.on_first_unit = [&] {
            while (stuck < 0) std::this_thread::yield();
          };
          e.before_unit = [&](const sweep::WorkUnit&) {
            // The first unit after the stuck one is redone: let worker 2 go.
            const int32_t s = stuck;
            if (s >= 0 && a.marks[s] == 1) gate.release();
          };
        }
      },
      [](auto&) { return true; }, options);
  ASSERT_GE(stuck.load(), 0);
  EXPECT_EQ(out.seen_by_ready.hung_workers, 1u);
  EXPECT_EQ(out.seen_by_ready.done, grid.units.size());
  for (std::size_t u = 0; u < grid.units.size(); ++u) {
    EXPECT_EQ(a.marks[u], 1) << "unit " << u;  // recorded once, the late report ignored
    EXPECT_EQ(b.marks[u], 1) << "unit " << u;
    EXPECT_EQ(ca[u], static_cast<int32_t>(u) == stuck ? 2 : 1) << "unit " << u;
  }
  EXPECT_TRUE(out.summary.ablation_ran);
  EXPECT_TRUE(out.summary.hung.empty());
  EXPECT_EQ(out.summary.retired, std::vector<int>{2});
  EXPECT_EQ(out.served[1], 3u);  // its two units and the late one; no ablation unit
}

TEST(Loops, WorkerSilentToTheEndIsReportedHung) {
  const auto grid = make_grid();
  Book a(grid, sweep::Phase::Attribution);
  std::vector<std::atomic<int>> ca(grid.units.size()), cb(grid.units.size());
  Gate gate;
  coordinator::RunOptions options;
  options.unit_timeout = 0.2;  // its lease of 11 units is due after 2.2 s
  std::size_t still_silent = 99;
  const auto out = run_sweep(
      grid, 2, a, nullptr, ca, cb,
      [&](int w, testing::FakeExecutor& e) {
        if (w == 1) e.before_unit = [&](const sweep::WorkUnit&) { gate.hold(); };
        // Worker 2 would do every lease before worker 1 asked for one.
        if (w == 2) {
          e.on_first_unit = [&] {
            while (!gate.entered) std::this_thread::yield();
          };
        }
      },
      nullptr, options,
      [&](transport::InProcessHub& hub) {
        // coordinate_sweep gave up waiting; now rank 0 lets the worker go
        // and answers it like the end of a run would.
        gate.release();
        coordinator::Departed away;
        away.hung = {1};
        still_silent = coordinator::wait_for_hung(hub.endpoint(0), away, 30);
      });
  EXPECT_TRUE(gate.entered);
  EXPECT_EQ(out.summary.hung, std::vector<int>{1});
  EXPECT_EQ(out.summary.done, grid.units.size());  // worker 2 did every unit
  EXPECT_EQ(still_silent, 0u);
  for (std::size_t u = 0; u < grid.units.size(); ++u) EXPECT_EQ(a.marks[u], 1) << "unit " << u;
}

TEST(Loops, AStopAssignsNothingMoreAndLetsTheUnitsInFlightFinish) {
  const auto grid = make_grid();
  Book a(grid, sweep::Phase::Attribution), b(grid, sweep::Phase::Ablation);
  std::vector<std::atomic<int>> ca(grid.units.size()), cb(grid.units.size());
  // A signal arrives while 20 units are done: rank 0 assigns nothing more;
  // what was assigned finishes and is recorded; no ablation follows.
  std::atomic<int> signal{0};
  coordinator::RunOptions options;
  options.stop_signal = [&] { return signal.load(); };
  options.max_lease = 1;  // what is in flight at the stop is a few units, not a few leases
  std::atomic<int> started{0};
  const auto out = run_sweep(
      grid, 3, a, &b, ca, cb,
      [&](int, testing::FakeExecutor& e) {
        e.before_unit = [&](const sweep::WorkUnit&) {
          if (++started == 20) signal = 15;
        };
      },
      [](auto&) { return true; }, options);
  EXPECT_EQ(out.summary.stop_signal, 15);
  EXPECT_FALSE(out.summary.ablation_ran);
  EXPECT_EQ(out.ready_calls, 0);  // a stopped attribution never asks for the ablation
  std::size_t computed = 0;
  for (std::size_t u = 0; u < grid.units.size(); ++u) {
    EXPECT_EQ(ca[u], a.marks[u]) << "unit " << u;  // every unit that ran was recorded once
    EXPECT_LE(ca[u], 1) << "unit " << u;
    EXPECT_EQ(cb[u], 0) << "unit " << u;
    computed += ca[u];
  }
  // The 20 started, plus at most the few already assigned when rank 0 looked.
  EXPECT_GE(computed, 20u);
  EXPECT_LE(computed, 26u);
  EXPECT_EQ(out.summary.done, computed);
}

// Leases: a worker gets a checkpoint's pending units together (6 checkpoints
// of 11 units, 3 workers: every worker's first lease is a whole checkpoint);
// at the tail they are cut so that no worker idles; every unit once.
TEST(Loops, LeasesHoldOneCheckpointsUnitsAndAreCutOnlyAtTheTail) {
  const auto grid = make_grid();
  Book a(grid, sweep::Phase::Attribution);
  std::vector<std::atomic<int>> ca(grid.units.size()), cb(grid.units.size());
  std::mutex mu;
  std::map<int, std::vector<std::vector<int32_t>>> leases;  // worker -> its leases
  std::atomic<int> started{0};
  const auto out = run_sweep(
      grid, 3, a, nullptr, ca, cb,
      [&](int w, testing::FakeExecutor& e) {
        e.on_lease = [&, w](const std::vector<const sweep::WorkUnit*>& units) {
          std::vector<int32_t> ids;
          for (const auto* u : units) ids.push_back(u->id);
          std::lock_guard<std::mutex> lock(mu);
          leases[w].push_back(ids);
        };
        // Each holds its first lease until all three have one (else the
        // first thread could take every checkpoint before the others ask).
        e.on_first_unit = [&] {
          ++started;
          while (started < 3) std::this_thread::yield();
        };
      },
      nullptr);
  std::size_t count = 0, units = 0;
  for (const auto& [w, list] : leases) {
    ASSERT_FALSE(list.empty()) << "worker " << w;
    EXPECT_EQ(list.front().size(), 11u) << "worker " << w << "'s first lease";
    for (const auto& l : list) {
      ++count;
      units += l.size();
      for (auto u : l) EXPECT_EQ(grid.units[u].checkpoint, grid.units[l.front()].checkpoint);
    }
  }
  EXPECT_EQ(units, grid.units.size());
  // 6 checkpoints; the last ones may be cut in up to 3 (workers / checkpoints left).
  EXPECT_GE(count, 6u);
  EXPECT_LE(count, 12u);
  for (std::size_t u = 0; u < grid.units.size(); ++u) EXPECT_EQ(ca[u], 1) << "unit " << u;
  EXPECT_EQ(out.summary.done, grid.units.size());
}

// A worker that hangs in the middle of its lease: after the lease's time
// (its units' timeouts summed) each unreported unit goes to the others; the
// units it reported before it hung stay done.
TEST(Loops, AHungLeasesUnreportedUnitsGoToOthers) {
  const auto grid = make_grid();
  Book a(grid, sweep::Phase::Attribution);
  std::vector<std::atomic<int>> ca(grid.units.size()), cb(grid.units.size());
  Gate gate;
  std::vector<int32_t> before_hang;
  coordinator::RunOptions options;
  options.unit_timeout = 0.1;
  const auto out = run_sweep(
      grid, 3, a, nullptr, ca, cb,
      [&](int w, testing::FakeExecutor& e) {
        if (w != 3) {
          e.on_first_unit = [&] {  // else they might leave worker 3 no lease at all
            while (!gate.entered) std::this_thread::yield();
          };
          return;
        }
        e.before_unit = [&, n = 0](const sweep::WorkUnit& u) mutable {
          if (++n == 4) gate.hold();  // 3 units reported, then silence
          if (n < 4) before_hang.push_back(u.id);
        };
      },
      nullptr, options,
      [&](transport::InProcessHub& hub) {
        // Let it go and answer it as the end of a run would (its late reports are ignored).
        gate.release();
        coordinator::Departed away;
        away.hung = {3};
        EXPECT_EQ(coordinator::wait_for_hung(hub.endpoint(0), away, 30), 0u);
      });
  EXPECT_TRUE(gate.entered);
  ASSERT_EQ(before_hang.size(), 3u);
  EXPECT_EQ(out.summary.done, grid.units.size());
  EXPECT_EQ(out.summary.hung, std::vector<int>{3});
  for (std::size_t u = 0; u < grid.units.size(); ++u) EXPECT_EQ(a.marks[u], 1) << "unit " << u;
  for (auto u : before_hang) EXPECT_EQ(ca[u], 1) << "unit " << u << " was reported before";
}

TEST(Loops, ResumeSkipsWhatIsDone) {
  const auto grid = make_grid();
  Book a(grid, sweep::Phase::Attribution), b(grid, sweep::Phase::Ablation);
  for (std::size_t u = 0; u < 40; ++u) a.done[u] = 1;  // checkpoints 0-2 and part of 3
  for (int c = 0; c < 3; ++c) a.complete[c] = 1;
  std::vector<std::atomic<int>> ca(grid.units.size()), cb(grid.units.size());
  const auto out = run_sweep(grid, 2, a, &b, ca, cb, nullptr, [](auto&) { return true; });
  for (std::size_t u = 0; u < grid.units.size(); ++u) EXPECT_EQ(ca[u], u < 40 ? 0 : 1) << u;
  // Checkpoint 3 was partly done: completed in this run; 0-2 not again.
  EXPECT_EQ(a.complete[0], 1);
  EXPECT_EQ(a.complete[3], 1);
  EXPECT_EQ(out.summary.done, 2 * grid.units.size());
}

// Shared loads: the workers of a node leased one checkpoint together get
// one group per load, its root first, the same ranks on every member.
struct SharedLoads {
  std::mutex m;
  std::map<int, std::vector<testing::FakeExecutor::Shared>> by_worker;
  std::function<void(int, testing::FakeExecutor&)> setup(std::function<int32_t(int)> node,
                                                         bool roots_fail = false) {
    return [this, node, roots_fail](int w, testing::FakeExecutor& e) {
      e.node = node(w);
      e.root_load_fails = roots_fail;
      e.on_exit = [this, w](const auto& shared) {
        std::lock_guard<std::mutex> lock(m);
        by_worker[w] = shared;
      };
    };
  }
  // Every load's group as its root saw it, checked against its members'.
  std::map<int32_t, std::vector<int32_t>> groups() {
    std::map<int32_t, std::vector<int32_t>> roots;
    for (const auto& [w, list] : by_worker) {
      for (const auto& s : list) {
        if (s.is_root) {
          EXPECT_EQ(s.root, w);
          roots[s.id] = s.ranks;
        }
      }
    }
    for (const auto& [w, list] : by_worker) {
      for (const auto& s : list) {
        if (s.is_root) continue;
        const auto& r = roots.at(s.id);
        if (s.ranks.empty()) continue;  // cancelled: it read the checkpoint itself
        EXPECT_EQ(s.ranks, r) << "worker " << w << ", shared load " << s.id;
        EXPECT_EQ(s.ranks.front(), s.root);
        EXPECT_NE(std::find(s.ranks.begin(), s.ranks.end(), w), s.ranks.end());
      }
    }
    return roots;
  }
};

sweep::Grid one_checkpoint_grid() {
  return sweep::build_grid({*sweep::parse_checkpoint_name("step10-tokens1B")}, {9, 4, 7, 8}, 2);
}

TEST(Loops, SharedLoadsGroupTheWorkersOfANodeLeasedOneCheckpoint) {
  const auto grid = one_checkpoint_grid();  // 5 + 2 + 4 + 4 = 15 units
  Book a(grid, sweep::Phase::Attribution), b(grid, sweep::Phase::Ablation);
  std::vector<std::atomic<int>> ca(grid.units.size()), cb(grid.units.size());
  coordinator::RunOptions options;
  options.share_loads = true;
  options.share_window = 1.0;  // the four first requests arrive well within it
  SharedLoads loads;
  // Workers 1 and 2 on the node of rank 1, 3 and 4 on that of rank 3.
  run_sweep(
      grid, 4, a, &b, ca, cb, loads.setup([](int w) { return w <= 2 ? 1 : 3; }),
      [](auto&) { return true; }, options);
  for (std::size_t u = 0; u < grid.units.size(); ++u) {
    EXPECT_EQ(ca[u], 1) << "unit " << u;
    EXPECT_EQ(cb[u], 1) << "unit " << u;
  }
  const auto groups = loads.groups();
  std::size_t members = 0;
  for (const auto& [id, ranks] : groups) {
    ASSERT_FALSE(ranks.empty());
    const bool first_node = ranks.front() <= 2;
    for (auto r : ranks) EXPECT_EQ(r <= 2, first_node) << "shared load " << id << " spans nodes";
    members += ranks.size() - 1;
  }
  // The attribution's first leases (the ablation's find the checkpoint
  // held): each worker that got one took part in exactly one shared load;
  // on a node, the second worker received what the first read (unless its
  // thread started a second later).
  std::size_t in_groups = 0, records = 0;
  for (const auto& [id, ranks] : groups) in_groups += ranks.size();
  for (const auto& [w, list] : loads.by_worker) {
    EXPECT_LE(list.size(), 1u) << "worker " << w;
    records += list.size();
  }
  EXPECT_EQ(in_groups, records);
  EXPECT_GE(records, 3u);
  EXPECT_GE(members, 1u);
}

TEST(Loops, ASharedLoadWhoseRootFailsIsReadByEachMember) {
  const auto grid = one_checkpoint_grid();
  Book a(grid, sweep::Phase::Attribution);
  std::vector<std::atomic<int>> ca(grid.units.size()), cb(grid.units.size());
  coordinator::RunOptions options;
  options.share_loads = true;
  options.share_window = 0.5;
  options.max_attempts = 10;  // each worker's first load as a root fails: retried
  SharedLoads loads;
  // Every worker on one node; each one's first load as a root fails (its
  // lease's units fail and go to others); its members read it themselves.
  run_sweep(grid, 3, a, nullptr, ca, cb, loads.setup([](int) { return 1; }, true), nullptr,
            options);
  for (std::size_t u = 0; u < grid.units.size(); ++u) EXPECT_EQ(ca[u], 1) << "unit " << u;
  loads.groups();
  std::set<int32_t> failed;  // the loads whose root failed: the first of each root
  std::set<int> roots;
  for (const auto& [w, list] : loads.by_worker) {
    for (const auto& s : list) {
      if (s.is_root && roots.insert(w).second) {
        failed.insert(s.id);
        EXPECT_TRUE(s.ranks.empty()) << "the failed load " << s.id << " has a group";
      }
    }
  }
  ASSERT_FALSE(failed.empty());
  std::size_t cancelled = 0;
  for (const auto& [w, list] : loads.by_worker) {
    for (const auto& s : list) {
      if (!s.is_root && failed.count(s.id)) {
        EXPECT_TRUE(s.ranks.empty()) << "worker " << w << " joined the failed load " << s.id;
        ++cancelled;
      }
    }
  }
  EXPECT_GE(cancelled, 1u);  // the first load's members (the window holds all three)
}

TEST(InProcessHub, CollectivesAndMessages) {
  transport::InProcessHub hub(4);
  std::vector<std::string> got(4);
  std::vector<std::optional<transport::RankError>> errors(4);
  std::vector<std::thread> threads;
  for (int r = 0; r < 4; ++r) {
    threads.emplace_back([&, r] {
      auto& t = hub.endpoint(r);
      got[r] = t.broadcast(r == 0 ? "from zero" : "ignored");
      errors[r] = t.agree_error(r == 2 || r == 3 ? "rank " + std::to_string(r) + " failed" : "");
      if (r != 0) transport::send(t, 0, sweep::WorkRequest{r * 10});
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(got[r], "from zero");
    ASSERT_TRUE(errors[r].has_value());
    EXPECT_EQ(errors[r]->rank, 2);
    EXPECT_EQ(errors[r]->message, "rank 2 failed");
  }
  auto& zero = hub.endpoint(0);
  const auto m3 = zero.receive(3);  // from one rank, whatever arrived first
  EXPECT_EQ(sweep::decode_work_request(m3.bytes).loaded_checkpoint, 30);
  std::set<int> sources;
  while (auto m = zero.poll()) sources.insert(m->source);
  EXPECT_EQ(sources, (std::set<int>{1, 2}));
  EXPECT_FALSE(zero.poll().has_value());
  hub.endpoint(2).leave();
  const auto lost = zero.receive();
  EXPECT_EQ(lost.kind, sweep::MessageKind::WorkerLost);
  EXPECT_EQ(lost.source, 2);
}

}  // namespace
}  // namespace lpi

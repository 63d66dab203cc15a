// The coordinator's scheduling without MPI: the grid, then workers as threads
// in one process pulling units, failing some, dying; every unit ends done
// exactly once or given up, with checkpoint affinity.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include "coordinator/scheduler.hpp"

namespace lpi::coordinator {
namespace {
using sweep::CheckpointRef;

std::vector<CheckpointRef> checkpoints(int n) {
  std::vector<CheckpointRef> out;
  for (int i = n - 1; i >= 0; --i) {  // out of order on purpose
    out.push_back(*sweep::parse_checkpoint_name("step" + std::to_string(i * 10) + "-tokens" +
                                                std::to_string(i) + "K"));
  }
  return out;
}

TEST(Grid, ParsesRevisionNames) {
  const auto a = sweep::parse_checkpoint_name("step10000-tokens41B");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->step, 10000);
  EXPECT_EQ(a->tokens, 41000000000LL);
  EXPECT_EQ(sweep::parse_checkpoint_name("step700-tokens716800")->tokens, 716800);
  EXPECT_FALSE(sweep::parse_checkpoint_name("main"));
  EXPECT_FALSE(sweep::parse_checkpoint_name("step10-tokens5X"));
  EXPECT_FALSE(sweep::parse_checkpoint_name("step99999999999999999999-tokens1"));
}

TEST(Grid, UnitsCoverEveryPromptOnceAndNeverStraddleARelation) {
  const auto grid = sweep::build_grid(checkpoints(3), {5, 0, 7, 1}, 3);
  EXPECT_EQ(grid.checkpoints.front().step, 0);  // sorted by step
  EXPECT_EQ(grid.prompt_count(), 13);
  // per checkpoint: ceil(5/3) + 0 + ceil(7/3) + 1 = 2 + 3 + 1 = 6 units
  EXPECT_EQ(grid.units.size(), 18u);
  std::vector<int> covered(13 * 3, 0);
  for (const auto& u : grid.units) {
    EXPECT_LE(u.prompt_count, 3);
    for (int p = 0; p < u.prompt_count; ++p) ++covered[u.checkpoint * 13 + u.first_prompt + p];
  }
  for (int c : covered) EXPECT_EQ(c, 1);
  EXPECT_THROW(sweep::build_grid(checkpoints(2), {4}, 0), std::invalid_argument);
  auto twice = checkpoints(2);
  twice.push_back(twice.front());
  EXPECT_THROW(sweep::build_grid(twice, {4}, 2), std::invalid_argument);
}

TEST(Scheduler, WorkersStayOnTheirCheckpointAndShareTheTail) {
  const auto grid = sweep::build_grid(checkpoints(4), {8, 8}, 2);  // 8 units per checkpoint
  Scheduler s(grid);
  std::map<int, int32_t> loaded = {{1, -1}, {2, -1}};
  int switches = 0;
  while (!s.finished()) {
    for (int w : {1, 2}) {
      auto u = s.next(w, loaded[w]);
      if (!u) continue;
      if (u->checkpoint != loaded[w]) ++switches;
      loaded[w] = u->checkpoint;
      s.completed(w, u->id);
      s.check_invariants();
    }
  }
  EXPECT_EQ(s.done_count(), grid.units.size());
  EXPECT_EQ(s.checkpoints_done(), 4u);
  // Each worker loads a fresh checkpoint in step order: 4 loads in all, no
  // ping-pong between checkpoints.
  EXPECT_EQ(switches, 4);
}

TEST(Scheduler, AtTheTailAnIdleWorkerSharesTheBusiestCheckpoint) {
  const auto grid = sweep::build_grid(checkpoints(2), {8}, 2);  // 4 units per checkpoint
  Scheduler s(grid);
  const auto a = s.next(1, -1), b = s.next(2, -1);
  EXPECT_EQ(a->checkpoint, 0);
  EXPECT_EQ(b->checkpoint, 1);  // a fresh checkpoint before sharing
  s.completed(1, a->id);
  s.completed(2, b->id);
  // Worker 2 finishes checkpoint 1 while worker 1 still has checkpoint 0.
  for (int i = 0; i < 3; ++i) s.completed(2, s.next(2, 1)->id);
  const auto shared = s.next(2, 1);
  ASSERT_TRUE(shared);
  EXPECT_EQ(shared->checkpoint, 0);
  s.check_invariants();
}

TEST(Scheduler, ResumeSkipsDoneUnitsAndFailuresAreRetriedThenGivenUp) {
  const auto grid = sweep::build_grid(checkpoints(2), {6}, 2);  // 3 units per checkpoint
  std::vector<bool> done(grid.units.size(), false);
  done[0] = done[4] = true;
  Scheduler s(grid, done, {2});
  EXPECT_EQ(s.pending_count(), 4u);
  int32_t loaded = -1;
  while (!s.finished()) {
    auto u = s.next(7, loaded);
    ASSERT_TRUE(u);
    EXPECT_NE(u->id, 0);
    EXPECT_NE(u->id, 4);
    loaded = u->checkpoint;
    if (u->id == 2) {
      s.failed(7, u->id, "corrupt tensor");  // always fails: given up after 2 attempts
    } else {
      s.completed(7, u->id);
    }
    s.check_invariants();
  }
  EXPECT_EQ(s.done_count(), 5u);
  ASSERT_EQ(s.given_up().size(), 1u);
  EXPECT_EQ(s.given_up()[0].unit, 2);
  ASSERT_EQ(s.given_up()[0].errors.size(), 2u);
  EXPECT_EQ(s.given_up()[0].errors[0], "worker 7: corrupt tensor");
  EXPECT_THROW(s.completed(7, 3), std::logic_error);
}

// Leases: a whole checkpoint while every worker can have its own, then cut
// into workers / checkpoints-left shares; the cap bounds them.
TEST(Scheduler, LeasesAreWholeCheckpointsUntilTheTail) {
  const auto grid = sweep::build_grid(checkpoints(3), {16}, 2);  // 8 units per checkpoint
  Scheduler s(grid, {}, {3, 2});
  const auto a = s.lease(1, -1), b = s.lease(2, -1);
  EXPECT_EQ(a, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));  // checkpoint 0, all of it
  // Two checkpoints with pending units (1 and 2) for two workers: whole.
  EXPECT_EQ(b, (std::vector<int32_t>{8, 9, 10, 11, 12, 13, 14, 15}));
  EXPECT_EQ(s.in_flight(1), a);
  s.check_invariants();
  for (auto u : b) s.completed(2, u);
  // One checkpoint left for two workers: cut in two.
  EXPECT_EQ(s.lease(2, 1), (std::vector<int32_t>{16, 17, 18, 19}));
  for (auto u : a) s.completed(1, u);
  EXPECT_EQ(s.lease(1, 0), (std::vector<int32_t>{20, 21, 22, 23}));
  EXPECT_THROW(s.lease(1, 2), std::logic_error);  // it holds a lease
  s.check_invariants();

  Scheduler capped(grid, {}, {3, 1, 3});
  EXPECT_EQ(capped.lease(1, -1), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(capped.next(2, -1)->id, 8);  // next(): a lease of one (of a fresh checkpoint)
}

// More workers than checkpoints at the start (every lease just began): each
// checkpoint is cut by its share of the idle workers, rounded down (4 / 2
// checkpoints: 2 ways; with 5 workers 2.5 is 2, and the fifth gets nothing
// rather than a third piece), in leases of equal prompts, not equal units.
TEST(Scheduler, ManyWorkersCutEachCheckpointOnceInEqualPrompts) {
  // Units of 3, 3, 3, 3, 6 and 6 prompts per checkpoint (24 prompts).
  const auto grid = sweep::build_grid(checkpoints(2), {3, 3, 3, 3, 6, 6}, 6);
  for (int workers : {4, 5}) {
    Scheduler s(grid, {}, {3, workers});
    std::vector<std::vector<int32_t>> leases;
    for (int w = 1; w <= workers; ++w) {
      leases.push_back(s.lease(w, -1));
      EXPECT_EQ(s.prefetch_hint(w), -1) << "no checkpoint to spare";
    }
    EXPECT_EQ(leases[0], (std::vector<int32_t>{0, 1, 2, 3}));  // 12 prompts, not 3 units' 9
    EXPECT_EQ(leases[1], (std::vector<int32_t>{6, 7, 8, 9}));  // a fresh checkpoint first
    EXPECT_EQ(leases[2], (std::vector<int32_t>{4, 5}));        // the other 12
    EXPECT_EQ(leases[3], (std::vector<int32_t>{10, 11}));
    if (workers == 5) {
      EXPECT_TRUE(leases[4].empty());
    }
    EXPECT_EQ(s.pending_count(), 0u);
    s.check_invariants();
  }
}

// A checkpoint more than the workers at the start: the busy workers beyond
// the idle ones are promised it (the prefetch hint), shared out, and each
// promised worker's next lease is an equal part of it, which no other
// worker takes. A lost worker's promise ends with it.
TEST(Scheduler, ASpareCheckpointIsPromisedToEveryWorkerAndSharedEqually) {
  const auto grid = sweep::build_grid(checkpoints(5), {8}, 2);  // 4 units of 2 per checkpoint
  Scheduler s(grid, {}, {3, 4});
  for (int w = 1; w <= 4; ++w) {
    const auto first = s.lease(w, -1);
    ASSERT_EQ(first.size(), 4u) << "worker " << w << ": a whole checkpoint";
    EXPECT_EQ(s.prefetch_hint(w), 1) << "worker " << w;
  }
  // Checkpoints 0, 2, 3, 4 are leased; 1 is promised to all four.
  EXPECT_EQ(s.pending_count(), 4u);
  EXPECT_TRUE(s.lease(9, -1).empty()) << "a worker without the promise takes none of it";
  s.check_invariants();
  Scheduler lost = s;
  for (int w = 1; w <= 4; ++w) {
    const auto held = s.in_flight(w);
    for (auto u : held) s.completed(w, u);
    const auto second = s.lease(w, grid.units[held.front()].checkpoint);
    ASSERT_EQ(second.size(), 1u) << "worker " << w << ": a quarter of checkpoint 1";
    EXPECT_EQ(grid.units[second.front()].checkpoint, 1);
  }
  EXPECT_EQ(s.pending_count(), 0u);
  // The same start with worker 2 lost: the other three share checkpoint 1
  // (its own lease, checkpoint 2, is pending again).
  lost.worker_lost(2);
  std::size_t units = 0;
  for (int w : {1, 3, 4}) {
    const auto held = lost.in_flight(w);
    for (auto u : held) lost.completed(w, u);
    const auto second = lost.lease(w, grid.units[held.front()].checkpoint);
    for (auto u : second) EXPECT_EQ(grid.units[u].checkpoint, 1) << "worker " << w;
    units += second.size();
  }
  EXPECT_EQ(units, 4u);
  EXPECT_EQ(lost.pending_count(), 4u);
  lost.check_invariants();
}

TEST(Scheduler, ALeasesFailuresLossAndTimeoutPutItsUnitsBack) {
  const auto grid = sweep::build_grid(checkpoints(2), {8}, 2);  // 4 units per checkpoint
  Scheduler s(grid, {}, {2, 2});
  const auto a = s.lease(1, -1);
  ASSERT_EQ(a, (std::vector<int32_t>{0, 1, 2, 3}));
  s.completed(1, 0);
  s.failed(1, 2, "bad slab");
  EXPECT_EQ(s.in_flight(1), (std::vector<int32_t>{1, 3}));
  EXPECT_THROW(s.completed(1, 2), std::logic_error);  // no longer held
  EXPECT_EQ(s.pending_count(), 5u);                   // unit 2 and checkpoint 1
  s.check_invariants();
  // Lost: its two unreported units go back to the front of the queue, in order.
  s.worker_lost(1);
  EXPECT_TRUE(s.in_flight(1).empty());
  EXPECT_EQ(s.pending_count(), 7u);
  s.check_invariants();
  // One worker left: it gets every pending unit of checkpoint 0 at once.
  EXPECT_EQ(s.lease(2, 0), (std::vector<int32_t>{1, 3, 2}));
  const auto late = s.timed_out(2, "no report");
  EXPECT_EQ(late, (std::vector<int32_t>{1, 3, 2}));
  // Unit 2 had failed once already: with max_attempts 2 it is given up now.
  ASSERT_EQ(s.given_up().size(), 1u);
  EXPECT_EQ(s.given_up()[0].unit, 2);
  EXPECT_EQ(s.given_up()[0].errors,
            (std::vector<std::string>{"worker 1: bad slab", "worker 2: no report"}));
  EXPECT_EQ(s.pending_count(), 6u);
  s.check_invariants();
}

// Worker threads in one process: random failures (retried), one worker that
// dies mid-unit, one checkpoint whose units always fail. Every other unit is
// done exactly once.
TEST(Scheduler, ThreadedWorkersWithFailuresAndADeadWorker) {
  const auto grid = sweep::build_grid(checkpoints(6), {10, 7, 5}, 3);
  std::mutex mu;
  Scheduler s(grid, {}, {3});
  std::vector<std::atomic<int>> completions(grid.units.size());
  std::vector<std::atomic<bool>> flaked(grid.units.size());
  auto worker = [&](int id, bool dies) {
    std::mt19937 rng(id);
    int32_t loaded = -1;
    int handled = 0;
    while (true) {
      std::optional<sweep::WorkUnit> u;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (s.finished()) return;
        u = s.next(id, loaded);
      }
      if (!u) {
        std::this_thread::yield();
        continue;
      }
      loaded = u->checkpoint;
      if (dies && ++handled == 3) {
        std::lock_guard<std::mutex> lock(mu);
        s.worker_lost(id);  // what the coordinator does when the rank is gone
        return;
      }
      const bool corrupt = u->checkpoint == 4;
      // A transient failure strikes a unit once at most: three in a row would
      // give it up (about one run in twenty, with 45 units).
      const bool flaky =
          std::uniform_real_distribution<>(0, 1)(rng) < 0.1 && !flaked[u->id].exchange(true);
      std::lock_guard<std::mutex> lock(mu);
      if (corrupt || flaky) {
        s.failed(id, u->id, corrupt ? "checkpoint 4 is corrupt" : "transient");
      } else {
        ++completions[u->id];
        s.completed(id, u->id);
      }
      s.check_invariants();
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w <= 4; ++w) threads.emplace_back(worker, w, w == 2);
  for (auto& t : threads) t.join();
  EXPECT_TRUE(s.finished());
  std::size_t given_up_units = 0;
  for (const auto& g : s.given_up()) {
    EXPECT_EQ(grid.units[g.unit].checkpoint, 4)
        << "unit " << g.unit << " given up: " << g.errors.back();
    ++given_up_units;
  }
  std::size_t on_checkpoint_4 = 0;
  for (const auto& u : grid.units) on_checkpoint_4 += u.checkpoint == 4;
  EXPECT_EQ(given_up_units, on_checkpoint_4);
  for (const auto& u : grid.units) {
    EXPECT_EQ(completions[u.id].load(), u.checkpoint == 4 ? 0 : 1) << "unit " << u.id;
  }
  EXPECT_EQ(s.done_count() + given_up_units, grid.units.size());
  EXPECT_EQ(s.checkpoints_done(), 5u);
}

}  // namespace
}  // namespace lpi::coordinator

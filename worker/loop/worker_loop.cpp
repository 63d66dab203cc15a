#include "worker/loop/worker_loop.hpp"

#include <chrono>
#include <set>
#include <stdexcept>
#include <string>

#include "common/sweep/stop.hpp"

namespace lpi::worker {
using sweep::MessageKind;

Served serve_phase(transport::Transport& t, sweep::Executor& executor, sweep::Phase phase,
                   const sweep::Grid& grid) {
  using clock = std::chrono::steady_clock;
  std::size_t completed = 0;
  while (true) {
    const auto asked = clock::now();
    // A stop asked of this rank (SIGTERM) goes to rank 0, which stops the run.
    transport::send(
        t, 0,
        sweep::WorkRequest{executor.loaded(), sweep::stop_requested(), executor.share_node()});
    const auto m = t.receive(0);
    const double waited = std::chrono::duration<double>(clock::now() - asked).count();
    if (m.kind == MessageKind::Shutdown)
      return {completed, sweep::decode_shutdown(m.bytes).next_phase};
    if (m.kind != MessageKind::Assign)
      throw sweep::ProtocolError(std::string("worker: unexpected ") + sweep::kind_name(m.kind) +
                                 " from rank 0");
    const auto a = sweep::decode_assign(m.bytes);
    std::vector<const sweep::WorkUnit*> lease;
    for (const auto id : a.units) {
      if (id < 0 || id >= static_cast<int32_t>(grid.units.size()))
        throw sweep::ProtocolError("worker: unit " + std::to_string(id) + " is not in the grid");
      lease.push_back(&grid.units[id]);
      if (lease.back()->checkpoint != lease.front()->checkpoint)
        throw sweep::ProtocolError("worker: a lease of units of more than one checkpoint");
    }
    // Every unit of the lease is reported exactly once; those the executor
    // left unreported when it threw are reported failed with its message.
    std::set<int32_t> unreported(a.units.begin(), a.units.end());
    bool first = true;
    const auto report = [&](int32_t unit, const sweep::UnitReport& r) {
      if (!unreported.erase(unit)) return;  // not in the lease, or reported already
      if (r.error) {
        transport::send(t, 0, sweep::UnitFailed{unit, *r.error});
      } else {
        ++completed;
        transport::send(t, 0,
                        sweep::UnitDone{unit, r.compute_seconds, r.load_seconds, r.store_seconds,
                                        first ? waited : 0, r.projection_tiles});
      }
      first = false;
    };
    // A shared load: the root says when its load ended, then rank 0 names
    // the group (the members wait for that at once). Exactly once, even
    // when the executor threw before it asked: rank 0 and the other
    // members wait for it.
    bool grouped = false;
    sweep::LoadShare share;
    share.id = a.share_id;
    share.root = a.share_root;
    share.is_root = a.share_root == t.rank();
    share.group = [&](bool loaded) -> std::vector<int32_t> {
      if (grouped) throw std::logic_error("worker: a shared load's group asked twice");
      grouped = true;
      if (share.is_root)
        transport::send(t, 0, sweep::ShareReady{a.share_id, loaded ? uint8_t{1} : uint8_t{0}});
      const auto g = t.receive(0);
      if (g.kind != MessageKind::ShareGroup)
        throw sweep::ProtocolError(std::string("worker: ") + sweep::kind_name(g.kind) +
                                   " from rank 0 where the group of shared load " +
                                   std::to_string(a.share_id) + " was expected");
      auto group = sweep::decode_share_group(g.bytes);
      if (group.share_id != a.share_id)
        throw sweep::ProtocolError("worker: the group of shared load " +
                                   std::to_string(group.share_id) + " where " +
                                   std::to_string(a.share_id) + " was expected");
      return group.ranks;
    };
    std::string thrown;
    try {
      if (a.share_id >= 0) {
        executor.run_shared_lease(phase, lease, a.prefetch_checkpoint, share, report);
      } else {
        executor.run_lease(phase, lease, a.prefetch_checkpoint, report);
      }
    } catch (const std::exception& e) {
      thrown = e.what();
    }
    if (a.share_id >= 0 && !grouped) {
      // The executor failed before its load: the root's load failed too, so
      // rank 0 cancels the group; a member listed nonetheless cannot take
      // part, which would leave the others waiting: the error is fatal.
      if (!share.group(false).empty() && !share.is_root)
        throw std::runtime_error("worker: shared load " + std::to_string(a.share_id) +
                                 " failed before this member joined: " + thrown);
    }
    sweep::UnitReport failed;
    failed.error = thrown.empty() ? "the worker did not report the unit" : thrown;
    for (const auto id : a.units) {
      if (unreported.count(id)) report(id, failed);
    }
  }
}

std::size_t serve_sweep(transport::Transport& t, sweep::Executor& executor,
                        const sweep::Grid& grid) {
  // Rank 0 alone decides what comes next; the workers only listen.
  auto served = serve_phase(t, executor, sweep::Phase::Attribution, grid);
  std::size_t completed = served.units;
  for (int phases = 1; served.next_phase >= 0; ++phases) {
    if (phases > 8) throw sweep::ProtocolError("worker: rank 0 keeps naming another phase");
    served = serve_phase(t, executor, static_cast<sweep::Phase>(served.next_phase), grid);
    completed += served.units;
  }
  return completed;
}

}  // namespace lpi::worker

#include "worker/loop/worker_loop.hpp"

#include "common/sweep/stop.hpp"

#include <chrono>

namespace lpi::worker {
using sweep::MessageKind;

Served serve_phase(transport::Transport& t, sweep::Executor& executor, sweep::Phase phase,
                   const sweep::Grid& grid) {
  using clock = std::chrono::steady_clock;
  std::size_t completed = 0;
  while (true) {
    const auto asked = clock::now();
    // A stop asked of this rank (SIGTERM) goes to rank 0, which stops the run.
    transport::send(t, 0, sweep::WorkRequest{executor.loaded(), sweep::stop_requested()});
    const auto m = t.receive(0);
    const double waited = std::chrono::duration<double>(clock::now() - asked).count();
    if (m.kind == MessageKind::Shutdown)
      return {completed, sweep::decode_shutdown(m.bytes).next_phase};
    if (m.kind != MessageKind::Assign)
      throw sweep::ProtocolError(std::string("worker: unexpected ") + sweep::kind_name(m.kind) +
                                 " from rank 0");
    const auto a = sweep::decode_assign(m.bytes);
    if (a.unit < 0 || a.unit >= static_cast<int32_t>(grid.units.size())) {
      throw sweep::ProtocolError("worker: unit " + std::to_string(a.unit) + " is not in the grid");
    }
    sweep::UnitReport r;
    try {
      r = executor.run(phase, grid.units[a.unit], a.prefetch_checkpoint);
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    if (r.error) {
      transport::send(t, 0, sweep::UnitFailed{a.unit, *r.error});
    } else {
      ++completed;
      transport::send(
          t, 0,
          sweep::UnitDone{a.unit, r.compute_seconds, r.load_seconds, r.store_seconds, waited});
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

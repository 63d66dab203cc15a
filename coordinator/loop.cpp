#include "coordinator/loop.hpp"

#include <chrono>
#include <set>

namespace lpi::coordinator {
using sweep::MessageKind;

LoopReport run_coordinator(const mpi::Comm& comm, Scheduler& scheduler,
                           const CoordinatorHooks& hooks) {
  LoopReport report;
  std::set<int> waiting;  // workers that asked while nothing was pending
  std::map<int, int32_t> loaded;
  int running = comm.size() - 1;
  auto answer = [&](int worker) {
    if (auto unit = scheduler.next(worker, loaded[worker])) {
      const auto assign = sweep::Assign{unit->id, scheduler.prefetch_hint(worker)};
      mpi::send(comm, worker, MessageKind::Assign, sweep::encode(assign));
      loaded[worker] = unit->checkpoint;
    } else if (scheduler.finished()) {
      mpi::send(comm, worker, MessageKind::Shutdown, sweep::encode(sweep::Shutdown{}));
      --running;
    } else {
      waiting.insert(worker);  // units in flight may fail and come back
    }
  };
  auto wake = [&] {
    for (auto it = waiting.begin(); it != waiting.end();) {
      const int worker = *it;
      it = waiting.erase(it);
      answer(worker);
    }
  };
  while (running > 0) {
    const auto m = mpi::receive(comm);
    ++report.messages;
    switch (m.kind) {
      case MessageKind::WorkRequest:
        loaded[m.source] = sweep::decode_work_request(m.bytes).loaded_checkpoint;
        answer(m.source);
        break;
      case MessageKind::UnitDone: {
        const auto d = sweep::decode_unit_done(m.bytes);
        if (hooks.on_done) hooks.on_done(m.source, d);
        scheduler.completed(m.source, d.unit);
        wake();
        break;
      }
      case MessageKind::UnitFailed: {
        const auto f = sweep::decode_unit_failed(m.bytes);
        scheduler.failed(m.source, f.unit, f.error);
        wake();
        break;
      }
      default:
        throw sweep::ProtocolError(std::string("coordinator: unexpected ") +
                                   sweep::kind_name(m.kind) + " from rank " +
                                   std::to_string(m.source));
    }
    scheduler.check_invariants();
    if (hooks.after_message) hooks.after_message(scheduler);
  }
  report.done = scheduler.done_count();
  report.given_up = scheduler.given_up().size();
  return report;
}

std::size_t run_worker(const mpi::Comm& comm, const WorkerCallbacks& callbacks,
                       const sweep::Grid& grid) {
  using clock = std::chrono::steady_clock;
  std::size_t completed = 0;
  while (true) {
    const auto asked = clock::now();
    mpi::send(comm, 0, MessageKind::WorkRequest, sweep::encode(sweep::WorkRequest{callbacks.loaded()}));
    const auto m = mpi::receive(comm, 0);
    const double waited = std::chrono::duration<double>(clock::now() - asked).count();
    if (m.kind == MessageKind::Shutdown) {
      sweep::decode_shutdown(m.bytes);
      return completed;
    }
    const auto a = sweep::decode_assign(m.bytes);
    if (a.unit >= static_cast<int32_t>(grid.units.size())) {
      throw sweep::ProtocolError("worker: unit " + std::to_string(a.unit) + " is not in the grid");
    }
    UnitReport r;
    try {
      r = callbacks.compute(grid.units[a.unit], a.prefetch_checkpoint);
    } catch (const std::exception& e) {
      r.error = e.what();
    }
    if (r.error) {
      mpi::send(comm, 0, MessageKind::UnitFailed, sweep::encode(sweep::UnitFailed{a.unit, *r.error}));
    } else {
      ++completed;
      mpi::send(comm, 0, MessageKind::UnitDone,
                sweep::encode(sweep::UnitDone{a.unit, r.compute_seconds, r.load_seconds,
                                              r.store_seconds, waited}));
    }
  }
}

}  // namespace lpi::coordinator

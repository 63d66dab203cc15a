#include "coordinator/loop.hpp"

#include <set>

namespace lpi::coordinator {
using sweep::MessageKind;

LoopReport run_coordinator(const mpi::Comm& comm, Scheduler& scheduler,
                           const std::function<void(const Scheduler&)>& progress) {
  LoopReport report;
  std::set<int> waiting;  // workers that asked while nothing was pending
  std::map<int, int32_t> loaded;
  int running = comm.size() - 1;
  auto answer = [&](int worker) {
    if (auto unit = scheduler.next(worker, loaded[worker])) {
      mpi::send(comm, worker, MessageKind::Assign, sweep::encode(sweep::Assign{unit->id, -1}));
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
      case MessageKind::UnitDone:
        scheduler.completed(m.source, sweep::decode_unit_done(m.bytes).unit);
        if (progress) progress(scheduler);
        wake();
        break;
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
  }
  report.done = scheduler.done_count();
  report.given_up = scheduler.given_up().size();
  return report;
}

void run_worker(const mpi::Comm& comm,
                const std::function<std::optional<std::string>(const sweep::WorkUnit&,
                                                               int32_t& loaded)>& compute,
                const sweep::Grid& grid) {
  int32_t loaded = -1;
  while (true) {
    mpi::send(comm, 0, MessageKind::WorkRequest, sweep::encode(sweep::WorkRequest{loaded}));
    const auto m = mpi::receive(comm, 0);
    if (m.kind == MessageKind::Shutdown) {
      sweep::decode_shutdown(m.bytes);
      return;
    }
    const auto a = sweep::decode_assign(m.bytes);
    if (a.unit >= static_cast<int32_t>(grid.units.size())) {
      throw sweep::ProtocolError("worker: unit " + std::to_string(a.unit) + " is not in the grid");
    }
    std::optional<std::string> error;
    try {
      error = compute(grid.units[a.unit], loaded);
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (error) {
      mpi::send(comm, 0, MessageKind::UnitFailed, sweep::encode(sweep::UnitFailed{a.unit, *error}));
    } else {
      mpi::send(comm, 0, MessageKind::UnitDone, sweep::encode(sweep::UnitDone{a.unit, 0, 0, 0}));
    }
  }
}

}  // namespace lpi::coordinator

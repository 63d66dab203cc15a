#include "coordinator/loop.hpp"

#include <map>
#include <set>

namespace lpi::coordinator {
using sweep::MessageKind;

LoopReport run_coordinator(transport::Transport& transport, Scheduler& scheduler,
                           const CoordinatorHooks& hooks, std::set<int>* lost) {
  LoopReport report;
  std::set<int> waiting;  // workers that asked while nothing was pending
  std::set<int> gone;     // shut down or lost
  if (lost) gone = *lost;
  std::map<int, int32_t> loaded;
  int running = transport.size() - 1 - static_cast<int>(gone.size());
  auto answer = [&](int worker) {
    if (auto unit = scheduler.next(worker, loaded[worker])) {
      transport::send(transport, worker, sweep::Assign{unit->id, scheduler.prefetch_hint(worker)});
      loaded[worker] = unit->checkpoint;
    } else if (scheduler.finished()) {
      transport::send(transport, worker, sweep::Shutdown{});
      gone.insert(worker);
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
    const auto m = transport.receive();
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
      case MessageKind::WorkerLost:
        if (gone.insert(m.source).second) {
          if (lost) lost->insert(m.source);
          scheduler.worker_lost(m.source);
          waiting.erase(m.source);
          ++report.lost;
          --running;
          wake();
        }
        break;
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

}  // namespace lpi::coordinator

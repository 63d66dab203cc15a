#include "coordinator/loop.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "common/log/log.hpp"
#include "common/sweep/stop.hpp"

namespace lpi::coordinator {
using sweep::MessageKind;
using clock_type = std::chrono::steady_clock;

namespace {

// A message from a worker rank 0 no longer waits for: a hung worker that
// speaks again is retired (a work request is answered "stop"); a late
// report is ignored, since its unit went back to the scheduler when it
// timed out (the worker wrote the same slab as its replacement: the same
// checkpoint, prompts and settings give the same values).
void from_departed(transport::Transport& t, Departed& d, const transport::Message& m) {
  const int w = m.source;
  if (m.kind == MessageKind::WorkerLost) {
    d.hung.erase(w);
    d.returned.erase(w);
    d.stopped.erase(w);
    d.lost.insert(w);
    return;
  }
  if (d.hung.erase(w)) {
    d.returned.insert(w);
    LPI_LOG(warning) << "rank " << w
                     << " speaks again after its unit timed out; it gets no more work in this run";
  }
  switch (m.kind) {
    case MessageKind::WorkRequest:
      sweep::decode_work_request(m.bytes);
      if (d.returned.erase(w)) {
        transport::send(t, w, sweep::Shutdown{-1});
        d.stopped.insert(w);
      }
      break;
    case MessageKind::UnitDone:
      LPI_LOG(warning) << "rank " << w << "'s late report of unit "
                       << sweep::decode_unit_done(m.bytes).unit
                       << " is ignored (the unit went to another worker)";
      break;
    case MessageKind::UnitFailed:
      LPI_LOG(warning) << "rank " << w << "'s late failure of unit "
                       << sweep::decode_unit_failed(m.bytes).unit << " is ignored";
      break;
    case MessageKind::ShareReady:
      // Its shared load was cancelled when it was taken as hung: it gets an
      // empty group, goes on alone and is told to stop when it asks again.
      transport::send(t, w, sweep::ShareGroup{sweep::decode_share_ready(m.bytes).share_id, {}});
      break;
    default:
      throw sweep::ProtocolError(std::string("coordinator: unexpected ") +
                                 sweep::kind_name(m.kind) + " from rank " + std::to_string(w));
  }
}

}  // namespace

LoopReport run_coordinator(transport::Transport& transport, Scheduler& scheduler,
                           const CoordinatorHooks& hooks, Departed* departed,
                           const LoopOptions& options) {
  LoopReport report;
  Departed local;
  Departed& away = departed ? *departed : local;
  std::set<int> waiting;  // workers that asked while nothing was pending
  std::set<int> parked;   // workers that asked once the phase was over
  std::map<int, int32_t> loaded;
  // Workers holding a lease: when it is due (its units' timeouts summed: they
  // are computed together and reported at the end).
  std::map<int, clock_type::time_point> due;
  int running = transport.size() - 1 - static_cast<int>(away.size());
  int& stopping = report.stop_signal;
  // Shared loads (LoopOptions): the open ones by id, and by node and
  // checkpoint while they take members.
  struct Share {
    int32_t checkpoint = -1, node = -1;
    int root = -1;
    std::vector<int> members;
    clock_type::time_point closes;  // the window's end
    bool ready = false, loaded = false;
  };
  std::map<int32_t, Share> shares;
  std::map<std::pair<int32_t, int32_t>, int32_t> open_share;
  int32_t next_share = options.first_share_id;
  std::map<int, int32_t> node_of;  // worker -> its node, -1: does not share
  std::map<int, int32_t> hinted;   // worker -> the checkpoint it was told to prefetch
  const auto& names = scheduler.grid().checkpoints;
  auto close_share = [&](int32_t id) {
    auto& s = shares.at(id);
    if (auto it = open_share.find({s.node, s.checkpoint});
        it != open_share.end() && it->second == id) {
      open_share.erase(it);
    }
    std::vector<int32_t> ranks;
    if (s.loaded) {
      ranks.push_back(s.root);
      for (int w : s.members) {
        if (!away.contains(w)) ranks.push_back(w);
      }
    }
    // Hung members get an empty group: they read the checkpoint themselves,
    // should they wake. (Lost ones are gone.)
    for (int w : s.members) {
      if (away.lost.count(w)) continue;
      const bool in = std::find(ranks.begin(), ranks.end(), w) != ranks.end();
      transport::send(transport, w, sweep::ShareGroup{id, in ? ranks : std::vector<int32_t>{}});
    }
    // The root waits for its group once it said it is ready; a hung root
    // that has not is answered when it does (from_departed).
    if (!away.lost.count(s.root) && (s.ready || !away.contains(s.root)))
      transport::send(transport, s.root, sweep::ShareGroup{id, ranks});
    if (ranks.size() > 1) {
      ++report.shared_loads;
      report.share_receivers += ranks.size() - 1;
      std::string to;
      for (std::size_t i = 1; i < ranks.size(); ++i)
        to += (i > 1 ? ", " : "") + std::to_string(ranks[i]);
      LPI_LOG(info) << "checkpoint " << names[s.checkpoint].name << ": read by rank " << s.root
                    << ", broadcast to rank(s) " << to << " (shared load " << id << ")";
    } else if (!s.loaded && !s.members.empty()) {
      LPI_LOG(warning) << "checkpoint " << names[s.checkpoint].name << ": rank " << s.root
                       << " could not load it; its " << s.members.size()
                       << " member(s) read it themselves (shared load " << id << ")";
    }
    shares.erase(id);
  };
  // A root rank 0 no longer waits for: its shared loads are cancelled. (A
  // member it no longer waits for is left out of the group when it closes.)
  auto drop_shares_of = [&](int worker) {
    std::vector<int32_t> ids;
    for (const auto& [id, s] : shares) {
      if (s.root == worker) ids.push_back(id);
    }
    for (auto id : ids) {
      shares.at(id).loaded = false;
      close_share(id);
    }
  };
  // The shared load of `worker`'s new lease of checkpoint c: {id, root}.
  auto share_for = [&](int worker, int32_t c, int32_t had) -> std::pair<int32_t, int32_t> {
    const auto node = node_of.count(worker) ? node_of[worker] : -1;
    const auto hint = hinted.count(worker) ? hinted[worker] : -1;
    if (!options.share_loads || node < 0 || had == c || hint == c) return {-1, -1};
    if (auto it = open_share.find({node, c}); it != open_share.end()) {
      auto& s = shares.at(it->second);
      s.members.push_back(worker);
      return {it->second, s.root};
    }
    const int32_t id = next_share++;
    auto& s = shares[id];
    s.checkpoint = c;
    s.node = node;
    s.root = worker;
    s.closes = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                       std::chrono::duration<double>(options.share_window));
    open_share[{node, c}] = id;
    return {id, worker};
  };
  auto answer = [&](int worker) {
    if (stopping) {
      parked.insert(worker);  // nothing more is assigned; it waits for the end
      --running;
    } else if (auto units = scheduler.lease(worker, loaded[worker]); !units.empty()) {
      const auto n = static_cast<double>(units.size());
      const auto c = scheduler.grid().units[units.front()].checkpoint;
      const auto [share_id, share_root] = share_for(worker, c, loaded[worker]);
      loaded[worker] = c;
      const auto hint = scheduler.prefetch_hint(worker);
      hinted[worker] = hint;
      transport::send(transport, worker,
                      sweep::Assign{std::move(units), hint, share_id, share_root});
      due[worker] =
          clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                  std::chrono::duration<double>(options.unit_timeout * n));
    } else if (scheduler.finished()) {
      parked.insert(worker);
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
  auto leave = [&](int worker) {
    waiting.erase(worker);
    due.erase(worker);
    --running;
    drop_shares_of(worker);
    wake();
  };
  // Ready shared loads whose window is over.
  auto close_ready = [&] {
    const auto now = clock_type::now();
    std::vector<int32_t> ids;
    for (const auto& [id, s] : shares) {
      if (s.ready && now >= s.closes) ids.push_back(id);
    }
    for (auto id : ids) close_share(id);
  };
  // The next message, or nothing when a lease's time ran out first.
  auto next_message = [&]() -> std::optional<transport::Message> {
    double wait = options.stop_signal ? 0.2 : -1;  // -1: as long as it takes
    if (options.unit_timeout > 0 && !due.empty()) {
      auto first = clock_type::time_point::max();
      for (const auto& [w, t] : due) first = std::min(first, t);
      const double left = std::chrono::duration<double>(first - clock_type::now()).count();
      wait = wait < 0 ? std::max(0.0, left) : std::clamp(left, 0.0, wait);
    }
    for (const auto& [id, s] : shares) {
      if (!s.ready) continue;
      const double left = std::chrono::duration<double>(s.closes - clock_type::now()).count();
      wait = wait < 0 ? std::max(0.0, left) : std::clamp(left, 0.0, wait);
    }
    return wait < 0 ? transport.receive() : transport.receive_for(wait);
  };
  auto stop = [&](int signal, int rank) {
    if (stopping || signal == 0) return;
    stopping = signal;
    LPI_LOG(warning) << "a stop was asked (" << sweep::signal_name(signal) << " on rank " << rank
                     << "): nothing more is assigned; the " << scheduler.in_flight_count()
                     << " unit(s) in flight finish, then the run ends (resume with --resume)";
    wake();
  };
  auto expire = [&] {
    const auto now = clock_type::now();
    std::vector<int> late;
    for (const auto& [w, t] : due) {
      if (now >= t) late.push_back(w);
    }
    for (int w : late) {
      const auto units = scheduler.in_flight(w);
      const auto& grid = scheduler.grid();
      const auto& checkpoint = grid.checkpoints[grid.units[units.front()].checkpoint].name;
      const std::string error = "no report within the unit timeout of " +
                                std::to_string(static_cast<long long>(options.unit_timeout)) +
                                " s (rank " + std::to_string(w) + " taken as hung)";
      std::string ids;
      for (auto u : units) ids += (ids.empty() ? "" : ", ") + std::to_string(u);
      LPI_LOG(error) << "rank " << w << " has not reported unit(s) " << ids << " (checkpoint "
                     << checkpoint << ") within the unit timeout of " << options.unit_timeout
                     << " s each: it is taken as hung and gets no more work in this run; the "
                     << "unit(s) go to another worker";
      scheduler.timed_out(w, error);
      away.hung.insert(w);
      ++report.hung;
      leave(w);
    }
  };
  auto handle = [&](const transport::Message& m) {
    if (away.contains(m.source)) {
      from_departed(transport, away, m);
      return;
    }
    switch (m.kind) {
      case MessageKind::WorkRequest: {
        const auto r = sweep::decode_work_request(m.bytes);
        loaded[m.source] = r.loaded_checkpoint;
        node_of[m.source] = r.share_node;
        stop(r.stop_signal, m.source);
        answer(m.source);
        break;
      }
      case MessageKind::UnitDone: {
        const auto d = sweep::decode_unit_done(m.bytes);
        if (hooks.on_done) hooks.on_done(m.source, d);
        scheduler.completed(m.source, d.unit);
        if (scheduler.in_flight(m.source).empty()) due.erase(m.source);
        // A completion puts nothing back to pending: the waiting workers
        // only need an answer once it ends the phase (a failure, a loss or
        // a timeout may give them work, and wakes them).
        if (scheduler.finished()) wake();
        break;
      }
      case MessageKind::UnitFailed: {
        const auto f = sweep::decode_unit_failed(m.bytes);
        scheduler.failed(m.source, f.unit, f.error);
        if (scheduler.in_flight(m.source).empty()) due.erase(m.source);
        wake();
        break;
      }
      case MessageKind::ShareReady: {
        const auto r = sweep::decode_share_ready(m.bytes);
        const auto it = shares.find(r.share_id);
        if (it == shares.end() || it->second.root != m.source || it->second.ready) {
          throw sweep::ProtocolError("coordinator: rank " + std::to_string(m.source) +
                                     " says shared load " + std::to_string(r.share_id) +
                                     " is read, but it is not that load's root");
        }
        it->second.ready = true;
        it->second.loaded = r.loaded != 0;
        if (!it->second.loaded || clock_type::now() >= it->second.closes) close_share(r.share_id);
        break;
      }
      case MessageKind::WorkerLost:
        away.lost.insert(m.source);
        ++report.lost;
        if (parked.erase(m.source)) break;  // it had asked for work already: not running
        scheduler.worker_lost(m.source);
        leave(m.source);
        break;
      default:
        throw sweep::ProtocolError(std::string("coordinator: unexpected ") +
                                   sweep::kind_name(m.kind) + " from rank " +
                                   std::to_string(m.source));
    }
  };
  // The scheduler's check walks every unit: after every message on a grid
  // of up to 1024 units, every total/1024 messages on larger ones (a full
  // check per message was most of rank 0's time at 20,000 units), and once
  // the phase is over.
  const std::size_t check_every = std::max<std::size_t>(1, scheduler.total() / 1024);
  std::size_t since_check = 0;
  while (running > 0) {
    if (options.stop_signal) stop(options.stop_signal(), 0);
    if (const auto m = next_message()) {
      ++report.messages;
      handle(*m);
    }
    if (options.unit_timeout > 0) expire();
    close_ready();
    if (++since_check >= check_every) {
      scheduler.check_invariants();
      since_check = 0;
    }
    if (hooks.after_message) hooks.after_message(scheduler);
  }
  scheduler.check_invariants();
  // Rank 0 alone says what follows, to every worker that waits for it.
  const int32_t next = hooks.next_phase ? hooks.next_phase(scheduler, stopping) : -1;
  for (int w : parked) transport::send(transport, w, sweep::Shutdown{next});
  report.next_share_id = next_share;
  report.done = scheduler.done_count();
  report.given_up = scheduler.given_up().size();
  return report;
}

std::size_t wait_for_hung(transport::Transport& transport, Departed& departed, double seconds) {
  const auto until = clock_type::now() + std::chrono::duration_cast<clock_type::duration>(
                                             std::chrono::duration<double>(seconds));
  while (!departed.hung.empty() || !departed.returned.empty()) {
    const double left = std::chrono::duration<double>(until - clock_type::now()).count();
    if (left <= 0) break;
    if (auto m = transport.receive_for(left)) {
      if (departed.contains(m->source)) from_departed(transport, departed, *m);
    }
  }
  return departed.hung.size() + departed.returned.size();
}

}  // namespace lpi::coordinator

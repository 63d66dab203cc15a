// The sweep's message protocol between the coordinator (rank 0) and the
// worker daemons: one enum of message kinds and one plain struct per message,
// each with its encoding into bytes (little-endian, fixed layout, a version
// byte) and back. The MPI layer sends these bytes with the kind as the tag;
// decoding checks sizes and the version, so a stray or truncated message is
// an error that names what was expected, never undefined behaviour.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace lpi::sweep {

constexpr uint8_t kProtocolVersion = 5;
// The most units one Assign may lease (a bound for the decoder, far above any
// checkpoint's unit count).
constexpr int32_t kMaxLeaseUnits = 1 << 20;

enum class MessageKind : int {
  WorkRequest = 1,  // worker -> coordinator: give me a unit (I have checkpoint `loaded`)
  Assign = 2,       // coordinator -> worker: compute these units (a lease of one checkpoint)
  UnitDone = 3,     // worker -> coordinator: written and flushed to the store
  UnitFailed = 4,   // worker -> coordinator: could not compute it (the worker lives on)
  Shutdown = 5,     // coordinator -> worker: the phase is over; what comes next
  // transport -> coordinator: the worker is gone (never sent by a worker; no
  // payload). The in-process transport reports it; MPI ends the job instead.
  WorkerLost = 6,
  ShareReady = 7,  // worker -> coordinator: the checkpoint of my shared load is read (or failed)
  ShareGroup = 8,  // coordinator -> the workers of a shared load: who takes part
};

const char* kind_name(MessageKind kind);

struct ProtocolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct WorkRequest {
  int32_t loaded_checkpoint = -1;  // -1: none loaded
  int32_t stop_signal = 0;         // a signal asked this worker to stop (0: none)
  // The node this worker runs on (its lowest rank there) when it can take
  // part in shared loads (below); -1: it loads every checkpoint itself.
  int32_t share_node = -1;
};
// A lease: units of one checkpoint, in order, computed together (the
// projection tiles of the checkpoint once for all their prompts); the worker
// reports each one (UnitDone or UnitFailed) once its data is in the store.
//
// A shared load (share_id >= 0): the lease's checkpoint is read from disk by
// one worker of the node, share_root, and broadcast to the others of the
// node that were leased the same checkpoint meanwhile. The root loads it,
// sends ShareReady and waits for ShareGroup; the others wait for ShareGroup
// at once. Then the group's ranks broadcast the weights from the root.
struct Assign {
  std::vector<int32_t> units;        // at least one, at most kMaxLeaseUnits
  int32_t prefetch_checkpoint = -1;  // the worker may load this one in the background (-1: none)
  int32_t share_id = -1;             // -1: no shared load; the worker reads the checkpoint itself
  int32_t share_root = -1;           // the rank that reads the checkpoint (this worker: the root)
};
struct ShareReady {
  int32_t share_id = 0;
  uint8_t loaded = 0;  // 1: the root holds the checkpoint; 0: its load failed
};
// The ranks of a shared load, root first; no ranks: the load is cancelled
// (the root failed or is gone) and each member reads the checkpoint itself.
struct ShareGroup {
  int32_t share_id = 0;
  std::vector<int32_t> ranks;
};
struct UnitDone {
  int32_t unit = 0;
  // Where the worker's time for this unit went: Gated-LPI, waiting for its
  // checkpoint to load, writing the store, and waiting for the assignment.
  double compute_seconds = 0, load_seconds = 0, store_seconds = 0, wait_seconds = 0;
  // Projection tiles the worker computed for the unit's lease, reported with
  // the lease's first unit (0 on the others): the coordinator's count of
  // projections per checkpoint and worker.
  int64_t projection_tiles = 0;
};
struct UnitFailed {
  int32_t unit = 0;
  std::string error;
};
// Sent once every worker has asked for work the phase no longer has: rank 0
// alone decides what follows (the workers have no vote).
struct Shutdown {
  int32_t next_phase = -1;  // a sweep::Phase as int (common/sweep/executor.hpp), -1: none, stop
};

std::vector<uint8_t> encode(const WorkRequest& m);
std::vector<uint8_t> encode(const Assign& m);
std::vector<uint8_t> encode(const UnitDone& m);
std::vector<uint8_t> encode(const UnitFailed& m);
std::vector<uint8_t> encode(const Shutdown& m);
std::vector<uint8_t> encode(const ShareReady& m);
std::vector<uint8_t> encode(const ShareGroup& m);

// Decoders: throw ProtocolError on a wrong size, version or field.
WorkRequest decode_work_request(const std::vector<uint8_t>& bytes);
Assign decode_assign(const std::vector<uint8_t>& bytes);
UnitDone decode_unit_done(const std::vector<uint8_t>& bytes);
UnitFailed decode_unit_failed(const std::vector<uint8_t>& bytes);
Shutdown decode_shutdown(const std::vector<uint8_t>& bytes);
ShareReady decode_share_ready(const std::vector<uint8_t>& bytes);
ShareGroup decode_share_group(const std::vector<uint8_t>& bytes);

}  // namespace lpi::sweep

#include "common/sweep/protocol.hpp"

#include <cstring>
#include <iterator>

namespace lpi::sweep {

namespace {

// Little-endian writer and checked reader over a byte vector.
struct Writer {
  std::vector<uint8_t> out;
  explicit Writer(MessageKind kind) {
    out.push_back(kProtocolVersion);
    out.push_back(static_cast<uint8_t>(kind));
  }
  template <class T>
  void put(T v) {
    const std::size_t at = out.size();
    out.resize(at + sizeof(T));
    std::memcpy(out.data() + at, &v, sizeof(T));  // x86-64 and aarch64 Linux are little-endian
  }
  void put_string(const std::string& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
  }
  template <class T>
  void operator()(const T& v) {
    put(v);
  }
  void operator()(const std::string& s) { put_string(s); }
  void operator()(const std::vector<int32_t>& v) {
    put<uint32_t>(static_cast<uint32_t>(v.size()));
    for (auto x : v) put(x);
  }
};

struct Reader {
  const std::vector<uint8_t>& in;
  std::size_t at = 0;
  MessageKind kind;
  Reader(const std::vector<uint8_t>& bytes, MessageKind expected) : in(bytes), kind(expected) {
    if (in.size() < 2)
      fail("message of " + std::to_string(in.size()) + " bytes is shorter than its header");
    if (in[0] != kProtocolVersion) {
      fail("protocol version " + std::to_string(in[0]) + ", this build speaks " +
           std::to_string(kProtocolVersion));
    }
    if (in[1] != static_cast<uint8_t>(expected)) {
      fail("message kind " + std::to_string(in[1]) + " where " + kind_name(expected) +
           " was expected");
    }
    at = 2;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw ProtocolError(std::string("sweep protocol: ") + kind_name(kind) + ": " + what);
  }
  template <class T>
  T get() {
    if (at + sizeof(T) > in.size()) fail("truncated at byte " + std::to_string(at));
    T v;
    std::memcpy(&v, in.data() + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  std::string get_string() {
    const auto n = get<uint32_t>();
    if (at + n > in.size()) fail("string of " + std::to_string(n) + " bytes runs past the end");
    std::string s(in.begin() + static_cast<std::ptrdiff_t>(at),
                  in.begin() + static_cast<std::ptrdiff_t>(at + n));
    at += n;
    return s;
  }
  void end() const {
    if (at != in.size()) fail(std::to_string(in.size() - at) + " unexpected trailing bytes");
  }
  template <class T>
  void operator()(T& v) {
    v = get<T>();
  }
  void operator()(std::string& s) { s = get_string(); }
  void operator()(std::vector<int32_t>& v) {
    const auto n = get<uint32_t>();
    if (n > static_cast<uint32_t>(kMaxLeaseUnits) || at + std::size_t{n} * 4 > in.size())
      fail("a list of " + std::to_string(n) + " ids runs past the end");
    v.resize(n);
    for (auto& x : v) x = get<int32_t>();
  }
};

// Each message's fields in wire order, for the writer and the reader alike.
template <class F>
void fields(WorkRequest& m, F& f) {
  f(m.loaded_checkpoint);
  f(m.stop_signal);
  f(m.share_node);
}
template <class F>
void fields(Assign& m, F& f) {
  f(m.units);
  f(m.prefetch_checkpoint);
  f(m.share_id);
  f(m.share_root);
}
template <class F>
void fields(UnitDone& m, F& f) {
  f(m.unit);
  f(m.compute_seconds);
  f(m.load_seconds);
  f(m.store_seconds);
  f(m.wait_seconds);
  f(m.projection_tiles);
}
template <class F>
void fields(UnitFailed& m, F& f) {
  f(m.unit);
  f(m.error);
}
template <class F>
void fields(Shutdown& m, F& f) {
  f(m.next_phase);
}
template <class F>
void fields(ShareReady& m, F& f) {
  f(m.share_id);
  f(m.loaded);
}
template <class F>
void fields(ShareGroup& m, F& f) {
  f(m.share_id);
  f(m.ranks);
}

template <class M>
std::vector<uint8_t> write(M m, MessageKind kind) {
  Writer w(kind);
  fields(m, w);
  return w.out;
}

template <class M>
M read(const std::vector<uint8_t>& bytes, MessageKind kind) {
  Reader r(bytes, kind);
  M m;
  fields(m, r);
  r.end();
  return m;
}

}  // namespace

const char* kind_name(MessageKind kind) {
  // Indexed by the enum's value (1 .. 8).
  static const char* const names[] = {"WorkRequest", "Assign",     "UnitDone",   "UnitFailed",
                                      "Shutdown",    "WorkerLost", "ShareReady", "ShareGroup"};
  const auto i = static_cast<int>(kind) - 1;
  return i >= 0 && i < static_cast<int>(std::size(names)) ? names[i] : "unknown";
}

std::vector<uint8_t> encode(const WorkRequest& m) {
  return write(m, MessageKind::WorkRequest);
}
std::vector<uint8_t> encode(const Assign& m) {
  return write(m, MessageKind::Assign);
}
std::vector<uint8_t> encode(const UnitDone& m) {
  return write(m, MessageKind::UnitDone);
}
std::vector<uint8_t> encode(const UnitFailed& m) {
  return write(m, MessageKind::UnitFailed);
}
std::vector<uint8_t> encode(const Shutdown& m) {
  return write(m, MessageKind::Shutdown);
}
std::vector<uint8_t> encode(const ShareReady& m) {
  return write(m, MessageKind::ShareReady);
}
std::vector<uint8_t> encode(const ShareGroup& m) {
  return write(m, MessageKind::ShareGroup);
}

WorkRequest decode_work_request(const std::vector<uint8_t>& bytes) {
  const auto m = read<WorkRequest>(bytes, MessageKind::WorkRequest);
  if (m.share_node < -1)
    Reader(bytes, MessageKind::WorkRequest).fail("node " + std::to_string(m.share_node));
  return m;
}
Assign decode_assign(const std::vector<uint8_t>& bytes) {
  const auto m = read<Assign>(bytes, MessageKind::Assign);
  if (m.units.empty()) Reader(bytes, MessageKind::Assign).fail("a lease of no units");
  for (auto u : m.units) {
    if (u < 0) Reader(bytes, MessageKind::Assign).fail("negative unit " + std::to_string(u));
  }
  if (m.share_id < -1 || (m.share_id >= 0) != (m.share_root >= 0) || m.share_root < -1) {
    Reader(bytes, MessageKind::Assign)
        .fail("shared load " + std::to_string(m.share_id) + " with root " +
              std::to_string(m.share_root));
  }
  return m;
}
UnitDone decode_unit_done(const std::vector<uint8_t>& bytes) {
  const auto m = read<UnitDone>(bytes, MessageKind::UnitDone);
  if (m.projection_tiles < 0) {
    Reader(bytes, MessageKind::UnitDone)
        .fail("negative projection tile count " + std::to_string(m.projection_tiles));
  }
  return m;
}
UnitFailed decode_unit_failed(const std::vector<uint8_t>& bytes) {
  return read<UnitFailed>(bytes, MessageKind::UnitFailed);
}
Shutdown decode_shutdown(const std::vector<uint8_t>& bytes) {
  const auto m = read<Shutdown>(bytes, MessageKind::Shutdown);
  if (m.next_phase < -1 || m.next_phase > 1)
    Reader(bytes, MessageKind::Shutdown).fail("no phase " + std::to_string(m.next_phase));
  return m;
}
ShareReady decode_share_ready(const std::vector<uint8_t>& bytes) {
  const auto m = read<ShareReady>(bytes, MessageKind::ShareReady);
  if (m.share_id < 0 || m.loaded > 1) {
    Reader(bytes, MessageKind::ShareReady)
        .fail("shared load " + std::to_string(m.share_id) + ", loaded " + std::to_string(m.loaded));
  }
  return m;
}
ShareGroup decode_share_group(const std::vector<uint8_t>& bytes) {
  const auto m = read<ShareGroup>(bytes, MessageKind::ShareGroup);
  if (m.share_id < 0)
    Reader(bytes, MessageKind::ShareGroup).fail("shared load " + std::to_string(m.share_id));
  for (auto r : m.ranks) {
    if (r <= 0)
      Reader(bytes, MessageKind::ShareGroup).fail("rank " + std::to_string(r) + " in the group");
  }
  return m;
}

}  // namespace lpi::sweep

#include "common/sweep/protocol.hpp"

#include <cstring>

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
};

}  // namespace

const char* kind_name(MessageKind kind) {
  switch (kind) {
    case MessageKind::WorkRequest:
      return "WorkRequest";
    case MessageKind::Assign:
      return "Assign";
    case MessageKind::UnitDone:
      return "UnitDone";
    case MessageKind::UnitFailed:
      return "UnitFailed";
    case MessageKind::Shutdown:
      return "Shutdown";
    case MessageKind::WorkerLost:
      return "WorkerLost";
  }
  return "unknown";
}

std::vector<uint8_t> encode(const WorkRequest& m) {
  Writer w(MessageKind::WorkRequest);
  w.put(m.loaded_checkpoint);
  return w.out;
}
std::vector<uint8_t> encode(const Assign& m) {
  Writer w(MessageKind::Assign);
  w.put(m.unit);
  w.put(m.prefetch_checkpoint);
  return w.out;
}
std::vector<uint8_t> encode(const UnitDone& m) {
  Writer w(MessageKind::UnitDone);
  w.put(m.unit);
  w.put(m.compute_seconds);
  w.put(m.load_seconds);
  w.put(m.store_seconds);
  w.put(m.wait_seconds);
  return w.out;
}
std::vector<uint8_t> encode(const UnitFailed& m) {
  Writer w(MessageKind::UnitFailed);
  w.put(m.unit);
  w.put_string(m.error);
  return w.out;
}
std::vector<uint8_t> encode(const Shutdown&) {
  return Writer(MessageKind::Shutdown).out;
}

WorkRequest decode_work_request(const std::vector<uint8_t>& bytes) {
  Reader r(bytes, MessageKind::WorkRequest);
  WorkRequest m;
  m.loaded_checkpoint = r.get<int32_t>();
  r.end();
  return m;
}
Assign decode_assign(const std::vector<uint8_t>& bytes) {
  Reader r(bytes, MessageKind::Assign);
  Assign m;
  m.unit = r.get<int32_t>();
  m.prefetch_checkpoint = r.get<int32_t>();
  r.end();
  if (m.unit < 0) r.fail("negative unit " + std::to_string(m.unit));
  return m;
}
UnitDone decode_unit_done(const std::vector<uint8_t>& bytes) {
  Reader r(bytes, MessageKind::UnitDone);
  UnitDone m;
  m.unit = r.get<int32_t>();
  m.compute_seconds = r.get<double>();
  m.load_seconds = r.get<double>();
  m.store_seconds = r.get<double>();
  m.wait_seconds = r.get<double>();
  r.end();
  return m;
}
UnitFailed decode_unit_failed(const std::vector<uint8_t>& bytes) {
  Reader r(bytes, MessageKind::UnitFailed);
  UnitFailed m;
  m.unit = r.get<int32_t>();
  m.error = r.get_string();
  r.end();
  return m;
}
Shutdown decode_shutdown(const std::vector<uint8_t>& bytes) {
  Reader r(bytes, MessageKind::Shutdown);
  r.end();
  return {};
}

}  // namespace lpi::sweep

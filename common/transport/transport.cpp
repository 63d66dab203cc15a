#include "common/transport/transport.hpp"

namespace lpi::transport {
using sweep::MessageKind;

void send(Transport& t, int dest, const sweep::WorkRequest& m) {
  t.send(dest, MessageKind::WorkRequest, sweep::encode(m));
}
void send(Transport& t, int dest, const sweep::Assign& m) {
  t.send(dest, MessageKind::Assign, sweep::encode(m));
}
void send(Transport& t, int dest, const sweep::UnitDone& m) {
  t.send(dest, MessageKind::UnitDone, sweep::encode(m));
}
void send(Transport& t, int dest, const sweep::UnitFailed& m) {
  t.send(dest, MessageKind::UnitFailed, sweep::encode(m));
}
void send(Transport& t, int dest, const sweep::Shutdown& m) {
  t.send(dest, MessageKind::Shutdown, sweep::encode(m));
}
void send(Transport& t, int dest, const sweep::ShareReady& m) {
  t.send(dest, MessageKind::ShareReady, sweep::encode(m));
}
void send(Transport& t, int dest, const sweep::ShareGroup& m) {
  t.send(dest, MessageKind::ShareGroup, sweep::encode(m));
}

}  // namespace lpi::transport

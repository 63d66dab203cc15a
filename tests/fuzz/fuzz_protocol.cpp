// The sweep protocol's decoders on arbitrary bytes (the first byte picks the
// message kind, the rest is the message): a decoded message encodes back to
// exactly the bytes it came from.
#include <cstddef>
#include <cstdint>

#include "common/sweep/protocol.hpp"
#include "fuzz_support.hpp"

namespace sw = lpi::sweep;

namespace {

template <class M>
void round_trip(M (*decode)(const std::vector<uint8_t>&), const std::vector<uint8_t>& bytes) {
  M message;
  try {
    message = decode(bytes);
  } catch (const sw::ProtocolError&) {
    return;
  }
  LPI_FUZZ_CHECK(sw::encode(message) == bytes);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::vector<uint8_t> bytes(data + 1, data + size);
  switch (data[0] % 7) {
    case 0:
      round_trip(&sw::decode_work_request, bytes);
      break;
    case 1:
      round_trip(&sw::decode_assign, bytes);
      break;
    case 2:
      round_trip(&sw::decode_unit_done, bytes);
      break;
    case 3:
      round_trip(&sw::decode_unit_failed, bytes);
      break;
    case 4:
      round_trip(&sw::decode_shutdown, bytes);
      break;
    case 5:
      round_trip(&sw::decode_share_ready, bytes);
      break;
    default:
      round_trip(&sw::decode_share_group, bytes);
      break;
  }
  return 0;
}

// The sweep protocol: every message survives encode/decode, and malformed
// bytes (truncated, wrong kind, wrong version, trailing garbage, a string
// running past the end) are ProtocolErrors that say what was expected.
#include <gtest/gtest.h>

#include "common/sweep/protocol.hpp"

namespace lpi::sweep {
namespace {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const ProtocolError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ProtocolError";
  return "";
}

TEST(Protocol, MessagesRoundTrip) {
  EXPECT_EQ(decode_work_request(encode(WorkRequest{7})).loaded_checkpoint, 7);
  EXPECT_EQ(decode_work_request(encode(WorkRequest{})).loaded_checkpoint, -1);
  const auto a = decode_assign(encode(Assign{{123456, 123457, 9}, 9}));
  EXPECT_EQ(a.units, (std::vector<int32_t>{123456, 123457, 9}));
  EXPECT_EQ(a.prefetch_checkpoint, 9);
  EXPECT_EQ(decode_assign(encode(Assign{{0}, -1})).units, std::vector<int32_t>{0});
  const auto d = decode_unit_done(encode(UnitDone{42, 1.5, 0.25, 0.125, 2.0, 640}));
  EXPECT_EQ(d.projection_tiles, 640);
  EXPECT_EQ(d.unit, 42);
  EXPECT_EQ(d.compute_seconds, 1.5);
  EXPECT_EQ(d.load_seconds, 0.25);
  EXPECT_EQ(d.store_seconds, 0.125);
  EXPECT_EQ(d.wait_seconds, 2.0);
  const std::string error =
      "checkpoint step10-tokens5K: tensor 'model.norm.weight' missing\nline two \xc3\xa9";
  const auto f = decode_unit_failed(encode(UnitFailed{3, error}));
  EXPECT_EQ(f.unit, 3);
  EXPECT_EQ(f.error, error);
  EXPECT_EQ(decode_shutdown(encode(Shutdown{})).next_phase, -1);
  EXPECT_EQ(decode_shutdown(encode(Shutdown{1})).next_phase, 1);
  EXPECT_NE(error_of([] { decode_shutdown(encode(Shutdown{7})); }).find("no phase 7"),
            std::string::npos);
}

TEST(Protocol, MalformedMessagesAreNamedErrors) {
  auto bytes = encode(Assign{{1}, 2});
  EXPECT_NE(error_of([&] { decode_unit_done(bytes); }).find("where UnitDone was expected"),
            std::string::npos);
  auto truncated = bytes;
  truncated.pop_back();
  EXPECT_NE(error_of([&] { decode_assign(truncated); }).find("truncated"), std::string::npos);
  auto trailing = bytes;
  trailing.push_back(0);
  EXPECT_NE(error_of([&] { decode_assign(trailing); }).find("trailing"), std::string::npos);
  auto version = bytes;
  version[0] = 99;
  EXPECT_NE(error_of([&] { decode_assign(version); }).find("protocol version 99"),
            std::string::npos);
  EXPECT_NE(error_of([&] { decode_assign({}); }).find("shorter than its header"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              decode_assign(encode(Assign{{3, -5}, 0}));
            }).find("negative unit -5"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              decode_assign(encode(Assign{{}, 0}));
            }).find("a lease of no units"),
            std::string::npos);
  // A list whose count claims more ids than the message holds.
  auto lease = encode(Assign{{1, 2}, 0});
  lease.resize(lease.size() - 8);  // drop the second id and the prefetch field
  EXPECT_NE(error_of([&] { decode_assign(lease); }).find("runs past the end"), std::string::npos);
  EXPECT_NE(error_of([&] {
              decode_unit_done(encode(UnitDone{1, 0, 0, 0, 0, -3}));
            }).find("negative projection tile count"),
            std::string::npos);
  auto failed = encode(UnitFailed{1, "abc"});
  failed.resize(failed.size() - 1);  // the string claims 3 bytes, 2 are left
  EXPECT_NE(error_of([&] { decode_unit_failed(failed); }).find("runs past the end"),
            std::string::npos);
}

}  // namespace
}  // namespace lpi::sweep

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
  const auto r = decode_work_request(encode(WorkRequest{2, 15, 4}));
  EXPECT_EQ(r.stop_signal, 15);
  EXPECT_EQ(r.share_node, 4);
  const auto shared = decode_assign(encode(Assign{{5, 6}, -1, 12, 3}));
  EXPECT_EQ(shared.share_id, 12);
  EXPECT_EQ(shared.share_root, 3);
  EXPECT_EQ(a.share_id, -1);
  EXPECT_EQ(a.share_root, -1);
  const auto ready = decode_share_ready(encode(ShareReady{12, 1}));
  EXPECT_EQ(ready.share_id, 12);
  EXPECT_EQ(ready.loaded, 1);
  const auto group = decode_share_group(encode(ShareGroup{12, {3, 1, 7}}));
  EXPECT_EQ(group.share_id, 12);
  EXPECT_EQ(group.ranks, (std::vector<int32_t>{3, 1, 7}));
  EXPECT_TRUE(decode_share_group(encode(ShareGroup{12, {}})).ranks.empty());
  EXPECT_STREQ(kind_name(MessageKind::ShareGroup), "ShareGroup");
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
  lease.resize(lease.size() - 16);  // drop the second id, the prefetch and the share fields
  EXPECT_NE(error_of([&] { decode_assign(lease); }).find("runs past the end"), std::string::npos);
  // A shared load needs both its id and its root; a group holds worker ranks.
  EXPECT_NE(error_of([&] {
              decode_assign(encode(Assign{{1}, 0, 4, -1}));
            }).find("shared load 4 with root -1"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              decode_share_group(encode(ShareGroup{1, {2, 0}}));
            }).find("rank 0 in the group"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              decode_share_ready(encode(ShareReady{1, 2}));
            }).find("loaded 2"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              decode_work_request(encode(WorkRequest{0, 0, -2}));
            }).find("node -2"),
            std::string::npos);
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

// Frame header layout and validation.
#include "modelgrid/ipc/frame.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <array>

namespace modelgrid::ipc {
namespace {

using HeaderBytes = std::array<uint8_t, kFrameHeaderBytes>;

HeaderBytes Encode(const FrameHeader& h) {
  HeaderBytes bytes{};
  EncodeFrameHeader(h, bytes);
  return bytes;
}

TEST(FrameTest, HeaderIsLittleEndianInDocumentedOrder) {
  FrameHeader h;
  h.type = 0x0102;
  h.flags = 0x0304;
  h.request_id = 0x05060708090A0B0CULL;
  h.payload_bytes = 0x000E0F10;
  const HeaderBytes expected = {'M',  'G',  'R',  'D',  0x02, 0x01, 0x04, 0x03, 0x0C, 0x0B,
                                0x0A, 0x09, 0x08, 0x07, 0x06, 0x05, 0x10, 0x0F, 0x0E, 0x00};
  EXPECT_EQ(Encode(h), expected);
}

TEST(FrameTest, BadMagicIsCorruption) {
  HeaderBytes bytes = Encode(FrameHeader{});
  bytes[0] = 'X';
  auto decoded = DecodeFrameHeader(bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().code(), StatusCode::kCorruption);
  EXPECT_NE(decoded.status().message().find("magic"), std::string::npos);
}

TEST(FrameTest, PayloadLimitIsInclusive) {
  FrameHeader h;
  h.payload_bytes = kMaxPayloadBytes;
  ASSERT_TRUE(DecodeFrameHeader(Encode(h)).ok());
  h.payload_bytes = kMaxPayloadBytes + 1;
  auto over = DecodeFrameHeader(Encode(h));
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), StatusCode::kCorruption);
  EXPECT_NE(over.status().message().find(std::to_string(kMaxPayloadBytes + 1)), std::string::npos);

  h.payload_bytes = 101;
  EXPECT_EQ(DecodeFrameHeader(Encode(h), 100).status().code(), StatusCode::kCorruption);
}

RC_GTEST_PROP(FrameProperty, HeaderRoundTrips,
              (uint16_t type, uint16_t flags, uint64_t request_id, uint32_t payload)) {
  FrameHeader h;
  h.type = type;
  h.flags = flags;
  h.request_id = request_id;
  h.payload_bytes = payload % (kMaxPayloadBytes + 1);
  auto decoded = DecodeFrameHeader(Encode(h));
  RC_ASSERT(decoded.ok());
  RC_ASSERT(*decoded == h);
}

}  // namespace
}  // namespace modelgrid::ipc

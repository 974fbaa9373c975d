#include "modelgrid/bytes.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace modelgrid {
namespace {

TEST(BytesTest, ParsesUnits) {
  EXPECT_EQ(ParseBytes("1024").value(), 1024u);
  EXPECT_EQ(ParseBytes("512MiB").value(), 512u * 1024 * 1024);
  EXPECT_EQ(ParseBytes("80GiB").value(), 80ull * 1024 * 1024 * 1024);
  EXPECT_EQ(ParseBytes("80 GiB").value(), 80ull * 1024 * 1024 * 1024);
  EXPECT_EQ(ParseBytes("1.5GB").value(), 1'500'000'000ull);
  EXPECT_EQ(ParseBytes("2G").value(), 2ull << 30);
  EXPECT_EQ(ParseBytes("0.5GiB").value(), 512ull << 20);
}

TEST(BytesTest, RejectsGarbageWithAMessage) {
  for (const char* bad : {"", "GiB", "12XB", "1..2GB", "-5MiB", "99999999999999999999"}) {
    auto r = ParseBytes(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << r.status().message();
  }
}

TEST(BytesTest, Formats) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1536), "1.50 KiB");
  EXPECT_EQ(FormatBytes(3ull << 30), "3.00 GiB");
}

RC_GTEST_PROP(BytesProperty, IntegerMiBRoundTrips, (uint32_t n)) {
  const uint64_t v = static_cast<uint64_t>(n);
  RC_ASSERT(ParseBytes(std::to_string(v) + "MiB").value() == v * kMiB);
  RC_ASSERT(ParseBytes(std::to_string(v)).value() == v);
}

}  // namespace
}  // namespace modelgrid

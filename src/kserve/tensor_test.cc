// InferTensor helpers: element counts, byte sizes, BYTES framing, validation.
#include "modelgrid/kserve/tensor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace modelgrid {
namespace {

using ::testing::HasSubstr;

TEST(TensorTest, ElementCount) {
  EXPECT_EQ(*ElementCount(std::vector<int64_t>{}), 1u);
  EXPECT_EQ(*ElementCount(std::vector<int64_t>{2, 3}), 6u);
  EXPECT_EQ(*ElementCount(std::vector<int64_t>{4, 0, 7}), 0u);
  EXPECT_EQ(*ElementCount(std::vector<int64_t>{1 << 20, 1 << 20}), uint64_t{1} << 40);
  auto negative = ElementCount(std::vector<int64_t>{2, -1});
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(negative.status().message(), HasSubstr("shape [2,-1] has a negative dimension"));
  // A zero does not hide a negative dimension.
  EXPECT_FALSE(ElementCount(std::vector<int64_t>{0, -3}).ok());
  auto overflow = ElementCount(std::vector<int64_t>{INT64_MAX, INT64_MAX, 4});
  ASSERT_FALSE(overflow.ok());
  EXPECT_THAT(overflow.status().message(), HasSubstr("64 bits"));
  // 2^32 * 2^32 = 2^64 overflows by one.
  EXPECT_FALSE(ElementCount(std::vector<int64_t>{int64_t{1} << 32, int64_t{1} << 32}).ok());
  EXPECT_TRUE(ElementCount(std::vector<int64_t>{int64_t{1} << 32, (int64_t{1} << 32) - 1}).ok());
}

TEST(TensorTest, ExpectedByteSize) {
  EXPECT_EQ(*ExpectedByteSize(DataType::kFP32, std::vector<int64_t>{2, 2}), 16u);
  EXPECT_EQ(*ExpectedByteSize(DataType::kFP16, std::vector<int64_t>{3}), 6u);
  EXPECT_EQ(*ExpectedByteSize(DataType::kBool, std::vector<int64_t>{}), 1u);
  EXPECT_EQ(*ExpectedByteSize(DataType::kInt64, std::vector<int64_t>{5, 0}), 0u);
  auto bytes = ExpectedByteSize(DataType::kBytes, std::vector<int64_t>{2});
  ASSERT_FALSE(bytes.ok());
  EXPECT_THAT(bytes.status().message(), HasSubstr("BYTES"));
  EXPECT_FALSE(ExpectedByteSize(DataType::kFP64, std::vector<int64_t>{int64_t{1} << 62}).ok());
}

TEST(TensorTest, FormatShape) {
  EXPECT_EQ(FormatShape(std::vector<int64_t>{}), "[]");
  EXPECT_EQ(FormatShape(std::vector<int64_t>{2, 3}), "[2,3]");
}

TEST(TensorTest, BytesFraming) {
  std::string data;
  AppendBytesElement(&data, "ab");
  AppendBytesElement(&data, "");
  AppendBytesElement(&data, std::string("\0z", 2));
  EXPECT_EQ(data, std::string("\x02\0\0\0ab\0\0\0\0\x02\0\0\0\0z", 16));
  auto split = SplitBytesElements(data);
  ASSERT_TRUE(split.ok());
  ASSERT_EQ(split->size(), 3u);
  EXPECT_EQ((*split)[0], "ab");
  EXPECT_EQ((*split)[1], "");
  EXPECT_EQ((*split)[2], std::string("\0z", 2));

  auto cut = SplitBytesElements(std::string("\x02\0\0\0ab\x01\0", 8));
  ASSERT_FALSE(cut.ok());
  EXPECT_THAT(cut.status().message(), HasSubstr("element 1 at offset 6 needs a 4-byte length"));
  auto past = SplitBytesElements(std::string("\x05\0\0\0abc", 7));
  ASSERT_FALSE(past.ok());
  EXPECT_THAT(past.status().message(), HasSubstr("element 0 has length 5 but only 3 bytes"));
}

TEST(TensorTest, ValidateTensorData) {
  InferTensor t{"x", DataType::kFP32, {2, 2}, std::string(16, '\0')};
  EXPECT_TRUE(ValidateTensorData(t).ok());
  t.data.resize(12);
  Status s = ValidateTensorData(t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "input 'x': data has 12 bytes but shape [2,2] FP32 needs 16 bytes");

  InferTensor b{"flags", DataType::kBool, {3}, std::string("\x01\x00\x02", 3)};
  s = ValidateTensorData(b, "output");
  EXPECT_EQ(s.message(), "output 'flags': BOOL element 2 is byte 2, needs 0 or 1");

  InferTensor text{"t", DataType::kBytes, {2}, ""};
  AppendBytesElement(&text.data, "one");
  s = ValidateTensorData(text);
  EXPECT_THAT(s.message(), HasSubstr("input 't': BYTES data holds 1 elements, shape [2] needs 2"));
  AppendBytesElement(&text.data, "two");
  EXPECT_TRUE(ValidateTensorData(text).ok());

  InferTensor huge{"h", DataType::kUInt8, {1 << 21, 1 << 20}, ""};
  s = ValidateTensorData(huge);
  EXPECT_THAT(s.message(), HasSubstr("more than the limit 1099511627776"));
  InferTensor neg{"n", DataType::kUInt8, {-1}, ""};
  EXPECT_THAT(ValidateTensorData(neg).message(), HasSubstr("negative dimension"));
}

}  // namespace
}  // namespace modelgrid

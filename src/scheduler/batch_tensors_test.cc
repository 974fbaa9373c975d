#include "modelgrid/scheduler/batch_tensors.h"

#include <gtest/gtest.h>

#include "scheduler/scheduler_test_util.h"

namespace modelgrid {
namespace {

using testing::BytesTensor;
using testing::BytesValues;
using testing::Int32Tensor;
using testing::Int32Values;

TEST(BatchTensorsTest, RequestBatchSize) {
  EXPECT_EQ(RequestBatchSize({}), std::nullopt);
  std::vector<InferTensor> two = {Int32Tensor("a", {3, 2}, std::vector<int32_t>(6)),
                                  Int32Tensor("b", {3}, std::vector<int32_t>(3))};
  EXPECT_EQ(RequestBatchSize(two), 3);
  two[1] = Int32Tensor("b", {2}, std::vector<int32_t>(2));
  EXPECT_EQ(RequestBatchSize(two), std::nullopt);  // dimension 0 differs
  std::vector<InferTensor> scalar = {Int32Tensor("a", {}, {7})};
  EXPECT_EQ(RequestBatchSize(scalar), std::nullopt);
  std::vector<InferTensor> dup = {Int32Tensor("a", {1}, {1}), Int32Tensor("a", {1}, {2})};
  EXPECT_EQ(RequestBatchSize(dup), std::nullopt);
  std::vector<InferTensor> empty_batch = {Int32Tensor("a", {0, 2}, {})};
  EXPECT_EQ(RequestBatchSize(empty_batch), std::nullopt);
}

TEST(BatchTensorsTest, ConcatAndSplitFixedSize) {
  InferTensor a = Int32Tensor("x", {1, 3}, {1, 2, 3});
  InferTensor b = Int32Tensor("x", {2, 3}, {4, 5, 6, 7, 8, 9});
  std::vector<const InferTensor*> parts = {&a, &b};
  auto merged = ConcatBatch(parts);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->shape, (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(Int32Values(*merged), (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}));

  std::vector<int64_t> sizes = {1, 2};
  auto pieces = SplitBatch(*merged, sizes);
  ASSERT_TRUE(pieces.ok()) << pieces.status().ToString();
  ASSERT_EQ(pieces->size(), 2u);
  EXPECT_EQ((*pieces)[0], a);
  EXPECT_EQ((*pieces)[1], b);
}

TEST(BatchTensorsTest, BytesConcatAndSplitWalkElements) {
  // Elements of different lengths (including empty ones) so that a split by
  // byte count would cut in the wrong place.
  InferTensor a = BytesTensor("s", {1, 2}, {"hello", ""});
  InferTensor b = BytesTensor("s", {3, 2}, {"a", "bcdefghij", "", "xyz", "0123456789abcdef", "q"});
  InferTensor c = BytesTensor("s", {1, 2}, {"", ""});
  std::vector<const InferTensor*> parts = {&a, &b, &c};
  auto merged = ConcatBatch(parts);
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  EXPECT_EQ(merged->shape, (std::vector<int64_t>{5, 2}));
  EXPECT_EQ(BytesValues(*merged),
            (std::vector<std::string>{"hello", "", "a", "bcdefghij", "", "xyz", "0123456789abcdef",
                                      "q", "", ""}));
  std::vector<int64_t> sizes = {1, 3, 1};
  auto pieces = SplitBatch(*merged, sizes);
  ASSERT_TRUE(pieces.ok()) << pieces.status().ToString();
  ASSERT_EQ(pieces->size(), 3u);
  EXPECT_EQ((*pieces)[0], a);
  EXPECT_EQ((*pieces)[1], b);
  EXPECT_EQ((*pieces)[2], c);
}

TEST(BatchTensorsTest, ConcatRejectsMismatchedParts) {
  InferTensor a = Int32Tensor("x", {1, 3}, {1, 2, 3});
  InferTensor b = Int32Tensor("x", {1, 2}, {4, 5});
  std::vector<const InferTensor*> parts = {&a, &b};
  auto merged = ConcatBatch(parts);
  ASSERT_FALSE(merged.ok());
  EXPECT_EQ(merged.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(merged.status().message().find("input 'x': part 1"), std::string::npos)
      << merged.status().message();

  InferTensor short_data = Int32Tensor("x", {2, 3}, {1, 2, 3});  // 3 of 6 elements
  parts = {&a, &short_data};
  EXPECT_FALSE(ConcatBatch(parts).ok());
  EXPECT_FALSE(ConcatBatch({}).ok());
}

TEST(BatchTensorsTest, SplitRejectsWrongBatchDimension) {
  InferTensor out = Int32Tensor("logits", {2, 2}, {1, 2, 3, 4});
  std::vector<int64_t> sizes = {1, 2};
  auto pieces = SplitBatch(out, sizes);
  ASSERT_FALSE(pieces.ok());
  EXPECT_NE(pieces.status().message().find("output 'logits' has dimension 0 of 2"),
            std::string::npos)
      << pieces.status().message();
  InferTensor scalar = Int32Tensor("loss", {}, {1});
  std::vector<int64_t> one = {1};
  EXPECT_FALSE(SplitBatch(scalar, one).ok());
}

}  // namespace
}  // namespace modelgrid

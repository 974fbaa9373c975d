// ConcatBatch / SplitBatch: split(concat(x)) == x over random requests of
// every fixed-size datatype and BYTES, the concatenated bytes against an
// independent row-by-row construction, and the errors.
#include "modelgrid/backend/batching.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace modelgrid {
namespace {

constexpr DataType kTypes[] = {DataType::kBool,  DataType::kUInt8, DataType::kInt32,
                               DataType::kInt64, DataType::kFP16,  DataType::kFP32,
                               DataType::kFP64,  DataType::kBytes};

// A well-formed tensor of `type` and `shape` with random content.
InferTensor RandomTensor(const std::string& name, DataType type, std::vector<int64_t> shape) {
  InferTensor t;
  t.name = name;
  t.datatype = type;
  t.shape = std::move(shape);
  uint64_t n = 1;
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
  for (uint64_t i = 0; i < n; ++i) {
    if (type == DataType::kBytes) {
      AppendBytesElement(&t.data, *rc::gen::container<std::string>(*rc::gen::inRange(0, 6),
                                                                   rc::gen::arbitrary<char>()));
    } else if (type == DataType::kBool) {
      t.data.push_back(static_cast<char>(*rc::gen::inRange(0, 2)));
    } else {
      for (uint64_t b = 0; b < DataTypeSize(type); ++b)
        t.data.push_back(*rc::gen::arbitrary<char>());
    }
  }
  return t;
}

RC_GTEST_PROP(BatchingProperty, SplitOfConcatIsIdentity, ()) {
  const int inputs = *rc::gen::inRange(1, 4);
  std::vector<DataType> types;
  std::vector<std::vector<int64_t>> inner;
  for (int i = 0; i < inputs; ++i) {
    types.push_back(
        *rc::gen::elementOf(std::vector<DataType>(std::begin(kTypes), std::end(kTypes))));
    inner.push_back(*rc::gen::container<std::vector<int64_t>>(*rc::gen::inRange(0, 3),
                                                              rc::gen::inRange<int64_t>(0, 4)));
  }
  const int count = *rc::gen::inRange(1, 6);
  std::vector<std::vector<InferTensor>> requests;
  std::vector<int64_t> sizes;
  for (int r = 0; r < count; ++r) {
    const int64_t batch = *rc::gen::inRange<int64_t>(0, 5);
    sizes.push_back(batch);
    std::vector<InferTensor> req;
    for (int i = 0; i < inputs; ++i) {
      std::vector<int64_t> shape{batch};
      shape.insert(shape.end(), inner[i].begin(), inner[i].end());
      req.push_back(RandomTensor("in" + std::to_string(i), types[i], shape));
    }
    requests.push_back(std::move(req));
  }
  auto batch = ConcatBatch(requests);
  RC_ASSERT(batch.ok());
  RC_ASSERT(batch->batch_sizes == sizes);
  RC_ASSERT(batch->inputs.size() == static_cast<size_t>(inputs));
  for (int i = 0; i < inputs; ++i) {
    const InferTensor& joined = batch->inputs[i];
    std::string bytes;
    int64_t rows = 0;
    for (const auto& req : requests) {
      bytes += req[i].data;
      rows += req[i].shape[0];
    }
    RC_ASSERT(joined.data == bytes);
    RC_ASSERT(joined.shape[0] == rows);
    RC_ASSERT(ValidateTensorData(joined).ok());
  }
  auto split = SplitBatch(batch->inputs, batch->batch_sizes);
  RC_ASSERT(split.ok());
  RC_ASSERT(*split == requests);
}

TEST(BatchingTest, RequestsInAnotherOrderAreJoinedByName) {
  InferTensor a1{"a", DataType::kInt32, {1, 2}, std::string(8, '\1')};
  InferTensor b1{"b", DataType::kUInt8, {1}, std::string(1, '\2')};
  InferTensor a2{"a", DataType::kInt32, {2, 2}, std::string(16, '\3')};
  InferTensor b2{"b", DataType::kUInt8, {2}, std::string(2, '\4')};
  auto batch = ConcatBatch({{a1, b1}, {b2, a2}});
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(batch->batch_sizes, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(batch->inputs[0].name, "a");
  EXPECT_EQ(batch->inputs[0].shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(batch->inputs[0].data, std::string(8, '\1') + std::string(16, '\3'));
  EXPECT_EQ(batch->inputs[1].data, "\2\4\4");
}

TEST(BatchingTest, MismatchesAreRejected) {
  InferTensor a{"x", DataType::kFP32, {1, 3}, std::string(12, '\0')};
  InferTensor other_dims{"x", DataType::kFP32, {1, 4}, std::string(16, '\0')};
  InferTensor other_type{"x", DataType::kInt32, {1, 3}, std::string(12, '\0')};
  InferTensor other_name{"y", DataType::kFP32, {1, 3}, std::string(12, '\0')};
  InferTensor scalar{"x", DataType::kFP32, {}, std::string(4, '\0')};
  InferTensor short_data{"x", DataType::kFP32, {1, 3}, std::string(11, '\0')};
  EXPECT_EQ(ConcatBatch({}).status().code(), StatusCode::kInvalidArgument);
  auto s = ConcatBatch({{a}, {other_dims}}).status();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("request 1: input 'x': expected shape [-1,3], got [1,4]"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(ConcatBatch({{a}, {other_type}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ConcatBatch({{a}, {other_name}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ConcatBatch({{a}, {a, other_name}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ConcatBatch({{a, a}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ConcatBatch({{scalar}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ConcatBatch({{a}, {short_data}}).status().code(), StatusCode::kInvalidArgument);
  InferTensor b{"y", DataType::kFP32, {2, 3}, std::string(24, '\0')};
  EXPECT_EQ(ConcatBatch({{a, b}}).status().code(), StatusCode::kInvalidArgument);  // batch 1 vs 2

  const int64_t sizes[] = {1, 1};
  auto split = SplitBatch({a}, sizes);
  EXPECT_EQ(split.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(split.status().message().find("output 'x'"), std::string::npos);
  const int64_t negative[] = {2, -1};
  EXPECT_EQ(SplitBatch({a}, negative).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitBatch({scalar}, std::span<const int64_t>()).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(BatchingTest, SplitKeepsParametersAndCutsBytesRows) {
  InferTensor out{"names", DataType::kBytes, {3}, {}};
  AppendBytesElement(&out.data, "a");
  AppendBytesElement(&out.data, "bcd");
  AppendBytesElement(&out.data, "");
  out.parameters = {{"content_type", "str"}};
  const int64_t sizes[] = {2, 0, 1};
  auto split = SplitBatch({out}, sizes);
  ASSERT_TRUE(split.ok()) << split.status().ToString();
  ASSERT_EQ(split->size(), 3u);
  std::string first;
  AppendBytesElement(&first, "a");
  AppendBytesElement(&first, "bcd");
  EXPECT_EQ((*split)[0][0].data, first);
  EXPECT_EQ((*split)[0][0].shape, std::vector<int64_t>{2});
  EXPECT_EQ((*split)[1][0].data, "");
  EXPECT_EQ((*split)[1][0].shape, std::vector<int64_t>{0});
  EXPECT_EQ((*split)[2][0].data, std::string(4, '\0'));
  EXPECT_EQ((*split)[2][0].parameters, out.parameters);
}

}  // namespace
}  // namespace modelgrid

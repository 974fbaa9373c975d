// Triton's classification extension: top-k "score:index[:label]" strings.
// Every expected string is written out by hand here (printf "%f" of the
// score's value, as Triton's std::to_string writes it).
#include "modelgrid/kserve/classification.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kserve/kserve_test_util.h"

namespace modelgrid {
namespace {

using kserve_test::BytesElements;
using kserve_test::Le;
using nlohmann::json;
using ::testing::HasSubstr;

// The BYTES elements of a result, split independently of the codec.
std::vector<std::string> Elements(const std::string& data) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos + 4 <= data.size()) {
    const uint32_t len = static_cast<uint32_t>(static_cast<unsigned char>(data[pos])) |
                         static_cast<uint32_t>(static_cast<unsigned char>(data[pos + 1])) << 8 |
                         static_cast<uint32_t>(static_cast<unsigned char>(data[pos + 2])) << 16 |
                         static_cast<uint32_t>(static_cast<unsigned char>(data[pos + 3])) << 24;
    out.push_back(data.substr(pos + 4, len));
    pos += 4 + len;
  }
  EXPECT_EQ(pos, data.size()) << "trailing bytes";
  return out;
}

using Strings = std::vector<std::string>;

// Classifies and checks the result's shape and elements.
void ExpectClasses(const InferTensor& scores, uint64_t k, bool batched,
                   const std::vector<int64_t>& shape, const Strings& expected,
                   const Strings& labels = {}) {
  auto r = ClassifyOutput(scores, k, batched, labels);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->name, scores.name);
  EXPECT_EQ(r->datatype, DataType::kBytes);
  EXPECT_EQ(r->shape, shape);
  EXPECT_EQ(Elements(r->data), expected);
  EXPECT_TRUE(ValidateTensorData(*r, "output").ok());
}

// Triton's documented example: output [1.1, 3.3, 0.5, 2.4], classification 2
// -> "3.3:1", "2.4:3" in the document; Triton's code writes the FP32 score
// with std::to_string, i.e. six decimals.
TEST(ClassifyTest, TritonExample) {
  const InferTensor scores{"output0", DataType::kFP32, {4}, Le<float>({1.1f, 3.3f, 0.5f, 2.4f})};
  ExpectClasses(scores, 2, /*batched=*/false, {2}, {"3.300000:1", "2.400000:3"});
  // With labels: "<score>:<index>:<label>".
  ExpectClasses(scores, 2, false, {2}, {"3.300000:1:index_1_label", "2.400000:3:index_3_label"},
                {"index_0_label", "index_1_label", "index_2_label", "index_3_label"});
}

TEST(ClassifyTest, OrderIsDescendingWithTiesByIndex) {
  // 7 at 1 and 3, 5 at 0 and 2: the lower index first.
  const InferTensor scores{"s", DataType::kInt32, {5}, Le<int32_t>({5, 7, 5, 7, 1})};
  ExpectClasses(scores, 4, false, {4}, {"7:1", "7:3", "5:0", "5:2"});
  ExpectClasses(scores, 1, false, {1}, {"7:1"});
  // -0.0 and 0.0 tie.
  const InferTensor zeros{"z", DataType::kFP32, {3}, Le<float>({-0.0f, 0.0f, -1.0f})};
  ExpectClasses(zeros, 3, false, {3}, {"-0.000000:0", "0.000000:1", "-1.000000:2"});
}

TEST(ClassifyTest, KIsClampedToTheClassCount) {
  const InferTensor scores{"s", DataType::kFP32, {3}, Le<float>({0.25f, 0.5f, 0.125f})};
  ExpectClasses(scores, 10, false, {3}, {"0.500000:1", "0.250000:0", "0.125000:2"});
  ExpectClasses(scores, std::numeric_limits<uint64_t>::max(), false, {3},
                {"0.500000:1", "0.250000:0", "0.125000:2"});
}

TEST(ClassifyTest, LabelsShortOrEmptyGiveNoLabelPart) {
  const InferTensor scores{"s", DataType::kInt64, {4}, Le<int64_t>({1, 4, 3, 2})};
  // Label 2 is empty and there is no label 3: neither gets a label part.
  ExpectClasses(scores, 4, false, {4}, {"4:1:cat", "3:2", "2:3", "1:0:dog"}, {"dog", "cat", ""});
  // Labels may contain ':' and UTF-8; they are appended as given.
  ExpectClasses(scores, 1, false, {1}, {"4:1:a:b \xc3\xa9"}, {"x", "a:b \xc3\xa9"});
}

TEST(ClassifyTest, BatchedRows) {
  // Two rows of three classes: [0.1, 0.7, 0.2] and [0.5, 0.25, 0.25].
  const InferTensor scores{
      "probs", DataType::kFP32, {2, 3}, Le<float>({0.1f, 0.7f, 0.2f, 0.5f, 0.25f, 0.25f})};
  ExpectClasses(scores, 2, /*batched=*/true, {2, 2},
                {"0.700000:1", "0.200000:2", "0.500000:0", "0.250000:1"});
  // Labels apply per class index in every row.
  ExpectClasses(scores, 1, true, {2, 1}, {"0.700000:1:b", "0.500000:0:a"}, {"a", "b", "c"});
  // Without batching the six scores are one row.
  ExpectClasses(scores, 3, false, {3}, {"0.700000:1", "0.500000:3", "0.250000:4"});
}

TEST(ClassifyTest, BatchedTrailingDimensionsAreFlattened) {
  // [2, 2, 2]: each row's 4 classes are the [2, 2] block in row-major order.
  const InferTensor scores{"s", DataType::kInt16, {2, 2, 2}, Le<int16_t>({1, 9, 3, 4, 8, 2, 6, 7})};
  ExpectClasses(scores, 2, true, {2, 2}, {"9:1", "4:3", "8:0", "7:3"});
  // A scalar score tensor is one class when not batched.
  const InferTensor scalar{"s", DataType::kFP64, {}, Le<double>({0.5})};
  ExpectClasses(scalar, 3, false, {1}, {"0.500000:0"});
}

TEST(ClassifyTest, EmptyTensors) {
  ExpectClasses({"s", DataType::kFP32, {0, 5}, ""}, 2, true, {0, 2}, {});
  ExpectClasses({"s", DataType::kFP32, {3, 0}, ""}, 2, true, {3, 0}, {});
  ExpectClasses({"s", DataType::kFP32, {0}, ""}, 2, false, {0}, {});
  // A huge batch of empty rows is not walked row by row.
  ExpectClasses({"s", DataType::kUInt8, {int64_t{1} << 60, 0}, ""}, 1, true, {int64_t{1} << 60, 0},
                {});
}

TEST(ClassifyTest, IntegerTypesCompareExactly) {
  // 2^53 and 2^53 + 1 are the same double; compared as INT64 the second wins.
  const InferTensor big{
      "s", DataType::kInt64, {2}, Le<int64_t>({9007199254740992, 9007199254740993})};
  ExpectClasses(big, 2, false, {2}, {"9007199254740993:1", "9007199254740992:0"});
  const InferTensor u64{
      "s", DataType::kUInt64, {3}, Le<uint64_t>({18446744073709551615u, 18446744073709551614u, 0})};
  ExpectClasses(u64, 2, false, {2}, {"18446744073709551615:0", "18446744073709551614:1"});
  // INT8 scores print as numbers, negatives included.
  const InferTensor i8{"s", DataType::kInt8, {3}, Le<int8_t>({-3, 100, -128})};
  ExpectClasses(i8, 3, false, {3}, {"100:1", "-3:0", "-128:2"});
  const InferTensor u8{"s", DataType::kUInt8, {2}, Le<uint8_t>({7, 200})};
  ExpectClasses(u8, 2, false, {2}, {"200:1", "7:0"});
  const InferTensor u16{"s", DataType::kUInt16, {2}, Le<uint16_t>({65535, 1})};
  ExpectClasses(u16, 1, false, {1}, {"65535:0"});
  const InferTensor u32{"s", DataType::kUInt32, {2}, Le<uint32_t>({1, 4294967295u})};
  ExpectClasses(u32, 1, false, {1}, {"4294967295:1"});
}

TEST(ClassifyTest, HalfPrecisionScores) {
  // FP16 0x3C00 = 1, 0x4000 = 2, 0xBC00 = -1, 0x3800 = 0.5, 0x3555 =
  // 0.333251953125 (six decimals: 0.333252).
  const InferTensor fp16{
      "s", DataType::kFP16, {5}, Le<uint16_t>({0x3C00, 0x4000, 0xBC00, 0x3800, 0x3555})};
  ExpectClasses(fp16, 4, false, {4}, {"2.000000:1", "1.000000:0", "0.500000:3", "0.333252:4"});
  // BF16 0x3F80 = 1, 0x4049 = 3.140625, 0xC000 = -2.
  const InferTensor bf16{"s", DataType::kBF16, {1, 3}, Le<uint16_t>({0x3F80, 0x4049, 0xC000})};
  ExpectClasses(bf16, 3, true, {1, 3}, {"3.140625:1", "1.000000:0", "-2.000000:2"});
}

TEST(ClassifyTest, Fp64FormattingIsPrintfFixed) {
  const InferTensor scores{"s", DataType::kFP64, {4}, Le<double>({0.1, -1e-7, 1e20, 2.5e-6})};
  ExpectClasses(scores, 4, false, {4},
                {"100000000000000000000.000000:2", "0.100000:0", "0.000003:3", "-0.000000:1"});
}

TEST(ClassifyTest, NonFiniteScores) {
  // NaN ranks below every number, -inf included; infinities rank normally.
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const InferTensor scores{"s",
                           DataType::kFP32,
                           {5},
                           Le<float>({std::numeric_limits<float>::quiet_NaN(), -kInf, kInf, 0.0f,
                                      std::numeric_limits<float>::quiet_NaN()})};
  ExpectClasses(scores, 5, false, {5}, {"inf:2", "0.000000:3", "-inf:1", "nan:0", "nan:4"});
  ExpectClasses(scores, 2, false, {2}, {"inf:2", "0.000000:3"});
  // A NaN with the sign bit set prints as "-nan", as printf does.
  const InferTensor neg{"s", DataType::kFP32, {1}, Le<uint32_t>({0xFFC00000u})};
  ExpectClasses(neg, 1, false, {1}, {"-nan:0"});
}

TEST(ClassifyTest, ParametersAreKept) {
  InferTensor scores{"s", DataType::kFP32, {1}, Le<float>({1.0f})};
  scores.parameters = {{"note", "x"}};
  auto r = ClassifyOutput(scores, 1, false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->parameters, json({{"note", "x"}}));
  EXPECT_EQ(r->data, BytesElements({"1.000000:0"}));
}

TEST(ClassifyTest, Errors) {
  const InferTensor fp{"probs", DataType::kFP32, {3}, Le<float>({1, 2, 3})};
  auto zero = ClassifyOutput(fp, 0, false);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(zero.status().message(), "output 'probs': classification needs k >= 1, got 0");

  auto bytes = ClassifyOutput({"probs", DataType::kBytes, {1}, BytesElements({"a"})}, 3, false);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bytes.status().message(),
            "output 'probs': classification (k=3) needs numeric scores, got datatype BYTES");
  auto boolean =
      ClassifyOutput({"flags", DataType::kBool, {2}, std::string("\x01\x00", 2)}, 1, false);
  ASSERT_FALSE(boolean.ok());
  EXPECT_EQ(boolean.status().message(),
            "output 'flags': classification (k=1) needs numeric scores, got datatype BOOL");

  auto scalar = ClassifyOutput({"probs", DataType::kFP32, {}, Le<float>({1})}, 2, true);
  ASSERT_FALSE(scalar.ok());
  EXPECT_EQ(scalar.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(scalar.status().message(),
            "output 'probs': classification (k=2) of a batched output needs scores of shape "
            "[batch, ...], got []");

  auto short_data = ClassifyOutput({"probs", DataType::kFP32, {3}, Le<float>({1, 2})}, 1, false);
  ASSERT_FALSE(short_data.ok());
  EXPECT_EQ(short_data.status().code(), StatusCode::kInternal);
  EXPECT_EQ(short_data.status().message(),
            "output 'probs': data has 8 bytes but shape [3] FP32 needs 12 bytes");
}

RequestedOutput Output(json parameters) {
  RequestedOutput o;
  o.name = "probs";
  o.parameters = std::move(parameters);
  return o;
}

TEST(RequestedClassCountTest, ReadsClassificationAndItsAlias) {
  auto none = RequestedClassCount(Output(json::object()));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  auto other = RequestedClassCount(Output({{"binary_data_size", 4}}));
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());

  auto three = RequestedClassCount(Output({{"classification", 3}}));
  ASSERT_TRUE(three.ok()) << three.status().ToString();
  EXPECT_EQ(*three, std::optional<uint64_t>(3));
  auto alias = RequestedClassCount(Output({{"class_count", 2}}));
  ASSERT_TRUE(alias.ok());
  EXPECT_EQ(*alias, std::optional<uint64_t>(2));
  // A signed JSON integer (as a gRPC int64_param becomes) is fine too.
  auto as_int64 = RequestedClassCount(Output({{"classification", int64_t{5}}}));
  ASSERT_TRUE(as_int64.ok());
  EXPECT_EQ(*as_int64, std::optional<uint64_t>(5));
}

TEST(RequestedClassCountTest, FromARequestBody) {
  auto r = DecodeInferRequest(
      R"({"inputs":[],"outputs":[{"name":"probs","parameters":{"classification":2,"binary_data":true}},
                                 {"name":"raw"}]})",
      std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto k = RequestedClassCount(r->outputs.at(0));
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(*k, std::optional<uint64_t>(2));
  auto none = RequestedClassCount(r->outputs.at(1));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(RequestedClassCountTest, Errors) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"classification", 0}}, "output 'probs': classification must be an integer >= 1, got 0"},
      {{{"classification", -2}}, "output 'probs': classification must be an integer >= 1, got -2"},
      {{{"classification", 2.5}},
       "output 'probs': classification must be an integer >= 1, got 2.5"},
      {{{"classification", 3.0}},
       "output 'probs': classification must be an integer >= 1, got 3.0"},
      {{{"classification", "3"}},
       "output 'probs': classification must be an integer >= 1, got \"3\""},
      {{{"classification", true}},
       "output 'probs': classification must be an integer >= 1, got true"},
      {{{"classification", nullptr}},
       "output 'probs': classification must be an integer >= 1, got null"},
      {{{"class_count", 0}}, "output 'probs': class_count must be an integer >= 1, got 0"},
      {{{"classification", 2}, {"class_count", 2}},
       "output 'probs': both \"classification\" and \"class_count\" are given; use one"},
  };
  for (const auto& [params, message] : cases) {
    auto r = RequestedClassCount(Output(params));
    ASSERT_FALSE(r.ok()) << params.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.status().message(), message);
  }
}

}  // namespace
}  // namespace modelgrid

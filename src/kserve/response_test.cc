// Encoding infer responses (and decoding them, as a client would), error
// bodies and the Status -> HTTP mapping.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kserve/kserve_test_util.h"
#include "modelgrid/kserve/errors.h"
#include "modelgrid/kserve/half.h"
#include "modelgrid/kserve/infer_codec.h"

namespace modelgrid {
namespace {

using kserve_test::BytesElements;
using kserve_test::Le;
using nlohmann::json;
using ::testing::HasSubstr;

// The example response of reference/kserve_v2.md, verbatim.
constexpr const char* kExampleResponse =
    R"({"model_name":"m","model_version":"1","id":"42","parameters":{},
 "outputs":[{"name":"output0","shape":[3,2],"datatype":"FP32","data":[1.0,1.1,2.0,2.1,3.0,3.1]}]})";

InferTensor ExampleOutput() {
  return {"output0", DataType::kFP32, {3, 2}, Le<float>({1.0f, 1.1f, 2.0f, 2.1f, 3.0f, 3.1f})};
}

TEST(EncodeResponseTest, SpecExample) {
  auto r = EncodeInferResponse("m", "1", "42", {ExampleOutput()}, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->json_header_length.has_value());
  EXPECT_EQ(r->body,
            R"({"model_name":"m","model_version":"1","id":"42","outputs":[{"name":"output0",)"
            R"("datatype":"FP32","shape":[3,2],"data":[1.0,1.1,2.0,2.1,3.0,3.1]}]})");
  json expected = json::parse(kExampleResponse);
  expected.erase("parameters");  // empty parameters are left out
  EXPECT_EQ(json::parse(r->body), expected);
  // Decoding the spec's text and ours gives the same response.
  auto from_spec = DecodeInferResponse(kExampleResponse, std::nullopt);
  auto from_ours = DecodeInferResponse(r->body, std::nullopt);
  ASSERT_TRUE(from_spec.ok() && from_ours.ok());
  EXPECT_EQ(*from_spec, *from_ours);
  EXPECT_EQ(from_spec->outputs.at(0), ExampleOutput());
}

// An output the service wrote into shared memory: its parameters, no data,
// and no binary part even when binary data was asked for every output.
TEST(EncodeResponseTest, SharedMemoryOutputsCarryTheirRegionAndNoData) {
  InferTensor t = ExampleOutput();
  t.data.clear();
  t.parameters = {{"shared_memory_region", "out"}, {"shared_memory_byte_size", 24}};
  auto r = EncodeInferResponse("m", "", "", {t, ExampleOutput()}, {}, /*binary_data_output=*/true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->json_header_length.has_value());
  const json head = json::parse(r->body.substr(0, *r->json_header_length));
  EXPECT_EQ(head["outputs"][0],
            json({{"name", "output0"},
                  {"datatype", "FP32"},
                  {"shape", {3, 2}},
                  {"parameters", {{"shared_memory_byte_size", 24}, {"shared_memory_region", "out"}}}}));
  EXPECT_EQ(head["outputs"][1]["parameters"]["binary_data_size"], 24);
  EXPECT_EQ(r->body.size() - *r->json_header_length, 24u);  // only the second output's bytes
}

std::string DataJson(const InferTensor& t) {
  auto r = EncodeInferResponse("m", "", "", {t}, {});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return "";
  // No model_version or id (the body may hold NaN tokens, which
  // nlohmann::json::parse refuses, so the text is checked).
  const std::string& text = r->body;
  EXPECT_EQ(text.rfind(R"({"model_name":"m","outputs":[{"name":")", 0), 0u) << text;
  const size_t start = text.find("\"data\":");
  return text.substr(start + 7, text.size() - (start + 7) - 3);  // drop "}]}"
}

TEST(EncodeResponseTest, EveryDatatypeAsJson) {
  EXPECT_EQ(DataJson({"o", DataType::kBool, {2}, std::string("\x01\x00", 2)}), "[true,false]");
  EXPECT_EQ(DataJson({"o", DataType::kUInt8, {2}, std::string("\x00\xff", 2)}), "[0,255]");
  EXPECT_EQ(DataJson({"o", DataType::kUInt16, {1}, std::string("\xff\xff", 2)}), "[65535]");
  EXPECT_EQ(DataJson({"o", DataType::kUInt32, {1}, std::string(4, '\xff')}), "[4294967295]");
  EXPECT_EQ(DataJson({"o", DataType::kUInt64, {1}, std::string(8, '\xff')}),
            "[18446744073709551615]");
  EXPECT_EQ(DataJson({"o", DataType::kInt8, {2}, std::string("\x80\x7f", 2)}), "[-128,127]");
  EXPECT_EQ(DataJson({"o", DataType::kInt16, {1}, std::string("\xfe\xff", 2)}), "[-2]");
  EXPECT_EQ(DataJson({"o", DataType::kInt32, {1}, std::string("\x00\x00\x00\x80", 4)}),
            "[-2147483648]");
  EXPECT_EQ(DataJson({"o", DataType::kInt64, {1}, std::string("\0\0\0\0\0\0\0\x80", 8)}),
            "[-9223372036854775808]");
  // FP16 0x3C00 = 1, 0x3555 = 0.333251953125, 0x7BFF = 65504, 0x0001 = 2^-24.
  EXPECT_EQ(
      DataJson({"o", DataType::kFP16, {4}, std::string("\x00\x3c\x55\x35\xff\x7b\x01\x00", 8)}),
      "[1.0,0.33325195,65504.0,5.9604645e-08]");
  // BF16 0x3F80 = 1, 0x4049 = 3.140625.
  EXPECT_EQ(DataJson({"o", DataType::kBF16, {2}, std::string("\x80\x3f\x49\x40", 4)}),
            "[1.0,3.140625]");
  EXPECT_EQ(DataJson({"o", DataType::kFP32, {4}, Le<float>({0.1f, 1e20f, 16777216.0f, -0.0f})}),
            "[0.1,1e+20,16777216.0,-0.0]");
  EXPECT_EQ(DataJson({"o",
                      DataType::kFP32,
                      {3},
                      Le<float>({std::nanf(""), -std::numeric_limits<float>::infinity(), 2.5f})}),
            "[NaN,-Infinity,2.5]");
  EXPECT_EQ(DataJson({"o", DataType::kFP64, {3}, Le<double>({0.1, 1e300, -7.0})}),
            "[0.1,1e+300,-7.0]");
  EXPECT_EQ(
      DataJson({"o", DataType::kBytes, {3}, BytesElements({"ab", "q\"\\\n\x01", "\xc3\xa9"})}),
      "[\"ab\",\"q\\\"\\\\\\n\\u0001\",\"\xc3\xa9\"]");
  EXPECT_EQ(DataJson({"o", DataType::kFP32, {0, 4}, ""}), "[]");
}

// Non-finite values are written as Triton's HTTP server writes them
// (rapidjson's kWriteNanAndInfFlag): the tokens NaN, Infinity, -Infinity, for
// every float datatype; whatever the NaN's sign or payload.
TEST(EncodeResponseTest, NonFiniteFloatsAsTokens) {
  constexpr float kInfF = std::numeric_limits<float>::infinity();
  EXPECT_EQ(DataJson({"o",
                      DataType::kFP32,
                      {4},
                      Le<float>({std::numeric_limits<float>::quiet_NaN(), kInfF, -kInfF, 1.0f})}),
            "[NaN,Infinity,-Infinity,1.0]");
  // A negative NaN with a payload (0xFFC00001) and a signalling NaN (0x7F800001).
  EXPECT_EQ(DataJson({"o", DataType::kFP32, {2}, Le<uint32_t>({0xFFC00001u, 0x7F800001u})}),
            "[NaN,NaN]");
  constexpr double kInf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(DataJson({"o",
                      DataType::kFP64,
                      {3},
                      Le<double>({-kInf, std::numeric_limits<double>::quiet_NaN(), kInf})}),
            "[-Infinity,NaN,Infinity]");
  // FP16 0x7C00 = +inf, 0xFC00 = -inf, 0x7E00 = NaN, 0xFE01 = -NaN.
  EXPECT_EQ(DataJson({"o", DataType::kFP16, {4}, Le<uint16_t>({0x7C00, 0xFC00, 0x7E00, 0xFE01})}),
            "[Infinity,-Infinity,NaN,NaN]");
  // BF16 0x7F80 = +inf, 0xFF80 = -inf, 0x7FC0 = NaN.
  EXPECT_EQ(DataJson({"o", DataType::kBF16, {3}, Le<uint16_t>({0x7F80, 0xFF80, 0x7FC0})}),
            "[Infinity,-Infinity,NaN]");
}

TEST(EncodeResponseTest, NonFiniteFloatsRoundTrip) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const std::vector<InferTensor> outputs = {
      {"f64",
       DataType::kFP64,
       {2, 2},
       Le<double>({std::numeric_limits<double>::quiet_NaN(), kInf, -kInf, 0.25})},
      {"f32", DataType::kFP32, {1}, Le<float>({-std::numeric_limits<float>::infinity()})},
      {"f16", DataType::kFP16, {2}, Le<uint16_t>({0x7E00, 0x7C00})},
      {"bf16", DataType::kBF16, {2}, Le<uint16_t>({0xFF80, 0x7FC0})},
  };
  auto r = EncodeInferResponse("m", "", "", outputs, {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(
      r->body,
      R"({"model_name":"m","outputs":[)"
      R"({"name":"f64","datatype":"FP64","shape":[2,2],"data":[NaN,Infinity,-Infinity,0.25]},)"
      R"({"name":"f32","datatype":"FP32","shape":[1],"data":[-Infinity]},)"
      R"({"name":"f16","datatype":"FP16","shape":[2],"data":[NaN,Infinity]},)"
      R"({"name":"bf16","datatype":"BF16","shape":[2],"data":[-Infinity,NaN]}]})");
  // Quiet NaNs with no payload and infinities come back bit for bit.
  auto decoded = DecodeInferResponse(r->body, std::nullopt);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->outputs, outputs);
  // A NaN's sign and payload are not carried by the token (binary data keeps
  // them): -NaN 0xFFC00001 reads back as the quiet NaN 0x7FC00000.
  const InferTensor odd{"o", DataType::kFP32, {1}, Le<uint32_t>({0xFFC00001u})};
  auto odd_json = EncodeInferResponse("m", "", "", {odd}, {});
  ASSERT_TRUE(odd_json.ok());
  auto odd_back = DecodeInferResponse(odd_json->body, std::nullopt);
  ASSERT_TRUE(odd_back.ok()) << odd_back.status().ToString();
  EXPECT_EQ(odd_back->outputs.at(0).data, Le<uint32_t>({0x7FC00000u}));
  auto odd_binary = EncodeInferResponse("m", "", "", {odd}, {RequestedOutput{"o", true}});
  ASSERT_TRUE(odd_binary.ok());
  auto odd_binary_back = DecodeInferResponse(odd_binary->body, odd_binary->json_header_length);
  ASSERT_TRUE(odd_binary_back.ok());
  EXPECT_EQ(odd_binary_back->outputs.at(0).data, odd.data);
}

TEST(EncodeResponseTest, BinaryOutputs) {
  const InferTensor a{"a", DataType::kFP32, {2, 2}, Le<float>({1, 2, 3, 4})};
  const InferTensor b{"b", DataType::kBytes, {1}, BytesElements({std::string("\xff\x00raw", 5)})};
  const InferTensor c{"c", DataType::kInt8, {1}, std::string("\x05", 1)};
  RequestedOutput want_b{"b", true};
  RequestedOutput want_c{"c", false};
  RequestedOutput want_a{"a", true};
  auto r = EncodeInferResponse("m", "2", "", {a, b, c}, {want_b, want_c, want_a});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->json_header_length.has_value());
  const std::string header = r->body.substr(0, *r->json_header_length);
  EXPECT_EQ(
      header,
      R"({"model_name":"m","model_version":"2","outputs":[)"
      R"({"name":"b","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":9}},)"
      R"({"name":"c","datatype":"INT8","shape":[1],"data":[5]},)"
      R"({"name":"a","datatype":"FP32","shape":[2,2],"parameters":{"binary_data_size":16}}]})");
  EXPECT_EQ(r->body.substr(header.size()), b.data + a.data);
  auto decoded = DecodeInferResponse(r->body, r->json_header_length);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->outputs, (std::vector<InferTensor>{b, c, a}));
  EXPECT_EQ(decoded->model_version, "2");
}

TEST(EncodeResponseTest, BinaryDataOutputDefault) {
  const InferTensor a{"a", DataType::kInt16, {1}, Le<int16_t>({7})};
  const InferTensor b{"b", DataType::kInt16, {1}, Le<int16_t>({8})};
  auto all = EncodeInferResponse("m", "", "", {a, b}, {}, /*binary_data_output=*/true);
  ASSERT_TRUE(all.ok());
  ASSERT_TRUE(all->json_header_length.has_value());
  EXPECT_EQ(all->body.substr(*all->json_header_length), a.data + b.data);
  // An output listed without binary_data stays JSON even then.
  auto one = EncodeInferResponse("m", "", "", {a, b}, {RequestedOutput{"b"}}, true);
  ASSERT_TRUE(one.ok());
  EXPECT_FALSE(one->json_header_length.has_value());
  EXPECT_THAT(one->body, HasSubstr(R"({"name":"b","datatype":"INT16","shape":[1],"data":[8]})"));
  EXPECT_THAT(one->body, ::testing::Not(HasSubstr("\"a\"")));
}

TEST(EncodeResponseTest, Errors) {
  const InferTensor a{"a", DataType::kFP32, {2}, Le<float>({1, 2})};
  auto missing = EncodeInferResponse("resnet", "", "", {a}, {RequestedOutput{"probs"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(),
            "requested output 'probs' is not an output of model 'resnet'");

  const InferTensor short_data{"a", DataType::kFP32, {3}, Le<float>({1, 2})};
  auto bad = EncodeInferResponse("resnet", "", "", {short_data}, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("output 'a': data has 8 bytes but shape [3] FP32 needs 12 bytes"));

  const InferTensor raw{"img", DataType::kBytes, {2}, BytesElements({"ok", "PN\xffG"})};
  auto not_text = EncodeInferResponse("m", "", "", {raw}, {});
  ASSERT_FALSE(not_text.ok());
  EXPECT_THAT(not_text.status().message(),
              HasSubstr("output 'img': element 1 of BYTES is not UTF-8 text (byte 2)"));
  EXPECT_TRUE(EncodeInferResponse("m", "", "", {raw}, {RequestedOutput{"img", true}}).ok());
}

TEST(EncodeResponseTest, OutputParametersAndOddNames) {
  InferTensor a{"a\"b", DataType::kUInt8, {1}, std::string("\x01", 1)};
  a.parameters = {{"note", "x"}, {"binary_data_size", 99}};
  auto r = EncodeInferResponse("m\xff", "", "7", {a}, {});
  ASSERT_TRUE(r.ok());
  const json body = json::parse(r->body);  // valid JSON despite the bad byte
  EXPECT_EQ(body["model_name"], "m\xef\xbf\xbd");
  EXPECT_EQ(body["id"], "7");
  EXPECT_EQ(body["outputs"][0]["name"], "a\"b");
  EXPECT_EQ(body["outputs"][0]["parameters"], json({{"note", "x"}}));  // stale size dropped
}

TEST(DecodeResponseTest, Errors) {
  auto no_name = DecodeInferResponse(R"({"outputs":[]})", std::nullopt);
  ASSERT_FALSE(no_name.ok());
  EXPECT_THAT(no_name.status().message(), HasSubstr("no \"model_name\""));
  auto bad = DecodeInferResponse(
      R"({"model_name":"m","outputs":[{"name":"y","datatype":"UINT8","shape":[2],"data":[1,256]}]})",
      std::nullopt);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "output 'y': value 256 out of range for UINT8 (element 1)");
}

TEST(ErrorsTest, HttpStatusFromCode) {
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kOk), 200);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kCorruption), 400);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kAlreadyExists), 400);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kResourceExhausted), 507);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kUnsupported), 501);
  EXPECT_EQ(HttpStatusFromCode(StatusCode::kInternal), 500);
}

TEST(ErrorsTest, ErrorBody) {
  EXPECT_EQ(ErrorBody("input 'x': bad \"thing\""), R"({"error":"input 'x': bad \"thing\""})");
  EXPECT_EQ(ErrorBody(Status::NotFound("model 'm' not found")),
            R"({"error":"model 'm' not found"})");
  // Bytes that are not UTF-8 (e.g. echoed from a malformed body) still give valid JSON.
  const std::string body = ErrorBody(std::string("last read: '\xff\xfe'\n"));
  const json parsed = json::parse(body);
  EXPECT_EQ(parsed["error"], "last read: '\xef\xbf\xbd\xef\xbf\xbd'\n");
  // A decoding error of a malformed body makes a parseable error body.
  auto r = DecodeInferRequest(std::string("{\"a\":\"\xff\"}"), std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_NO_THROW(json::parse(ErrorBody(r.status())));
}

}  // namespace
}  // namespace modelgrid

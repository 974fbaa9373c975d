// Decoding infer requests: the spec's example, every datatype, nested data,
// the binary data extension and every error path (messages asserted).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <string>

#include "kserve/kserve_test_util.h"
#include "modelgrid/kserve/infer_codec.h"

namespace modelgrid {
namespace {

using kserve_test::BytesElements;
using kserve_test::Le;
using nlohmann::json;
using ::testing::HasSubstr;

// The example request of reference/kserve_v2.md, verbatim.
constexpr const char* kExampleRequest = R"({"id":"42","parameters":{},
 "inputs":[{"name":"input0","shape":[2,2],"datatype":"UINT32","parameters":{},"data":[1,2,3,4]}],
 "outputs":[{"name":"output0","parameters":{}}]})";

// With DecodeOptions::body_owner, large binary inputs refer to the body
// (no copy, no region); small ones and BYTES are copied as before.
TEST(DecodeRequestTest, BodyOwnerBorrowsLargeBinaryInputs) {
  const std::string head =
      R"({"inputs":[{"name":"big","shape":[16384],"datatype":"FP32","parameters":{"binary_data_size":65536}},)"
      R"({"name":"small","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]})";
  std::string bytes(65536 + 8, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  auto body = std::make_shared<const std::string>(head + bytes);
  DecodeOptions options;
  options.body_owner = body;
  auto r = DecodeInferRequest(*body, head.size(), options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const InferTensor& big = r->inputs.at(0);
  ASSERT_NE(big.shared, nullptr);
  EXPECT_TRUE(big.data.empty());
  EXPECT_EQ(big.shared->region_id, 0u);
  EXPECT_EQ(big.shared->fd, -1);
  EXPECT_EQ(TensorBytes(big).data(), body->data() + head.size());
  EXPECT_EQ(TensorBytes(big), std::string_view(bytes).substr(0, 65536));
  const InferTensor& small = r->inputs.at(1);
  EXPECT_EQ(small.shared, nullptr);
  EXPECT_EQ(small.data, bytes.substr(65536));
  EXPECT_TRUE(ValidateTensorData(big).ok());
  // The same body without an owner: copies, equal bytes.
  auto copied = DecodeInferRequest(*body, head.size());
  ASSERT_TRUE(copied.ok());
  EXPECT_EQ(copied->inputs.at(0).shared, nullptr);
  EXPECT_EQ(copied->inputs.at(0).data, TensorBytes(big));
  // An owner that does not hold the body is a bug of the caller.
  options.body_owner = std::make_shared<const std::string>("x");
  EXPECT_EQ(DecodeInferRequest(*body, head.size(), options).status().code(),
            StatusCode::kInternal);
}

TEST(DecodeRequestTest, SpecExample) {
  auto r = DecodeInferRequest(kExampleRequest, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id, "42");
  EXPECT_EQ(r->parameters, json::object());
  ASSERT_EQ(r->inputs.size(), 1u);
  const InferTensor& in = r->inputs[0];
  EXPECT_EQ(in.name, "input0");
  EXPECT_EQ(in.datatype, DataType::kUInt32);
  EXPECT_EQ(in.shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(in.data, std::string("\x01\0\0\0\x02\0\0\0\x03\0\0\0\x04\0\0\0", 16));
  EXPECT_EQ(in.parameters, json::object());
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_EQ(r->outputs[0].name, "output0");
  EXPECT_FALSE(r->outputs[0].binary_data);
  EXPECT_FALSE(r->binary_data_output);
}

TEST(DecodeRequestTest, SpecExampleRoundTrips) {
  auto first = DecodeInferRequest(kExampleRequest, std::nullopt);
  ASSERT_TRUE(first.ok());
  for (bool binary : {false, true}) {
    auto body = EncodeInferRequest(*first, binary);
    ASSERT_TRUE(body.ok()) << body.status().ToString();
    EXPECT_EQ(body->json_header_length.has_value(), binary);
    auto again = DecodeInferRequest(body->body, body->json_header_length);
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(*again, *first);
  }
  auto json_body = EncodeInferRequest(*first, false);
  EXPECT_EQ(json::parse(json_body->body),
            json::parse(R"({"id":"42","inputs":[{"name":"input0","shape":[2,2],
              "datatype":"UINT32","data":[1,2,3,4]}],"outputs":[{"name":"output0"}]})"));
}

Result<std::string> DecodeOne(const std::string& datatype, const std::string& shape,
                              const std::string& data) {
  const std::string body = R"({"inputs":[{"name":"x","datatype":")" + datatype + R"(","shape":)" +
                           shape + R"(,"data":)" + data + "}]}";
  auto r = DecodeInferRequest(body, std::nullopt);
  if (!r.ok()) return r.status();
  return r->inputs.at(0).data;
}

TEST(DecodeRequestTest, NestedAndFlatGiveTheSameBytes) {
  auto flat = DecodeOne("INT16", "[2,3]", "[1,2,3,4,5,6]");
  auto nested = DecodeOne("INT16", "[2,3]", "[[1,2,3],[4,5,6]]");
  auto deeper = DecodeOne("INT16", "[2,3]", "[[[1],[2],[3]],[[4],[5],[6]]]");
  ASSERT_TRUE(flat.ok() && nested.ok() && deeper.ok());
  EXPECT_EQ(*flat, Le<int16_t>({1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(*nested, *flat);
  EXPECT_EQ(*deeper, *flat);
  auto fp_flat = DecodeOne("FP32", "[2,2,1]", "[1.5,-2,3,4.25]");
  auto fp_nested = DecodeOne("FP32", "[2,2,1]", "[[[1.5],[-2]],[[3],[4.25]]]");
  ASSERT_TRUE(fp_flat.ok() && fp_nested.ok());
  EXPECT_EQ(*fp_nested, *fp_flat);
  EXPECT_EQ(*fp_flat, Le<float>({1.5f, -2.0f, 3.0f, 4.25f}));
}

TEST(DecodeRequestTest, EveryDatatype) {
  struct Case {
    const char* datatype;
    const char* data;
    std::string bytes;
  };
  const Case cases[] = {
      {"BOOL", "[true,false,true]", std::string("\x01\x00\x01", 3)},
      {"UINT8", "[0,255,7]", std::string("\x00\xff\x07", 3)},
      {"UINT16", "[1,65535,256]", std::string("\x01\x00\xff\xff\x00\x01", 6)},
      {"UINT32", "[1,4294967295,0]", Le<uint32_t>({1, 0xFFFFFFFFu, 0})},
      {"UINT64", "[18446744073709551615,0,1]", std::string(8, '\xff') + Le<uint64_t>({0, 1})},
      {"INT8", "[-128,127,-1]", std::string("\x80\x7f\xff", 3)},
      {"INT16", "[-2,32767,-32768]", std::string("\xfe\xff\xff\x7f\x00\x80", 6)},
      {"INT32", "[-1,2147483647,-2147483648]", Le<int32_t>({-1, INT32_MAX, INT32_MIN})},
      {"INT64", "[-9223372036854775808,9223372036854775807,-5]",
       std::string("\0\0\0\0\0\0\0\x80", 8) + std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) +
           Le<int64_t>({-5})},
      // FP16: 1.0, 65504 (largest finite), 1e-8 (below the smallest subnormal).
      {"FP16", "[1.0,65504,1e-8]", std::string("\x00\x3c\xff\x7b\x00\x00", 6)},
      // BF16: 1.0, 3.0, -2 (an integer literal is a number too).
      {"BF16", "[1.0,3.0,-2]", std::string("\x80\x3f\x40\x40\x00\xc0", 6)},
      {"FP32", "[1.5,-0.0,7]", std::string("\x00\x00\xc0\x3f\x00\x00\x00\x80\x00\x00\xe0\x40", 12)},
      {"FP64", "[0.1,-1,1e300]",
       std::string("\x9a\x99\x99\x99\x99\x99\xb9\x3f", 8) + Le<double>({-1.0, 1e300})},
      {"BYTES", R"(["ab","","\u00e9"])", BytesElements({"ab", "", "\xc3\xa9"})},
  };
  for (const Case& c : cases) {
    auto bytes = DecodeOne(c.datatype, "[3]", c.data);
    ASSERT_TRUE(bytes.ok()) << c.datatype << ": " << bytes.status().ToString();
    EXPECT_EQ(*bytes, c.bytes) << c.datatype;
  }
}

TEST(DecodeRequestTest, ScalarAndEmptyTensors) {
  EXPECT_EQ(*DecodeOne("INT32", "[]", "[7]"), Le<int32_t>({7}));
  EXPECT_EQ(*DecodeOne("INT32", "[]", "7"), Le<int32_t>({7}));
  EXPECT_EQ(*DecodeOne("FP32", "[0,3]", "[]"), "");
  EXPECT_EQ(*DecodeOne("BYTES", "[0]", "[]"), "");
}

void ExpectError(const Result<std::string>& r, const std::string& must_contain,
                 StatusCode code = StatusCode::kInvalidArgument) {
  ASSERT_FALSE(r.ok()) << "expected an error mentioning: " << must_contain;
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr(must_contain));
}

TEST(DecodeRequestTest, ValueErrorsNameTheInputAndTheProblem) {
  ExpectError(DecodeOne("FP32", "[2,3]", "[1,2,3,4,5]"),
              "input 'x': shape [2,3] needs 6 elements, got 5");
  ExpectError(DecodeOne("FP32", "[2,3]", "[[1,2,3],[4,5,6],[7]]"),
              "shape [2,3] needs 6 elements, got 7");
  ExpectError(DecodeOne("UINT8", "[3]", "[1,300,2]"),
              "input 'x': value 300 out of range for UINT8 (element 1)");
  ExpectError(DecodeOne("UINT16", "[1]", "[-1]"), "input 'x': value -1 out of range for UINT16");
  ExpectError(DecodeOne("UINT64", "[1]", "[-1]"), "value -1 out of range for UINT64");
  ExpectError(DecodeOne("INT8", "[2]", "[-128,128]"),
              "value 128 out of range for INT8 (element 1)");
  ExpectError(DecodeOne("INT64", "[1]", "[9223372036854775808]"),
              "value 9223372036854775808 out of range for INT64");
  ExpectError(DecodeOne("UINT64", "[1]", "[1e20]"), "value 1e+20 out of range for UINT64");
  ExpectError(DecodeOne("INT32", "[2]", "[1,2.5]"),
              "input 'x': value 2.5 is not an integer as INT32 needs (element 1)");
  ExpectError(DecodeOne("INT32", "[1]", "[3.0]"),
              "value 3.0 is written as a float, INT32 needs an integer");
  ExpectError(DecodeOne("INT32", "[1]", "[\"3\"]"), "element 0 is \"3\", INT32 needs an integer");
  ExpectError(DecodeOne("BOOL", "[2]", "[true,1]"),
              "input 'x': element 1 is 1, BOOL needs true or false");
  ExpectError(DecodeOne("FP32", "[1]", "[\"a\"]"), "element 0 is \"a\", FP32 needs a number");
  ExpectError(DecodeOne("FP32", "[1]", "[null]"),
              "element 0 is null, FP32 needs a number (write non-finite values as NaN, "
              "Infinity or -Infinity)");
  ExpectError(DecodeOne("FP32", "[1]", "[1e39]"), "value 1e+39 out of range for FP32");
  ExpectError(DecodeOne("FP16", "[2]", "[1,70000]"),
              "value 70000 out of range for FP16 (element 1)");
  ExpectError(DecodeOne("FP16", "[1]", "[65520]"), "value 65520 out of range for FP16");
  ExpectError(DecodeOne("BF16", "[1]", "[1e39]"), "value 1e+39 out of range for BF16");
  ExpectError(DecodeOne("BYTES", "[2]", "[\"a\",5]"), "element 1 is 5, BYTES needs a string");
  ExpectError(DecodeOne("FP32", "[1]", "[{\"a\":1}]"),
              "element 0 is {\"a\":1}, FP32 needs a number");
  // Largest FP32 and FP16 values are still accepted.
  EXPECT_EQ(*DecodeOne("FP32", "[1]", "[3.4028234663852886e38]"),
            std::string("\xff\xff\x7f\x7f", 4));
  EXPECT_EQ(*DecodeOne("FP16", "[1]", "[65519]"), std::string("\xff\x7b", 2));
}

TEST(DecodeRequestTest, ShapeAndTypeErrors) {
  ExpectError(DecodeOne("FLOAT32", "[1]", "[1]"), "input 'x': unknown datatype 'FLOAT32'");
  ExpectError(DecodeOne("FP32", "[2,-1]", "[1,2]"),
              "input 'x': shape [2,-1] has a negative dimension");
  ExpectError(
      DecodeOne("UINT8", "[1048576,1048576,2]", "[]"),
      "input 'x': shape [1048576,1048576,2] has 2199023255552 elements, more than the limit "
      "1099511627776");
  ExpectError(DecodeOne("UINT8", "[4294967296,4294967296]", "[]"),
              "more elements than fit in 64 bits");
  ExpectError(DecodeOne("FP32", "[9223372036854775808]", "[]"),
              "shape dimension 9223372036854775808 is too large");
  ExpectError(DecodeOne("FP32", "[\"2\"]", "[1,2]"),
              "\"shape\" must be an array of integers, found \"2\"");
  ExpectError(DecodeOne("FP32", "[1.5]", "[1]"), "\"shape\" must be an array of integers");
  ExpectError(DecodeOne("FP32", "3", "[1,2,3]"), "\"shape\" must be an array of integers");
}

Result<InferRequest> Decode(const std::string& body, std::optional<size_t> header = std::nullopt) {
  return DecodeInferRequest(body, header);
}

void ExpectRequestError(const std::string& body, const std::string& must_contain,
                        std::optional<size_t> header = std::nullopt,
                        StatusCode code = StatusCode::kInvalidArgument) {
  auto r = Decode(body, header);
  ASSERT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.status().code(), code) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr(must_contain)) << body;
}

TEST(DecodeRequestTest, StructureErrors) {
  ExpectRequestError(R"({"inputs": [})", "malformed JSON at byte 12: syntax error");
  ExpectRequestError("", "malformed JSON at byte 0");
  ExpectRequestError(R"({"inputs":[]} x)", "malformed JSON at byte 14");
  ExpectRequestError("[1,2]", "the body must be a JSON object");
  ExpectRequestError(R"({"id":"1"})", "the request has no \"inputs\"");
  ExpectRequestError(R"({"inputs":{}})", "\"inputs\" must be an array");
  ExpectRequestError(R"({"inputs":[5]})", "inputs[0] must be a JSON object");
  ExpectRequestError(R"({"inputs":[{"shape":[1]}]})", "inputs[0] has no \"name\" string");
  ExpectRequestError(R"({"id":5,"inputs":[]})", "\"id\" must be a string");
  ExpectRequestError(R"({"parameters":[],"inputs":[]})",
                     "request \"parameters\" must be a JSON object");
  ExpectRequestError(R"({"parameters":{"binary_data_output":1},"inputs":[]})",
                     "binary_data_output must be true or false");
  ExpectRequestError(
      R"({"inputs":[{"name":"a","datatype":"INT8","shape":[1],"data":[1]},
                    {"name":"a","datatype":"INT8","shape":[1],"data":[1]}]})",
      "input 'a' appears more than once");
  ExpectRequestError(R"({"inputs":[{"name":"a","shape":[1],"data":[1]}]})",
                     "input 'a': missing \"datatype\" string");
  ExpectRequestError(R"({"inputs":[{"name":"a","datatype":"INT8","data":[1]}]})",
                     "input 'a': missing \"shape\"");
  ExpectRequestError(R"({"inputs":[{"name":"a","datatype":"INT8","shape":[1]}]})",
                     "input 'a': has no \"data\" and no binary_data_size");
  ExpectRequestError(
      R"({"inputs":[{"name":"a","datatype":"INT8","shape":[1],"parameters":3,"data":[1]}]})",
      "input 'a': \"parameters\" must be a JSON object");
  ExpectRequestError(R"({"inputs":[],"outputs":[{"name":"y","parameters":{"binary_data":"yes"}}]})",
                     "requested output 'y': binary_data must be true or false");
  ExpectRequestError(R"({"inputs":[],"outputs":[{"name":"y"},{"name":"y"}]})",
                     "requested output 'y' appears more than once");
  ExpectRequestError(R"({"inputs":[],"outputs":[{}]})", "outputs[0] has no \"name\" string");
  ExpectRequestError(std::string(100, '[') + std::string(100, ']'),
                     "malformed JSON at byte 64: nested deeper than 64 levels");
  ExpectRequestError(R"({"inputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[1e400]}]})",
                     "malformed JSON");
}

// Non-finite values travel in JSON as the tokens NaN, Infinity and -Infinity
// (Triton's rapidjson kParseNanAndInfFlag / kWriteNanAndInfFlag; Python's
// json module), as the float type's quiet NaN and infinities.
TEST(DecodeRequestTest, NonFiniteTokensInFloatData) {
  // FP32: quiet NaN 0x7FC00000, +inf 0x7F800000, -inf 0xFF800000.
  EXPECT_EQ(*DecodeOne("FP32", "[4]", "[NaN, Infinity,-Infinity ,1.5]"),
            std::string("\x00\x00\xc0\x7f\x00\x00\x80\x7f\x00\x00\x80\xff\x00\x00\xc0\x3f", 16));
  // FP64: 0x7FF8000000000000, 0xFFF0000000000000.
  EXPECT_EQ(*DecodeOne("FP64", "[2]", "[NaN,-Infinity]"),
            std::string("\0\0\0\0\0\0\xf8\x7f\0\0\0\0\0\0\xf0\xff", 16));
  // FP16: 0x7E00, 0x7C00, 0xFC00; BF16: 0x7FC0, 0x7F80, 0xFF80.
  EXPECT_EQ(*DecodeOne("FP16", "[3]", "[NaN,Infinity,-Infinity]"),
            std::string("\x00\x7e\x00\x7c\x00\xfc", 6));
  EXPECT_EQ(*DecodeOne("BF16", "[3]", "[NaN,Infinity,-Infinity]"),
            std::string("\xc0\x7f\x80\x7f\x80\xff", 6));
  // Nested data, whitespace around, and a lone scalar.
  EXPECT_EQ(*DecodeOne("FP32", "[2,1]", "[[ NaN ],[\n-Infinity\t]]"),
            std::string("\x00\x00\xc0\x7f\x00\x00\x80\xff", 8));
  EXPECT_EQ(*DecodeOne("FP32", "[]", "Infinity"), std::string("\x00\x00\x80\x7f", 4));
  // Infinity is not "out of range" for the narrow types.
  EXPECT_EQ(*DecodeOne("FP16", "[1]", "[-Infinity]"), std::string("\x00\xfc", 2));
}

TEST(DecodeRequestTest, NonFiniteTokensElsewhereAreRefused) {
  // Non-float datatypes name the element and the type.
  ExpectError(DecodeOne("INT32", "[2]", "[1,NaN]"),
              "input 'x': element 1 is NaN, INT32 needs an integer");
  ExpectError(DecodeOne("UINT8", "[1]", "[Infinity]"),
              "element 0 is Infinity, UINT8 needs an integer");
  ExpectError(DecodeOne("BOOL", "[1]", "[-Infinity]"),
              "element 0 is -Infinity, BOOL needs true or false");
  ExpectError(DecodeOne("BYTES", "[1]", "[NaN]"), "element 0 is NaN, BYTES needs a string");
  // Only inside a tensor's "data": not in parameters, shapes, or the top level.
  ExpectRequestError(R"({"parameters":{"x":NaN},"inputs":[]})",
                     "malformed JSON at byte 19: NaN is accepted only in a tensor's \"data\"");
  ExpectRequestError(
      R"({"inputs":[{"name":"a","datatype":"FP32","shape":[1],"parameters":{"s":Infinity},"data":[1]}]})",
      "Infinity is accepted only in a tensor's \"data\"");
  ExpectRequestError(
      R"({"inputs":[{"name":"a","datatype":"FP32","shape":[-Infinity],"data":[1]}]})",
      "-Infinity is accepted only in a tensor's \"data\"");
  ExpectRequestError(R"({"inputs":[],"x":{"inputs":[{"data":[NaN]}]}})", "NaN is accepted only");
  ExpectRequestError(R"({"inputs":[[{"data":[NaN]}]]})", "NaN is accepted only");
  // Other spellings, and tokens glued to a neighbour, are malformed.
  for (const char* data :
       {"[nan]", "[Inf]", "[-NaN]", "[+Infinity]", "[infinity]", "[1NaN]", "[NaN1]", "[NaNNaN]",
        "[-Infinityx]", "[Infinity-Infinity]", "[NaN NaN]", "[1-Infinity]", "[\"a\"NaN]"}) {
    const std::string body =
        std::string(R"({"inputs":[{"name":"a","datatype":"FP32","shape":[1],"data":)") + data +
        "}]}";
    ExpectRequestError(body, "malformed JSON at byte ");
  }
  // Byte offsets and quoted text are those of the body as sent (the 'a' of
  // "nan" is byte 71), the same as with a number of the token's length there.
  auto with_token =
      Decode(R"({"inputs":[{"name":"a","datatype":"FP32","shape":[2],"data":[Infinity,nan]}]})");
  auto with_number =
      Decode(R"({"inputs":[{"name":"a","datatype":"FP32","shape":[2],"data":[1.000000,nan]}]})");
  ASSERT_FALSE(with_token.ok());
  ASSERT_FALSE(with_number.ok());
  EXPECT_THAT(with_number.status().message(), HasSubstr("malformed JSON at byte 71: "));
  EXPECT_THAT(with_token.status().message(), HasSubstr("malformed JSON at byte 71: "));
  EXPECT_THAT(with_token.status().message(), HasSubstr("last read: 'Infinity,na'"));
}

TEST(DecodeRequestTest, NonFiniteLookalikesInStringsAreUntouched) {
  // Inside strings the tokens are text: names, BYTES data, parameters, keys.
  auto r = Decode(R"({"id":"NaN","parameters":{"Infinity":"-Infinity"},"inputs":[
      {"name":"NaN","datatype":"BYTES","shape":[3],"data":["NaN","Infinity","\"-Infinity"]},
      {"name":"Infinity","datatype":"FP32","shape":[1],"data":[NaN]}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id, "NaN");
  EXPECT_EQ(r->parameters, json({{"Infinity", "-Infinity"}}));
  ASSERT_EQ(r->inputs.size(), 2u);
  EXPECT_EQ(r->inputs[0].name, "NaN");
  EXPECT_EQ(r->inputs[0].data, BytesElements({"NaN", "Infinity", "\"-Infinity"}));
  EXPECT_EQ(r->inputs[1].name, "Infinity");
  EXPECT_EQ(r->inputs[1].data, std::string("\x00\x00\xc0\x7f", 4));
  // Numbers before and after the tokens keep their values (the parser's
  // number events are matched to the tokens by position).
  auto mixed = DecodeOne("FP64", "[6]", "[1,NaN,-2.5e1,Infinity,3,-Infinity]");
  ASSERT_TRUE(mixed.ok()) << mixed.status().ToString();
  EXPECT_EQ(*mixed, Le<double>({1.0, std::numeric_limits<double>::quiet_NaN(), -25.0,
                                std::numeric_limits<double>::infinity(), 3.0,
                                -std::numeric_limits<double>::infinity()}));
}

TEST(DecodeRequestTest, NonFiniteRoundTripThroughTheEncoder) {
  InferRequest request;
  request.inputs.push_back({"f32",
                            DataType::kFP32,
                            {3},
                            Le<float>({std::numeric_limits<float>::quiet_NaN(),
                                       std::numeric_limits<float>::infinity(), -0.5f})});
  request.inputs.push_back(
      {"f16", DataType::kFP16, {2}, std::string("\x00\xfc\x00\x7e", 4)});  // -inf, NaN
  auto body = EncodeInferRequest(request, /*binary_inputs=*/false);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_THAT(body->body, HasSubstr(R"("data":[NaN,Infinity,-0.5])"));
  EXPECT_THAT(body->body, HasSubstr(R"("data":[-Infinity,NaN])"));
  auto decoded = Decode(body->body);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->inputs, request.inputs);
}

// Inputs in system shared memory: no data, parameters kept for the grid.
TEST(DecodeRequestTest, SharedMemoryInputsKeepTheirParameters) {
  // Binary, shared-memory and JSON inputs mixed: order kept, binary bytes
  // taken by the binary input only.
  const std::string json_part = R"({"inputs":[
      {"name":"b","datatype":"INT8","shape":[2],"parameters":{"binary_data_size":2}},
      {"name":"s","datatype":"FP32","shape":[2,3],"parameters":{"shared_memory_region":"r1",
        "shared_memory_byte_size":24,"shared_memory_offset":8,"note":"x"}},
      {"name":"j","datatype":"INT8","shape":[1],"data":[7]}]})";
  auto r = Decode(json_part + std::string("\x01\x02", 2), json_part.size());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->inputs.size(), 3u);
  EXPECT_EQ(r->inputs[0].name, "b");
  EXPECT_EQ(r->inputs[0].data, std::string("\x01\x02", 2));
  const InferTensor& s = r->inputs[1];
  EXPECT_EQ(s.name, "s");
  EXPECT_EQ(s.datatype, DataType::kFP32);
  EXPECT_EQ(s.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(s.data.empty());
  EXPECT_EQ(s.shared, nullptr);
  EXPECT_EQ(s.parameters, json({{"shared_memory_region", "r1"},
                                {"shared_memory_byte_size", 24},
                                {"shared_memory_offset", 8},
                                {"note", "x"}}));
  EXPECT_EQ(r->inputs[2].name, "j");
  EXPECT_EQ(r->inputs[2].data, std::string("\x07", 1));

  // Only a region: no offset, no size (the grid reports the missing size).
  auto only = Decode(R"({"inputs":[{"name":"a","datatype":"INT8","shape":[4],
      "parameters":{"shared_memory_region":"r"}}]})");
  ASSERT_TRUE(only.ok()) << only.status().ToString();
  EXPECT_EQ(only->inputs[0].parameters, json({{"shared_memory_region", "r"}}));
  EXPECT_TRUE(only->inputs[0].data.empty());
}

TEST(DecodeRequestTest, SharedMemoryErrors) {
  ExpectRequestError(R"({"inputs":[{"name":"a","datatype":"INT8","shape":[1],"data":[1],
      "parameters":{"shared_memory_region":"r","shared_memory_byte_size":1}}]})",
                     "input 'a': has both \"data\" and shared_memory_region");
  const std::string binary = R"({"inputs":[{"name":"a","datatype":"INT8","shape":[1],
      "parameters":{"shared_memory_region":"r","binary_data_size":1}}]})";
  ExpectRequestError(binary + "x", "input 'a': has both binary_data_size and shared_memory_region",
                     binary.size());
  ExpectRequestError(R"({"inputs":[{"name":"a","shape":[1],
      "parameters":{"shared_memory_region":"r"}}]})",
                     "input 'a': missing \"datatype\" string");
  ExpectRequestError(R"({"inputs":[{"name":"a","datatype":"INT9","shape":[1],
      "parameters":{"shared_memory_region":"r"}}]})",
                     "input 'a': unknown datatype 'INT9'");
  ExpectRequestError(R"({"inputs":[{"name":"a","datatype":"INT8","shape":[1.5],
      "parameters":{"shared_memory_region":"r"}}]})",
                     "input 'a': \"shape\" must be an array of integers, found 1.5");
  ExpectRequestError(R"({"inputs":[{"name":"a","datatype":"INT8",
      "parameters":{"shared_memory_region":"r"}}]})",
                     "input 'a': missing \"shape\"");
  ExpectRequestError(R"({"inputs":[{"name":"a","datatype":"INT8","shape":[-1],
      "parameters":{"shared_memory_region":"r"}}]})",
                     "input 'a'");
  // The structure checks keep their messages and indices next to a shared input.
  const std::string shared = R"({"name":"a","datatype":"INT8","shape":[1],
      "parameters":{"shared_memory_region":"r"}})";
  ExpectRequestError(R"({"inputs":[)" + shared + ",5]}", "inputs[1] must be a JSON object");
  ExpectRequestError(R"({"inputs":[)" + shared + R"(,{"shape":[1]}]})",
                     "inputs[1] has no \"name\" string");
  ExpectRequestError(R"({"inputs":[)" + shared + "," + shared + "]}",
                     "input 'a' appears more than once");
  ExpectRequestError(
      R"({"inputs":[)" + shared + R"(,{"name":"a","datatype":"INT8","shape":[1],"data":[1]}]})",
      "input 'a' appears more than once");
  // A plain input next to a shared one still needs its data.
  ExpectRequestError(R"({"inputs":[)" + shared + R"(,{"name":"b","datatype":"INT8","shape":[1]}]})",
                     "input 'b': has no \"data\" and no binary_data_size");
  // A requested output in shared memory keeps its parameters for the service.
  auto out = DecodeInferRequest(R"({"inputs":[],"outputs":[{"name":"y","parameters":
      {"shared_memory_region":"out","shared_memory_byte_size":40}}]})",
                                std::nullopt);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->outputs.size(), 1u);
  EXPECT_EQ(out->outputs[0].parameters,
            json({{"shared_memory_region", "out"}, {"shared_memory_byte_size", 40}}));
}

TEST(DecodeRequestTest, RequestedOutputsAndParameters) {
  auto r = Decode(R"({"parameters":{"binary_data_output":true,"priority":2},"inputs":[],
      "outputs":[{"name":"a","parameters":{"binary_data":true,"classification":0}},{"name":"b"}]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->binary_data_output);
  EXPECT_EQ(r->parameters["priority"], 2);
  ASSERT_EQ(r->outputs.size(), 2u);
  EXPECT_EQ(r->outputs[0].name, "a");
  EXPECT_TRUE(r->outputs[0].binary_data);
  EXPECT_EQ(r->outputs[0].parameters, json({{"classification", 0}}));
  EXPECT_FALSE(r->outputs[1].binary_data);
}

// Binary data extension: JSON header, then the raw bytes of binary inputs in
// order. Here an FP32 [2,2] and a BYTES [2] input are binary, with a JSON
// input between them.
TEST(DecodeRequestTest, BinaryDataWithTwoInputs) {
  const std::string header =
      R"({"inputs":[{"name":"img","datatype":"FP32","shape":[2,2],"parameters":{"binary_data_size":16}},)"
      R"({"name":"k","datatype":"INT32","shape":[1],"data":[9]},)"
      R"({"name":"txt","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":11,"lang":"en"}}]})";
  const std::string img = Le<float>({1.0f, 2.0f, -3.5f, 0.25f});
  const std::string txt = std::string("\x02\0\0\0ab\x01\0\0\0c", 11);
  const std::string body = header + img + txt;
  auto r = Decode(body, header.size());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->inputs.size(), 3u);
  EXPECT_EQ(r->inputs[0].data, img);
  EXPECT_EQ(r->inputs[0].parameters, json::object());  // binary_data_size removed
  EXPECT_EQ(r->inputs[1].data, Le<int32_t>({9}));
  EXPECT_EQ(r->inputs[2].data, txt);
  EXPECT_EQ(r->inputs[2].parameters, json({{"lang", "en"}}));

  // The same tensors as JSON decode identically.
  const std::string as_json =
      R"({"inputs":[{"name":"img","datatype":"FP32","shape":[2,2],"data":[[1,2],[-3.5,0.25]]},)"
      R"({"name":"k","datatype":"INT32","shape":[1],"data":[9]},)"
      R"({"name":"txt","datatype":"BYTES","shape":[2],"parameters":{"lang":"en"},"data":["ab","c"]}]})";
  auto j = Decode(as_json);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(*j, *r);
  // A header length equal to the body size is a body without binary data.
  EXPECT_TRUE(Decode(as_json, as_json.size()).ok());
}

TEST(DecodeRequestTest, BinaryDataErrors) {
  const auto input = [](const std::string& datatype, const std::string& shape,
                        const std::string& size) {
    return R"({"name":"x","datatype":")" + datatype + R"(","shape":)" + shape +
           R"(,"parameters":{"binary_data_size":)" + size + "}}";
  };
  const auto body_of = [](const std::string& inputs) { return R"({"inputs":[)" + inputs + "]}"; };

  std::string h = body_of(input("FP32", "[2,2]", "24"));
  ExpectRequestError(h + std::string(24, '\0'),
                     "input 'x': binary_data_size 24 but shape [2,2] FP32 needs 16 bytes",
                     h.size());
  h = body_of(input("FP32", "[2,2]", "16"));
  ExpectRequestError(h + std::string(8, '\0'),
                     "input 'x': binary_data_size 16 but only 8 bytes of binary data are left",
                     h.size());
  ExpectRequestError(h + std::string(20, '\0'),
                     "the binary data has 20 bytes but the binary_data_size values add up to 16",
                     h.size());
  ExpectRequestError(
      h + std::string(16, '\0'),
      "input 'x': binary_data_size 16 but the request has no Inference-Header-Content-Length");
  ExpectRequestError(h,
                     "Inference-Header-Content-Length 500 is larger than the body (" +
                         std::to_string(h.size()) + " bytes)",
                     500);
  ExpectRequestError(h + std::string(16, '\0'), "malformed JSON", h.size() - 1);
  h = body_of(input("INT8", "[1]", "-1"));
  ExpectRequestError(h, "binary_data_size must be a non-negative integer, got -1", h.size());
  h = body_of(
      R"({"name":"x","datatype":"INT8","shape":[1],"data":[1],"parameters":{"binary_data_size":1}})");
  ExpectRequestError(h + "\x01", "input 'x': has both \"data\" and binary_data_size", h.size());
  h = body_of(input("BOOL", "[2]", "2"));
  ExpectRequestError(h + std::string("\x01\x02", 2),
                     "input 'x': BOOL element 1 is byte 2, needs 0 or 1", h.size());
  h = body_of(input("BYTES", "[2]", "6"));
  ExpectRequestError(h + std::string("\x02\0\0\0ab", 6),
                     "input 'x': BYTES data holds 1 elements, shape [2] needs 2", h.size());
  ExpectRequestError(h + std::string("\x09\0\0\0ab", 6),
                     "input 'x': BYTES element 0 has length 9 but only 2 bytes are left", h.size());
  // The second of two binary inputs is short.
  h = body_of(input("INT16", "[2]", "4") + "," +
              R"({"name":"y","datatype":"INT16","shape":[3],"parameters":{"binary_data_size":6}})");
  ExpectRequestError(h + std::string(8, '\0'),
                     "input 'y': binary_data_size 6 but only 4 bytes of binary data are left",
                     h.size());
}

TEST(DecodeRequestTest, MaxTensorElementsOption) {
  DecodeOptions options;
  options.max_tensor_elements = 4;
  auto r = DecodeInferRequest(
      R"({"inputs":[{"name":"x","datatype":"INT8","shape":[5],"data":[1,2,3,4,5]}]})", std::nullopt,
      options);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(),
              HasSubstr("input 'x': shape [5] has 5 elements, more than the limit 4"));
}

}  // namespace
}  // namespace modelgrid
